"""Keyed pseudonyms for subject IDs and DICOM UIDs (HMAC-SHA256).

The key is a secret that never lives in the config or in git. It is read, in this order, from
``$COHORTFLOW_PSEUDONYM_KEY`` (the key itself), or ``$COHORTFLOW_PSEUDONYM_KEY_FILE`` (a file
outside the repository holding it). The built-in demo cohort may use :data:`DEMO_KEY`, a
documented, public key: pseudonyms made with it protect nothing and are marked as such.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cohortflow.errors import ConfigError

#: Public key for the synthetic demo cohort only. Anyone can recompute its pseudonyms.
DEMO_KEY = b"cohortflow-demo-key-not-secret"
KEY_ENV = "COHORTFLOW_PSEUDONYM_KEY"
KEY_FILE_ENV = "COHORTFLOW_PSEUDONYM_KEY_FILE"
MIN_KEY_BYTES = 16
#: Hex characters of the HMAC kept in a subject label: 48 bits, so collisions in a cohort of
#: 100,000 subjects have a probability below 2e-5 (and are detected, see make_subject_map).
LABEL_HEX = 12


@dataclass(frozen=True)
class PseudonymKey:
    secret: bytes
    source: str  # "env", "file:<path>" or "demo": recorded in provenance, never the secret

    @property
    def is_demo(self) -> bool:
        return self.source == "demo"


def load_key(*, allow_demo_key: bool, repository: Path | None = None) -> PseudonymKey:
    """Find the pseudonymisation key (see module doc); refuse a key file inside the repository."""
    value = os.environ.get(KEY_ENV)
    if value:
        secret = value.encode()
        source = "env"
    elif os.environ.get(KEY_FILE_ENV):
        path = Path(os.environ[KEY_FILE_ENV]).expanduser().resolve()
        if repository is not None and path.is_relative_to(Path(repository).resolve()):
            raise ConfigError(
                f"{KEY_FILE_ENV}={path}: the pseudonymisation key file lies inside the "
                "repository; keep it outside, where git cannot pick it up"
            )
        try:
            secret = path.read_bytes().strip()
        except OSError as exc:
            raise ConfigError(f"{KEY_FILE_ENV}={path}: cannot read the key file ({exc})") from exc
        source = f"file:{path}"
    elif allow_demo_key:
        return PseudonymKey(DEMO_KEY, "demo")
    else:
        raise ConfigError(
            f"no pseudonymisation key: set {KEY_ENV} or {KEY_FILE_ENV} (a file outside the "
            "repository); config key pseudonymise.allow_demo_key lets only the demo cohort run "
            "with the public demo key"
        )
    if len(secret) < MIN_KEY_BYTES:
        raise ConfigError(
            f"pseudonymisation key from {source} has {len(secret)} bytes; at least "
            f"{MIN_KEY_BYTES} are required"
        )
    return PseudonymKey(secret, source)


def _digest(key: PseudonymKey, domain: str, value: str) -> bytes:
    # The domain separates subject labels from UIDs made with the same key.
    return hmac.new(key.secret, f"{domain}\x00{value}".encode(), hashlib.sha256).digest()


def subject_label(key: PseudonymKey, subject_id: str) -> str:
    """BIDS-safe subject label (lower-case hex) for a sample-sheet subject ID."""
    return _digest(key, "subject", subject_id).hex()[:LABEL_HEX]


def remap_uid(key: PseudonymKey, uid: str) -> str:
    """A new, stable DICOM UID for an original one: ``2.25.<128-bit integer>`` (PS3.5 B.2)."""
    value = int.from_bytes(_digest(key, "uid", uid)[:16], "big")
    return f"2.25.{value}"


def make_subject_map(key: PseudonymKey, subject_ids: list[str]) -> dict[str, str]:
    """Sheet subject ID -> label; raises if two subjects would share a label."""
    labels: dict[str, str] = {}
    seen: dict[str, str] = {}
    for sid in subject_ids:
        label = subject_label(key, sid)
        if label in seen and seen[label] != sid:
            raise ConfigError(f"pseudonym collision between two subjects (label {label})")
        seen[label] = sid
        labels[sid] = label
    return labels


def key_fingerprint(key: PseudonymKey) -> str:
    """A short, non-secret name of the key (HMAC of a constant): lets a job check that it
    pseudonymises with the same key as the workflow that planned it."""
    return _digest(key, "fingerprint", "cohortflow").hex()[:16]


def load_job_key(*, allow_demo_key: bool, fingerprint: str) -> PseudonymKey:
    """The key inside a job, refused unless it is the key the DAG was built with.

    On a cluster, a job may not inherit the environment of the submitting shell; without this
    check it could fall back to the demo key and remap UIDs with a public key.
    """
    key = load_key(allow_demo_key=allow_demo_key)
    if key_fingerprint(key) != fingerprint:
        raise ConfigError(
            f"this job's pseudonymisation key (from {key.source.split(':')[0]}) is not the key "
            f"the workflow was started with: pass {KEY_ENV} or {KEY_FILE_ENV} to every job "
            "(e.g. the Slurm profile's envvars)"
        )
    return key


#: Where the fingerprint of the key that wrote ``results/`` is kept (results/ is the argument).
KEY_RECORD = "provenance/pseudonym_key.json"


def check_key_record(results: str | Path, fingerprint: str) -> None:
    """Refuse to run on a ``results/`` folder written with another key (before any job).

    Pseudonyms of two keys cannot be told apart: outputs of the old key would stay beside the
    new ones and be counted as this run's, and one person could appear under two labels.
    """
    record = Path(results) / KEY_RECORD
    try:
        written = json.loads(record.read_text())["fingerprint"]
    except FileNotFoundError:
        return
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{record}: unreadable key record ({exc}); move or delete it") from None
    if written != fingerprint:
        raise ConfigError(
            f"{Path(results)}/ was written with another pseudonymisation key (fingerprint "
            f"{written}; this run's key has {fingerprint}). Pseudonyms of the two keys must not "
            f"mix: move or delete the old {Path(results)}/ folder, or run with the key that "
            "wrote it"
        )


def write_key_record(results: str | Path, fingerprint: str, *, demo: bool) -> None:
    """Record the key's fingerprint (never the key) with the results."""
    from cohortflow.io.atomic import write_json

    record = Path(results) / KEY_RECORD
    if not record.exists():
        record.parent.mkdir(parents=True, exist_ok=True)
        write_json(record, {"fingerprint": fingerprint, "demo_key": demo})
