from cohortflow.deface.run import run_export_dicom
from cohortflow.logutil import job_logging

with job_logging(snakemake.log[0], "deface.export_dicom"):
    run_export_dicom(
        source=snakemake.params.source,
        mask=snakemake.input.mask,
        out_dir=snakemake.output[0],
        subject=snakemake.wildcards.subject,
        sheet_row=snakemake.params.sheet_row,
        settings=snakemake.params.settings,
        allow_demo_key=snakemake.params.allow_demo_key,
        key_fingerprint=snakemake.params.key_fingerprint,
    )
