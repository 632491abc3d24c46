# Defacing and its evaluation (after DefaceQA): per-subject defacing, generated training pairs,
# the evaluator's classifier, and a decision with face renders per defaced image.


rule deface_template:
    output:
        directory(DEFACE_TEMPLATE),
    log:
        "logs/deface/template.log",
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=attempt_scaled(3000),
        runtime=10,
    script:
        "../scripts/deface_template.py"


rule deface:
    input:
        image=ingested(".nii.gz"),
        template=DEFACE_TEMPLATE,
    output:
        image=defaced("defaced"),
        mask=defaced("face", suffix="mask"),
        registration=defaced(None, ".json", suffix="from-image_to-headtemplate_xfm"),
        sidecar=defaced("defaced", ".json"),
    log:
        subject_log("deface", "deface", subject="{subject}", session="{session}"),
    benchmark:
        "benchmarks/deface/sub-{subject}_ses-{session}_deface.tsv"
    conda:
        "../../envs/imaging.yaml"
    # One ANTs thread: the affine fit is then the same on every run.
    threads: 1
    resources:
        mem_mb=attempt_scaled(3000),
        runtime=20,
    params:
        settings=config["deface"],
    script:
        "../scripts/deface.py"


rule deface_import:
    input:
        get_external_defaced,
    output:
        temp(external_defaced()),
    log:
        subject_log(
            "deface", "import_{defacer}", subject="{subject}", session="{session}"
        ),
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=attempt_scaled(2000),
        runtime=5,
    params:
        source=get_external_defaced_path,
    script:
        "../scripts/deface_import.py"


rule deface_qa_pairs:
    input:
        original=ingested(".nii.gz"),
        registration=defaced(None, ".json", suffix="from-image_to-headtemplate_xfm"),
        template=DEFACE_TEMPLATE,
    output:
        deface_qa_path("pairs", ".tsv"),
    log:
        subject_log("deface_qa", "pairs", subject="{subject}", session="{session}"),
    benchmark:
        "benchmarks/deface_qa/sub-{subject}_ses-{session}_pairs.tsv"
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=attempt_scaled(4000),
        runtime=30,
    params:
        settings=config["deface_qa"],
        margin=config["deface"]["brain_margin_mm"],
    script:
        "../scripts/deface_qa_pairs.py"


rule deface_qa_features:
    input:
        get_deface_qa_pairs,
    output:
        DEFACE_QA_FEATURES,
    log:
        "logs/deface_qa/features.log",
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=attempt_scaled(1000),
        runtime=10,
    script:
        "../scripts/deface_qa_features.py"


rule deface_qa_train:
    input:
        DEFACE_QA_FEATURES,
    output:
        model="results/deface_qa/model/model.json",
        metrics=report(
            "results/deface_qa/model/evaluation.json",
            caption="../report/deface_qa_evaluation.rst",
            category="Defacing",
            subcategory="Evaluator",
        ),
        predictions="results/deface_qa/model/cv_predictions.tsv",
    log:
        "logs/deface_qa/train.log",
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=attempt_scaled(2000),
        runtime=10,
    params:
        settings=config["deface_qa"],
    script:
        "../scripts/deface_qa_train.py"


rule deface_qa_evaluate:
    input:
        unpack(get_deface_qa_evaluate_inputs),
    output:
        decision=deface_qa_path("decision", ".json", desc="{defacer}"),
        renders=report(
            deface_qa_path("faces", ".png", desc="{defacer}", datatype="figures"),
            caption="../report/deface_qa_faces.rst",
            category="Defacing",
            subcategory="Face renders",
            labels={"subject": "{subject}", "defacer": "{defacer}"},
        ),
    log:
        subject_log(
            "deface_qa", "evaluate_{defacer}", subject="{subject}", session="{session}"
        ),
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=attempt_scaled(4000),
        runtime=15,
    params:
        min_provenance_correlation=config["deface_qa"]["min_provenance_correlation"],
    script:
        "../scripts/deface_qa_evaluate.py"


rule deface_qa_decisions:
    input:
        get_deface_qa_decisions,
    output:
        report(
            "results/deface_qa/decisions.tsv",
            caption="../report/deface_qa_decisions.rst",
            category="Defacing",
            subcategory="Decisions",
        ),
    log:
        "logs/deface_qa/decisions.log",
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=attempt_scaled(1000),
        runtime=5,
    script:
        "../scripts/deface_qa_decisions.py"


rule deface_export_dicom:
    input:
        source=get_ingest_source,
        mask=defaced("face", suffix="mask"),
    output:
        directory(defaced_dicom()),
    log:
        subject_log("deface", "export_dicom", subject="{subject}", session="{session}"),
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=attempt_scaled(2000),
        runtime=15,
    params:
        source=get_source_path,
        sheet_row=get_sheet_row,
        settings=config["ingest"],
        allow_demo_key=config["pseudonymise"]["allow_demo_key"],
        key_fingerprint=KEY_FINGERPRINT,
    script:
        "../scripts/deface_export_dicom.py"
