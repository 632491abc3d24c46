# CNN classification (HeteroMRI step D): cross-validation, permutation test, final model,
# prediction per subject.


rule classify_dataset:
    input:
        unpack(get_classify_maps),
        sources=INGEST_SOURCES,
    output:
        CLASSIFY_DATASET,
    log:
        "logs/classify/dataset.log",
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=attempt_scaled(1000),
        runtime=15,
    params:
        table=COHORT.classify_table(),
    script:
        "../scripts/classify_dataset.py"


rule classify_cv:
    input:
        dataset=CLASSIFY_DATASET,
        wm_reference=TEMPLATE["wm_reference"],
    output:
        predictions="results/classify/cv/{split}_predictions.tsv",
        history="results/classify/cv/{split}_history.tsv",
    log:
        "logs/classify/cv_{split}.log",
    benchmark:
        "benchmarks/classify/cv_{split}.tsv"
    conda:
        "../../envs/torch.yaml"
    # CPU results are reproducible for a given thread count: torch uses classify.train.threads
    # even where the scheduler grants fewer.
    threads: CLASSIFY_THREADS
    resources:
        mem_mb=attempt_scaled(6000),
        runtime=lambda wildcards, attempt: 240 * attempt,
        gpu=CLASSIFY_GPUS,
    params:
        cfg=CLASSIFY,
        space=SPACE,
        table=COHORT.classify_table(),
    script:
        "../scripts/classify_cv.py"


rule classify_permutation:
    input:
        dataset=CLASSIFY_DATASET,
        wm_reference=TEMPLATE["wm_reference"],
    output:
        "results/classify/permutation/perm-{perm}.tsv",
    log:
        "logs/classify/permutation_{perm}.log",
    benchmark:
        "benchmarks/classify/permutation_{perm}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: CLASSIFY_THREADS
    resources:
        mem_mb=attempt_scaled(6000),
        runtime=lambda wildcards, attempt: 480 * attempt,
        gpu=CLASSIFY_GPUS,
    params:
        cfg=CLASSIFY,
        space=SPACE,
        table=COHORT.classify_table(),
    script:
        "../scripts/classify_permutation.py"


rule classify_evaluate:
    input:
        predictions=get_classify_cv_outputs("predictions"),
        histories=get_classify_cv_outputs("history"),
        permutations=get_classify_permutations,
    output:
        metrics=report(
            "results/classify/evaluation/metrics.tsv",
            caption="../report/classify_metrics.rst",
            category="Classification",
        ),
        predictions="results/classify/evaluation/test_predictions.tsv",
        curves=report(
            "results/classify/evaluation/learning_curves.png",
            caption="../report/classify_curves.rst",
            category="Classification",
        ),
        permutation="results/classify/evaluation/permutation.tsv",
        evaluation="results/classify/evaluation/evaluation.json",
    log:
        "logs/classify/evaluate.log",
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=attempt_scaled(2000),
        runtime=15,
    params:
        split=CLASSIFY["split"],
    script:
        "../scripts/classify_evaluate.py"


rule classify_train:
    input:
        dataset=CLASSIFY_DATASET,
        wm_reference=TEMPLATE["wm_reference"],
        evaluation="results/classify/evaluation/evaluation.json",
    output:
        model="results/classify/model/model.pt",
        card="results/classify/model/model_card.json",
        card_md=report(
            "results/classify/model/model_card.md",
            caption="../report/classify_card.rst",
            category="Classification",
        ),
        history="results/classify/model/history.tsv",
        curve=report(
            "results/classify/model/learning_curve.png",
            caption="../report/classify_curves.rst",
            category="Classification",
        ),
    log:
        "logs/classify/train.log",
    benchmark:
        "benchmarks/classify/train.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: CLASSIFY_THREADS
    resources:
        mem_mb=attempt_scaled(6000),
        runtime=lambda wildcards, attempt: 240 * attempt,
        gpu=CLASSIFY_GPUS,
    params:
        cfg=CLASSIFY,
        space=SPACE,
        table=COHORT.classify_table(),
    script:
        "../scripts/classify_train.py"


rule classify_predict:
    input:
        wm_map=clustered("wmcluster"),
        model=CLASSIFY_MODEL,
    output:
        classified(),
    log:
        subject_log("classify", "predict", subject="{subject}", session="{session}"),
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=attempt_scaled(3000),
        runtime=10,
        gpu=CLASSIFY_GPUS,
    params:
        device=CLASSIFY["train"]["device"],
    script:
        "../scripts/classify_predict.py"


rule classify_predictions:
    input:
        get_classify_predictions,
    output:
        report(
            "results/classify/predictions.tsv",
            caption="../report/classify_predictions.rst",
            category="Classification",
        ),
    log:
        "logs/classify/predictions.log",
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=attempt_scaled(1000),
        runtime=10,
    script:
        "../scripts/classify_predictions.py"
