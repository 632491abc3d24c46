from cohortflow.deface.run import run_pairs
from cohortflow.logutil import job_logging

settings = snakemake.params.settings
with job_logging(snakemake.log[0], "deface_qa.pairs"):
    run_pairs(
        snakemake.input.original,
        snakemake.input.registration,
        snakemake.input.template,
        snakemake.output[0],
        subject=snakemake.wildcards.subject,
        per_type=settings["pairs_per_type"],
        margin_mm=snakemake.params.margin,
        seed=settings["seed"],
        min_provenance_correlation=settings["min_provenance_correlation"],
    )
