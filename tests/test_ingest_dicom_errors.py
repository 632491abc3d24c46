"""Damaged or odd DICOM: one clear error for the subject, never a traceback or a short volume."""

from __future__ import annotations

import shutil

import pydicom
import pytest

from cohortflow.errors import DicomError, InputError
from cohortflow.ingest.run import IngestSettings, ingest_subject
from cohortflow.privacy.pseudonym import PseudonymKey

KEY = PseudonymKey(b"error-test-key-0123456789abcdef", "env")


def _copy_series(shared_data, tmp_path):
    source = shared_data / "mri" / "dicom" / "siemens_prisma_t1_2d_HFS"
    target = tmp_path / "src"
    shutil.copytree(source, target)
    files = sorted(target.iterdir())
    by_position = sorted(
        files, key=lambda p: float(pydicom.dcmread(p, stop_before_pixels=True).SliceLocation)
    )
    return target, by_position


def _ingest(tmp_path, source):
    return ingest_subject(
        source=source,
        nifti_out=tmp_path / "out.nii.gz",
        sidecar_out=tmp_path / "out.json",
        subject="0123456789ab",
        session="01",
        sheet_row=2,
        key=KEY,
        settings=IngestSettings(target_role="T1w"),
    )


@pytest.mark.parametrize("keep_bytes", [0, 100, 300])
def test_truncated_end_slice_is_an_error_not_a_shorter_volume(shared_data, tmp_path, keep_bytes):
    source, by_position = _copy_series(shared_data, tmp_path)
    last = by_position[-1]
    last.write_bytes(last.read_bytes()[:keep_bytes])
    with pytest.raises(DicomError) as err:
        _ingest(tmp_path, source)
    message = str(err.value)
    assert "sub-0123456789ab (sample sheet row 2)" in message
    assert last.name in message and ("unreadable" in message or "truncated" in message)
    assert not (tmp_path / "out.nii.gz").exists()


def test_missing_required_attribute_is_a_clear_error(shared_data, tmp_path):
    source, by_position = _copy_series(shared_data, tmp_path)
    ds = pydicom.dcmread(by_position[3])
    del ds.Rows
    ds.save_as(by_position[3])
    with pytest.raises(InputError) as err:
        _ingest(tmp_path, source)
    assert by_position[3].name in str(err.value)


def test_screenshot_with_modality_mr_is_not_a_candidate(shared_data, tmp_path):
    source, by_position = _copy_series(shared_data, tmp_path)
    ds = pydicom.dcmread(by_position[0])
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SeriesInstanceUID = pydicom.uid.generate_uid()
    ds.SeriesDescription = "T1 screenshot"
    ds.save_as(source / "capture.dcm")
    sidecar = _ingest(tmp_path, source)  # the secondary capture does not compete with the T1w
    assert sidecar["NumberOfInstances"] == 35
