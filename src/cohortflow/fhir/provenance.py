"""The Provenance of an exported bundle, collected from the sidecars (never re-derived).

* ``target``: every other resource of the bundle;
* ``entity`` (role ``source``): each input file with its SHA-256, as recorded by the step that
  read it, identified by an RFC 6920 ``ni:///sha-256;…`` URI with the hex digest in the display.
  Files inside the run (``results/``, ``resources/``) are named by their path, which carries
  pseudonyms only; anything else (the raw source, an external defacer's file) by its role only,
  because source paths may hold names;
* ``agent``: cohortflow as ``assembler`` and every other package or program with its version as
  ``performer``, each a Device in the bundle;
* ``recorded``: the export time in UTC, or ``$SOURCE_DATE_EPOCH`` when set (reproducible
  re-exports); ``policy``: the ``ni`` URI of the run's validated configuration, so a reviewer
  can tell which settings produced the numbers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from datetime import UTC, datetime
from typing import Any

from cohortflow.fhir import codes
from cohortflow.fhir.ids import resource_id

_HEX64 = re.compile(r"[0-9a-f]{64}")
RUN_PREFIXES = ("results/", "resources/")


def ni_uri(sha256_hex: str) -> str:
    """RFC 6920 name of a SHA-256 digest: ``ni:///sha-256;<base64url, no padding>``."""
    if not _HEX64.fullmatch(sha256_hex):
        raise ValueError(f"not a SHA-256 hex digest: {sha256_hex!r}")
    b64 = base64.urlsafe_b64encode(bytes.fromhex(sha256_hex)).decode().rstrip("=")
    return f"ni:///sha-256;{b64}"


#: Settings that do not change any result: where and whether bundles are uploaded.
NOT_RESULTS = (("stages", "fhir_upload"), ("fhir", "upload"))


def config_sha256(config: dict[str, Any], ignore: tuple[tuple[str, ...], ...] = NOT_RESULTS) -> str:
    """SHA-256 of the configuration as canonical JSON (sorted keys, no whitespace), without
    the ``ignore`` keys (default: the upload settings, so that uploading does not re-export)."""
    config = json.loads(json.dumps(config, default=str))
    for path in ignore:
        node = config
        for key in path[:-1]:
            node = node.get(key, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(path[-1], None)
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def recorded_now() -> str:
    """An instant with time zone: ``$SOURCE_DATE_EPOCH`` if set, else now (UTC)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = datetime.fromtimestamp(int(epoch), UTC) if epoch else datetime.now(UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def file_entity(label: str, sha256_hex: str, path: str | None = None) -> dict[str, Any]:
    """A source entity; ``path`` is shown only when it lies inside the run's folders."""
    shown = path if path and path.startswith(RUN_PREFIXES) and ".." not in path else label
    return {
        "role": "source",
        "what": {
            "identifier": {"system": codes.RFC3986, "value": ni_uri(sha256_hex)},
            "display": f"{shown} (SHA-256 {sha256_hex})",
        },
    }


def sidecar_entities(sidecar: dict[str, Any]) -> list[dict[str, Any]]:
    """Entities for the ``Inputs`` record (name → {path, sha256}) of a sidecar."""
    return [
        file_entity(name, item["sha256"], item.get("path"))
        for name, item in sorted((sidecar.get("Inputs") or sidecar.get("input") or {}).items())
        if isinstance(item, dict) and item.get("sha256")
    ]


def provenance(
    id_parts: tuple[str, ...],
    targets: list[dict[str, Any]],
    *,
    entities: list[dict[str, Any]],
    assembler_ref: str,
    performer_refs: list[str],
    recorded: str,
    config_sha256_hex: str,
    workflow_commit: str | None = None,
) -> dict[str, Any]:
    """``policy``: the validated config's hash and, when known, the workflow's git commit
    (``urn:cohortflow:git:<sha>``): together they say which plan made the targets."""
    unique: dict[str, dict[str, Any]] = {}
    for entity in entities:
        unique.setdefault(entity["what"]["display"], entity)
    return {
        "resourceType": "Provenance",
        "id": resource_id(*id_parts, "Provenance"),
        "target": [{"reference": f"{r['resourceType']}/{r['id']}"} for r in targets],
        "recorded": recorded,
        "policy": [ni_uri(config_sha256_hex)]
        + ([f"urn:cohortflow:git:{workflow_commit}"] if workflow_commit else []),
        "activity": {"coding": [dict(codes.ACTIVITY_CREATE)]},
        "agent": [
            {"type": {"coding": [dict(codes.AGENT_ASSEMBLER)]}, "who": {"reference": assembler_ref}}
        ]
        + [
            {"type": {"coding": [dict(codes.AGENT_PERFORMER)]}, "who": {"reference": ref}}
            for ref in performer_refs
        ],
        "entity": list(unique.values()),
    }
