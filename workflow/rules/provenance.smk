# The run's provenance record: config, versions as used, git commit, input and output
# checksums (cohortflow.runrecord). It comes last: its input is every other final output.


rule provenance_run:
    input:
        outputs=get_final_output(),
        sheet=config.get("samples") or [],
        ingest=get_ingest_sidecars(),
        genotypes=get_genotype_input if config["stages"]["genotype_qc"] else [],
    output:
        record=report(
            RUN_RECORD,
            category="Provenance",
            caption="../report/provenance.rst",
        ),
        checksums=RUN_CHECKSUMS,
    log:
        "logs/provenance/run.log",
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=attempt_scaled(1000),
        runtime=30,
    params:
        config=config,
        config_sha256=CONFIG_SHA256,
        commit=WORKFLOW_COMMIT,
        key_fingerprint=KEY_FINGERPRINT,
    script:
        "../scripts/provenance_run.py"
