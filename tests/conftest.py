"""Shared fixtures: paths to the repository and to ../shared/data (skipped when absent)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the checkout; tests that need it skip without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real-data test: {SHARED_DATA} is absent (it sits beside the checkout in CI)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def dcm2niix() -> str:
    exe = shutil.which("dcm2niix")
    if exe is None:
        pytest.skip("dcm2niix is not installed (Debian package dcm2niix; .ci/run installs it)")
    return exe


def ingest_one(source, out_dir, *, key, settings=None, sheet_row=3, name="img", **kw):
    """``ingest_subject`` for one test subject (pseudonym 0123456789ab, session 01) writing
    ``out_dir/<name>.nii.gz`` and ``.json``."""
    from cohortflow.ingest.run import IngestSettings, ingest_subject

    return ingest_subject(
        source=source, nifti_out=Path(out_dir) / f"{name}.nii.gz",
        sidecar_out=Path(out_dir) / f"{name}.json", subject="0123456789ab", session="01",
        sheet_row=sheet_row, key=key, settings=settings or IngestSettings(), **kw,
    )  # fmt: skip


# ------------------------------------------------------------------------------------ Slurm
SLURM_SCRIPT = REPO.parent / "shared" / "slurm" / "single-node.sh"


def slurm_up() -> str | None:
    """None when a Slurm controller with accounting answers, else why not (after trying to
    start the one-node cluster of ../shared/slurm with ACCT=1)."""

    def answers() -> bool:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, check=False)
        acct = subprocess.run(["sacct", "-n", "-X"], capture_output=True, text=True, check=False)
        return "UP" in ping.stdout and acct.returncode == 0

    if not shutil.which("sbatch"):
        return "Slurm is not installed (Debian slurm-wlm: ../shared/slurm/single-node.sh install)"
    if answers():
        return None
    if not SLURM_SCRIPT.is_file():
        return f"{SLURM_SCRIPT} is absent"
    if os.geteuid() != 0:
        return "starting the one-node Slurm needs root"
    start = subprocess.run(
        ["bash", str(SLURM_SCRIPT), "start"], capture_output=True, text=True,
        env=os.environ | {"ACCT": "1"}, timeout=300, check=False,
    )  # fmt: skip
    if start.returncode != 0 or not answers():
        return f"the one-node Slurm did not start: {(start.stdout + start.stderr)[-800:]}"
    return None


@pytest.fixture(scope="session", autouse=True)
def _slurm_controller():
    """Start the one-node Slurm up front where Slurm and the Snakemake Slurm plugin are
    installed. Every Snakemake start imports the plugin, which asks `scontrol show config` for
    MinJobAge; with Slurm installed but no controller answering, that call waits for its 10 s
    timeout, in each of the suite's Snakemake runs. The Slurm test needs the cluster anyway."""
    if shutil.which("scontrol") and importlib.util.find_spec("snakemake_executor_plugin_slurm"):
        slurm_up()


# --------------------------------------------------------------------------- demo workflow run

TEST_KEY = "cohortflow-test-key-0123456789abcdef"
DEMO_SUBJECTS = 4  # one per scanner profile, plus a NIfTI subject
# demo_run registers to nilearn's MNI152 2009a template resampled to 2 mm (same space).
DEMO_SPACE = "MNI152NLin2009aSym"
DEMO_TEMPLATE_MM = 2


@dataclass
class WorkflowRun:
    workdir: Path
    returncode: int
    output: str
    good: dict[str, str]  # sheet subject -> pseudonym
    bad: dict[str, tuple[str, str]]  # failure mode -> (pseudonym, source)
    step3_returncode: int = 0
    step3_output: str = ""
    flagged: dict[str, str] | None = None  # failure mode -> pseudonym (QC must flag these)


def fhir_config_yaml() -> str:
    """The ``fhir:`` config section of test runs: the demo pseudonym system, and the validation
    material of ../shared/fhir when it is there (else the R4B models and own checks only)."""
    paths = {"schema": FHIR_SCHEMA, "profiles": FHIR_PROFILES, "validator": FHIR_VALIDATOR}
    shared = FHIR_SHARED.is_dir()
    lines = [f"    {k}: {str(v) if shared else 'null'}" for k, v in paths.items()]
    return (
        "fhir:\n  patient_identifier_system: urn:cohortflow:demo:pseudonym\n  validation:\n"
        + "\n".join(lines)
        + "\n"
    )


def snakemake_command(repo: Path, workdir: Path, *args: str, cores: int = 2) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(repo / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        str(cores),
        *args,
        *fhir_fallback_args(),
    ]
    return cmd


def fhir_fallback_args() -> list[str]:
    """The demo config validates FHIR bundles with ../shared/fhir; without it, the R4B models
    and cohortflow's own checks only (the validation record says so)."""
    if FHIR_SHARED.is_dir():
        return []
    return ["--config", "fhir={validation: {schema: null, profiles: null, validator: null}}"]


def snakemake(repo: Path, workdir: Path, *args: str, env: dict | None = None):
    cmd = snakemake_command(repo, workdir, *args)
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)


# Every report() output of workflow/rules, as a glob under the working folder.
REPORTED = {
    "classify": [
        "results/classify/evaluation/metrics.tsv",
        "results/classify/evaluation/learning_curves.png",
        "results/classify/model/model_card.md",
        "results/classify/model/learning_curve.png",
        "results/classify/predictions.tsv",
    ],
    "deface": [
        "results/deface_qa/model/evaluation.json",
        "results/deface_qa/sub-*/ses-*/figures/*_faces.png",
        "results/deface_qa/decisions.tsv",
    ],
    "genotype_qc": [
        "results/genotype_qc/report/samples.tsv",
        "results/genotype_qc/report/attrition.tsv",
        "results/genotype_qc/report/plots/*.png",
        "results/association/lead_variants.tsv",
        "results/association/*.png",
    ],
    "preprocess": [
        "results/preprocess/sub-*/ses-*/figures/*_desc-registration_qc.png",
        "results/preprocess/qc.tsv",
    ],
    "provenance": ["results/provenance/run.json"],
    "wm_clusters": ["results/wm_clusters/sub-*/ses-*/figures/*_desc-clusters_qc.png"],
}


def report_contents(
    workdir: Path, globs: list[str], env: dict[str, str] | None = None
) -> tuple[list[str], list[str], str]:
    """Build ``snakemake --report report.zip`` in a finished run's folder (its config.yaml) and
    check it against the run's files matching ``globs``: returns those files (relative paths),
    the ones whose bytes are not in the ZIP, and the report's HTML."""
    import hashlib
    import zipfile

    from cohortflow.io.atomic import sha256_file

    report = workdir / "report.zip"
    run_env = {**os.environ, **(env or {})}
    done = snakemake(
        REPO, workdir, "--configfile", str(workdir / "config.yaml"), "--report", str(report),
        env=run_env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with zipfile.ZipFile(report) as archive:
        names = archive.namelist()
        (html_name,) = [n for n in names if n.endswith("/report.html")]
        html = archive.read(html_name).decode()
        in_zip = {hashlib.sha256(archive.read(n)).hexdigest() for n in names}
    expected = sorted(
        str(p.relative_to(workdir)) for pattern in globs for p in workdir.glob(pattern)
    )
    missing = [rel for rel in expected if sha256_file(workdir / rel) not in in_zip]
    return expected, missing, html


def _make_bad_inputs(work: Path) -> dict[str, str]:
    """One broken source per failure mode of the issue, built from the demo's own DICOM."""
    import nibabel as nib
    import pydicom

    sh = shutil

    demo = work / "resources" / "demo" / "mri"
    bad = work / "bad"
    flair_files = {}
    for sub in ("demo01", "demo03"):
        files = sorted((demo / sub / "raw" / "dicom" / "series005").rglob("IM*"))
        flair_files[sub] = sorted(
            files, key=lambda p: float(pydicom.dcmread(p, stop_before_pixels=True).SliceLocation)
        )
    sources = {}

    trunc = bad / "truncated"
    sh.copytree(demo / "demo01" / "raw" / "dicom", trunc)
    victim = sorted((trunc / "series005").rglob("IM*"))[5]
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    sources["truncated"] = str(trunc)

    missing = bad / "missing_slice"
    missing.mkdir(parents=True)
    for i, f in enumerate(flair_files["demo03"]):
        if i != 20:
            sh.copy(f, missing / f"{i:04d}.dcm")
    sources["missing_slice"] = str(missing)

    mixed = bad / "two_series"
    mixed.mkdir()
    for sub in ("demo01", "demo03"):
        for i, f in enumerate(flair_files[sub]):
            sh.copy(f, mixed / f"{sub}_{i:04d}")
    sources["two_series"] = str(mixed)

    no_mr = bad / "no_mr"
    no_mr.mkdir()
    for i, f in enumerate(flair_files["demo03"][:5]):
        ds = pydicom.dcmread(f)
        ds.Modality = "CT"
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        ds.save_as(no_mr / f"ct{i}.dcm")
    sources["no_mr"] = str(no_mr)

    empty = bad / "empty"
    empty.mkdir()
    sources["empty"] = str(empty)

    not_image = bad / "not_an_image.nii.gz"
    not_image.write_text("this is a text file, not a NIfTI image\n")
    sources["not_image"] = str(not_image)

    four_d = bad / "four_d.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8, 3), np.int16), np.eye(4)), four_d)
    sources["four_d"] = str(four_d)

    sources["missing_path"] = str(bad / "does" / "not" / "exist")
    return sources


#: The demo subject whose DICOM headers get hostile free text (tests/hostile_dicom.PLANTED) in
#: demo_run: it goes through every stage, and tests/test_phi.py looks for the values everywhere.
HOSTILE_DEMO_SUBJECT = "demo01"


def _plant_free_text(folder: Path) -> None:
    """Identifiers where sites type them (descriptions, comments, coil names, a private note),
    appended to the demo's own text so that each series keeps its role."""
    import pydicom
    from hostile_dicom import hostile_header

    hostile = hostile_header()
    # Identifiers only: no term that would change a series' role.
    appended = {
        "SeriesDescription": " Mueller Juergen XJ4412 03.07.1961",
        "ProtocolName": "_JMueller_1961-07-03",
        "StudyDescription": " Kopf MUELLER Studie XJ4412 Station Lindenhof",
    }
    for path in sorted(p for p in folder.rglob("IM*") if p.is_file()):
        ds = pydicom.dcmread(path)
        ds.SpecificCharacterSet = "ISO_IR 192"
        for keyword, text in appended.items():
            ds[keyword].value = f"{ds.get(keyword, '')}{text}".strip()
        for keyword in ("ImageComments", "ReceiveCoilName", "PerformedProcedureStepDescription"):
            setattr(ds, keyword, hostile[keyword].value)
        ds.SequenceName = f"{ds.get('SequenceName', '')}_XJ4412"
        ds.private_block(0x0029, "SITE NOTES", create=True).add_new(0x10, "LO", "Juergen XJ4412")
        ds.save_as(path, enforce_file_format=True)


def _make_preprocess_inputs(work: Path) -> tuple[dict[str, str], dict[str, str]]:
    """NIfTI sources that ingest accepts but preprocessing must refuse or flag.

    Returns (flagged, refused): the first complete the pipeline and must be flagged in the
    cohort QC table; the second fail their preprocessing job with a clear message.
    """
    import nibabel as nib

    bad = work / "bad_preprocess"
    bad.mkdir(parents=True)
    rng = np.random.default_rng(7)

    def save(name, data, affine):
        path = bad / f"{name}.nii.gz"
        nib.save(nib.Nifti1Image(np.asarray(data, np.float32), affine), path)
        return str(path)

    flagged, refused = {}, {}
    # Not a brain: a noisy ellipsoid the size of a head.
    idx = np.indices((150, 180, 150)).astype(np.float32)
    centre = np.array([75, 90, 75], np.float32)[:, None, None, None]
    r = np.sqrt((((idx - centre) / np.array([60, 75, 60])[:, None, None, None]) ** 2).sum(0))
    blob = (r < 1) * 400.0 + rng.normal(0, 80, r.shape) * (r < 1)
    flagged["not_brain"] = save("not_brain", np.clip(blob, 0, None), np.diag([1.2, 1.2, 1.2, 1]))
    # A real head, upside down: the affine of a demo FLAIR turned 180 degrees about L-R.
    demo = nib.load(work / "resources" / "demo" / "mri" / "demo04" / "raw" / "FLAIR.nii.gz")
    flip = np.diag([1.0, -1.0, -1.0, 1.0])
    flagged["upside_down"] = save("upside_down", demo.get_fdata(), flip @ demo.affine)

    refused["constant"] = save("constant", np.zeros((96, 96, 60)), np.diag([2.0, 2.0, 2.0, 1]))
    slab = np.zeros((256, 256, 2))
    slab[60:200, 50:210] = 300.0
    refused["two_slices"] = save("two_slices", slab, np.diag([1.0, 1.0, 5.0, 1]))
    nan = demo.get_fdata().astype(np.float32)
    nan[40:50, 40:50, 10] = np.nan
    nan[60, 60, 12] = np.inf
    refused["nan"] = save("nan", nan, demo.affine)  # ingest refuses this one
    return flagged, refused


EXTERNAL_DEFACER = "truthmask"


def _with_external_defacing(work: Path, sheet: str) -> str:
    """The sheet with `defaced`/`defacer` columns: the NIfTI demo subject also comes defaced
    by "another tool" (its raw image with the true face, grown by 2 voxels, set to 0)."""
    import nibabel as nib
    from scipy import ndimage

    lines = sheet.rstrip("\n").split("\n")
    out = [lines[0] + "\tdefaced\tdefacer"]
    for line in lines[1:]:
        subject, _, source = line.split("\t")[:3]
        extra = "\t\t"
        if source.endswith(".nii.gz"):
            raw = nib.load(work / source)
            truth = work / "resources" / "demo" / "mri" / subject / "truth" / "face_mask_acq.nii.gz"
            face = ndimage.binary_dilation(np.asarray(nib.load(truth).dataobj) > 0, iterations=2)
            data = raw.get_fdata(dtype=np.float32)
            data[face] = 0
            target = work / "external" / f"{subject}_defaced.nii.gz"
            target.parent.mkdir(exist_ok=True)
            nib.save(nib.Nifti1Image(data, raw.affine), target)
            extra = f"\t{target}\t{EXTERNAL_DEFACER}"
        out.append(line + extra)
    return "\n".join(out) + "\n"


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> WorkflowRun:
    """The demo (4 subjects) plus one subject per bad-input mode, run with --keep-going.

    Step 1 generates the demo through Snakemake; the bad inputs are made from its DICOM;
    step 2 runs ingest for every subject end to end through Snakemake.
    """
    from cohortflow.demo.cohort import demo_manifest, sample_sheet_text
    from cohortflow.preprocess.templates import coarse_nilearn_template
    from cohortflow.privacy.pseudonym import PseudonymKey, subject_label

    work = tmp_path_factory.mktemp("demo_run")
    env = {**os.environ, "COHORTFLOW_PSEUDONYM_KEY": TEST_KEY}
    env.pop("COHORTFLOW_PSEUDONYM_KEY_FILE", None)
    subjects = demo_manifest(DEMO_SUBJECTS, 20251123)
    sheet = sample_sheet_text(subjects)
    (work / "samples.tsv").write_text(sheet)
    config = work / "config.yaml"
    # Registration on a 2 mm copy of the MNI template (same space): minutes less per subject.
    template = coarse_nilearn_template(work / "template", DEMO_TEMPLATE_MM)
    config.write_text(
        f"samples: samples.tsv\ndemo:\n  n_subjects: {DEMO_SUBJECTS}\n  genotypes: false\n"
        "pseudonymise:\n  allow_demo_key: false\ningest:\n  export_dicom: true\n"
        "preprocess:\n  keep_transforms: true\n  template:\n    source: files\n"
        f"    files:\n      space: {DEMO_SPACE}\n      image: {template['image']}\n"
        f"      wm_probseg: {template['wm_probseg']}\n"
        # A CNN small enough for seconds per epoch: 4 mm input, 4-4-8-8-16 filters.
        "classify:\n  input:\n    resolution_mm: 4\n  model:\n    width: 0.0625\n"
        "    padding: same\n  train:\n    max_epochs: 3\n    patience: 2\n"
        "  split:\n    strategy: A\n  permutations: 1\n"
        "deface:\n  export_dicom: true\ndeface_qa:\n  pairs_per_type: 2\n  folds: 3\n"
        "stages:\n  fhir: true\n  genotype_qc: false\n  association: false\n" + fhir_config_yaml()
    )
    step1 = snakemake(
        REPO, work, "--configfile", str(config), "--until", "demo_mri_subject", env=env
    )
    assert step1.returncode == 0, step1.stdout + step1.stderr
    _plant_free_text(work / "resources" / "demo" / "mri" / HOSTILE_DEMO_SUBJECT / "raw" / "dicom")
    flagged, refused = _make_preprocess_inputs(work)
    bad_sources = {**_make_bad_inputs(work), **refused}
    sheet = _with_external_defacing(work, sheet)
    # Flagged subjects come first so that their sheet rows stay the same in step 3.
    rows = [
        f"bad{name.replace('_', '')}\t01\t{src}\t\tbad\tbad\t\t"
        for name, src in {**flagged, **bad_sources}.items()
    ]
    (work / "samples.tsv").write_text(sheet + "\n".join(rows) + "\n")
    step2 = snakemake(REPO, work, "--configfile", str(config), "--keep-going", env=env)
    # Step 3: without the subjects that cannot be processed, the cohort QC table is made
    # (a cohort-level step waits for every subject in the sheet).
    (work / "samples.tsv").write_text(sheet + "\n".join(rows[: len(flagged)]) + "\n")
    step3 = snakemake(REPO, work, "--configfile", str(config), env=env)
    key = PseudonymKey(TEST_KEY.encode(), "env")
    return WorkflowRun(
        workdir=work,
        returncode=step2.returncode,
        output=step2.stdout + step2.stderr,
        step3_returncode=step3.returncode,
        step3_output=step3.stdout + step3.stderr,
        flagged={name: subject_label(key, f"bad{name.replace('_', '')}") for name in flagged},
        good={s.subject: subject_label(key, s.subject) for s in subjects},
        bad={
            name: (subject_label(key, f"bad{name.replace('_', '')}"), src)
            for name, src in bad_sources.items()
        },
    )


def rerun_in_copy(run: WorkflowRun, work: Path, *args: str, cores: int = 2):
    """Snakemake again (with ``args``) in a copy of a demo run at ``work``: the copy keeps the
    files' times, so only what ``args`` force or target is made again."""
    shutil.copytree(run.workdir, work, symlinks=True)
    return subprocess.run(
        snakemake_command(REPO, work, *args, "--configfile", str(work / "config.yaml"),
                          cores=cores),
        capture_output=True, text=True, timeout=900,
        env=os.environ | {"COHORTFLOW_PSEUDONYM_KEY": TEST_KEY},
    )  # fmt: skip


# --------------------------------------------------------------------------- PLINK
needs_plink = pytest.mark.skipif(
    not (shutil.which("plink1.9") and shutil.which("plink2")),
    reason="plink1.9/plink2 not installed",
)


def simulated_demo_genotypes(tmp_path_factory, name: str) -> Path:
    """A new folder holding the demo genotypes (``demo.*``); skips without PLINK."""
    from cohortflow.demo.genotypes import simulate_genotypes

    if not (shutil.which("plink1.9") and shutil.which("plink2")):
        pytest.skip("plink1.9/plink2 not installed")
    work = tmp_path_factory.mktemp(name)
    simulate_genotypes(work / "demo")
    return work


# --------------------------------------------------------------------------- HTTP test servers
class LoopbackServer:
    """A threaded HTTP server on a free 127.0.0.1 port for a request handler class (its FHIR
    base at ``url``); ``close()`` stops it."""

    def __init__(self, handler):
        from http.server import ThreadingHTTPServer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/fhir"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------- FHIR validation
FHIR_SHARED = SHARED_DATA.parent / "fhir"
FHIR_SCHEMA = FHIR_SHARED / "fhir.schema.r4.json"
FHIR_VALIDATOR = FHIR_SHARED / "server" / "medplum-validate.mjs"
FHIR_PROFILES = FHIR_SHARED / "mii" / "profiles"


def assert_valid_fhir(resources: list[dict]) -> None:
    """R4 JSON schema and R4B models on each resource, then the MII profiles (Medplum's
    validator; skipped, not passed, when node or its packages are absent)."""
    from cohortflow.fhir.validate import (
        medplum_modules,
        model_problems,
        profile_problems,
        schema_problems,
    )

    if not FHIR_SCHEMA.is_file():
        pytest.skip("../shared/fhir absent")
    for resource in resources:
        assert schema_problems(resource, FHIR_SCHEMA) == [], resource["resourceType"]
        assert model_problems(resource) == [], resource["resourceType"]
    if not (shutil.which("node") and medplum_modules(FHIR_VALIDATOR.parent)):
        pytest.skip("node or the Medplum validator's packages absent")
    assert profile_problems(resources, FHIR_VALIDATOR, FHIR_PROFILES) == []


@pytest.fixture(scope="session")
def fhir_server(tmp_path_factory):
    """Medplum's FHIR engine from ../shared/fhir/server/start.sh on a free loopback port,
    validating every write against R4 and the MII profiles; stopped after the session."""
    import socket
    import time

    start = FHIR_SHARED / "server" / "start.sh"
    if not start.is_file() or not shutil.which("node"):
        pytest.skip("../shared/fhir/server or node absent")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    pidfile = tmp_path_factory.mktemp("fhir_server") / f"server-{port}.pid"
    result = subprocess.run([str(start), str(port), str(pidfile)], capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    pid = int(pidfile.read_text())
    os.kill(pid, 0)  # our server answers, not another one on the same port
    yield result.stdout.strip().splitlines()[-1]
    os.kill(pid, 15)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
