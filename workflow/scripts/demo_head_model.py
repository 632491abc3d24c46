from cohortflow.demo.headmodel import build_head_model
from cohortflow.logutil import job_logging

with job_logging(snakemake.log[0], "demo.head_model") as log:
    log.info("registering the MNI152 2009 brain maps into the pydeface head template (SimpleITK)")
    build_head_model(snakemake.output[0])
