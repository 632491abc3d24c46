"""NIfTI and BIDS sources: accepted as they are, reoriented, stripped of header text."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from cohortflow.errors import InputError, NiftiError
from cohortflow.ingest.nifti_input import find_bids_image, load_nifti_3d
from cohortflow.ingest.run import IngestSettings, ingest_subject
from cohortflow.privacy.pseudonym import PseudonymKey

KEY = PseudonymKey(b"k" * 32, "env")


def _image(shape=(10, 12, 8), affine=None):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 1000, size=shape).astype(np.int16)
    affine = np.diag([-2.0, 2.0, 3.0, 1.0]) if affine is None else affine  # LAS
    img = nib.Nifti1Image(data, affine)
    img.header["descrip"] = b"MUSTERMANN ERIKA 19620314"
    img.header["db_name"] = b"PID4711"
    img.header["aux_file"] = b"ACC123456"
    return img


def _ingest(tmp_path, source, **kw):
    return ingest_subject(
        source=source,
        nifti_out=tmp_path / "out" / "x.nii.gz",
        sidecar_out=tmp_path / "out" / "x.json",
        subject="0123456789ab",
        session="01",
        sheet_row=3,
        key=KEY,
        settings=IngestSettings(),
        **kw,
    )


def test_nifti_is_reoriented_exactly_and_header_text_dropped(tmp_path):
    img = _image()
    nib.save(img, tmp_path / "in.nii.gz")
    sidecar = _ingest(tmp_path, tmp_path / "in.nii.gz")
    out = nib.load(tmp_path / "out" / "x.nii.gz")
    assert nib.aff2axcodes(out.affine) == ("R", "A", "S")
    canonical = nib.as_closest_canonical(img)
    assert np.allclose(out.affine, canonical.affine)
    assert np.array_equal(np.asanyarray(out.dataobj), np.asanyarray(canonical.dataobj))
    raw = (tmp_path / "out" / "x.nii.gz").read_bytes()
    header = out.header.binaryblock
    for text in (b"MUSTERMANN", b"PID4711", b"ACC123456"):
        assert text not in header and text not in raw
    assert sidecar["SourceFormat"] == "NIfTI" and sidecar["VoxelSize"] == [2.0, 2.0, 3.0]
    assert "MUSTERMANN" not in (tmp_path / "out" / "x.json").read_text()


def test_singleton_fourth_dimension_is_accepted(tmp_path):
    img = nib.Nifti1Image(np.ones((6, 6, 6, 1), np.float32), np.eye(4))
    nib.save(img, tmp_path / "one.nii")
    assert load_nifti_3d(tmp_path / "one.nii").shape == (6, 6, 6)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p.write_text("not an image"), "not a readable NIfTI"),
        (lambda p: p.write_bytes(b"\x1f\x8b\x08\x00garbage"), "not a readable NIfTI"),
        (
            lambda p: nib.save(nib.Nifti1Image(np.zeros((4, 4, 4, 2)), np.eye(4)), p),
            "expected a 3D image, found 4D",
        ),
        (
            lambda p: nib.save(nib.Nifti1Image(np.zeros((4, 4)), np.eye(4)), p),
            "expected a 3D image, found 2D",
        ),
        (
            lambda p: nib.save(
                nib.Nifti1Image(np.full((4, 4, 4), np.nan, np.float32), np.eye(4)), p
            ),
            "NaN",
        ),
    ],
)
def test_bad_nifti_names_subject_file_and_reason(tmp_path, make, reason):
    path = tmp_path / "bad.nii.gz"
    make(path)
    with pytest.raises(NiftiError) as err:
        _ingest(tmp_path, path)
    message = str(err.value)
    assert "sub-0123456789ab (sample sheet row 3)" in message
    # The file is named relative to the sheet row's source (a path may name the patient).
    assert "<source of sample sheet row 3>" in message and str(path) not in message
    assert reason in message
    assert not (tmp_path / "out" / "x.nii.gz").exists()
    assert not (tmp_path / "out" / "x.json").exists()


def test_other_file_types_and_missing_paths(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="not a NIfTI"):
        _ingest(tmp_path, tmp_path / "notes.txt")
    with pytest.raises(InputError, match="does not exist"):
        _ingest(tmp_path, tmp_path / "nowhere")


def _bids(tmp_path, *, runs=1):
    root = tmp_path / "bids"
    anat = root / "sub-P01" / "ses-01" / "anat"
    anat.mkdir(parents=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "t", "BIDSVersion": "1.9"}))
    for run in range(1, runs + 1):
        stem = f"sub-P01_ses-01_run-{run}_FLAIR" if runs > 1 else "sub-P01_ses-01_FLAIR"
        nib.save(_image(), anat / f"{stem}.nii.gz")
        (anat / f"{stem}.json").write_text(
            json.dumps(
                {
                    "EchoTime": 0.12,
                    "RepetitionTime": 9.0,
                    "InversionTime": 2.5,
                    "Manufacturer": "GE",
                    "InstitutionName": "Klinikum Beispielstadt",
                    "AcquisitionDateTime": "2024-01-01T10:00:00",
                }
            )
        )
    return root


def test_bids_source(tmp_path):
    root = _bids(tmp_path)
    sidecar = _ingest(tmp_path, root, subject_id="P01")
    assert sidecar["EchoTime"] == 0.12 and sidecar["Manufacturer"] == "GE"
    text = (tmp_path / "out" / "x.json").read_text()
    assert "Beispielstadt" not in text and "2024-01-01" not in text and "P01" not in text
    image, fields = find_bids_image(root, "sub-P01", "01", "FLAIR")
    assert image.name == "sub-P01_ses-01_FLAIR.nii.gz" and "InstitutionName" not in fields


def test_bids_source_errors(tmp_path):
    root = _bids(tmp_path, runs=2)
    with pytest.raises(InputError, match="2 \\*_FLAIR images"):
        _ingest(tmp_path, root, subject_id="P01")
    with pytest.raises(InputError, match="no folder sub-P02"):
        _ingest(tmp_path, root, subject_id="P02")


def test_atomic_writes_leave_nothing_and_clear_stale_temporaries(tmp_path):
    from cohortflow.io.atomic import atomic_output_file

    target = tmp_path / "x.nii.gz"
    stale = tmp_path / ".x.nii.gz.abc123.tmp.nii.gz"  # left by a killed job
    stale.write_text("half")
    with pytest.raises(RuntimeError), atomic_output_file(target) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("killed mid-write")
    assert not target.exists() and not stale.exists()
    assert list(tmp_path.iterdir()) == []
    with atomic_output_file(target) as tmp:
        tmp.write_text("complete")
    assert target.read_text() == "complete" and len(list(tmp_path.iterdir())) == 1
