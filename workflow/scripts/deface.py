from cohortflow.deface.defacer import DefaceSettings
from cohortflow.deface.run import run_deface
from cohortflow.logutil import job_logging

with job_logging(snakemake.log[0], "deface"):
    run_deface(
        snakemake.input.image,
        snakemake.input.template,
        DefaceSettings.from_config(snakemake.params.settings),
        defaced_out=snakemake.output.image,
        mask_out=snakemake.output.mask,
        registration_out=snakemake.output.registration,
        sidecar_out=snakemake.output.sidecar,
        subject=snakemake.wildcards.subject,
    )
