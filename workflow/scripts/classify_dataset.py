from cohortflow.classify.jobs import write_dataset
from cohortflow.logutil import job_logging

with job_logging(snakemake.log[0], "classify") as log:
    rows = write_dataset(snakemake.params.table, dict(snakemake.input.items()), snakemake.output[0])
    log.info("training set: %d labelled subjects", len(rows))
