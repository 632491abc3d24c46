from cohortflow.logutil import job_logging
from cohortflow.preprocess.templates import TEMPLATE_FILES, prepare_template

with job_logging(snakemake.log[0], "preprocess.template") as log:
    outputs = {name: snakemake.output[name] for name in TEMPLATE_FILES}
    prepare_template(snakemake.params.settings, outputs, snakemake.output.record)
    log.info("template ready: %s", snakemake.output.record)
