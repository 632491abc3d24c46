# The built-in demo cohort, generated from data inside installed packages (nilearn, pydeface).


rule demo_head_model:
    output:
        directory("resources/demo/head_model"),
    log:
        "logs/demo/head_model.log",
    benchmark:
        "benchmarks/demo/head_model.tsv"
    conda:
        "../../envs/imaging.yaml"
    threads: 2
    resources:
        mem_mb=attempt_scaled(4000),
        runtime=15,
    script:
        "../scripts/demo_head_model.py"


rule demo_mri_subject:
    input:
        model="resources/demo/head_model",
    output:
        raw=directory("resources/demo/mri/{demo_subject}/raw"),
        truth=directory("resources/demo/mri/{demo_subject}/truth"),
    log:
        "logs/demo/{demo_subject}.log",
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=attempt_scaled(3000),
        runtime=10,
    params:
        n_subjects=config["demo"]["n_subjects"],
        seed=config["demo"]["seed"],
    script:
        "../scripts/demo_mri_subject.py"


rule demo_genotypes:
    output:
        multiext(
            "resources/demo/genotypes/demo",
            ".bed",
            ".bim",
            ".fam",
            ".pheno.tsv",
            ".truth_samples.tsv",
            ".truth_variants.tsv",
        ),
    log:
        "logs/demo/genotypes.log",
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=attempt_scaled(2000),
        runtime=10,
    params:
        seed=config["demo"]["seed"],
    script:
        "../scripts/demo_genotypes.py"
