"""Patient, Devices, the white-matter Observation and the DiagnosticReport: codes, obs-7, and
the three validators (R4 JSON schema, R4B models, MII profiles)."""

from __future__ import annotations

import copy

import pytest
from conftest import assert_valid_fhir

from cohortflow.fhir import codes
from cohortflow.fhir.findings import (
    diagnostic_report,
    obs7_problems,
    patient,
    software_device,
    wm_observation,
)

SYSTEM = "https://example.org/fhir/sid/cohortflow-pseudonym"


def _resources(probability=0.846832, label="yes"):
    pat = patient("08b707153082", SYSTEM)
    device = software_device("cohortflow wm-abnormality CNN", "cnn-e592cb4f5105fd52",
                             kind="classifier")  # fmt: skip
    obs = wm_observation(
        "08b707153082", probability, label, patient_ref=f"Patient/{pat['id']}",
        study_ref="ImagingStudy/s1", device_ref=f"Device/{device['id']}",
        method="3D CNN on the white-matter cluster map (HeteroMRI)",
    )  # fmt: skip
    report = diagnostic_report(
        "08b707153082", obs, patient_ref=f"Patient/{pat['id']}", study_ref="ImagingStudy/s1",
        observation_ref=f"Observation/{obs['id']}",
    )  # fmt: skip
    return pat, device, obs, report


def test_codes_used_are_the_published_ones():
    assert codes.PRESENT == {"system": "http://snomed.info/sct", "code": "52101004",
                             "display": "Present"}  # fmt: skip
    assert codes.ABSENT["code"] == "2667000"
    assert codes.CATEGORY_IMAGING_REPORT["code"] == "4201000179104"
    assert codes.CATEGORY_RADIOLOGY_OBSERVATION == {
        "system": "http://loinc.org", "code": "18782-3",
        "display": "Radiology Study observation (narrative)"}  # fmt: skip
    assert codes.REPORT_MR["code"] == "4251000179103"
    assert codes.UNITLESS == {"unit": "1", "system": "http://unitsofmeasure.org", "code": "1"}
    assert codes.PSEUDONYMISED["code"] == "PSEUDED"


def test_patient_holds_the_pseudonym_only():
    pat = _resources()[0]
    assert set(pat) == {"resourceType", "id", "meta", "identifier"}
    assert pat["identifier"] == [{"system": SYSTEM, "value": "08b707153082"}]


def test_observation_value_probability_and_obs7():
    _, _, obs, report = _resources()
    assert obs["valueCodeableConcept"]["coding"][0]["code"] == "52101004"
    assert obs["component"][0]["valueQuantity"]["value"] == 0.8468
    assert obs7_problems(obs) == []
    broken = copy.deepcopy(obs)
    broken["component"][0]["code"] = copy.deepcopy(broken["code"])
    assert obs7_problems(broken) == ["component[0] repeats Observation.code (obs-7)"]
    absent = _resources(0.1, "no")[2]
    assert absent["valueCodeableConcept"]["coding"][0]["code"] == "2667000"
    assert "absent" in _resources(0.1, "no")[3]["conclusion"]
    assert report["result"] == [{"reference": f"Observation/{obs['id']}"}]
    with pytest.raises(ValueError):
        _resources(1.5)


def test_resources_pass_schema_models_and_profiles():
    assert_valid_fhir(list(_resources()))
