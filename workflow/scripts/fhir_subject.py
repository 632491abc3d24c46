from cohortflow.fhir.run import run_subject
from cohortflow.logutil import job_logging

with job_logging(snakemake.log[0], "fhir.subject"):
    run_subject(
        snakemake.wildcards.subject,
        dict(snakemake.input.items()),
        dict(snakemake.output.items()),
        snakemake.params.fhir,
        snakemake.params.config_sha256,
    )
