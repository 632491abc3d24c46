from cohortflow.classify.jobs import write_dataset
from cohortflow.logutil import job_logging

with job_logging(snakemake.log[0], "classify") as log:
    maps = {name: path for name, path in snakemake.input.items() if name != "sources"}
    rows = write_dataset(snakemake.params.table, maps, snakemake.output[0])
    log.info("training set: %d labelled subjects", len(rows))
