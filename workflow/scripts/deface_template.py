from cohortflow.deface.run import run_template
from cohortflow.logutil import job_logging

with job_logging(snakemake.log[0], "deface.template"):
    run_template(snakemake.output[0])
