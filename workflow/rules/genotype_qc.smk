# Genotype QC (PLINK 2 and 1.9): one rule per step, each reading the imported fileset through
# the previous step's keep/extract lists; then the clean fileset, the report and association.


rule genotype_qc_import:
    input:
        get_genotype_input,
    output:
        directory(genotype_qc_step("import")),
    log:
        "logs/genotype_qc/import.log",
    benchmark:
        "benchmarks/genotype_qc/import.tsv"
    conda:
        "../../envs/plink.yaml"
    threads: 2
    resources:
        mem_mb=attempt_scaled(4000),
        runtime=30,
    params:
        step="import",
        genotypes=config["genotypes"],
        qc=config["genotype_qc"],
    script:
        "../scripts/genotype_qc_step.py"


rule genotype_qc_variant_callrate:
    input:
        genotype_qc_steps_before("variant_callrate"),
    output:
        directory(genotype_qc_step("variant_callrate")),
    log:
        "logs/genotype_qc/variant_callrate.log",
    benchmark:
        "benchmarks/genotype_qc/variant_callrate.tsv"
    conda:
        "../../envs/plink.yaml"
    threads: 2
    resources:
        mem_mb=attempt_scaled(4000),
        runtime=30,
    params:
        step="variant_callrate",
        genotypes=config["genotypes"],
        qc=config["genotype_qc"],
    script:
        "../scripts/genotype_qc_step.py"


rule genotype_qc_sample_callrate:
    input:
        genotype_qc_steps_before("sample_callrate"),
    output:
        directory(genotype_qc_step("sample_callrate")),
    log:
        "logs/genotype_qc/sample_callrate.log",
    benchmark:
        "benchmarks/genotype_qc/sample_callrate.tsv"
    conda:
        "../../envs/plink.yaml"
    threads: 2
    resources:
        mem_mb=attempt_scaled(4000),
        runtime=30,
    params:
        step="sample_callrate",
        genotypes=config["genotypes"],
        qc=config["genotype_qc"],
    script:
        "../scripts/genotype_qc_step.py"


rule genotype_qc_ancestry:
    input:
        steps=genotype_qc_steps_before("ancestry"),
        reference=get_ancestry_reference,
    output:
        directory(genotype_qc_step("ancestry")),
    log:
        "logs/genotype_qc/ancestry.log",
    benchmark:
        "benchmarks/genotype_qc/ancestry.tsv"
    conda:
        "../../envs/plink.yaml"
    threads: 4
    resources:
        mem_mb=attempt_scaled(4000),
        runtime=60,
    params:
        step="ancestry",
        genotypes=config["genotypes"],
        qc=config["genotype_qc"],
    script:
        "../scripts/genotype_qc_step.py"


rule genotype_qc_sex_check:
    input:
        genotype_qc_steps_before("sex_check"),
    output:
        directory(genotype_qc_step("sex_check")),
    log:
        "logs/genotype_qc/sex_check.log",
    benchmark:
        "benchmarks/genotype_qc/sex_check.tsv"
    conda:
        "../../envs/plink.yaml"
    threads: 2
    resources:
        mem_mb=attempt_scaled(4000),
        runtime=30,
    params:
        step="sex_check",
        genotypes=config["genotypes"],
        qc=config["genotype_qc"],
    script:
        "../scripts/genotype_qc_step.py"


rule genotype_qc_heterozygosity:
    input:
        genotype_qc_steps_before("heterozygosity"),
    output:
        directory(genotype_qc_step("heterozygosity")),
    log:
        "logs/genotype_qc/heterozygosity.log",
    benchmark:
        "benchmarks/genotype_qc/heterozygosity.tsv"
    conda:
        "../../envs/plink.yaml"
    threads: 2
    resources:
        mem_mb=attempt_scaled(4000),
        runtime=60,
    params:
        step="heterozygosity",
        genotypes=config["genotypes"],
        qc=config["genotype_qc"],
    script:
        "../scripts/genotype_qc_step.py"


rule genotype_qc_relatedness:
    input:
        genotype_qc_steps_before("relatedness"),
    output:
        directory(genotype_qc_step("relatedness")),
    log:
        "logs/genotype_qc/relatedness.log",
    benchmark:
        "benchmarks/genotype_qc/relatedness.tsv"
    conda:
        "../../envs/plink.yaml"
    # KING kinship is quadratic in samples: give it the threads.
    threads: 8
    resources:
        mem_mb=attempt_scaled(8000),
        runtime=120,
    params:
        step="relatedness",
        genotypes=config["genotypes"],
        qc=config["genotype_qc"],
    script:
        "../scripts/genotype_qc_step.py"


rule genotype_qc_pca:
    input:
        genotype_qc_steps_before("pca"),
    output:
        directory(genotype_qc_step("pca")),
    log:
        "logs/genotype_qc/pca.log",
    benchmark:
        "benchmarks/genotype_qc/pca.tsv"
    conda:
        "../../envs/plink.yaml"
    threads: 8
    resources:
        mem_mb=attempt_scaled(8000),
        runtime=120,
    params:
        step="pca",
        genotypes=config["genotypes"],
        qc=config["genotype_qc"],
    script:
        "../scripts/genotype_qc_step.py"


rule genotype_qc_variant_final:
    input:
        genotype_qc_steps_before("variant_final"),
    output:
        directory(genotype_qc_step("variant_final")),
    log:
        "logs/genotype_qc/variant_final.log",
    benchmark:
        "benchmarks/genotype_qc/variant_final.tsv"
    conda:
        "../../envs/plink.yaml"
    threads: 2
    resources:
        mem_mb=attempt_scaled(4000),
        runtime=30,
    params:
        step="variant_final",
        genotypes=config["genotypes"],
        qc=config["genotype_qc"],
    script:
        "../scripts/genotype_qc_step.py"


rule genotype_qc_clean:
    input:
        steps=genotype_qc_steps_before(None),
    output:
        **GENOTYPE_CLEAN,
    log:
        "logs/genotype_qc/clean.log",
    conda:
        "../../envs/plink.yaml"
    threads: 2
    resources:
        mem_mb=attempt_scaled(4000),
        runtime=30,
    script:
        "../scripts/genotype_qc_clean.py"


rule genotype_qc_report:
    input:
        **GENOTYPE_CLEAN,
        steps=genotype_qc_steps_before(None),
    output:
        samples=report(
            "results/genotype_qc/report/samples.tsv",
            caption="../report/genotype_qc_tables.rst",
            category="Genotype QC",
            subcategory="Tables",
        ),
        variants="results/genotype_qc/report/variants.tsv.gz",
        attrition=report(
            "results/genotype_qc/report/attrition.tsv",
            caption="../report/genotype_qc_tables.rst",
            category="Genotype QC",
            subcategory="Tables",
        ),
        summary="results/genotype_qc/report/summary.json",
        plots=report(
            expand(
                "results/genotype_qc/report/plots/{plot}.png",
                plot=GENOTYPE_QC_PLOTS,
            ),
            caption="../report/genotype_qc_plots.rst",
            category="Genotype QC",
            subcategory="Plots",
        ),
    log:
        "logs/genotype_qc/report.log",
    conda:
        "../../envs/plink.yaml"
    threads: 1
    resources:
        mem_mb=attempt_scaled(4000),
        runtime=30,
    script:
        "../scripts/genotype_qc_report.py"


rule genotype_association:
    input:
        **GENOTYPE_CLEAN,
        steps=genotype_qc_steps_before(None),
    output:
        results="results/association/results.tsv.gz",
        leads=report(
            "results/association/lead_variants.tsv",
            caption="../report/association.rst",
            category="Association",
        ),
        plots=report(
            expand("results/association/{plot}.png", plot=("manhattan", "qq")),
            caption="../report/association.rst",
            category="Association",
        ),
        summary="results/association/summary.json",
    log:
        "logs/association/glm.log",
    benchmark:
        "benchmarks/association/glm.tsv"
    conda:
        "../../envs/plink.yaml"
    threads: 4
    resources:
        mem_mb=attempt_scaled(4000),
        runtime=60,
    params:
        genotypes=config["genotypes"],
        settings=config["association"],
    script:
        "../scripts/genotype_association.py"
