from cohortflow.ingest.run import IngestSettings, ingest_subject
from cohortflow.logutil import job_logging
from cohortflow.privacy.pseudonym import load_job_key

w = snakemake.wildcards
with job_logging(snakemake.log[0], "ingest") as log:
    ingest_subject(
        source=snakemake.params.source,
        nifti_out=snakemake.output.nifti,
        sidecar_out=snakemake.output.sidecar,
        subject=w.subject,
        subject_id=snakemake.params.bids_subject,
        session=w.session,
        sheet_row=snakemake.params.sheet_row,
        key=load_job_key(
            allow_demo_key=snakemake.params.allow_demo_key,
            fingerprint=snakemake.params.key_fingerprint,
        ),
        settings=IngestSettings.from_config(snakemake.params.settings),
        logger=log,
    )
