"""How long the demo takes, stage by stage: one fresh run of a config, timed from Snakemake's log.

    python bench/demo_time.py [--config config/config.yaml] [--cores 2] [--keep DIR]

Runs ``snakemake --cores N`` (the README's command) in a new working folder holding a copy of
config/, then reads the run's Snakemake log: for every job its rule, start and finish. Prints
the wall time of the whole run and, per stage, the wall span (first start to last finish), the
summed job time and the job count. Nothing is cached: the demo cohort is generated too.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Rule name prefix -> stage (longest prefix first).
STAGES = (
    ("demo_", "demo cohort (generated)"),
    ("ingest", "ingest"),
    ("preprocess_", "preprocess"),
    ("wm_clusters", "wm_clusters"),
    ("classify_", "classify"),
    ("deface_qa_", "deface_qa"),
    ("deface", "deface"),
    ("genotype_association", "association"),
    ("genotype_qc_", "genotype_qc"),
    ("fhir_", "fhir"),
    ("provenance_", "provenance"),
)
_STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
_START = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):$")
_JOBID = re.compile(r"^\s+jobid: (\d+)$")
_FINISHED = re.compile(r"^Finished jobid: (\d+)")


def stage_of(rule: str) -> str:
    return next((stage for prefix, stage in STAGES if rule.startswith(prefix)), rule)


def jobs_from_log(text: str) -> list[tuple[str, datetime, datetime]]:
    """(rule, start, finish) of every finished job in a Snakemake log."""
    stamp: datetime | None = None
    pending_rule: tuple[str, datetime] | None = None
    started: dict[str, tuple[str, datetime]] = {}
    jobs = []
    for line in text.splitlines():
        if match := _STAMP.match(line.strip()):
            stamp = datetime.strptime(match[1], "%a %b %d %H:%M:%S %Y")
        elif (match := _START.match(line.strip())) and stamp is not None:
            pending_rule = (match[1], stamp)
        elif (match := _JOBID.match(line)) and pending_rule is not None:
            started[match[1]] = pending_rule
            pending_rule = None
        elif (match := _FINISHED.match(line.strip())) and stamp is not None and match[1] in started:
            rule, start = started.pop(match[1])
            jobs.append((rule, start, stamp))
    return jobs


def table(jobs: list[tuple[str, datetime, datetime]]) -> list[tuple[str, float, float, int]]:
    spans: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for rule, start, finish in jobs:
        spans[stage_of(rule)].append((start, finish))
    rows = []
    for stage, times in spans.items():
        wall = (max(f for _, f in times) - min(s for s, _ in times)).total_seconds()
        summed = sum((f - s).total_seconds() for s, f in times)
        rows.append((stage, wall, summed, len(times)))
    return sorted(rows, key=lambda row: min(s for s, _ in spans[row[0]]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--cores", default="2")
    parser.add_argument("--keep", type=Path, help="run here and keep the folder")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="cohortflow-demo-time-"))
    work.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "config", work / "config", dirs_exist_ok=True)
    command = [
        sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(work), "--cores", args.cores, "--configfile", args.config,
    ]  # fmt: skip
    begin = time.monotonic()
    done = subprocess.run(command, cwd=work, capture_output=True, text=True, check=False)
    wall = time.monotonic() - begin
    logs = sorted((work / ".snakemake" / "log").glob("*.snakemake.log"))
    jobs = jobs_from_log(logs[-1].read_text()) if logs else []
    print(f"config {args.config}, --cores {args.cores}, exit {done.returncode}")
    print(f"whole run: {wall:.0f} s ({wall / 60:.1f} min), {len(jobs)} jobs")
    print("| stage | wall span (s) | job time (s) | jobs |\n|---|---:|---:|---:|")
    for stage, span, summed, count in table(jobs):
        print(f"| {stage} | {span:.0f} | {summed:.0f} | {count} |")
    if done.returncode:
        print(done.stderr[-3000:], file=sys.stderr)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return done.returncode


if __name__ == "__main__":
    raise SystemExit(main())
