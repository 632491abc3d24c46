"""Patient, software Devices, the white-matter Observation and the DiagnosticReport.

* Patient: the pseudonym as its only identifier (system URI from config) and the security
  label PSEUDED; nothing else.
* Devices: cohortflow (name, version) and the classifier (its model card's content ID as
  version), so that Observation.device and Provenance agents name the exact software.
* Observation (MII radiologische Beobachtung): code = cohortflow's ``wm-abnormality`` (no
  verified SNOMED CT finding code exists for it; the profile's code slicing is open), value =
  SNOMED CT Present/Absent, the probability as a unitless component with its own code (the
  component must not repeat Observation.code: invariant obs-7), derivedFrom the
  ImagingStudy, method and device set.
* DiagnosticReport (MII radiologischer Befund): the SNOMED CT category 4201000179104 once,
  code MR report, imagingStudy, result → the Observation, a conclusion sentence.
"""

from __future__ import annotations

from typing import Any

from cohortflow.fhir import codes
from cohortflow.fhir.ids import resource_id


def patient(pseudonym: str, system: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": resource_id(pseudonym, "Patient"),
        "meta": {"security": [dict(codes.PSEUDONYMISED)]},
        "identifier": [{"system": system, "value": pseudonym}],
    }


def software_device(
    name: str, version: str, *, kind: str = "software", manufacturer: str | None = None
) -> dict[str, Any]:
    """A program or package at one version (cohortflow's own parts name cohortflow as their
    manufacturer; third-party packages name none)."""
    device: dict[str, Any] = {
        "resourceType": "Device",
        "id": resource_id("software", kind, name, version),
        "meta": {"profile": [codes.PROFILE_DEVICE]},
    }
    if manufacturer:
        device["manufacturer"] = manufacturer
    device["deviceName"] = [{"name": name, "type": "user-friendly-name"}]
    device["version"] = [{"value": version}]
    return device


def wm_observation(
    pseudonym: str,
    probability: float,
    label: str,
    *,
    patient_ref: str,
    study_ref: str,
    device_ref: str,
    method: str,
) -> dict[str, Any]:
    if label not in ("yes", "no"):
        raise ValueError(f"label must be yes or no, not {label!r}")
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"probability {probability} outside [0, 1]")
    return {
        "resourceType": "Observation",
        "id": resource_id(pseudonym, "Observation", "wm-abnormality"),
        "meta": {"profile": [codes.PROFILE_OBSERVATION]},
        "status": "final",
        "category": [{"coding": [dict(codes.CATEGORY_RADIOLOGY_OBSERVATION)]}],
        "code": {"coding": [dict(codes.WM_ABNORMALITY)]},
        "subject": {"reference": patient_ref},
        "valueCodeableConcept": {
            "coding": [dict(codes.PRESENT if label == "yes" else codes.ABSENT)]
        },
        "method": {"text": method},
        "device": {"reference": device_ref},
        "derivedFrom": [{"reference": study_ref}],
        "component": [
            {
                "code": {"coding": [dict(codes.WM_PROBABILITY)]},
                "valueQuantity": {"value": round(float(probability), 4), **codes.UNITLESS},
            }
        ],
    }


def diagnostic_report(
    pseudonym: str,
    observation: dict[str, Any],
    *,
    patient_ref: str,
    study_ref: str,
    observation_ref: str,
) -> dict[str, Any]:
    present = observation["valueCodeableConcept"]["coding"][0]["code"] == codes.PRESENT["code"]
    probability = observation["component"][0]["valueQuantity"]["value"]
    conclusion = (
        f"White-matter abnormality {'present' if present else 'absent'} "
        f"(CNN probability {probability:.2f}); automated research result, not a clinical "
        "diagnosis."
    )
    return {
        "resourceType": "DiagnosticReport",
        "id": resource_id(pseudonym, "DiagnosticReport", "wm-abnormality"),
        "meta": {"profile": [codes.PROFILE_REPORT]},
        "status": "final",
        "category": [{"coding": [dict(codes.CATEGORY_IMAGING_REPORT)]}],
        "code": {"coding": [dict(codes.REPORT_MR)]},
        "subject": {"reference": patient_ref},
        "result": [{"reference": observation_ref}],
        "imagingStudy": [{"reference": study_ref}],
        "conclusion": conclusion,
    }


def obs7_problems(observation: dict[str, Any]) -> list[str]:
    """Invariant obs-7 (no component code may share a coding with Observation.code when a value
    is present), which neither Medplum nor fhir.resources enforces."""
    if not any(k.startswith("value") for k in observation):
        return []
    own = {(c.get("system"), c.get("code")) for c in observation["code"].get("coding", [])}
    return [
        f"component[{i}] repeats Observation.code (obs-7)"
        for i, comp in enumerate(observation.get("component", []))
        if own & {(c.get("system"), c.get("code")) for c in comp["code"].get("coding", [])}
    ]


def deface_qa_observation(
    pseudonym: str,
    decision: dict[str, Any],
    *,
    patient_ref: str,
    study_ref: str,
    device_ref: str,
) -> dict[str, Any]:
    """The defacing-QA decision of one defaced image (a ``*_decision.json`` record): the
    decision as a coded value, accepted = normal, a rejection = abnormal; the classifier's
    class probabilities as unitless components; the drivers of the decision as a note."""
    name = decision["Decision"]
    if name not in codes.DEFACE_DECISIONS:
        raise ValueError(f"unknown defacing-QA decision {name!r}")
    defacer = str(decision.get("Defacer", "cohortflow"))
    components = [
        {
            "code": {"coding": [dict(codes.DEFACE_PROBABILITY[cls])]},
            "valueQuantity": {"value": round(float(p), 4), **codes.UNITLESS},
        }
        for cls, p in sorted(decision.get("Probabilities", {}).items())
        if cls in codes.DEFACE_PROBABILITY
    ]
    drivers = "; ".join(
        f"{d['feature']}={float(d['value']):.4g}" for d in decision.get("Drivers", [])
    )
    outside = ", ".join(decision.get("OutsideAcceptedRange", []))
    note = f"Drivers: {drivers or 'none'}." + (
        f" Outside the accepted range: {outside}." if outside else ""
    )
    return {
        "resourceType": "Observation",
        "id": resource_id(pseudonym, "Observation", "deface-qa", defacer),
        "status": "final",
        "category": [{"coding": [dict(codes.CATEGORY_IMAGING)]}],
        "code": {"coding": [dict(codes.DEFACE_QA)], "text": f"Defacing QA ({defacer})"},
        "subject": {"reference": patient_ref},
        "valueCodeableConcept": {"coding": [dict(codes.DEFACE_DECISIONS[name])]},
        "interpretation": [
            {"coding": [dict(codes.NORMAL if name == "accepted" else codes.ABNORMAL)]}
        ],
        "note": [{"text": note}],
        "method": {
            "text": f"classifier on similarity features of the original and the image "
            f"defaced by {defacer} (after DefaceQA)"
        },
        "device": {"reference": device_ref},
        "derivedFrom": [{"reference": study_ref}],
        "component": components,
    }
