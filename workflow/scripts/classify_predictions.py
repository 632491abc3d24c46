from cohortflow.classify.run import collect_predictions
from cohortflow.logutil import job_logging

with job_logging(snakemake.log[0], "classify") as log:
    table = collect_predictions(list(snakemake.input), snakemake.output[0])
    log.info("%d predictions, %d labelled yes", len(table), int((table["label"] == "yes").sum()))
