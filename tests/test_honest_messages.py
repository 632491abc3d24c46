"""Honest messages (issue 29, point 3): "a bug" is said only for a bug.

A full disk, a permission denied, running out of memory, an empty or unreadable sample sheet
and a source path with characters Snakemake treats as wildcards are the world's doing: each is
one line naming what and where, never a traceback asking for a bug report.
"""

from __future__ import annotations

import errno
from pathlib import Path

import pandas as pd
import pytest

from cohortflow.cohort import Cohort
from cohortflow.config import read_sample_sheet
from cohortflow.errors import ConfigError
from cohortflow.io.atomic import atomic_output_file
from cohortflow.logutil import job_logging
from cohortflow.privacy.pseudonym import PseudonymKey

SHEET_SCHEMA = "workflow/schemas/samples.schema.yaml"


def _log_of(tmp_path, monkeypatch, action) -> str:
    monkeypatch.chdir(tmp_path)
    log = tmp_path / "logs" / "job.log"
    with pytest.raises(SystemExit) as ended, job_logging(log, "test"):
        action()
    assert ended.value.code == 1
    return log.read_text()


def test_disk_full_names_the_output(tmp_path, monkeypatch):
    def write_to_a_full_disk():
        with (
            atomic_output_file("results/ingest/img.nii.gz") as tmp,
            Path("/dev/full").open("wb") as full,
        ):
            tmp.write_bytes(b"partial")
            full.write(b"x" * 8192)
            full.flush()  # ENOSPC, naming no file

    text = _log_of(tmp_path, monkeypatch, write_to_a_full_disk)
    assert "results/ingest/img.nii.gz: no space left on the device" in text and "ENOSPC" in text
    assert "a bug" not in text and "Traceback" not in text
    assert len(text.strip().splitlines()) == 1
    assert not list((tmp_path / "results" / "ingest").iterdir())  # nothing half-written


def test_permission_denied_outside_the_working_folder_names_no_path(tmp_path, monkeypatch):
    def denied():
        raise PermissionError(errno.EACCES, "Permission denied", "/data/Mueller_Juergen/IM1")

    text = _log_of(tmp_path, monkeypatch, denied)
    assert "permission denied" in text and "EACCES" in text and "a bug" not in text
    assert "Mueller" not in text and "outside the working folder" in text


def test_out_of_memory_is_not_a_bug(tmp_path, monkeypatch):
    def exhausted():
        raise MemoryError

    text = _log_of(tmp_path, monkeypatch, exhausted)
    assert "out of memory" in text and "mem_mb" in text
    assert "a bug" not in text and "Traceback" not in text


def test_a_real_bug_is_still_called_one(tmp_path, monkeypatch):
    def bug():
        raise KeyError("oops")

    text = _log_of(tmp_path, monkeypatch, bug)
    assert "a bug" in text and "Traceback" in text


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "the file is empty (0 bytes)"),
        (b"\n\n\n", "no header line"),
        (b"\xff\xfe\x00\x81garbage\x00", "not a readable TSV file"),
    ],
)
def test_empty_or_unreadable_sheet_is_one_line(repo, tmp_path, content, expected):
    sheet = tmp_path / "samples.tsv"
    sheet.write_bytes(content)
    with pytest.raises(ConfigError) as err:
        read_sample_sheet(sheet, repo / SHEET_SCHEMA)
    assert expected in str(err.value) and str(sheet) in str(err.value)


def test_sheet_that_cannot_be_read(repo, tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="a folder, not a TSV file"):
        read_sample_sheet(tmp_path, repo / SHEET_SCHEMA)
    sheet = tmp_path / "samples.tsv"
    sheet.write_text("subject\tsession\tsource\nA\t01\t/x\n")

    def denied(*args, **kwargs):  # the tests run as root, for whom chmod 000 changes nothing
        raise PermissionError(errno.EACCES, "Permission denied", str(sheet))

    monkeypatch.setattr(pd, "read_csv", denied)
    with pytest.raises(ConfigError, match=r"cannot be read \(Permission denied"):
        read_sample_sheet(sheet, repo / SHEET_SCHEMA)


def test_braces_in_a_source_path_are_not_wildcards(repo, tmp_path):
    braced = tmp_path / "scan{2024}"
    braced.mkdir()
    plain = tmp_path / "plain"
    plain.mkdir()
    sheet = pd.DataFrame(
        {"subject": ["A1", "B2"], "session": ["01", "01"], "source": [str(braced), str(plain)]}
    )
    for column in ("label", "dataset", "protocol", "defaced", "defacer"):
        sheet[column] = ""
    cohort = Cohort(sheet, PseudonymKey(b"brace-test-key-0123456789abcdef", "env"))
    first, second = cohort.rows
    assert cohort.source_input(first.label, "01") == []  # read from params, not tracked
    assert cohort.source_input(second.label, "01") == [str(plain)]
    (warning,) = cohort.untracked_sources()
    assert warning.startswith("sample sheet row 1: its source path contains '{' or '}'")
