# Validation, the cohort table and input functions. Logic lives in the cohortflow package.
from pathlib import Path

from snakemake.logging import logger

from cohortflow.classify.splits import classify_split_names
from cohortflow.cohort import Cohort
from cohortflow.config import read_sample_sheet, validate_config
from cohortflow.ingest.dicom_series import RoleRules
from cohortflow.ingest.pseudonym import key_fingerprint, load_key
from cohortflow.paths import bids, subject_log
from cohortflow.preprocess.templates import TEMPLATE_FILES, space_label

SCHEMAS = Path(workflow.basedir) / "workflow" / "schemas"

# Config and sheet are validated before any rule is defined (and so before the DAG exists).
config.update(validate_config(config, SCHEMAS / "config.schema.yaml"))
RoleRules.from_mapping(config["ingest"]["role_rules"])  # regular expressions compile
SHEET = read_sample_sheet(config["samples"], SCHEMAS / "samples.schema.yaml")
KEY = load_key(
    allow_demo_key=config["pseudonymise"]["allow_demo_key"],
    repository=Path(workflow.basedir),
)
KEY_FINGERPRINT = key_fingerprint(KEY)
COHORT = Cohort(SHEET, KEY)
ROLE = config["ingest"]["target_role"]


wildcard_constraints:
    subject=r"[0-9a-f]{12}",
    session=r"[A-Za-z0-9]+",
    demo_subject=r"demo[0-9]+",
    split=r"split-[0-9]+",
    perm=r"[0-9]+",


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


def get_final_output():
    targets = []
    if config["stages"]["ingest"]:
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
    minutes = {"fast": 30, "heteromri": 240}[config["preprocess"]["preset"]]
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
