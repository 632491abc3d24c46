# cohortflow: wiring only. The science is in config/ and src/cohortflow; see README.md.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


# Seconds-long cohort bookkeeping (tables of per-subject results, CV metrics) runs in the main
# Snakemake process instead of queueing as cluster jobs; heavy cohort steps (hashing every map,
# the run record's checksums, genotype QC) stay cluster jobs. The two template preparations
# also run in place: seconds each, and a TemplateFlow template is fetched there, where a
# cluster's login node has the internet access its compute nodes often lack.
localrules:
    all,
    preprocess_template,
    deface_template,
    preprocess_qc,
    classify_evaluate,
    classify_predictions,
    deface_qa_features,
    deface_qa_decisions,
    ingest_sources,


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/wm_clusters.smk"
include: "workflow/rules/classify.smk"
include: "workflow/rules/deface.smk"
include: "workflow/rules/genotype_qc.smk"
include: "workflow/rules/fhir.smk"
include: "workflow/rules/provenance.smk"


rule all:
    default_target: True
    input:
        get_final_output(),
        RUN_RECORD,
