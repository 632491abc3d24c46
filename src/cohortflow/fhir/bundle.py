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
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cohortflow.fhir import codes
from cohortflow.fhir.findings import obs7_problems
from cohortflow.fhir.imaging import mr_extension_problems
from cohortflow.fhir.validate import (
    FhirValidationError,
    model_problems,
    profile_problems,
    schema_problems,
)
from cohortflow.io.atomic import write_json, write_text


@dataclass(frozen=True)
class Validators:
    """Where the validators' material lives (config ``fhir.validation``); None skips one, and
    the record says so."""

    schema: Path | None = None
    profiles: Path | None = None
    validator: Path | None = None

    @classmethod
    def from_config(cls, section: dict[str, Any]) -> Validators:
        paths = {
            k: Path(section[k]) if section.get(k) else None
            for k in ("schema", "profiles", "validator")
        }
        for key, path in paths.items():
            if path is not None and not path.exists():
                raise FhirValidationError(f"fhir.validation.{key}: {path} does not exist")
        if (paths["profiles"] is None) != (paths["validator"] is None):
            raise FhirValidationError(
                "fhir.validation: profiles and validator go together (both or neither)"
            )
        return cls(**paths)

    def names(self) -> list[str]:
        ran = [
            "fhir.resources R4B models",
            "cohortflow checks (obs-7, MR extension, codes, references)",
        ]
        if self.schema:
            ran.append(f"R4 JSON schema ({self.schema.name})")
        if self.profiles:
            ran.append(f"MII profiles ({self.profiles}) with {self.validator.name}")
        return ran


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
    if validators.profiles:
        owner: dict[str, list[int]] = {}
        unique: dict[str, dict[str, Any]] = {}
        for i, bundle in enumerate(bundles):
            for entry in bundle.get("entry", []):
                label = reference(entry["resource"])
                owner.setdefault(label, []).append(i)
                unique.setdefault(label, entry["resource"])
        labels = list(unique)
        problems = profile_problems(
            list(unique.values()), validators.validator, validators.profiles
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
