from cohortflow.deface.run import run_evaluate
from cohortflow.logutil import job_logging

with job_logging(snakemake.log[0], "deface_qa.evaluate"):
    run_evaluate(
        snakemake.input.original,
        snakemake.input.defaced,
        snakemake.input.registration,
        snakemake.input.template,
        snakemake.input.model,
        decision_out=snakemake.output.decision,
        renders_out=snakemake.output.renders,
        subject=snakemake.wildcards.subject,
        defacer=snakemake.wildcards.defacer,
        min_provenance_correlation=snakemake.params.min_provenance_correlation,
    )
