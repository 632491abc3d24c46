# Preprocessing (HeteroMRI step B): template, N4, registration to MNI, QC.


rule preprocess_template:
    output:
        **TEMPLATE,
        record=TEMPLATE_RECORD,
    log:
        f"logs/preprocess/template_{SPACE}.log",
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=attempt_scaled(3000),
        runtime=10,
    params:
        settings=config["preprocess"]["template"],
    script:
        "../scripts/preprocess_template.py"


rule preprocess_n4:
    input:
        image=ingested(".nii.gz"),
    output:
        image=preprocessed("n4", space=None),
        sidecar=preprocessed("n4", ".json", space=None),
    log:
        subject_log("preprocess", "n4", subject="{subject}", session="{session}"),
    benchmark:
        "benchmarks/preprocess/sub-{subject}_ses-{session}_n4.tsv"
    conda:
        "../../envs/imaging.yaml"
    # One thread: N4's result depends (slightly) on the thread count, and the same bytes on
    # every machine matter more than the ~2 s a second thread saves.
    threads: 1
    resources:
        mem_mb=attempt_scaled(3000),
        runtime=15,
    params:
        settings=config["preprocess"]["n4"],
    script:
        "../scripts/preprocess_n4.py"


rule preprocess_register:
    input:
        **TEMPLATE,
        image=preprocessed("n4", space=None),
        template_record=TEMPLATE_RECORD,
    output:
        image=preprocessed("preproc"),
        sidecar=preprocessed("preproc", ".json"),
        transform=registration_transform(),
        metrics=preprocessed("registration", ".tsv", suffix="qc", datatype="figures"),
        mosaic=report(
            preprocessed("registration", ".png", suffix="qc", datatype="figures"),
            caption="../report/registration.rst",
            category="Preprocessing",
            subcategory="Registration",
            labels={"subject": "{subject}", "session": "{session}"},
        ),
    log:
        subject_log("preprocess", "register", subject="{subject}", session="{session}"),
    benchmark:
        "benchmarks/preprocess/sub-{subject}_ses-{session}_register.tsv"
    conda:
        "../../envs/imaging.yaml"
    # One ANTs thread: multi-threaded antsRegistration is not reproducible (the thread pool
    # reorders floating-point sums and the optimiser takes another path). Subjects run in
    # parallel instead; --set-threads preprocess_register=N trades reproducibility for speed.
    threads: 1
    resources:
        mem_mb=attempt_scaled(4000),
        runtime=registration_runtime,
    params:
        preset=config["preprocess"]["preset"],
        recipe=REGISTRATION_RECIPE,
        seed=config["preprocess"]["seed"],
    script:
        "../scripts/preprocess_register.py"


rule preprocess_qc:
    input:
        get_preprocess_qc_inputs,
    output:
        report(
            "results/preprocess/qc.tsv",
            caption="../report/preprocess_qc.rst",
            category="Preprocessing",
            subcategory="Cohort QC",
        ),
    log:
        "logs/preprocess/qc.log",
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=attempt_scaled(1000),
        runtime=5,
    params:
        bounds=config["qc"],
    script:
        "../scripts/preprocess_qc.py"
