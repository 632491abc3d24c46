from cohortflow.classify.jobs import classify_job
from cohortflow.classify.run import run_permutation
from cohortflow.logutil import job_logging

with job_logging(snakemake.log[0], "classify"):
    job = classify_job(snakemake)
    run_permutation(
        job,
        int(snakemake.wildcards.perm),
        out=snakemake.output[0],
    )
