# Ingest: DICOM folder / NIfTI / BIDS -> de-identified NIfTI + JSON sidecar, per subject.
from cohortflow.ingest.budget import ingest_mem_mb

# Images are refused above ingest.max_image_mb before any pixel is read; the job's memory
# follows that limit (cohortflow.ingest.budget).
INGEST_MEM_MB = ingest_mem_mb(config["ingest"]["max_image_mb"])


rule ingest:
    input:
        source=get_ingest_source,
    output:
        nifti=ingested(".nii.gz"),
        sidecar=ingested(".json"),
    log:
        subject_log("ingest", "ingest", subject="{subject}", session="{session}"),
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=attempt_scaled(INGEST_MEM_MB),
        runtime=15,
    params:
        source=get_source_path,
        sheet_row=get_sheet_row,
        bids_subject=get_bids_subject,
        settings=config["ingest"],
        allow_demo_key=config["pseudonymise"]["allow_demo_key"],
        key_fingerprint=KEY_FINGERPRINT,
    script:
        "../scripts/ingest.py"


rule ingest_export_dicom:
    input:
        source=get_ingest_source,
        # Exported only once the series converted cleanly (geometry checks passed).
        sidecar=ingested(".json"),
    output:
        directory(deidentified_dicom()),
    log:
        subject_log("ingest", "export_dicom", subject="{subject}", session="{session}"),
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=attempt_scaled(1000),
        runtime=15,
    params:
        source=get_source_path,
        sheet_row=get_sheet_row,
        settings=config["ingest"],
        allow_demo_key=config["pseudonymise"]["allow_demo_key"],
        key_fingerprint=KEY_FINGERPRINT,
    script:
        "../scripts/ingest_export_dicom.py"


rule ingest_sources:
    input:
        unpack(get_ingest_sidecar_map),
    output:
        INGEST_SOURCES,
    log:
        "logs/ingest/sources.log",
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=attempt_scaled(1000),
        runtime=15,
    params:
        sheet_rows=get_sheet_row_map(),
    script:
        "../scripts/ingest_sources.py"
