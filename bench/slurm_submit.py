"""Benchmark: how fast the Slurm executor plugin submits jobs, and what that means for a cohort.

Runs a Snakefile of N independent one-line jobs through ``--executor slurm`` on the Slurm
cluster this machine talks to (``../shared/slurm/single-node.sh start`` with ``ACCT=1`` here),
reads each job's submit time from ``sacct``, and prints the submission rate. From that rate and
profiles/slurm's per-subject groups (one subject per job each) it prints the submission time
for cohorts of 100, 1,000 and 10,000 subjects.

Usage::

    python bench/slurm_submit.py [--jobs 20]
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]

SNAKEFILE = """
rule all:
    input: expand("out/{i}.txt", i=range(config["n"]))
rule one:
    output: "out/{i}.txt"
    resources: mem_mb=100, runtime=5
    shell: "echo {wildcards.i} > {output}"
"""


def submission_rate(n: int) -> float:
    """Jobs submitted per minute (first to last submission) for n one-line jobs."""
    with tempfile.TemporaryDirectory(prefix="cohortflow-sbatch-") as tmp:
        work = Path(tmp)
        (work / "Snakefile").write_text(SNAKEFILE)
        (work / "config.yaml").write_text(f"n: {n}\n")
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "snakemake", "--executor", "slurm", "--jobs", str(n),
             "--slurm-no-account", "--slurm-init-seconds-before-status-checks", "2",
             "--configfile", "config.yaml"],
            cwd=work, capture_output=True, text=True, check=False,
        )  # fmt: skip
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"the Slurm run failed:\n{done.stderr[-3000:]}")
        ids = re.findall(r"SLURM jobid (\d+)", done.stdout + done.stderr)
        acct = subprocess.run(
            ["sacct", "-n", "-X", "-P", "-o", "JobID,Submit", "-j", ",".join(ids)],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    submits = sorted(dt.datetime.fromisoformat(line.split("|")[1]) for line in acct.split())
    span = (submits[-1] - submits[0]).total_seconds()
    print(f"{len(ids)} jobs submitted in {span:.0f} s (first to last), whole run {wall:.0f} s")
    return (len(submits) - 1) / span * 60


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--jobs", type=int, default=20)
    args = ap.parse_args()
    per_minute = submission_rate(args.jobs)
    print(f"submission rate: {per_minute:.1f} jobs per minute")
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    parts = profile["group-components"]
    print(f"\nper-subject Slurm jobs with profiles/slurm (group-components {parts}):")
    print(f"{'subjects':>9} {'jobs':>7} {'submission':>14}")
    for n in (100, 1000, 10000):
        jobs = sum(math.ceil(n / k) for k in parts.values())
        print(f"{n:>9} {jobs:>7} {jobs / per_minute / 60:>12.1f} h")


if __name__ == "__main__":
    main()
