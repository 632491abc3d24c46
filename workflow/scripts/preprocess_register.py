from cohortflow.logutil import job_logging
from cohortflow.preprocess.run import run_registration, write_registration_mosaic
from cohortflow.preprocess.templates import TEMPLATE_FILES

with job_logging(snakemake.log[0], "preprocess.register"):
    template = {name: snakemake.input[name] for name in TEMPLATE_FILES}
    run_registration(
        snakemake.input.image,
        template,
        snakemake.input.template_record,
        snakemake.params.preset,
        snakemake.output.image,
        snakemake.output.sidecar,
        snakemake.output.metrics,
        snakemake.output.transform,
        subject=snakemake.wildcards.subject,
        threads=snakemake.threads,
        seed=snakemake.params.seed,
    )
    write_registration_mosaic(
        snakemake.output.image,
        template["wm_reference"],
        snakemake.output.mosaic,
        snakemake.wildcards.subject,
    )
