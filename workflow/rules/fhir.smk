# FHIR R4 export (MII Bildgebung): a validated transaction Bundle per subject and session, the
# genotype QC as cohort-level bundles, and the optional upload to a FHIR server.


rule fhir_subject:
    input:
        unpack(get_fhir_subject_inputs),
    output:
        bundle=fhir_path("bundle"),
        record=fhir_path("validation"),
    log:
        subject_log("fhir", "bundle", subject="{subject}", session="{session}"),
    conda:
        "../../envs/fhir.yaml"
    threads: 1
    resources:
        mem_mb=attempt_scaled(1500),
        runtime=15,
    params:
        fhir=FHIR_EXPORT,
        config_sha256=CONFIG_SHA256,
    script:
        "../scripts/fhir_subject.py"


rule fhir_genotypes:
    input:
        samples="results/genotype_qc/report/samples.tsv",
        summary="results/genotype_qc/report/summary.json",
        imported=genotype_qc_step("import"),
        genotypes=get_genotype_input,
    output:
        directory(FHIR_GENOTYPES),
    log:
        "logs/fhir/genotypes.log",
    conda:
        "../../envs/fhir.yaml"
    threads: 1
    resources:
        mem_mb=attempt_scaled(2000),
        runtime=30,
    params:
        fhir=FHIR_EXPORT,
        config_sha256=CONFIG_SHA256,
        allow_demo_key=config["pseudonymise"]["allow_demo_key"],
        key_fingerprint=KEY_FINGERPRINT,
    script:
        "../scripts/fhir_genotypes.py"


rule fhir_upload:
    input:
        bundles=get_fhir_bundles(),
        # Nothing is sent while two sheet rows hold one person's images.
        sources=INGEST_SOURCES if config["stages"]["ingest"] else [],
    output:
        table="results/fhir/upload/outcomes.tsv",
        details="results/fhir/upload/outcomes.json",
    log:
        "logs/fhir/upload.log",
    conda:
        "../../envs/fhir.yaml"
    threads: 1
    resources:
        mem_mb=attempt_scaled(1000),
        runtime=60,
    params:
        upload=FHIR["upload"],
    script:
        "../scripts/fhir_upload.py"
