# Validation, the cohort table and input functions. Logic lives in the cohortflow package.
from pathlib import Path

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
