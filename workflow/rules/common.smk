# Validation, the cohort table and input functions. Logic lives in the cohortflow package.
import os
import sys
from pathlib import Path

from snakemake.logging import logger

from cohortflow.classify.inputs import resolution_factor
from cohortflow.classify.splits import classify_split_names
from cohortflow.cohort import OUR_DEFACER, Cohort
from cohortflow.config import (
    check_stage_inputs,
    describe_inputs,
    drop_inherited_inputs,
    empty_sample_sheet,
    needs_pseudonym_key,
    needs_sample_sheet,
    read_sample_sheet,
    validate_config,
)
from cohortflow.errors import CohortflowError, ConfigError
from cohortflow.fhir.bundle import Validators
from cohortflow.fhir.provenance import config_sha256
from cohortflow.genotype_qc.ancestry import reference_files as ancestry_reference_files
from cohortflow.genotype_qc.inputs import input_files as genotype_input_files
from cohortflow.genotype_qc.report import PLOTS as GENOTYPE_QC_PLOTS
from cohortflow.genotype_qc.steps import STEPS as GENOTYPE_QC_STEP_NAMES
from cohortflow.genotype_qc.steps import InputSettings, step_dir_name
from cohortflow.ingest.dicom_series import RoleRules
from cohortflow.privacy.pseudonym import (
    check_key_record,
    key_fingerprint,
    load_key,
    write_key_record,
)
from cohortflow.paths import bids, subject_log
from cohortflow.privacy.secrets import read_token
from cohortflow.preprocess.registration import registration_recipe
from cohortflow.preprocess.templates import (
    TEMPLATE_FILES,
    space_label,
    template_voxel_mm,
)
from cohortflow.runlock import is_dry_run, record_lock_owner, take_over_stale_lock
from cohortflow.runrecord import workflow_commit

SCHEMAS = Path(workflow.basedir) / "workflow" / "schemas"

# With --software-deployment-method conda, each env's post-deploy script (envs/*.post-deploy.sh)
# installs the cohortflow package from this checkout; env creation inherits this variable.
os.environ.update(COHORTFLOW_SOURCE=str(Path(workflow.basedir).resolve()))

# One run per folder; a run killed outright left its lock: rerunning the same command
# resumes (cohortflow.runlock).
if workflow.is_main_process and not is_dry_run(sys.argv):
    _note = take_over_stale_lock()
    if _note:
        logger.warning(_note)

# A config of the user's own (--configfile) names its cohort's inputs itself: none is taken
# from the demo config (config/config.yaml) that Snakemake merges it over.
drop_inherited_inputs(
    config,
    (
        workflow.config_settings.overwrite_config
        if workflow.overwrite_configfiles
        else None
    ),
)
# Config and sheet are validated before any rule is defined (and so before the DAG exists).
config.update(validate_config(config, SCHEMAS / "config.schema.yaml"))
check_stage_inputs(config)
RoleRules.from_mapping(config["ingest"]["role_rules"])  # regular expressions compile
SHEET = (
    read_sample_sheet(config["samples"], SCHEMAS / "samples.schema.yaml")
    if needs_sample_sheet(config)
    else empty_sample_sheet()
)
KEY = None  # a genetics-only run without FHIR pseudonymises nothing
KEY_FINGERPRINT = None
if needs_pseudonym_key(config):
    KEY = load_key(
        allow_demo_key=config["pseudonymise"]["allow_demo_key"],
        repository=Path(workflow.basedir),
    )
    KEY_FINGERPRINT = key_fingerprint(KEY)
    # results/ written under another key: stop before any job (cohortflow.privacy.pseudonym).
    check_key_record("results", KEY_FINGERPRINT)
COHORT = Cohort(SHEET, KEY)
for _warning in COHORT.untracked_sources():
    logger.warning(_warning)
ROLE = config["ingest"]["target_role"]
if workflow.is_main_process:
    logger.info(describe_inputs(config, len(COHORT.rows)))


def attempt_scaled(mb):
    """mem_mb of a rule: its base need, times the attempt number, so that a job the scheduler
    killed for memory gets more on each retry (--retries, set in profiles/slurm)."""
    return lambda wildcards, attempt: mb * attempt


wildcard_constraints:
    subject=r"[0-9a-f]{12}",
    session=r"[A-Za-z0-9]+",
    demo_subject=r"demo[0-9]+",
    split=r"split-[0-9]+",
    perm=r"[0-9]+",
    defacer=r"[a-z][a-z0-9_]*",


def ingested(ext, subject="{subject}", session="{session}"):
    return bids("ingest", subject=subject, session=session, suffix=ROLE, ext=ext)


def deidentified_dicom(subject="{subject}", session="{session}"):
    return bids(
        "ingest",
        subject=subject,
        session=session,
        suffix=ROLE,
        ext="",
        datatype="dicom",
    )


def get_ingest_source(wildcards):
    return COHORT.source_input(wildcards.subject, wildcards.session)


def get_source_path(wildcards):
    return COHORT.row(wildcards.subject, wildcards.session).source


def get_sheet_row(wildcards):
    return COHORT.row(wildcards.subject, wildcards.session).number


def get_demo_genotypes():
    prefix = "resources/demo/genotypes/demo"
    return [f"{prefix}{ext}" for ext in (".bed", ".bim", ".fam", ".pheno.tsv")]


# The run's provenance record (workflow/rules/provenance.smk) and the commit it names, which
# FHIR Provenance.policy carries too.
RUN_RECORD = "results/provenance/run.json"
RUN_CHECKSUMS = "results/provenance/checksums.sha256"
WORKFLOW_COMMIT = workflow_commit(workflow.basedir)


# Sheet rows whose sources hold the same images (cohortflow.ingest.sources): checked once
# every subject is ingested, before any cohort-level step (classifier, upload) uses them.
INGEST_SOURCES = "results/ingest/sources.tsv"


def get_ingest_sidecar_map(wildcards):
    return {
        f"{row.label}_{row.session}": ingested(".json", row.label, row.session)
        for row in COHORT.rows
    }


def get_sheet_row_map():
    return {f"{row.label}_{row.session}": row.number for row in COHORT.rows}


def get_ingest_sidecars():
    if not config["stages"]["ingest"]:
        return []
    return [ingested(".json", row.label, row.session) for row in COHORT.rows]


def get_final_output():
    targets = []
    if config["stages"]["ingest"]:
        targets.append(INGEST_SOURCES)
        for row in COHORT.rows:
            targets.append(ingested(".nii.gz", row.label, row.session))
            targets.append(ingested(".json", row.label, row.session))
            if config["ingest"]["export_dicom"] and COHORT.is_dicom(row):
                targets.append(deidentified_dicom(row.label, row.session))
    if config["demo"]["genotypes"]:
        targets.extend(get_demo_genotypes())
    if config["stages"]["preprocess"]:
        targets.append("results/preprocess/qc.tsv")
        for row in COHORT.rows:
            ids = {"subject": row.label, "session": row.session}
            targets.append(preprocessed("preproc", **ids))
            if config["stages"]["wm_clusters"]:
                targets.append(clustered("wmcluster", **ids))
    if config["stages"]["deface"]:
        for row in COHORT.rows:
            targets.append(defaced("defaced", subject=row.label, session=row.session))
            if config["deface"]["export_dicom"] and COHORT.is_dicom(row):
                targets.append(defaced_dicom(row.label, row.session))
    if config["stages"]["deface_qa"]:
        targets.append("results/deface_qa/decisions.tsv")
    targets += get_genotype_outputs()
    targets += get_fhir_outputs()
    if CLASSIFY_ACTIVE:
        targets.append("results/classify/predictions.tsv")
        if CLASSIFY_TRAINS:
            targets += [
                "results/classify/evaluation/metrics.tsv",
                "results/classify/model/model_card.md",
            ]
    return targets


def get_bids_subject(wildcards):
    """The sheet's subject ID, passed on only for BIDS sources (which are named by it)."""
    return COHORT.bids_subject(wildcards.subject, wildcards.session)


# ---------------------------------------------------------------- preprocessing / WM clusters
SPACE = space_label(config["preprocess"]["template"])
TEMPLATE = {
    name: f"resources/templates/{SPACE}/{name}.nii.gz" for name in TEMPLATE_FILES
}
TEMPLATE_RECORD = f"resources/templates/{SPACE}/template.json"
N_CLUSTERS = config["wm_clusters"]["n_clusters"]
# Every stage parameter of the chosen preset is a parameter of preprocess_register, so when a
# new release changes what a preset name means, Snakemake's params trigger reruns the
# registrations made with the old recipe instead of keeping them under the same name.
REGISTRATION_RECIPE = registration_recipe(config["preprocess"]["preset"])


def preprocessed(desc, ext=".nii.gz", space=SPACE, suffix=None, datatype="anat", **ids):
    return bids(
        "preprocess",
        subject=ids.get("subject", "{subject}"),
        session=ids.get("session", "{session}"),
        space=space,
        desc=desc,
        suffix=suffix or ROLE,
        ext=ext,
        datatype=datatype,
    )


def clustered(desc, ext=".nii.gz", suffix="probseg", datatype="anat", **ids):
    return bids(
        "wm_clusters",
        subject=ids.get("subject", "{subject}"),
        session=ids.get("session", "{session}"),
        space=SPACE,
        desc=desc,
        suffix=suffix,
        ext=ext,
        datatype=datatype,
    )


def registration_transform():
    # The composed displacement field is kept only when the config asks for it.
    path = preprocessed(
        None, suffix=f"from-{ROLE}_to-{SPACE}_mode-image_xfm", space=None
    )
    return path if config["preprocess"]["keep_transforms"] else temp(path)


def registration_runtime(wildcards, attempt):
    minutes = 240 if config["preprocess"]["preset"] == "heteromri" else 30
    return minutes * attempt


def get_preprocess_qc_inputs(wildcards):
    """The one-row metric tables of every subject, for the cohort QC table."""
    files = []
    for row in COHORT.rows:
        ids = {"subject": row.label, "session": row.session}
        files.append(
            preprocessed("registration", ".tsv", suffix="qc", datatype="figures", **ids)
        )
        if config["stages"]["wm_clusters"]:
            files.append(
                clustered("clusters", ".tsv", suffix="qc", datatype="figures", **ids)
            )
    return files


# ---------------------------------------------------------------- classification
CLASSIFY = config["classify"]
CLASSIFY_TRAINS = CLASSIFY["model_file"] is None
CLASSIFY_THREADS = CLASSIFY["train"]["threads"]
# Scheduler resource `gpu` of the CNN jobs: one GPU when the config asks for CUDA (the Slurm
# executor turns it into --gpus=1), none for cpu/auto (auto still uses a GPU the job happens to
# see). Local runs ignore it.
CLASSIFY_GPUS = 1 if CLASSIFY["train"]["device"] == "cuda" else 0
# Without labels there is nothing to train on: classification needs classify.model_file.
CLASSIFY_ACTIVE = config["stages"]["classify"] and bool(
    COHORT.labelled_rows or not CLASSIFY_TRAINS
)
if config["stages"]["classify"] and not CLASSIFY_ACTIVE:
    logger.warning(
        "classify: no subject in the sample sheet has a yes/no label and no "
        "classify.model_file is given, so no classifier is trained or applied"
    )
CLASSIFY_SPLITS = (
    classify_split_names(COHORT, CLASSIFY["split"])
    if CLASSIFY_ACTIVE and CLASSIFY_TRAINS
    else []
)
CLASSIFY_MODEL = CLASSIFY["model_file"] or "results/classify/model/model.pt"
# The CNN input grid averages whole blocks of template voxels: checked here when the template
# file is on this machine, else by the jobs.
if CLASSIFY_ACTIVE and CLASSIFY_TRAINS:
    _TEMPLATE_MM = template_voxel_mm(config["preprocess"]["template"])
    if _TEMPLATE_MM is not None:
        resolution_factor(CLASSIFY["input"]["resolution_mm"], _TEMPLATE_MM)


# The training set (labelled subjects' maps, with their checksums) that the training jobs read.
CLASSIFY_DATASET = "results/classify/dataset.tsv"


def get_classify_maps(wildcards):
    """The WM cluster maps of every labelled subject, keyed by pseudonym."""
    return {
        row.label: clustered("wmcluster", subject=row.label, session=row.session)
        for row in COHORT.labelled_rows
    }


def get_classify_cv_outputs(kind):
    return [f"results/classify/cv/{name}_{kind}.tsv" for name in CLASSIFY_SPLITS]


def get_classify_permutations(wildcards):
    return [
        f"results/classify/permutation/perm-{k:03d}.tsv"
        for k in range(CLASSIFY["permutations"])
    ]


def classified(subject="{subject}", session="{session}"):
    return bids(
        "classify",
        subject=subject,
        session=session,
        space=SPACE,
        desc="cnn",
        suffix="prediction",
        ext=".json",
    )


def get_classify_predictions(wildcards):
    return [classified(row.label, row.session) for row in COHORT.rows]


# ---------------------------------------------------------------- defacing and its evaluation
DEFACE_TEMPLATE = "resources/deface/head_template"
DEFACE_QA = config["deface_qa"]
DEFACE_QA_MODEL = DEFACE_QA["model_file"] or "results/deface_qa/model/model.json"
# Every head's generated pairs in one table: what the evaluator is trained on.
DEFACE_QA_FEATURES = "results/deface_qa/model/training_pairs.tsv"


def defaced(desc, ext=".nii.gz", suffix=None, **ids):
    return bids(
        "deface",
        subject=ids.get("subject", "{subject}"),
        session=ids.get("session", "{session}"),
        desc=desc,
        suffix=suffix or ROLE,
        ext=ext,
    )


def defaced_dicom(subject="{subject}", session="{session}"):
    return bids(
        "deface",
        subject=subject,
        session=session,
        desc="defaced",
        suffix=ROLE,
        ext="",
        datatype="dicom",
    )


def external_defaced():
    """Another tool's defaced image, imported onto the ingested grid (temporary)."""
    return bids(
        "deface",
        subject="{subject}",
        session="{session}",
        desc="{defacer}",
        suffix=f"{ROLE}defaced",
        ext=".nii.gz",
        datatype="external",
    )


def deface_qa_path(suffix, ext, desc=None, datatype="anat", **ids):
    return bids(
        "deface_qa",
        subject=ids.get("subject", "{subject}"),
        session=ids.get("session", "{session}"),
        desc=desc,
        suffix=suffix,
        ext=ext,
        datatype=datatype,
    )


def get_external_defaced(wildcards):
    return COHORT.defaced_input(wildcards.subject, wildcards.session)


def get_external_defaced_path(wildcards):
    return COHORT.row(wildcards.subject, wildcards.session).defaced


def get_deface_qa_pairs(wildcards):
    return [
        deface_qa_path("pairs", ".tsv", subject=row.label, session=row.session)
        for row in COHORT.rows
    ]


def get_deface_qa_evaluate_inputs(wildcards):
    theirs = wildcards.defacer != OUR_DEFACER
    return {
        "original": ingested(".nii.gz"),
        "defaced": external_defaced() if theirs else defaced("defaced"),
        "registration": defaced(None, ".json", suffix="from-image_to-headtemplate_xfm"),
        "template": DEFACE_TEMPLATE,
        "model": DEFACE_QA_MODEL,
    }


def get_deface_qa_decisions(wildcards):
    return [
        deface_qa_path(
            "decision", ".json", desc=defacer, subject=row.label, session=row.session
        )
        for row in COHORT.rows
        for defacer in COHORT.defacers(row)
    ]


# ---------------------------------------------------------------- genotype QC / association
GENOTYPE_QC_STEPS = "results/genotype_qc/steps"
GENOTYPE_CLEAN = {
    ext: f"results/genotype_qc/clean/cohort.{ext}" for ext in ("bed", "bim", "fam")
}
if config["stages"]["genotype_qc"]:
    # A missing input is a config error before the DAG, naming the key.
    InputSettings.from_config(config["genotypes"])
if config["stages"]["association"] and not config["stages"]["genotype_qc"]:
    raise ConfigError(
        "stages.association: needs stages.genotype_qc (it uses the clean set)"
    )


def genotype_qc_step(name):
    return f"{GENOTYPE_QC_STEPS}/{step_dir_name(name)}"


def genotype_qc_steps_before(name):
    """The folders of the steps before ``name`` (all steps for None)."""
    names = GENOTYPE_QC_STEP_NAMES
    if name is not None:
        names = names[: names.index(name)]
    return [genotype_qc_step(n) for n in names]


def get_genotype_input(wildcards):
    """The input files named by genotypes.input (and the phenotype table), so that Snakemake
    reruns the QC when they change; the demo's are made by the demo_genotypes rule."""
    genotypes = config["genotypes"]
    files = genotype_input_files(genotypes["input"])
    if genotypes["phenotype_file"]:
        files.append(genotypes["phenotype_file"])
    return files


def get_ancestry_reference(wildcards):
    """The reference panel and its labels (so that a new panel reruns the ancestry step)."""
    return ancestry_reference_files(config["genotype_qc"]["ancestry"]["reference"])


def get_genotype_outputs():
    targets = []
    if config["stages"]["genotype_qc"]:
        targets += [*GENOTYPE_CLEAN.values(), "results/genotype_qc/report/summary.json"]
    if config["stages"]["association"]:
        targets.append("results/association/summary.json")
    return targets


# ---------------------------------------------------------------- FHIR export
FHIR = config["fhir"]
# What the export jobs see: without the upload settings, so that uploading re-exports nothing.
FHIR_EXPORT = {key: value for key, value in FHIR.items() if key != "upload"}
FHIR_EXPORT["workflow_commit"] = WORKFLOW_COMMIT
# Relative validation paths name material beside the checkout (../shared/fhir in the demo):
# taken from the working directory when there, else from the repository.
for _key, _path in FHIR["validation"].items():
    if _path and not Path(_path).is_absolute() and not Path(_path).exists():
        if (Path(workflow.basedir) / _path).exists():
            FHIR["validation"][_key] = str((Path(workflow.basedir) / _path).resolve())
CONFIG_SHA256 = config_sha256(config)
if config["stages"]["fhir_upload"] and not config["stages"]["fhir"]:
    raise ConfigError("stages.fhir_upload: needs stages.fhir (it uploads its bundles)")
if config["stages"]["fhir"]:
    try:
        Validators.from_config(FHIR["validation"])
    except CohortflowError as exc:
        raise ConfigError(
            f"{exc}: point it at the material (README, FHIR export) or set it to null to "
            "skip that validator (the validation record then says it did not run)"
        ) from None
if config["stages"]["fhir_upload"] and not FHIR["upload"]["url"]:
    raise ConfigError("stages.fhir_upload: set fhir.upload.url (the FHIR base URL)")
if config["stages"]["fhir_upload"]:
    # A malformed token (a trailing CR/LF from a file saved on Windows) stops the run here,
    # naming the variable, never the value; the upload job checks it again.
    read_token(FHIR["upload"]["token_env"])


def fhir_path(suffix, subject="{subject}", session="{session}"):
    return bids(
        "fhir",
        subject=subject,
        session=session,
        suffix=suffix,
        ext=".json",
        datatype="fhir",
    )


FHIR_GENOTYPES = "results/fhir/genotypes"


def get_fhir_subject_inputs(wildcards):
    """What one subject's bundle is made from: the ingest sidecar (and the de-identified
    DICOM for the instances), the sidecars of the stages that ran, the prediction and the
    defacing-QA decisions."""
    row = COHORT.row(wildcards.subject, wildcards.session)
    ids = {"subject": wildcards.subject, "session": wildcards.session}
    stages = config["stages"]
    inputs = {"sidecar": ingested(".json", **ids), "steps": []}
    if config["ingest"]["export_dicom"] and COHORT.is_dicom(row):
        inputs["dicom"] = deidentified_dicom(**ids)
    if stages["preprocess"]:
        inputs["steps"] += [
            preprocessed("n4", ".json", space=None, **ids),
            preprocessed("preproc", ".json", **ids),
        ]
        if stages["wm_clusters"]:
            inputs["steps"].append(clustered("wmcluster", ".json", **ids))
    if stages["deface"]:
        inputs["steps"].append(defaced("defaced", ".json", **ids))
    if CLASSIFY_ACTIVE:
        inputs["prediction"] = classified(**ids)
        if CLASSIFY_TRAINS:
            inputs["model_card"] = "results/classify/model/model_card.json"
    if stages["deface_qa"]:
        inputs["decisions"] = [
            deface_qa_path("decision", ".json", desc=defacer, **ids)
            for defacer in COHORT.defacers(row)
        ]
    return inputs


def get_fhir_bundles():
    """Every bundle of the export: per subject, and the genotype folder."""
    targets = []
    if config["stages"]["fhir"]:
        if config["stages"]["ingest"]:
            targets += [
                fhir_path("bundle", row.label, row.session) for row in COHORT.rows
            ]
        if config["stages"]["genotype_qc"]:
            targets.append(FHIR_GENOTYPES)
    return targets


def get_fhir_outputs():
    targets = get_fhir_bundles()
    if config["stages"]["fhir_upload"]:
        targets.append("results/fhir/upload/outcomes.tsv")
    return targets


onstart:
    # Snakemake holds its locks now: the owner record names them (cohortflow.runlock).
    record_lock_owner()
    # The key's fingerprint (never the key) is kept with the results it pseudonymises.
    if KEY is not None:
        write_key_record("results", KEY_FINGERPRINT, demo=KEY.is_demo)
