"""Robustness through Snakemake (issue 29, points 4 to 6), on tiny ingest-only configs.

* A hostile-input corpus (every class of the issue, built here) runs with ``--keep-going``:
  each bad subject fails alone with its message in its own log, never "a bug", and every
  other subject's outputs are complete (one of them sits in a folder named with braces,
  another shares its folder with a deflated DICOM bomb).
* Several runs start on one folder at staggered moments: exactly one runs, the others stop
  naming it, and the outputs are those of an undisturbed run.
* A run killed with SIGKILL during ingest is rerun with the same command: it takes over the
  dead run's lock and ends with outputs byte-identical to an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import REPO, TEST_KEY, snakemake_command
from hostile_dicom import write_hostile_series
from hostile_inputs import (
    complex_nifti,
    deflated_dicom_bomb,
    huge_dicom_series,
    mixed_pixel_representation_series,
    nifti_bomb,
    no_orientation_nifti,
    non_finite_rescale_series,
    repeated_uid_series,
)

from cohortflow.paths import bids, subject_log
from cohortflow.privacy.pseudonym import PseudonymKey, subject_label
from cohortflow.runlock import OWNER

pytestmark = pytest.mark.slow

KEY = PseudonymKey(TEST_KEY.encode(), "env")
# The FHIR export without the external validators (the R4B models and cohortflow's own checks
# still run): seconds per bundle.
FHIR_QUICK = (
    "fhir:\n  patient_identifier_system: urn:cohortflow:demo:pseudonym\n  validation:\n"
    "    schema: null\n    profiles: null\n    validator: null\n"
)
STAGES_OFF = ("preprocess", "wm_clusters", "classify", "deface", "deface_qa", "genotype_qc",
              "association", "fhir", "fhir_upload")  # fmt: skip


def _config(work: Path, export_dicom: bool = False, fhir: bool = False) -> Path:
    config = work / "config.yaml"
    stages_off = [stage for stage in STAGES_OFF if not (fhir and stage == "fhir")]
    config.write_text(
        "samples: samples.tsv\ndemo:\n  genotypes: false\npseudonymise:\n  allow_demo_key: false\n"
        f"ingest:\n  export_dicom: {str(export_dicom).lower()}\nstages:\n  ingest: true\n"
        + "".join(f"  {stage}: false\n" for stage in stages_off)
        + ("  fhir: true\n" + FHIR_QUICK if fhir else "")
    )
    return config


def _sheet(work: Path, sources: dict[str, Path]) -> None:
    (work / "samples.tsv").write_text(
        "subject\tsession\tsource\n" + "".join(f"{s}\t01\t{p}\n" for s, p in sources.items())
    )


def _env() -> dict[str, str]:
    # SOURCE_DATE_EPOCH fixes FHIR Provenance.recorded, so that reruns compare byte for byte.
    env = {**os.environ, "COHORTFLOW_PSEUDONYM_KEY": TEST_KEY, "SOURCE_DATE_EPOCH": "1767225600"}
    env.pop("COHORTFLOW_PSEUDONYM_KEY_FILE", None)
    return env


def _command(work: Path, *args: str) -> list[str]:
    return snakemake_command(REPO, work, "--configfile", str(work / "config.yaml"), *args)


def _outputs(work: Path, subject_id: str) -> list[Path]:
    ids = {"subject": subject_label(KEY, subject_id), "session": "01"}
    return [work / bids("ingest", **ids, suffix="FLAIR", ext=ext) for ext in (".nii.gz", ".json")]


# ------------------------------------------------------------------ point 6: hostile corpus
BAD = {  # sheet subject -> (builder, what its log must say)
    "NIIBOMB": (lambda p: nifti_bomb(p / "gigavoxel.nii.gz"), "ingest.max_image_mb = 500 MB"),
    "DCMHUGE": (lambda p: huge_dicom_series(p / "huge")[0].parent, "Rows 30000 x Columns 30000"),
    "COMPLEX": (lambda p: complex_nifti(p / "complex.nii.gz"), "(complex) is not a scalar image"),
    "NOORIENT": (lambda p: no_orientation_nifti(p / "plain.nii.gz"), "no orientation"),
    "NONFINITE": (
        lambda p: non_finite_rescale_series(p / "inf")[0].parent,
        "NaN or infinite after rescaling",
    ),
    "MIXEDREP": (
        lambda p: mixed_pixel_representation_series(p / "rep")[0].parent,
        "disagree on PixelRepresentation",
    ),
    "SAMEUID": (
        lambda p: repeated_uid_series(p / "uid")[0].parent,
        "share one SOP Instance UID but lie at different positions",
    ),
}


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("corpus")
    src = work / "sources"
    good = {"GOODBOMB": src / "good", "BRACES": src / "site{A}" / "scan"}
    write_hostile_series(good["GOODBOMB"] / "flair", seed=1)
    deflated_dicom_bomb(good["GOODBOMB"] / "localizer" / "LOC1.dcm")
    write_hostile_series(good["BRACES"], seed=2)
    bad = {}
    for name, (build, _) in BAD.items():
        (src / name.lower()).mkdir(parents=True)
        bad[name] = build(src / name.lower())
    _sheet(work, {**good, **bad})
    _config(work, export_dicom=True)
    done = subprocess.run(_command(work, "--keep-going"), capture_output=True, text=True,
                          env=_env(), timeout=600)  # fmt: skip
    return work, done


def test_every_good_subject_completes(corpus_run):
    work, done = corpus_run
    output = done.stdout + done.stderr
    assert done.returncode != 0, "the bad subjects must fail"
    assert "WildcardError" not in output
    assert "its source path contains '{' or '}'" in output  # the braced row, named
    for subject in ("GOODBOMB", "BRACES"):
        nifti, sidecar = _outputs(work, subject)
        assert nifti.is_file() and sidecar.is_file(), output[-3000:]
        assert json.loads(sidecar.read_text())["ImageShape"] == [32, 32, 12]
        exported = work / bids("ingest", subject=subject_label(KEY, subject), session="01",
                               suffix="FLAIR", ext="", datatype="dicom")  # fmt: skip
        assert len(list(exported.glob("*.dcm"))) == 12


@pytest.mark.parametrize("subject", sorted(BAD))
def test_each_bad_subject_fails_alone_with_its_message(corpus_run, subject):
    work, _ = corpus_run
    label = subject_label(KEY, subject)
    for path in _outputs(work, subject):
        assert not path.exists()
    log = (work / subject_log("ingest", "ingest", subject=label, session="01")).read_text()
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert len(errors) == 1, log
    assert f"subject sub-{label} (sample sheet row" in errors[0]
    assert BAD[subject][1] in errors[0]
    assert "a bug" not in log and "Traceback" not in log
    assert str(work / "sources") not in log  # files relative to the row's source


# ------------------------------------------------------- points 4 and 5: one run per folder
SMALL = ("ALPHA01", "BRAVO02")


@pytest.fixture(scope="module")
def small_sources(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("small_sources")
    sources = {}
    for seed, subject in enumerate(SMALL):
        sources[subject] = root / subject.lower()
        write_hostile_series(sources[subject], seed=seed, n_slices=16, size=64)
    return sources


@pytest.fixture(scope="module")
def reference_outputs(small_sources, tmp_path_factory) -> dict[str, bytes]:
    """The outputs of one undisturbed run of the small cohort."""
    reference = _prepare(tmp_path_factory.mktemp("reference"), small_sources)
    alone = subprocess.run(_command(reference), capture_output=True, text=True, env=_env(),
                           timeout=300)  # fmt: skip
    assert alone.returncode == 0, alone.stdout + alone.stderr
    return _digests(reference)


def _prepare(tmp_path: Path, sources: dict[str, Path]) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    _sheet(tmp_path, sources)
    _config(tmp_path, fhir=True)
    return tmp_path


def _start(work: Path) -> subprocess.Popen:
    return subprocess.Popen(_command(work), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=_env(), start_new_session=True)  # fmt: skip


def _snakemake_locked(work: Path, timeout: float = 120) -> None:
    """Wait until a run's onstart recorded Snakemake's locks: jobs are about to run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if json.loads((work / OWNER).read_text()).get("locks"):
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise AssertionError("the run never started its jobs")


def _digests(work: Path) -> dict[str, bytes]:
    """Every file the run wrote under results/: Snakemake's directory markers aside, and the
    run record, which says when it was written (its checksum list is compared)."""
    found = {
        str(path.relative_to(work)): path.read_bytes()
        for path in sorted((work / "results").rglob("*"))
        if path.is_file() and path.name not in (".snakemake_timestamp", "run.json")
    }
    assert all(str(p.relative_to(work)) in found for s in SMALL for p in _outputs(work, s))
    assert sum("bundle" in name for name in found) == len(SMALL)
    return found


def _wait_for(work: Path, pattern: str, run: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and run.poll() is None:
        if any(work.glob(pattern)):
            return
        time.sleep(0.05)
    raise AssertionError(f"the run ended or stalled before {pattern} appeared")


def test_runs_started_together_on_one_folder_one_runs(small_sources, reference_outputs, tmp_path):
    work = _prepare(tmp_path / "together", small_sources)
    runs = []
    for _ in range(3):  # staggered starts, all while the first is still starting
        runs.append(_start(work))
        time.sleep(0.7)
    _snakemake_locked(work)
    runs.append(_start(work))  # one more while the winner runs its jobs
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    codes = [run.returncode for run in runs]
    assert codes.count(0) == 1, outputs
    for code, output in zip(codes, outputs, strict=True):
        if code != 0:
            assert "another cohortflow run is working in this folder (pid" in output, output
    assert _digests(work) == reference_outputs
    assert not list(work.rglob(".*.tmp*"))
    assert not list((work / ".snakemake" / "locks").glob("*.lock"))


@pytest.mark.parametrize(
    "when",
    [
        "logs/ingest/sub-*_ingest.log",  # as the first ingest job starts
        "results/ingest/sub-*/ses-*/anat/*.json",  # with ingest outputs written, others running
        "logs/fhir/sub-*_bundle.log",  # during the FHIR export
    ],
)
def test_sigkill_then_rerun_gives_identical_outputs(
    small_sources, reference_outputs, tmp_path, when
):
    work = _prepare(tmp_path / "killed", small_sources)
    run = _start(work)
    _wait_for(work, when, run)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    assert list((work / ".snakemake" / "locks").glob("*.lock")), "killed, it kept its lock"
    again = subprocess.run(_command(work), capture_output=True, text=True, env=_env(),
                           timeout=300)  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    assert "removed the lock of an earlier run" in again.stdout + again.stderr
    assert _digests(work) == reference_outputs
    assert not list(work.rglob(".*.tmp*"))
