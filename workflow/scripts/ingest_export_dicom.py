from cohortflow.ingest.run import IngestSettings, export_deidentified_dicom
from cohortflow.logutil import job_logging
from cohortflow.privacy.pseudonym import load_job_key

with job_logging(snakemake.log[0], "ingest") as log:
    export_deidentified_dicom(
        source=snakemake.params.source,
        out_dir=snakemake.output[0],
        subject=snakemake.wildcards.subject,
        sheet_row=snakemake.params.sheet_row,
        key=load_job_key(
            allow_demo_key=snakemake.params.allow_demo_key,
            fingerprint=snakemake.params.key_fingerprint,
        ),
        settings=IngestSettings.from_config(snakemake.params.settings),
        logger=log,
    )
