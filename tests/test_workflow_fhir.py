"""The FHIR export of the demo run through Snakemake: a valid bundle per demo subject, the
upload rule against a real FHIR server (Medplum's engine validating every write against R4 and
the MII profiles), search back, idempotent re-upload, and an invalid bundle rejected whole."""

from __future__ import annotations

import copy
import json
import os
import urllib.error
import urllib.request
import uuid

import pandas as pd
import pytest
from conftest import FHIR_PROFILES, FHIR_SCHEMA, FHIR_VALIDATOR, REPO, TEST_KEY, snakemake

from cohortflow.fhir.bundle import Validators, bundles_problems
from cohortflow.fhir.upload import UploadSettings, post_bundle

pytestmark = pytest.mark.slow

SYSTEM = "urn:cohortflow:demo:pseudonym"  # config/config.yaml
TYPES = ("Patient", "ImagingStudy", "Device", "Observation", "DiagnosticReport", "Provenance")


def _bundle(run, pseudonym):
    return (
        run.workdir / f"results/fhir/sub-{pseudonym}/ses-01/fhir/sub-{pseudonym}_ses-01_bundle.json"
    )


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _counts(base):
    return {t: _get(f"{base}/{t}?_summary=count")[1]["total"] for t in TYPES}


def test_every_demo_subject_gets_a_valid_bundle(demo_run):
    assert demo_run.step3_returncode == 0, demo_run.step3_output[-3000:]
    bundles = []
    for pseudonym in demo_run.good.values():
        path = _bundle(demo_run, pseudonym)
        assert path.is_file(), f"no bundle for {pseudonym}"
        bundle = json.loads(path.read_text())
        bundles.append(bundle)
        record = json.loads(path.with_name(path.name.replace("bundle", "validation")).read_text())
        assert record["problems"] == [] and record["entries"] == len(bundle["entry"])
        if FHIR_SCHEMA.is_file():
            assert any(v.startswith("MII profiles") for v in record["validators"])
            assert any(v.startswith("R4 JSON schema") for v in record["validators"])
        resources = [e["resource"] for e in bundle["entry"]]
        kinds = [r["resourceType"] for r in resources]
        assert kinds.count("Patient") == 1 and kinds.count("ImagingStudy") == 1
        assert kinds.count("DiagnosticReport") == 1 and kinds[-1] == "Provenance"
        assert resources[0]["identifier"] == [{"system": SYSTEM, "value": pseudonym}]
        sidecar = json.loads(
            next(
                (demo_run.workdir / f"results/ingest/sub-{pseudonym}").rglob("*_FLAIR.json")
            ).read_text()
        )
        study = resources[kinds.index("ImagingStudy")]
        if sidecar["SourceFormat"] == "DICOM":
            series = study["series"][0]
            assert len(series["instance"]) == sidecar["NumberOfInstances"]
            assert series["uid"] == sidecar["SeriesInstanceUID"]
        observations = [r for r in resources if r["resourceType"] == "Observation"]
        codes = sorted(o["code"]["coding"][0]["code"] for o in observations)
        n_defacers = 2 if sidecar["SourceFormat"] == "NIfTI" else 1  # + the external defacer
        assert codes == ["deface-qa"] * n_defacers + ["wm-abnormality"]
        prov = resources[-1]
        assert {t["reference"] for t in prov["target"]} == {
            f"{r['resourceType']}/{r['id']}" for r in resources[:-1]
        }
        assert prov["entity"][0]["what"]["display"].endswith(f"(SHA-256 {sidecar['InputSHA256']})")
    # The refused subjects stop before the export.
    for pseudonym, _ in demo_run.bad.values():
        assert not _bundle(demo_run, pseudonym).exists()
    if FHIR_SCHEMA.is_file():
        validators = Validators(FHIR_SCHEMA, FHIR_PROFILES, FHIR_VALIDATOR)
        assert bundles_problems(bundles, validators) == [[]] * len(bundles)


def test_upload_search_reupload_and_invalid_bundle(demo_run, fhir_server, tmp_path):
    work = demo_run.workdir
    upload = work / "upload.yaml"
    upload.write_text(
        f"stages: {{fhir_upload: true}}\nfhir: {{upload: {{url: '{fhir_server}', "
        "retries: 1, backoff_s: 0.5}}\n"
    )
    env = {**os.environ, "COHORTFLOW_PSEUDONYM_KEY": TEST_KEY, "COHORTFLOW_FHIR_TOKEN": "tok-x1"}
    target = "results/fhir/upload/outcomes.tsv"
    args = (target, "--configfile", str(work / "config.yaml"), str(upload))
    result = snakemake(REPO, work, *args, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "fhir_subject" not in result.stdout + result.stderr, "upload must not re-export"
    outcomes = pd.read_csv(work / target, sep="\t")
    assert len(outcomes) == len(demo_run.good) + len(demo_run.flagged)
    assert (outcomes.result == "ok").all() and (outcomes.http_status == 200).all()
    assert "tok-x1" not in (work / "logs/fhir/upload.log").read_text()
    # Read back by search: one Patient per pseudonym, its study, report and observations.
    for pseudonym in demo_run.good.values():
        bundle = json.loads(_bundle(demo_run, pseudonym).read_text())
        status, found = _get(f"{fhir_server}/Patient?identifier={SYSTEM}|{pseudonym}")
        assert status == 200 and len(found.get("entry", [])) == 1, (pseudonym, found)
        patient_id = found["entry"][0]["resource"]["id"]
        assert patient_id == bundle["entry"][0]["resource"]["id"]
        for kind in ("ImagingStudy", "DiagnosticReport", "Observation"):
            _, hits = _get(f"{fhir_server}/{kind}?subject=Patient/{patient_id}")
            expected = sum(e["resource"]["resourceType"] == kind for e in bundle["entry"])
            assert len(hits.get("entry", [])) == expected, (pseudonym, kind)
    before = _counts(fhir_server)
    assert before["Patient"] >= len(demo_run.good)
    # Re-upload: same ids, PUT → updates, no duplicates.
    again = snakemake(REPO, work, *args, "--forcerun", "fhir_upload", env=env)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert (pd.read_csv(work / target, sep="\t").result == "ok").all()
    assert _counts(fhir_server) == before
    # An invalid bundle (a new valid Patient, and a report without its ImagingStudy) is
    # rejected whole: HTTP 400, the OperationOutcome names the problem, nothing is written.
    bundle = json.loads(_bundle(demo_run, next(iter(demo_run.good.values()))).read_text())
    broken = copy.deepcopy(bundle)
    new_patient = copy.deepcopy(broken["entry"][0])
    new_id = str(uuid.uuid4())
    new_patient["resource"]["id"] = new_id
    new_patient["resource"]["identifier"][0]["value"] = "not-uploaded"
    new_patient["fullUrl"] = f"urn:uuid:{new_id}"
    new_patient["request"]["url"] = f"Patient/{new_id}"
    broken["entry"].insert(0, new_patient)
    report = next(
        e["resource"]
        for e in broken["entry"]
        if e["resource"]["resourceType"] == "DiagnosticReport"
    )
    del report["imagingStudy"]
    outcome = post_bundle("broken", broken, UploadSettings(url=fhir_server, retries=0))
    assert outcome.result == "failed" and outcome.http_status == 400 and outcome.attempts == 1
    assert outcome.response["resourceType"] == "OperationOutcome"
    assert "DiagnosticReport.imagingStudy" in json.dumps(outcome.response)
    assert _get(f"{fhir_server}/Patient/{new_id}")[0] == 404
    assert _counts(fhir_server) == before
