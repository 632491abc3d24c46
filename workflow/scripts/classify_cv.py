from cohortflow.classify.jobs import classify_job
from cohortflow.classify.run import run_cv_split
from cohortflow.logutil import job_logging

with job_logging(snakemake.log[0], "classify"):
    job = classify_job(snakemake)
    run_cv_split(
        job,
        snakemake.wildcards.split,
        predictions_out=snakemake.output.predictions,
        history_out=snakemake.output.history,
    )
