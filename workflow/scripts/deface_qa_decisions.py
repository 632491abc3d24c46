from cohortflow.deface.run import run_decisions
from cohortflow.logutil import job_logging

with job_logging(snakemake.log[0], "deface_qa.decisions"):
    run_decisions(list(snakemake.input), snakemake.output[0])
