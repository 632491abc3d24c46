"""Defacing-QA and genotype Observations, Provenance, transaction bundles and their checks, and
a subject bundle assembled from sidecar files: codes, content, and all validators."""

from __future__ import annotations

import copy
import hashlib
import json

import pytest
from conftest import FHIR_PROFILES, FHIR_SCHEMA, FHIR_VALIDATOR, assert_valid_fhir
from test_fhir_imaging import SIDECAR

from cohortflow.fhir import codes
from cohortflow.fhir.bundle import (
    Validators,
    bundle_problems,
    own_problems,
    transaction,
    write_bundle,
)
from cohortflow.fhir.export import subject_bundle
from cohortflow.fhir.findings import deface_qa_observation, patient
from cohortflow.fhir.genotypes import sample_resources
from cohortflow.fhir.provenance import (
    config_sha256,
    file_entity,
    ni_uri,
    provenance,
    recorded_now,
)
from cohortflow.fhir.validate import FhirValidationError

SYSTEM = "urn:cohortflow:test:pseudonym"
CS = "https://github.com/cohortflow/cohortflow/fhir/CodeSystem/cohortflow"
#: A real decision record (demo subject, cohortflow defacer), trimmed to what the export reads.
DECISION = {
    "Decision": "accepted",
    "Defacer": "cohortflow",
    "Drivers": [{"contribution": 0.76, "feature": "face_nmi", "value": 0.00438753144607848}],
    "Inputs": {
        "model": {"path": "results/deface_qa/model/model.json", "sha256": "c1" * 32},
        "original": {"path": "results/ingest/sub-x/ses-01/anat/x.nii.gz", "sha256": "2b" * 32},
    },
    "OutsideAcceptedRange": [],
    "Probabilities": {"accepted": 0.9634, "brain_damaged": 0.0145, "face_remains": 0.0221},
    "Software": {"cohortflow": "0.1.0", "numpy": "2.3.5"},
}
SETTINGS = {
    "sample_missing": 0.03,
    "sex_female_max_f": 0.2,
    "sex_male_min_f": 0.8,
    "het_n_sd": 3.0,
    "kinship": 0.0884,
}
DEVICES = {"plink2": "Device/p2", "plink1.9": "Device/p19"}
KEPT = {
    "FID": "DEMO0001",
    "IID": "DEMO0001",
    "status": "kept",
    "F_MISS": 0.0035791,
    "sex_F": 0.04836,
    "sex_genetic": "female",
    "sex_status": "ok",
    "het_F": 0.0327438,
    "n_relatives": 1.0,
    "max_kinship": 0.250754,
    "reasons": "NA",
    "removed_at": "NA",
    "details": "kinship 0.251 with DEMO0053",
}
REMOVED = {
    **KEPT,
    "IID": "DEMO0007",
    "status": "removed",
    "F_MISS": 0.101,
    "sex_F": "NA",
    "sex_genetic": "NA",
    "sex_status": "NA",
    "het_F": "NA",
    "n_relatives": "NA",
    "max_kinship": "NA",
    "reasons": "sample_missing",
    "removed_at": "sample_callrate",
}


def _by_code(resources):
    return {r["code"]["coding"][0]["code"]: r for r in resources if "code" in r}


def _full_validators():
    if not FHIR_SCHEMA.is_file():
        pytest.skip("../shared/fhir absent")
    return Validators(FHIR_SCHEMA, FHIR_PROFILES, FHIR_VALIDATOR)


def test_new_codes_are_the_documented_ones():
    assert codes.CATEGORY_IMAGING == {
        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
        "code": "imaging",
        "display": "Imaging",
    }
    assert codes.CATEGORY_LABORATORY["code"] == "laboratory"
    assert (codes.NORMAL["code"], codes.ABNORMAL["code"]) == ("N", "A")
    assert codes.NORMAL["system"].endswith("/v3-ObservationInterpretation")
    assert codes.ACTIVITY_CREATE["system"].endswith("/v3-DataOperation")
    assert codes.ACTIVITY_CREATE["code"] == "CREATE"
    assert (codes.AGENT_ASSEMBLER["code"], codes.AGENT_PERFORMER["code"]) == (
        "assembler",
        "performer",
    )
    assert codes.DATA_ABSENT_NOT_PERFORMED["code"] == "not-performed"
    assert set(codes.DEFACE_DECISIONS) == {"accepted", "face_remains", "brain_damaged"}
    assert codes.DEFACE_QA == {
        "system": CS,
        "code": "deface-qa",
        "display": "Defacing quality assessment of a defaced MR image",
    }
    assert {
        c["code"]
        for c in (
            codes.GENOTYPE_CALL_RATE,
            codes.GENOTYPE_SEX_CHECK,
            codes.GENOTYPE_HETEROZYGOSITY,
            codes.GENOTYPE_RELATEDNESS,
            codes.GENOTYPE_QC_STATUS,
        )
    } == {
        "genotype-call-rate",
        "genotype-sex-check",
        "genotype-heterozygosity",
        "genotype-relatedness",
        "genotype-qc-status",
    }
    # Keys are the sex_status values genotype QC writes.
    assert set(codes.SEX_CHECK_RESULTS) == {
        "ok",
        "mismatch",
        "ambiguous",
        "not reported",
        "not reported, ambiguous",
        "not checkable (no chrX variants)",
        "not checkable (too few chrX SNPs)",
    }
    known = codes.known_codes()
    assert (codes.SNOMED, "4201000179104") in known and (codes.UCUM, "ms") in known
    assert (codes.SNOMED, "12345") not in known


def test_deface_qa_observation():
    obs = deface_qa_observation(
        "08b707153082",
        DECISION,
        patient_ref="Patient/p",
        study_ref="ImagingStudy/s",
        device_ref="Device/d",
    )
    assert obs["valueCodeableConcept"]["coding"][0]["code"] == "deface-accepted"
    assert obs["interpretation"][0]["coding"][0]["code"] == "N"
    probs = {c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"] for c in obs["component"]}
    assert probs == {
        "deface-qa-probability-accepted": 0.9634,
        "deface-qa-probability-brain-damaged": 0.0145,
        "deface-qa-probability-face-remains": 0.0221,
    }
    assert obs["note"][0]["text"] == "Drivers: face_nmi=0.004388."
    assert obs["derivedFrom"] == [{"reference": "ImagingStudy/s"}]
    rejected = deface_qa_observation(
        "08b707153082",
        {
            **DECISION,
            "Decision": "face_remains",
            "Defacer": "quickshear",
            "OutsideAcceptedRange": ["face_ssim"],
        },
        patient_ref="Patient/p",
        study_ref="ImagingStudy/s",
        device_ref="Device/d",
    )
    assert rejected["valueCodeableConcept"]["coding"][0]["code"] == "deface-face-remains"
    assert rejected["interpretation"][0]["coding"][0]["code"] == "A"
    assert rejected["id"] != obs["id"] and "quickshear" in rejected["method"]["text"]
    assert "face_ssim" in rejected["note"][0]["text"]
    with pytest.raises(ValueError, match="unknown defacing-QA decision"):
        deface_qa_observation(
            "x",
            {**DECISION, "Decision": "maybe"},
            patient_ref="Patient/p",
            study_ref="ImagingStudy/s",
            device_ref="Device/d",
        )


def test_genotype_observations_of_a_kept_sample():
    resources = sample_resources(
        KEPT, "a1b2c3d4e5f6", system=SYSTEM, settings=SETTINGS, devices=DEVICES
    )
    pat, obs = resources[0], _by_code(resources[1:])
    assert pat["identifier"] == [{"system": SYSTEM, "value": "a1b2c3d4e5f6"}]
    assert obs["genotype-call-rate"]["valueQuantity"]["value"] == pytest.approx(0.9964209)
    assert obs["genotype-call-rate"]["referenceRange"][0]["low"]["value"] == 0.97
    assert obs["genotype-call-rate"]["device"] == {"reference": "Device/p2"}
    sex = obs["genotype-sex-check"]
    assert sex["valueCodeableConcept"]["coding"][0]["code"] == "sex-check-ok"
    assert sex["device"] == {"reference": "Device/p19"}
    assert [c["code"]["coding"][0]["code"] for c in sex["component"]] == [
        "chrx-inbreeding-f",
        "genetic-sex",
    ]
    assert obs["genotype-heterozygosity"]["valueQuantity"]["value"] == 0.032744
    rel = obs["genotype-relatedness"]
    assert rel["valueBoolean"] is True and rel["interpretation"][0]["coding"][0]["code"] == "N"
    assert rel["component"][1]["valueQuantity"]["value"] == 0.250754
    assert obs["genotype-qc-status"]["valueCodeableConcept"]["coding"][0]["code"] == "qc-kept"
    text = json.dumps(resources)
    assert "DEMO0001" not in text and "DEMO0053" not in text, "sample IDs must stay out"
    assert_valid_fhir(resources)


def test_genotype_observations_of_a_removed_sample():
    resources = sample_resources(
        REMOVED, "0f0f0f0f0f0f", system=SYSTEM, settings=SETTINGS, devices={"plink2": "Device/p2"}
    )
    obs = _by_code(resources[1:])
    assert obs["genotype-call-rate"]["interpretation"][0]["coding"][0]["code"] == "A"
    for code in ("genotype-sex-check", "genotype-heterozygosity", "genotype-relatedness"):
        assert obs[code]["dataAbsentReason"]["coding"][0]["code"] == "not-performed"
        assert not any(k.startswith("value") for k in obs[code])
    assert "device" not in obs["genotype-sex-check"], "plink1.9 did not run"
    status = obs["genotype-qc-status"]
    assert status["valueCodeableConcept"]["coding"][0]["code"] == "qc-removed"
    assert status["note"] == [{"text": "removed at step sample_callrate: sample_missing"}]
    assert_valid_fhir(resources)
    with pytest.raises(ValueError, match="unknown sex-check status"):
        sample_resources(
            {**KEPT, "sex_status": "odd"}, "x", system=SYSTEM, settings=SETTINGS, devices=DEVICES
        )


def test_provenance_identifies_files_config_and_time(monkeypatch):
    # RFC 6920 section 8.1 example: "Hello World!"
    digest = hashlib.sha256(b"Hello World!").hexdigest()
    assert ni_uri(digest) == "ni:///sha-256;f4OxZX_x_FO5LcGBSKHWXfwtSx-j1ncoSt3SABJtkGk"
    with pytest.raises(ValueError):
        ni_uri("abc")
    assert config_sha256({"a": 1, "b": {"c": 2}}) == config_sha256({"b": {"c": 2}, "a": 1})
    upload = {"a": 1, "fhir": {"upload": {"url": "https://x"}}, "stages": {"fhir_upload": True}}
    assert config_sha256(upload) == config_sha256({"a": 1, "fhir": {}, "stages": {}})
    assert config_sha256({"a": 2}) != config_sha256({"a": 1})
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert recorded_now() == "2023-11-14T22:13:20Z"
    inside = file_entity("image", digest, "results/ingest/sub-x/ses-01/anat/x.nii.gz")
    outside = file_entity("defaced", digest, "/data/Mueller_Hans/defaced.nii.gz")
    assert inside["what"]["display"].startswith("results/ingest/sub-x")
    assert "Mueller" not in json.dumps(outside) and outside["what"]["display"].startswith(
        "defaced (SHA-256 "
    )
    pat = patient("p1", SYSTEM)
    prov = provenance(
        ("p1", "01"),
        [pat],
        entities=[inside, inside, outside],
        assembler_ref="Device/c",
        performer_refs=["Device/n"],
        recorded=recorded_now(),
        config_sha256_hex=digest,
    )
    assert prov["target"] == [{"reference": f"Patient/{pat['id']}"}]
    assert prov["policy"] == [ni_uri(digest)] and len(prov["entity"]) == 2
    assert [a["type"]["coding"][0]["code"] for a in prov["agent"]] == ["assembler", "performer"]


def test_transaction_and_the_checks_no_validator_makes(tmp_path):
    pat = patient("p1", SYSTEM)
    bundle = transaction([pat, copy.deepcopy(pat)])
    assert bundle["type"] == "transaction" and len(bundle["entry"]) == 1
    assert bundle["entry"][0]["request"] == {"method": "PUT", "url": f"Patient/{pat['id']}"}
    assert bundle["entry"][0]["fullUrl"] == f"urn:uuid:{pat['id']}"
    with pytest.raises(FhirValidationError, match="two different resources"):
        transaction([pat, {**pat, "identifier": []}])
    assert own_problems(bundle) == []
    resources = sample_resources(
        KEPT, "a1b2c3d4e5f6", system=SYSTEM, settings=SETTINGS, devices=DEVICES
    )
    broken = transaction(resources)
    obs = broken["entry"][1]["resource"]
    obs["valueQuantity"]["code"] = "%"
    problems = own_problems(broken)
    assert any("unknown code http://unitsofmeasure.org|%" in p for p in problems)
    assert any("Device/p2 is not in the bundle" in p for p in problems)
    target = tmp_path / "b.json"
    with pytest.raises(FhirValidationError, match="the bundle is invalid"):
        write_bundle(broken, target, Validators(), tmp_path / "r.json", [])
    assert list(tmp_path.iterdir()) == [], "an invalid bundle writes nothing"


def test_subject_bundle_from_sidecars(tmp_path):
    """A DICOM subject with prediction, model card and one defacing decision: every resource,
    the references between them, and all three validators on the bundle."""
    sidecar = {
        **SIDECAR,
        "Subject": "08b707153082",
        "InputSHA256": "7e" * 32,
        "InputFiles": 112,
        "Software": {"pydicom": "3.0.2", "numpy": "2.3.5"},
    }
    n4 = {
        "Software": {"SimpleITK": "2.5.7", "cohortflow": "0.1.0"},
        "Inputs": {
            "image": {
                "path": "results/ingest/sub-08b707153082/ses-01/anat/"
                "sub-08b707153082_ses-01_FLAIR.nii.gz",
                "sha256": "2b" * 32,
            }
        },
    }
    prediction = {
        "model_id": "cnn-e592cb4f5105fd52",
        "probability": 0.8468,
        "label": "yes",
        "input": {"wm_map": {"path": "results/wm_clusters/x.nii.gz", "sha256": "1d" * 32}},
    }
    card = {"model_id": "cnn-e592cb4f5105fd52", "software": {"torch": "2.13.0+cpu"}}
    files = {}
    for name, record in (
        ("sidecar", sidecar),
        ("n4", n4),
        ("prediction", prediction),
        ("card", card),
        ("decision", DECISION),
    ):
        files[name] = tmp_path / f"{name}.json"
        files[name].write_text(json.dumps(record))
    bundle, notes = subject_bundle(
        "08b707153082",
        ingest_sidecar=files["sidecar"],
        system=SYSTEM,
        config_hex="ab" * 32,
        recorded="2026-11-24T10:00:00Z",
        step_sidecars=[files["n4"]],
        prediction=files["prediction"],
        model_card=files["card"],
        decisions=[files["decision"]],
    )
    assert notes == ["no de-identified DICOM export: series without instance elements"]
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds.count("Observation") == 2 and kinds.count("DiagnosticReport") == 1
    assert kinds[-1] == "Provenance" and kinds[0] == "Patient"
    devices = {
        e["resource"]["deviceName"][0]["name"]: e["resource"]["version"][0]["value"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Device" and "version" in e["resource"]
    }
    assert devices["torch"] == "2.13.0+cpu" and devices["SimpleITK"] == "2.5.7"
    assert devices["cohortflow white-matter abnormality CNN"] == "cnn-e592cb4f5105fd52"
    prov = bundle["entry"][-1]["resource"]
    assert len(prov["target"]) == len(bundle["entry"]) - 1
    displays = [e["what"]["display"] for e in prov["entity"]]
    assert displays[0] == f"ingest source (DICOM, 112 file(s)) (SHA-256 {'7e' * 32})"
    assert any(d.startswith("results/ingest/sub-08b707153082") for d in displays)
    assert bundle_problems(bundle, _full_validators()) == []
    with pytest.raises(Exception, match="not '0000'"):
        subject_bundle(
            "0000",
            ingest_sidecar=files["sidecar"],
            system=SYSTEM,
            config_hex="ab" * 32,
            recorded="2026-11-24T10:00:00Z",
        )
