"""Refuse what cannot be right (issue 29, point 2): no wrong volume is written without a word.

Complex or structured NIfTI data, voxel sizes of zero, a NIfTI without any orientation (unless
ingest.nifti_without_orientation asks to assume one, which the sidecar then says), DICOM values
that are not finite after rescaling, slices that disagree on how pixels are encoded, and two
images with one SOP Instance UID: each fails its subject naming row, file and reason, and
nothing is written. The de-identified export never writes a repeated UID.
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pydicom
import pytest
from conftest import ingest_one
from hostile_dicom import write_hostile_series
from hostile_inputs import (
    complex_nifti,
    mixed_pixel_representation_series,
    no_orientation_nifti,
    non_finite_rescale_series,
    repeated_uid_series,
    rgb_nifti,
    zero_voxel_nifti,
)

from cohortflow.errors import DicomError, InputError, NiftiError
from cohortflow.ingest.run import IngestSettings, export_deidentified_dicom
from cohortflow.privacy.pseudonym import PseudonymKey

KEY = PseudonymKey(b"refuse-test-key-0123456789abcdef", "env")
WHO = "subject sub-0123456789ab (sample sheet row 4): <source of sample sheet row 4>"


def _ingest(tmp_path, source, **settings):
    return ingest_one(
        source, tmp_path / "out", key=KEY, sheet_row=4,
        settings=IngestSettings(max_image_mb=500, **settings),
    )  # fmt: skip


def _refused(tmp_path, source, error=InputError, **settings) -> str:
    with pytest.raises(error) as err:
        _ingest(tmp_path, source, **settings)
    assert not (tmp_path / "out" / "img.nii.gz").exists()
    assert not (tmp_path / "out" / "img.json").exists()
    message = str(err.value)
    assert message.startswith(WHO), message
    assert str(tmp_path) not in message
    return message


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (complex_nifti, "data type complex64 (complex) is not a scalar image"),
        (rgb_nifti, "is not a scalar image"),
        (zero_voxel_nifti, "voxel sizes (pixdim) [0.0, 1.0, 1.0] are not all positive"),
        (no_orientation_nifti, "no orientation: qform_code and sform_code are both 0"),
    ],
)
def test_nifti_that_cannot_be_right_is_refused(tmp_path, build, expected):
    message = _refused(tmp_path, build(tmp_path / "bad.nii.gz"), NiftiError)
    assert expected in message


def test_assumed_orientation_is_noted_in_the_sidecar(tmp_path):
    source = no_orientation_nifti(tmp_path / "plain.nii.gz")
    sidecar = _ingest(tmp_path, source, nifti_without_orientation="assume_ras")
    note = [n for n in sidecar["Notes"] if "without orientation" in n]
    assert note and "assumed" in note[0] and "[1.2, 1.2, 3.0]" in note[0]
    written = nib.load(tmp_path / "out" / "img.nii.gz")
    assert np.allclose(written.affine[:3, :3], np.diag([1.2, 1.2, 3.0]))
    assert json.loads((tmp_path / "out" / "img.json").read_text())["Notes"] == sidecar["Notes"]
    # Voxel sizes of 0 are refused even then.
    (tmp_path / "again").mkdir()
    zero = zero_voxel_nifti(tmp_path / "again" / "zero.nii.gz")
    _refused(tmp_path / "again", zero, NiftiError, nifti_without_orientation="assume_ras")


def test_dicom_values_not_finite_after_rescaling_are_refused(tmp_path):
    non_finite_rescale_series(tmp_path / "src")
    message = _refused(tmp_path, tmp_path / "src", DicomError)
    assert "NaN or infinite after rescaling" in message and "IM0006" in message


def test_slices_disagreeing_on_pixel_encoding_are_refused(tmp_path):
    mixed_pixel_representation_series(tmp_path / "src")
    message = _refused(tmp_path, tmp_path / "src", DicomError)
    assert "disagree on PixelRepresentation" in message and "IM0004" in message


@pytest.mark.parametrize(
    ("attribute", "value"),
    [("BitsStored", 16), ("BitsAllocated", 8), ("PhotometricInterpretation", "MONOCHROME1")],
)
def test_slices_disagreeing_on_bits_or_photometry_are_refused(tmp_path, attribute, value):
    write_hostile_series(tmp_path / "src", per_slice={3: {attribute: value}})
    message = _refused(tmp_path, tmp_path / "src", DicomError)
    assert f"disagree on {attribute}" in message and "IM0003" in message


def test_one_uid_at_two_positions_is_refused_and_never_exported(tmp_path):
    repeated_uid_series(tmp_path / "src")
    message = _refused(tmp_path, tmp_path / "src", DicomError)
    assert "IM0002 and IM0007 share one SOP Instance UID but lie at different positions" in message
    with pytest.raises(DicomError, match="share one SOP Instance UID"):
        export_deidentified_dicom(
            source=tmp_path / "src", out_dir=tmp_path / "dicom", subject="0123456789ab",
            sheet_row=4, key=KEY, settings=IngestSettings(),
        )  # fmt: skip
    assert not (tmp_path / "dicom").exists()


def test_a_copied_slice_is_named_as_a_copy(tmp_path):
    files = write_hostile_series(tmp_path / "src")
    (tmp_path / "src" / "IM0005_copy").write_bytes(files[5].read_bytes())
    message = _refused(tmp_path, tmp_path / "src", DicomError)
    assert "IM0005 and IM0005_copy are the same image twice" in message


def test_export_writes_each_uid_once(tmp_path):
    write_hostile_series(tmp_path / "src")
    count = export_deidentified_dicom(
        source=tmp_path / "src", out_dir=tmp_path / "dicom", subject="0123456789ab",
        sheet_row=4, key=KEY, settings=IngestSettings(),
    )  # fmt: skip
    uids = [pydicom.dcmread(p).SOPInstanceUID for p in sorted((tmp_path / "dicom").iterdir())]
    assert count == 12 and len(set(uids)) == 12
