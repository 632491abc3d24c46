from cohortflow.io.atomic import concatenate_tables
from cohortflow.logutil import job_logging

with job_logging(snakemake.log[0], "deface_qa.features") as log:
    n = concatenate_tables(list(snakemake.input), snakemake.output[0])
    log.info("%d training pairs from %d heads", n, len(snakemake.input))
