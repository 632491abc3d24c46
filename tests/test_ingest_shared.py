"""Ingest (discovery, role, conversion, sidecar, PHI guard) on the real multi-vendor DICOM."""

from __future__ import annotations

import gzip
import json

import nibabel as nib
import pydicom
import pytest

from cohortflow.ingest.run import IngestSettings, export_deidentified_dicom, ingest_subject
from cohortflow.privacy.phi import find_phi, identifying_values
from cohortflow.privacy.pseudonym import PseudonymKey

KEY = PseudonymKey(b"shared-data-test-key-0123456789", "env")
SERIES = {
    "philips_elition_3t_t1_mprage": ("Philips", 170),
    "siemens_prisma_xa30_t1_enhanced": ("Siemens", 1),
    "siemens_prisma_t1_2d_HFS": ("SIEMENS", 35),
    "siemens_prisma_t1_2d_HFP": ("SIEMENS", 35),
}


@pytest.mark.parametrize("name", sorted(SERIES))
def test_ingest_real_series(shared_data, tmp_path, name):
    source = shared_data / "mri" / "dicom" / name
    vendor, n_files = SERIES[name]
    settings = IngestSettings(target_role="T1w")
    sidecar = ingest_subject(
        source=source,
        nifti_out=tmp_path / "t1.nii.gz",
        sidecar_out=tmp_path / "t1.json",
        subject="abcdef012345",
        session="01",
        sheet_row=1,
        key=KEY,
        settings=settings,
    )
    assert sidecar["Role"] == "T1w"
    assert sidecar["Manufacturer"].lower().startswith(vendor.lower())
    assert sidecar["NumberOfInstances"] == n_files
    assert sidecar["MagneticFieldStrength"] == pytest.approx(3.0)
    assert 0 < sidecar["EchoTime"] < 0.02 and 0 < sidecar["RepetitionTime"] < 3.0
    img = nib.load(tmp_path / "t1.nii.gz")
    assert nib.aff2axcodes(img.affine) == ("R", "A", "S")
    assert list(img.shape) == sidecar["ImageShape"]

    header = pydicom.dcmread(sorted(source.iterdir())[0], stop_before_pixels=True)
    original_uids = {str(header.StudyInstanceUID), str(header.SeriesInstanceUID)}
    assert not original_uids & {sidecar["StudyInstanceUID"], sidecar["SeriesInstanceUID"]}
    meta = {str(e.value) for e in header.file_meta}
    phi = identifying_values(header, keep_descriptions=True) - meta

    def values(data):
        if isinstance(data, dict):
            return [v for item in data.values() for v in values(item)]
        if isinstance(data, list):
            return [v for item in data for v in values(item)]
        return [str(data)]

    # Sidecar values (its keys are ours: "MRAcquisitionType" would match a private-tag
    # value "ACQUISITION" of the XA30 header) and the whole decompressed NIfTI.
    sidecar_text = "\n".join(values(json.loads((tmp_path / "t1.json").read_text())))
    outputs = [gzip.decompress((tmp_path / "t1.nii.gz").read_bytes()), sidecar_text]
    for data in outputs:
        assert find_phi(data, phi) == []
    assert "PatientName" not in json.loads((tmp_path / "t1.json").read_text())


def test_export_real_series_is_deidentified(shared_data, tmp_path):
    source = shared_data / "mri" / "dicom" / "philips_elition_3t_t1_mprage"
    count = export_deidentified_dicom(
        source=source,
        out_dir=tmp_path / "dicom",
        subject="abcdef012345",
        sheet_row=1,
        key=KEY,
        settings=IngestSettings(target_role="T1w"),
    )
    assert count == 170
    header = pydicom.dcmread(sorted(source.iterdir())[0], stop_before_pixels=True)
    phi = identifying_values(header, keep_descriptions=True) - {
        str(e.value) for e in header.file_meta
    }
    for path in sorted((tmp_path / "dicom").glob("*.dcm"))[:10]:
        assert find_phi(path.read_bytes(), phi) == []
