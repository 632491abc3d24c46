from cohortflow.fhir.run import run_upload
from cohortflow.logutil import job_logging

with job_logging(snakemake.log[0], "fhir.upload"):
    run_upload(
        list(snakemake.input.bundles),
        dict(snakemake.output.items()),
        snakemake.params.upload,
        snakemake.log[0],
    )
