"""bench/dag.py on a few subjects: the benchmark behind the README's DAG-build table keeps
working as the config and rules change (its figures come from by-hand runs at 100 to 10,000
subjects; here only its job counts are checked, never its times)."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def _bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "bench" / "dag.py"), *args],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def _rows(*args: str) -> dict[tuple[str, int], int]:
    done = _bench(*args)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {}
    for line in done.stdout.splitlines()[1:]:
        name, subjects, _seconds, jobs, _per_1000, _per_job = line.split()
        rows[name, int(subjects)] = int(jobs)
    return rows


def test_dag_benchmark_counts_nine_jobs_per_subject_and_six_without_defacing():
    full = _rows("--sizes", "12", "14", "--floor")
    # Every stage on: ingest, N4, registration, clusters, defacing, pairs, defacing decision,
    # CNN prediction and FHIR bundle per subject; the bare Snakefiles have the same shape.
    for name in ("cohortflow", "bare", "bare-1"):
        assert full[name, 14] - full[name, 12] == 2 * 9, (name, full)
    fewer = _rows("--sizes", "12", "14", "--without", "deface", "deface_qa")
    assert fewer["cohortflow", 14] - fewer["cohortflow", 12] == 2 * 6, fewer
    bad = _bench("--sizes", "12", "--without", "nope")
    assert bad.returncode != 0 and "--without nope" in bad.stderr
