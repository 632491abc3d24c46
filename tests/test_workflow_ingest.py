"""The ingest stage end to end through Snakemake: demo subjects and every bad-input mode.

One session-scoped run (tests/conftest.py::demo_run) generates a 4-subject demo cohort with
Snakemake, adds one subject per bad-input mode, and runs the workflow with --keep-going.
"""

from __future__ import annotations

import json
import re

import nibabel as nib
import pytest

from cohortflow.paths import bids, subject_log

pytestmark = pytest.mark.slow

BAD_REASONS = {
    "truncated": r"truncated",
    "missing_slice": r"missing slice|non-uniform slice spacing",
    "two_series": r"2 FLAIR series, expected one",
    "no_mr": r"no MR series",
    "empty": r"empty|no DICOM",
    "not_image": r"not a readable NIfTI",
    "four_d": r"expected a 3D image, found 4D",
    "missing_path": r"does not exist",
    "nan": r"NaN or infinite",
}


def _outputs(run, label):
    return [
        run.workdir / bids("ingest", subject=label, session="01", suffix="FLAIR", ext=ext)
        for ext in (".nii.gz", ".json")
    ]


def test_keep_going_finishes_every_good_subject(demo_run):
    assert demo_run.returncode != 0, "bad subjects must fail their jobs"
    for label in demo_run.good.values():
        for path in _outputs(demo_run, label):
            assert path.is_file(), f"{path} missing\n{demo_run.output[-3000:]}"


@pytest.mark.parametrize("mode", sorted(BAD_REASONS))
def test_bad_input_fails_only_its_subject_with_a_clear_message(demo_run, mode):
    label, source = demo_run.bad[mode]
    for path in _outputs(demo_run, label):
        assert not path.exists(), f"{mode}: partial output {path} left behind"
    log = demo_run.workdir / subject_log("ingest", "ingest", subject=label, session="01")
    text = log.read_text()
    error = [line for line in text.splitlines() if " ERROR " in line]
    assert error, f"{mode}: no error line in {log}:\n{text}"
    assert f"sub-{label}" in error[-1] and "sample sheet row" in error[-1]
    assert re.search(BAD_REASONS[mode], error[-1], re.IGNORECASE), error[-1]
    # The file or folder at fault is named relative to the row's source, never by a path
    # that could carry the site's subject ID next to the pseudonym.
    assert "<source of sample sheet row" in error[-1], error[-1]
    assert source not in text, error[-1]
    assert "Traceback" not in text, f"{mode}: bad input must not look like a crash"


def test_no_temporary_files_left(demo_run):
    leftovers = [p for p in (demo_run.workdir / "results").rglob("*") if ".tmp" in p.name]
    assert leftovers == []


def test_demo_ingest_sidecars(demo_run):
    from cohortflow.demo.cohort import demo_manifest
    from cohortflow.demo.scanners import PROFILES

    for subject in demo_manifest(4, 20251123):
        label = demo_run.good[subject.subject]
        nifti, sidecar_path = _outputs(demo_run, label)
        sidecar = json.loads(sidecar_path.read_text())
        profile = PROFILES[subject.profile]
        img = nib.load(nifti)
        assert img.ndim == 3
        assert nib.aff2axcodes(img.affine) == ("R", "A", "S")
        assert img.header["descrip"].tobytes().strip(b"\0") == b""
        assert sidecar["Subject"] == label
        if subject.source_format == "dicom":
            assert sidecar["Role"] == "FLAIR"
            assert sidecar["EchoTime"] == pytest.approx(profile.flair.echo_time / 1000)
            assert sidecar["RepetitionTime"] == pytest.approx(profile.flair.repetition_time / 1000)
            assert sidecar["InversionTime"] == pytest.approx(profile.flair.inversion_time / 1000)
            assert sidecar["MagneticFieldStrength"] == pytest.approx(profile.field_strength)
            assert sidecar["Manufacturer"] == profile.manufacturer
            assert sidecar["StudyInstanceUID"].startswith("2.25.")
            assert sorted(c["role"] for c in sidecar["SeriesCandidates"]) == ["FLAIR", "T1w"]
        else:
            assert sidecar["SourceFormat"] == "NIfTI"
        assert sorted(sidecar["VoxelSize"]) == pytest.approx(sorted(profile.voxel_size))


def test_deidentified_dicom_export(demo_run):
    """The exported series is PS3.15-de-identified and converts to the same image."""
    import numpy as np
    import pydicom

    from cohortflow.demo.cohort import demo_manifest
    from cohortflow.ingest.dicom_series import discover_series
    from cohortflow.ingest.dicom_volume import read_volume

    exported = 0
    for subject in demo_manifest(4, 20251123):
        label = demo_run.good[subject.subject]
        folder = demo_run.workdir / bids(
            "ingest", subject=label, session="01", suffix="FLAIR", ext="", datatype="dicom"
        )
        if subject.source_format != "dicom":
            assert not folder.exists()
            continue
        files = sorted(folder.glob("*.dcm"))
        ds = pydicom.dcmread(files[0])
        assert str(ds.PatientName) == label and ds.PatientID == label
        assert ds.PatientIdentityRemoved == "YES"
        codes = {item.CodeValue for item in ds.DeidentificationMethodCodeSequence}
        assert "113100" in codes  # Basic Application Confidentiality Profile
        assert "PatientBirthDate" not in ds or ds.PatientBirthDate == ""
        (series,) = discover_series(folder).series
        volume = read_volume(series)
        ingested = nib.load(demo_run.workdir / _outputs(demo_run, label)[0])
        assert np.allclose(volume.affine, ingested.affine, atol=1e-4)
        assert np.allclose(volume.data, np.asanyarray(ingested.dataobj))
        exported += 1
    assert exported == 3
    for label, _ in demo_run.bad.values():
        folder = demo_run.workdir / bids(
            "ingest", subject=label, session="01", suffix="FLAIR", ext="", datatype="dicom"
        )
        assert not folder.exists()
