"""Benchmark: DAG build (dry-run) time for 100, 1,000 and 10,000 subjects.

Writes a synthetic sample sheet per size (NIfTI sources, half labelled, three protocols; the
source files are empty placeholders, which a dry run never reads), then times
``snakemake -n --quiet`` with the demo config (every stage on, FHIR included) in a fresh
working folder, and prints one row per size: seconds, jobs, and seconds per 1,000 subjects
(flat when the DAG build is linear). Target: at most 60 s for 10,000 subjects.

Usage::

    python bench/dag.py [--sizes 100 1000 10000] [--profile]   # --profile: cProfile top 15
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def sheet(n: int, folder: Path) -> Path:
    src = folder / "src"
    src.mkdir(parents=True, exist_ok=True)
    rows = ["subject\tsession\tsource\tlabel\tdataset\tprotocol"]
    for i in range(n):
        path = src / f"s{i:05d}.nii.gz"
        path.touch()
        label = ("yes", "no")[i % 2]
        rows.append(f"s{i:05d}\t01\t{path}\t{label}\tbench\tsite{i % 3}")
    out = folder / "samples.tsv"
    out.write_text("\n".join(rows) + "\n")
    return out


def dry_run(n: int, profile: bool) -> tuple[float, int, str]:
    with tempfile.TemporaryDirectory(prefix=f"cohortflow-dag-{n}-") as tmp:
        work = Path(tmp)
        samples = sheet(n, work)
        config = work / "config.yaml"
        text = (REPO / "config" / "config.yaml").read_text()
        text = re.sub(r"(?m)^samples: .*$", f"samples: {samples}", text)
        text = re.sub(r"(?m)^(    (?:schema|profiles|validator)): .*$", r"\1: null", text)
        config.write_text(text.replace("allow_demo_key: true", "allow_demo_key: false"))
        cmd = [
            sys.executable,
            *(["-m", "cProfile", "-s", "cumtime"] if profile else []),
            "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(work),
            "--configfile", str(config), "-n", "--quiet", "rules", "--cores", "2",
        ]  # fmt: skip
        start = time.perf_counter()
        env = os.environ | {"COHORTFLOW_PSEUDONYM_KEY": "bench-key-0123456789abcdef0123456789"}
        env.pop("COHORTFLOW_PSEUDONYM_KEY_FILE", None)
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=work, env=env, check=False)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"{n} subjects: dry run failed\n{done.stdout[-2000:]}{done.stderr}")
        total = re.search(r"^total\s+(\d+)", done.stdout, re.M)
        return seconds, int(total.group(1)) if total else -1, done.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", nargs="+", type=int, default=[100, 1000, 10000])
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    print(f"{'subjects':>9} {'seconds':>8} {'jobs':>7} {'s per 1,000 subjects':>21}")
    for n in args.sizes:
        seconds, jobs, out = dry_run(n, args.profile)
        print(f"{n:>9} {seconds:>8.1f} {jobs:>7} {seconds / n * 1000:>21.2f}", flush=True)
        if args.profile:
            lines = out.splitlines()
            head = next(i for i, line in enumerate(lines) if "ncalls" in line)
            print("\n".join(lines[head : head + 16]))


if __name__ == "__main__":
    main()
