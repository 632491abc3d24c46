"""The three FHIR validators on the official MII examples and on broken copies: each catches
the defects it is there for (R4 JSON schema: code enums; R4B models: required primitives; MII
profiles: slices and profile cardinalities)."""

from __future__ import annotations

import copy
import json
import shutil

import pytest
from conftest import FHIR_PROFILES as PROFILES
from conftest import FHIR_SCHEMA as SCHEMA
from conftest import FHIR_SHARED as FHIR
from conftest import FHIR_VALIDATOR as VALIDATOR

from cohortflow.fhir.validate import (
    FhirValidationError,
    medplum_modules,
    model_problems,
    profile_problems,
    schema_problems,
)

EXAMPLES = FHIR / "mii" / "examples"

pytestmark = pytest.mark.skipif(not SCHEMA.is_file(), reason="../shared/fhir absent")


def _examples() -> dict[str, dict]:
    return {
        p.name.split("-")[0]: json.loads(p.read_text()) for p in sorted(EXAMPLES.glob("*.json"))
    }


def _report() -> dict:
    return copy.deepcopy(_examples()["DiagnosticReport"])


def test_official_examples_pass_schema_and_models():
    examples = _examples()
    assert {"ImagingStudy", "DiagnosticReport", "Device"} <= set(examples)
    for resource in examples.values():
        assert schema_problems(resource, SCHEMA) == []
        assert model_problems(resource) == []


def test_schema_catches_a_bad_code_the_models_accept():
    report = _report()
    report["status"] = "done"
    assert any("status" in p and "'done'" in p for p in schema_problems(report, SCHEMA))
    assert model_problems(report) == []


def test_models_catch_a_missing_required_primitive_the_schema_accepts():
    report = _report()
    del report["status"]
    assert schema_problems(report, SCHEMA) == []
    problems = model_problems(report)
    assert problems and all(p.startswith("DiagnosticReport/") for p in problems)


def test_bundle_envelope_and_entries_are_checked_separately():
    report = _report()
    report["status"] = "done"
    bundle = {
        "resourceType": "Bundle", "id": "b1", "type": "transaction",
        "entry": [{"fullUrl": "urn:uuid:5e1c4b70-2a3e-5d0a-9a39-4c1b8a9a3c10", "resource": report,
                   "request": {"method": "PUTT", "url": "DiagnosticReport/x"}}],
    }  # fmt: skip
    problems = schema_problems(bundle, SCHEMA)
    assert any("entry.0.request.method" in p and "PUTT" in p for p in problems), problems
    assert any(p.startswith("entry[0] DiagnosticReport/") and "'done'" in p for p in problems)
    assert schema_problems({"resourceType": "Nonsense"}, SCHEMA)[0].endswith(
        "not an R4 resource type"
    )


needs_node = pytest.mark.skipif(
    not (shutil.which("node") and VALIDATOR.is_file()), reason="node or the validator absent"
)


@needs_node
def test_mii_profiles_accept_the_examples_and_catch_profile_defects():
    if medplum_modules(VALIDATOR.parent) is None:
        pytest.skip("the Medplum validator's npm packages could not be installed")
    examples = list(_examples().values())
    assert profile_problems(examples, VALIDATOR, PROFILES) == []
    report = _report()
    del report["imagingStudy"]
    # The SNOMED CT category slice (1..1) replaced by a LOINC code only.
    report["category"] = [{"coding": [{"system": "http://loinc.org", "code": "18748-4"}]}]
    problems = profile_problems([report], VALIDATOR, PROFILES)
    assert any("mii-pr-bildgebung-radiologischer-befund" in p and "imagingStudy" in p
               for p in problems), problems  # fmt: skip
    assert any("slice 'sct'" in p for p in problems), problems
    # The schema and the models accept that report: only the profile check sees it.
    assert schema_problems(report, SCHEMA) == [] and model_problems(report) == []


def test_profile_check_that_cannot_run_is_an_error(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(FhirValidationError, match="needs node"):
        profile_problems([_report()], VALIDATOR, PROFILES)
