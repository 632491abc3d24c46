from cohortflow.ingest.sources import check_sources
from cohortflow.logutil import job_logging

with job_logging(snakemake.log[0], "ingest.sources"):
    check_sources(dict(snakemake.input.items()), snakemake.params.sheet_rows, snakemake.output[0])
