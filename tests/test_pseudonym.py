"""Keyed pseudonyms: secret from the environment only, stable, BIDS-safe, collision-checked."""

from __future__ import annotations

import re

import pytest

from cohortflow.errors import ConfigError
from cohortflow.privacy.pseudonym import (
    DEMO_KEY,
    KEY_ENV,
    KEY_FILE_ENV,
    PseudonymKey,
    load_key,
    remap_uid,
    subject_label,
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)


def test_key_from_env(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "a-secret-of-enough-length")
    key = load_key(allow_demo_key=False)
    assert key.source == "env" and not key.is_demo


def test_key_file_outside_repo_only(monkeypatch, tmp_path, repo):
    outside = tmp_path / "key"
    outside.write_text("another-secret-of-enough-length\n")
    monkeypatch.setenv(KEY_FILE_ENV, str(outside))
    assert load_key(allow_demo_key=False, repository=repo).secret.startswith(b"another")
    monkeypatch.setenv(KEY_FILE_ENV, str(repo / "README.md"))
    with pytest.raises(ConfigError, match="inside the repository"):
        load_key(allow_demo_key=False, repository=repo)


def test_no_key_is_an_error_unless_demo_allowed():
    with pytest.raises(ConfigError, match=KEY_ENV):
        load_key(allow_demo_key=False)
    assert load_key(allow_demo_key=True).is_demo


def test_short_key_refused(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "short")
    with pytest.raises(ConfigError, match="at least"):
        load_key(allow_demo_key=False)


def test_labels_are_stable_keyed_and_bids_safe():
    demo = PseudonymKey(DEMO_KEY, "demo")
    other = PseudonymKey(b"x" * 32, "env")
    a = subject_label(demo, "PID123")
    assert a == subject_label(demo, "PID123")
    assert a != subject_label(other, "PID123")
    assert a != subject_label(demo, "PID124")
    assert re.fullmatch(r"[0-9a-f]{12}", a)


def test_uid_remap_is_valid_and_stable():
    key = PseudonymKey(b"y" * 32, "env")
    uid = remap_uid(key, "1.2.840.113619.2.55.3.1234")
    assert uid == remap_uid(key, "1.2.840.113619.2.55.3.1234")
    assert uid.startswith("2.25.") and len(uid) <= 64
    assert re.fullmatch(r"2\.25\.[1-9][0-9]*", uid)


def test_job_refuses_a_key_other_than_the_dags(monkeypatch):
    from cohortflow.privacy.pseudonym import key_fingerprint, load_job_key

    monkeypatch.setenv(KEY_ENV, "the-real-secret-key-of-the-run")
    fingerprint = key_fingerprint(load_key(allow_demo_key=False))
    assert load_job_key(allow_demo_key=True, fingerprint=fingerprint).source == "env"
    monkeypatch.delenv(KEY_ENV)  # a cluster job that did not inherit the environment
    with pytest.raises(ConfigError, match="not the key the workflow was started with"):
        load_job_key(allow_demo_key=True, fingerprint=fingerprint)
