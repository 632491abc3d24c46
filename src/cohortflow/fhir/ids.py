"""Deterministic resource IDs: the same subject and output give the same ID on every export, so
a re-export updates (PUT) instead of duplicating."""

from __future__ import annotations

import uuid

#: Namespace of every cohortflow FHIR resource ID (uuid5 of the project URL).
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/cohortflow/cohortflow/fhir")


def resource_id(*parts: str) -> str:
    """A UUIDv5 from the parts (e.g. pseudonym, output kind, file name): a valid FHIR id."""
    if not parts or any(not str(p) for p in parts):
        raise ValueError("resource_id needs non-empty parts")
    return str(uuid.uuid5(NAMESPACE, "/".join(str(p) for p in parts)))
