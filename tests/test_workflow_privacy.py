"""Privacy through Snakemake: hostile DICOM in, no planted value in any file the run writes.

A cohort of hostile series (tests/hostile_dicom.py: a surname typed into descriptions, its
transliteration, the site's subject code, dates in other notations, a coil name and a private
note) goes through ingest, the de-identified DICOM export and the FHIR bundles with
``--keep-going``. Beside them: a series that mixes two patients' slices, and a second sheet row
whose folder is a copy of the first's. Every file under results/, logs/ and benchmarks/ (gzip
members unpacked) is searched for every planted value and every sheet subject ID.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess

import pytest
from conftest import REPO, TEST_KEY, fhir_config_yaml, snakemake_command
from hostile_dicom import PLANTED, hostile_header, write_hostile_series

from cohortflow.paths import bids, subject_log
from cohortflow.privacy.pseudonym import PseudonymKey, subject_label

pytestmark = pytest.mark.slow

SHEET_IDS = {"good": "XJ4412", "other": "KLH-2231-Z", "mixed": "MIXED-0815", "copy": "COPY-4711"}


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("hostile")
    sources = work / "sources"
    write_hostile_series(sources / "good", seed=1)
    write_hostile_series(
        sources / "other",
        seed=2,
        header=hostile_header(
            PatientName="Schmidt-Hagen^Karl", PatientID="KLH-2231-Z", PatientBirthDate="19750412"
        ),
    )
    write_hostile_series(
        sources / "mixed", seed=3, per_slice={k: {"PatientID": "OTHER-99"} for k in range(6, 12)}
    )
    shutil.copytree(sources / "good", sources / "copy")
    rows = [(SHEET_IDS[name], sources / name) for name in ("good", "other", "mixed", "copy")]
    (work / "samples.tsv").write_text(
        "subject\tsession\tsource\n" + "".join(f"{sid}\t01\t{src}\n" for sid, src in rows)
    )
    (work / "config.yaml").write_text(
        "samples: samples.tsv\ndemo:\n  genotypes: false\npseudonymise:\n  allow_demo_key: false\n"
        "ingest:\n  export_dicom: true\nstages:\n  ingest: true\n  preprocess: false\n"
        "  wm_clusters: false\n  classify: false\n  deface: false\n  deface_qa: false\n"
        "  genotype_qc: false\n  association: false\n  fhir: true\n  fhir_upload: false\n"
        + fhir_config_yaml()
    )
    env = {**os.environ, "COHORTFLOW_PSEUDONYM_KEY": TEST_KEY}
    env.pop("COHORTFLOW_PSEUDONYM_KEY_FILE", None)
    cmd = snakemake_command(REPO, work, "--configfile", str(work / "config.yaml"), "--keep-going")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    # A cohort-level step waits for every subject of the sheet: without the mixed series, the
    # check of the sources runs (and refuses the copy).
    (work / "samples.tsv").write_text(
        "subject\tsession\tsource\n"
        + "".join(f"{sid}\t01\t{src}\n" for sid, src in rows if sid != SHEET_IDS["mixed"])
    )
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    key = PseudonymKey(TEST_KEY.encode(), "env")
    labels = {name: subject_label(key, sid) for name, sid in SHEET_IDS.items()}
    return work, done, again, labels


def _written_files(work, roots=("results", "logs", "benchmarks")):
    for root in roots:
        for path in sorted((work / root).rglob("*")):
            if path.is_file():
                yield path


def test_good_subjects_finish_bad_ones_fail_alone(hostile_run):
    work, done, again, labels = hostile_run
    output = done.stdout + done.stderr
    assert done.returncode != 0, "the mixed series and the copied folder must fail"
    for name in ("good", "other", "copy"):
        ids = {"subject": labels[name], "session": "01"}
        assert (work / bids("ingest", **ids, suffix="FLAIR", ext=".json")).is_file(), output
    for name in ("good", "other"):
        bundle = work / "results" / "fhir" / f"sub-{labels[name]}" / "ses-01"
        assert list(bundle.rglob("*bundle*.json")), f"{name}: no FHIR bundle\n{output[-3000:]}"
    mixed = subject_log("ingest", "ingest", subject=labels["mixed"], session="01")
    error = (work / mixed).read_text()
    assert "disagree on the patient identity" in error and "PatientID (0010,0020)" in error
    # The copied folder: both sheet rows named, before any cohort-level step used them.
    assert again.returncode != 0
    refusal = (work / "logs" / "ingest" / "sources.log").read_text()
    assert "sample sheet rows 1 and 3: their sources hold the same files" in refusal
    assert not (work / "results" / "ingest" / "sources.tsv").exists()


def test_no_planted_value_or_sheet_id_in_any_written_file(hostile_run):
    work, _, _, _ = hostile_run
    needles = {v.casefold() for v in PLANTED.values()} | {
        sid.casefold() for sid in SHEET_IDS.values()
    }

    def hits_in(paths):
        found = []
        for path in paths:
            data = path.read_bytes()
            if path.name.endswith(".gz"):
                data += gzip.decompress(data)
            texts = (data.decode("utf-8", "replace").casefold(), data.decode("latin-1").casefold())
            found += [
                (str(path.relative_to(work)), n) for n in needles if any(n in t for t in texts)
            ]
        return found

    # The search finds every planted value in the sources (the sheet IDs are in the sheet) ...
    planted = {needle for _, needle in hits_in(_written_files(work, ("sources",)))}
    assert {v.casefold() for v in PLANTED.values()} <= planted
    written = list(_written_files(work))
    assert len(written) > 30, f"only {len(written)} files written"
    # ... and none in what the run wrote.
    assert hits_in(written) == []


def test_a_run_with_another_key_stops_before_any_job(hostile_run):
    work, _, _, _ = hostile_run
    record = work / "results" / "provenance" / "pseudonym_key.json"
    assert set(json.loads(record.read_text())) == {"fingerprint", "demo_key"}
    assert TEST_KEY not in record.read_text()
    env = {**os.environ, "COHORTFLOW_PSEUDONYM_KEY": "another-key-of-enough-bytes-0123"}
    env.pop("COHORTFLOW_PSEUDONYM_KEY_FILE", None)
    cmd = snakemake_command(REPO, work, "--configfile", str(work / "config.yaml"), "-n")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode != 0
    assert "was written with another pseudonymisation key" in done.stdout + done.stderr
    assert "Building DAG" not in done.stdout + done.stderr
