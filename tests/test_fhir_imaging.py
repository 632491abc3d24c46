"""ImagingStudy and scanner Device builders: the MR extension from an ingest sidecar (units
converted), the codes used, and all three validators plus the extension checks they lack."""

from __future__ import annotations

import copy

import pydicom
import pytest
from conftest import assert_valid_fhir

from cohortflow.errors import CohortflowError
from cohortflow.fhir import codes
from cohortflow.fhir.ids import resource_id
from cohortflow.fhir.imaging import (
    imaging_study,
    mr_extension_problems,
    read_instances,
    scanner_device,
)

MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"

#: The fields of a real ingest sidecar (demo subject, Siemens 3D FLAIR) that the export reads.
SIDECAR = {
    "EchoTime": 0.386, "FlipAngle": 120.0, "InversionTime": 1.8, "MagneticFieldStrength": 3.0,
    "Manufacturer": "SIEMENS", "ManufacturersModelName": "Prisma_fit", "Modality": "MR",
    "NumberOfInstances": 112, "RepetitionTime": 5.0, "ScanningSequence": ["SE", "IR"],
    "SequenceVariant": ["SK", "SP", "MP"], "SeriesDescription": "t2_space_dark-fluid_sag_p2_iso",
    "SeriesInstanceUID": "2.25.323585001722357704809900515155238254385", "SeriesNumber": 5,
    "Session": "01", "SOPClassUID": "1.2.840.10008.5.1.4.1.1.4", "SourceFormat": "DICOM",
    "StudyInstanceUID": "2.25.192630867702274634791954824574794731867",
}  # fmt: skip


def _study(sidecar=SIDECAR):
    device = scanner_device(sidecar)
    study, notes = imaging_study(
        sidecar, "08b707153082", "Patient/p1", f"Device/{device['id']}" if device else None
    )
    return study, device, notes


def _sub(study, url):
    ext = study["series"][0]["extension"][0]
    return [e for e in ext["extension"] if e["url"] == url]


def test_codes_are_the_published_ones():
    assert codes.MODALITY_MR == {"system": "http://dicom.nema.org/resources/ontology/DCM",
                                 "code": "MR", "display": "Magnetic Resonance"}  # fmt: skip
    assert codes.BODY_SITE_BRAIN["system"] == "http://snomed.info/sct"
    assert codes.BODY_SITE_BRAIN["code"] == "12738006"
    assert codes.MR_UNITS == {
        "magneticFieldStrength": ("tesla", "T"), "echoTime": ("milliseconds", "ms"),
        "repetitionTime": ("milliseconds", "ms"), "inversionTime": ("milliseconds", "ms"),
        "flipAngle": ("plane angle degree", "deg"),
    }  # fmt: skip
    assert codes.UCUM == "http://unitsofmeasure.org"
    assert codes.PROFILE_IMAGING_STUDY.endswith("/mii-pr-bildgebung-bildgebungsstudie")
    assert codes.EXT_MR.endswith("/StructureDefinition/mii-ex-bildgebung-modalitaet-mr")


def test_mr_extension_carries_the_sidecar_in_profile_units():
    study, _, notes = _study()
    assert notes == ["no de-identified DICOM export: series without instance elements"]
    assert _sub(study, "echoTime")[0]["valueQuantity"] == {
        "value": 386.0, "unit": "milliseconds", "system": codes.UCUM, "code": "ms"}  # fmt: skip
    assert _sub(study, "repetitionTime")[0]["valueQuantity"]["value"] == 5000.0
    assert _sub(study, "inversionTime")[0]["valueQuantity"]["value"] == 1800.0
    assert _sub(study, "magneticFieldStrength")[0]["valueQuantity"]["code"] == "T"
    assert _sub(study, "flipAngle")[0]["valueQuantity"]["value"] == 120.0
    sequence = _sub(study, "scanningSequence")[0]["valueCodeableConcept"]["coding"]
    assert [c["code"] for c in sequence] == ["SE", "IR"]
    series = study["series"][0]
    assert series["uid"] == SIDECAR["SeriesInstanceUID"] and "instance" not in series
    assert study["identifier"][0]["value"] == f"urn:oid:{SIDECAR['StudyInstanceUID']}"
    assert mr_extension_problems(study) == []


def test_extension_checks_catch_what_validators_miss():
    study, _, _ = _study()
    broken = copy.deepcopy(study)
    _sub(broken, "magneticFieldStrength")[0]["valueQuantity"]["code"] = "mT"
    broken["series"][0]["extension"].append(broken["series"][0]["extension"][0])
    problems = mr_extension_problems(broken)
    assert any("magneticFieldStrength" in p and "unit" in p for p in problems)
    assert any("2 MR extensions" in p for p in problems)


def test_unknown_terms_and_nifti_sources_are_explicit():
    odd = {**SIDECAR, "ScanningSequence": ["SE", "XX"]}
    study, _, notes = _study(odd)
    assert [c["code"] for c in _sub(study, "scanningSequence")[0]["valueCodeableConcept"]
            ["coding"]] == ["SE"]  # fmt: skip
    assert any("XX" in n for n in notes)
    nifti = {"Session": "01", "SourceFormat": "NIfTI", "Modality": "MR"}
    study, device, notes = _study(nifti)
    assert device is None and "series" not in study and "identifier" not in study
    assert notes == ["no Series Instance UID (NIfTI source): no series"]


def _write_dicom(path, series_uid, sop_uid, number):
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = MR_IMAGE
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = MR_IMAGE, sop_uid
    ds.SeriesInstanceUID, ds.InstanceNumber = series_uid, number
    ds.save_as(path, enforce_file_format=True)


def test_instances_from_the_deidentified_export(tmp_path):
    series = SIDECAR["SeriesInstanceUID"]
    for number in (3, 1, 2):  # file order differs from instance order
        _write_dicom(tmp_path / f"{4 - number:04d}.dcm", series, f"2.25.{100 + number}", number)
    instances = read_instances(tmp_path, series)
    assert [i["number"] for i in instances] == [1, 2, 3]
    assert instances[0] == {"uid": "2.25.101", "number": 1, "sopClass": {
        "system": "urn:ietf:rfc:3986", "code": f"urn:oid:{MR_IMAGE}"}}  # fmt: skip
    assert codes.MR_SOP_CLASSES[MR_IMAGE] == "MR Image Storage"
    device = scanner_device(SIDECAR)
    study, notes = imaging_study(SIDECAR, "08b707153082", "Patient/p1",
                                 f"Device/{device['id']}", instances)  # fmt: skip
    assert notes == [] and study["series"][0]["instance"] == instances
    assert study["numberOfInstances"] == study["series"][0]["numberOfInstances"] == 3
    assert_valid_fhir([study, device])
    _write_dicom(tmp_path / "0009.dcm", "2.25.999", "2.25.109", 9)
    with pytest.raises(CohortflowError, match=r"0009.dcm: Series Instance UID 2.25.999"):
        read_instances(tmp_path, series)


def test_ids_are_deterministic_uuids():
    assert resource_id("a", "b") == resource_id("a", "b") != resource_id("a", "c")
    assert len(resource_id("x")) == 36
    with pytest.raises(ValueError):
        resource_id("a", "")


def test_study_and_device_pass_schema_models_and_profiles():
    study, device, _ = _study()
    assert_valid_fhir([study, device])
