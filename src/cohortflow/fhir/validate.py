"""Validation of FHIR R4 resources and bundles: an invalid bundle is an error, never a warning.

No single validator catches everything, so three independent checks are combined:

* :func:`schema_problems` — the official R4 JSON schema (draft-06). Each resource is validated
  against its own definition (``#/definitions/<type>``), the Bundle envelope separately with
  entry resources opened up, because validating a Bundle through the schema's 146-way
  ``oneOf`` gives one uninformative error. The schema checks unknown elements, FHIR-core code
  enums (status, Bundle.type, request.method), id/dateTime/instant patterns and required
  *complex* elements, but not required primitive elements (they may be given as ``_x``).
* :func:`model_problems` — fhir.resources R4B models (there is no plain R4 package; for the
  resources exported here the two agree). They check required elements including primitives,
  value types, choice-type exclusivity and timezone-less times, but no code enums.
* :func:`profile_problems` — the MII profiles with Medplum's validator
  (``medplum-validate.mjs`` shipped beside the FHIR test server): cardinalities, slices, fixed
  codes. It only checks profiles a resource claims in ``meta.profile``, and only for single
  resources (a Bundle file is checked against base R4), so entries are validated one by one.

Each returns a list of problem strings (empty = valid) naming the resource and the path.
"""

from __future__ import annotations

import copy
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft6Validator

from cohortflow.errors import CohortflowError


class FhirValidationError(CohortflowError):
    """A resource or bundle failed validation; the message lists every problem."""


def _label(resource: dict[str, Any]) -> str:
    return f"{resource.get('resourceType', '?')}/{resource.get('id', '?')}"


@cache
def _schema(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


@cache
def _validator(path: str, resource_type: str) -> Draft6Validator:
    definitions = _schema(path)["definitions"]
    if resource_type not in definitions or "resourceType" not in definitions[resource_type].get(
        "properties", {}
    ):
        raise FhirValidationError(f"{resource_type}: not an R4 resource type")
    if resource_type == "Bundle":
        definitions = copy.deepcopy(definitions)
        definitions["Bundle_Entry"]["properties"]["resource"] = {"type": "object"}
    return Draft6Validator({"$ref": f"#/definitions/{resource_type}", "definitions": definitions})


def schema_problems(resource: dict[str, Any], schema_path: str | Path) -> list[str]:
    """R4 JSON schema problems of one resource; a Bundle's entries are checked one by one."""
    label = _label(resource)
    try:
        validator = _validator(str(schema_path), str(resource.get("resourceType")))
    except FhirValidationError as exc:
        return [f"{label}: {exc}"]
    problems = [
        f"{label}: {'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in sorted(validator.iter_errors(resource), key=lambda e: list(map(str, e.path)))
    ]
    if resource.get("resourceType") == "Bundle":
        for i, entry in enumerate(resource.get("entry", [])):
            if "resource" in entry:
                problems += [
                    f"entry[{i}] {p}" for p in schema_problems(entry["resource"], schema_path)
                ]
    return problems


def model_problems(resource: dict[str, Any]) -> list[str]:
    """Problems found by parsing with the fhir.resources R4B model of the resource's type."""
    from fhir.resources.R4B import get_fhir_model_class
    from pydantic import ValidationError

    label = _label(resource)
    try:
        model = get_fhir_model_class(str(resource.get("resourceType")))
    except (KeyError, ValueError) as exc:
        return [f"{label}: unknown resource type ({exc})"]
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        return [
            f"{label}: {'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors()
        ]
    return []


def medplum_cache() -> Path:
    """Where the FHIR test server's start.sh keeps its npm packages (the same rule as start.sh)."""
    if os.environ.get("FHIR_TEST_SERVER_CACHE"):
        return Path(os.environ["FHIR_TEST_SERVER_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fhir-test-server"


def medplum_modules(server_dir: str | Path | None = None) -> Path | None:
    """The folder holding the Medplum validator's ``node_modules``; with ``server_dir`` (the
    folder of start.sh and package.json) they are installed there first if missing, as start.sh
    does (``npm install``, which works offline from npm's cache)."""
    cache = Path(os.environ.get("MEDPLUM_NODE_MODULES") or medplum_cache())
    marker = cache / "node_modules" / "@medplum" / "fhir-router" / "package.json"
    if not marker.is_file() and server_dir is not None and shutil.which("npm"):
        cache.mkdir(parents=True, exist_ok=True)
        # Parallel jobs share the cache: one installs, the others wait for it.
        with (cache / ".install.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not marker.is_file():
                shutil.copy(Path(server_dir) / "package.json", cache / "package.json")
                subprocess.run(
                    ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
                    cwd=cache, capture_output=True, text=True, check=False,
                )  # fmt: skip
    return cache.resolve() if marker.is_file() else None


def profile_problems(
    resources: list[dict[str, Any]],
    validator_script: str | Path,
    profiles: str | Path | None,
    modules: str | Path | None = None,
) -> list[str]:
    """Medplum's validator on each resource (base R4 + every profile in ``meta.profile`` found
    in ``profiles``; base R4 only without it). ``modules``: the validator's
    MEDPLUM_NODE_MODULES (default: found or installed beside the script, see
    :func:`medplum_modules`).

    Raises :class:`FhirValidationError` when node or the validator's modules are missing: a
    check that cannot run must not look like a pass."""
    node = shutil.which("node")
    modules = Path(modules) if modules else medplum_modules(Path(validator_script).parent)
    if node is None or modules is None:
        raise FhirValidationError(
            "the MII profile check needs node and the Medplum validator's node_modules "
            "(run ../shared/fhir/server/start.sh once, or set MEDPLUM_NODE_MODULES)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i, resource in enumerate(resources):
            path = Path(tmp) / f"{i:04d}_{resource.get('resourceType', 'x')}.json"
            path.write_text(json.dumps(resource))
            files.append(path)
        folder = str(Path(profiles).resolve()) if profiles else "-"
        command = [node, str(Path(validator_script).resolve()), folder]
        result = subprocess.run(
            [*command, *map(str, files)],
            capture_output=True,
            text=True,
            cwd=Path(validator_script).parent,
            env={**os.environ, "MEDPLUM_NODE_MODULES": str(modules)},
            check=False,
        )
    labels = {f.name: _label(r) for f, r in zip(files, resources, strict=True)}
    problems, current = [], None
    for line in result.stdout.splitlines():
        if " :: " in line:
            name, target, _ = line.split(" :: ", 2)
            current = f"{labels.get(name, name)} [{target}]"
        elif line.strip().startswith("[error]") or line.strip().startswith("[fatal]"):
            problems.append(f"{current}: {line.strip()}")
    if result.returncode != 0 and not problems:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        problems.append(f"medplum-validate failed (exit {result.returncode}): {tail[0]}")
    return problems
