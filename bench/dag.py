"""Benchmark: DAG build (dry-run) time for 100, 1,000 and 10,000 subjects.

Writes a synthetic sample sheet per size (NIfTI sources, half labelled, three protocols; the
source files are empty placeholders, which a dry run never reads), then times
``snakemake -n --quiet`` with the demo config (every stage on, FHIR included) in a fresh
working folder, and prints one row per size: seconds, jobs, and seconds per 1,000 subjects
(flat when the DAG build is linear) and milliseconds per job. Target: at most 60 s for 10,000
subjects. ``--without deface deface_qa`` turns those stages off in that config, to show what the
build costs with fewer jobs per subject.

``--floor`` also times a bare Snakefile of the same shape, the floor that Snakemake itself sets:
per subject, nine chained one-line rules with cohortflow's numbers of files per job (from its
dry run: ingest 4, N4 5, registration 13, clustering 12, defacing 8, pair features 6, pair
evaluation 8, prediction 4, FHIR 11, counting input, outputs and log), prediction and pair
evaluation waiting on a model trained from a one-file cohort table, and the same cohort-wide
collectors (QC table, dataset and pair tables, decisions, predictions, run record, ``all``).
No input functions, params or resource callables: what is left is Snakemake's own work per job
and per file. ``--floor`` also times that bare Snakefile with a single output per job (``bare-1``):
what the same number of jobs costs however few files they write.

Usage::

    python bench/dag.py [--sizes 100 1000 10000] [--floor] [--profile] [--without STAGE ...]
    # --profile: cProfile top 15
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


# (rule, outputs): each per-subject job also has one input and one log.
FLOOR_STEPS = [("ingest", 2), ("n4", 3), ("register", 11), ("cluster", 10), ("deface", 6),
               ("pairs", 4), ("evaluate", 6), ("predict", 2), ("fhir", 9)]  # fmt: skip
FLOOR_PARENT = {"ingest": None, "n4": "ingest", "register": "n4", "cluster": "register",
                "deface": "ingest", "pairs": "deface", "evaluate": "pairs",
                "predict": "cluster", "fhir": "predict"}  # fmt: skip


def floor_snakefile(folder: Path, one_output: bool = False) -> Path:
    """A bare Snakefile with cohortflow's DAG shape (see the module docstring); with
    ``one_output``, every per-subject job writes a single file."""
    steps = [(step, 1 if one_output else n) for step, n in FLOOR_STEPS]
    second = 0 if one_output else 1
    rules = [
        "SUBJECTS = [row.split()[0] for row in open(config['samples']).readlines()[1:]]",
        "def each(path): return expand(path, s=SUBJECTS)",
        "rule all:\n  input: each('{s}/fhir.0'), each('{s}/evaluate.0'), each('{s}/predict.0'),"
        " each('{s}/cluster.0'), each('{s}/register.0'), each('{s}/deface.0'), 'run.json'",
        "rule run_record:\n  input: "
        + ", ".join(f"each('{{s}}/{step}.0')" for step, _ in steps[:7])
        + "\n  output: 'run.json'\n  shell: 'touch {output}'",
    ]
    for name, parent, extra in (("qc", "register", "cluster"), ("dataset", "cluster", None),
                                ("pair_table", "pairs", None), ("decisions", "evaluate", None),
                                ("predictions", "predict", None)):  # fmt: skip
        inputs = f"each('{{s}}/{parent}.0')"
        inputs += f", each('{{s}}/{extra}.{second}')" if extra else ""
        rules.append(f"rule {name}:\n  input: {inputs}\n  output: '{name}.tsv'\n"
                     "  shell: 'touch {output}'")  # fmt: skip
    rules.append(
        "rule train:\n  input: 'dataset.tsv'\n  output: 'model.pt'\n  shell: 'touch {output}'"
    )
    rules.append("rule qa_train:\n  input: 'pair_table.tsv'\n  output: 'qa.pkl'\n"
                 "  shell: 'touch {output}'")  # fmt: skip
    for step, outputs in steps:
        parent = FLOOR_PARENT[step]
        inputs = ["'src/{s}.nii.gz'" if parent is None else f"'{{s}}/{parent}.0'"]
        inputs += {"predict": ["'model.pt'"], "evaluate": ["'qa.pkl'"]}.get(step, [])
        outs = ", ".join(f"'{{s}}/{step}.{k}'" for k in range(outputs))
        rules.append(f"rule {step}:\n  input: {', '.join(inputs)}\n  output: {outs}\n"
                     f"  log: 'logs/{{s}}/{step}.log'\n  shell: 'touch {{output}}'")  # fmt: skip
    path = folder / "Snakefile.floor"
    path.write_text("\n\n".join(rules) + "\n")
    return path


def dry_run(
    n: int, profile: bool, floor: str | None = None, without: tuple[str, ...] = ()
) -> tuple[float, int, str]:
    """``floor``: None for cohortflow, "bare" or "bare-1" for the bare Snakefiles; ``without``:
    stages turned off in cohortflow's config."""
    with tempfile.TemporaryDirectory(prefix=f"cohortflow-dag-{n}-") as tmp:
        work = Path(tmp)
        samples = sheet(n, work)
        config = work / "config.yaml"
        if floor:
            config.write_text(f"samples: {samples}\n")
            snakefile = floor_snakefile(work, one_output=floor == "bare-1")
        else:
            text = (REPO / "config" / "config.yaml").read_text()
            text = re.sub(r"(?m)^samples: .*$", f"samples: {samples}", text)
            text = re.sub(r"(?m)^(    (?:schema|profiles|validator)): .*$", r"\1: null", text)
            for stage in without:
                text, found = re.subn(rf"(?m)^(  {stage}): true$", r"\1: false", text)
                if not found:
                    raise SystemExit(f"--without {stage}: no 'stages.{stage}: true' in the config")
            config.write_text(text.replace("allow_demo_key: true", "allow_demo_key: false"))
            snakefile = REPO / "Snakefile"
        cmd = [
            sys.executable,
            *(["-m", "cProfile", "-s", "cumtime"] if profile else []),
            "-m", "snakemake", "--snakefile", str(snakefile), "--directory", str(work),
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
    ap.add_argument("--floor", action="store_true", help="also time the bare Snakefile")
    ap.add_argument(
        "--without", nargs="+", default=[], metavar="STAGE",
        help="stages to turn off in cohortflow's config (e.g. deface deface_qa)",
    )  # fmt: skip
    args = ap.parse_args()
    print(f"{'workflow':>10} {'subjects':>9} {'seconds':>8} {'jobs':>7} "
          f"{'s per 1,000 subjects':>21} {'ms per job':>11}")  # fmt: skip
    for n in args.sizes:
        for floor in (None, "bare", "bare-1") if args.floor else (None,):
            seconds, jobs, out = dry_run(n, args.profile, floor, tuple(args.without))
            name = floor or "cohortflow"
            print(f"{name:>10} {n:>9} {seconds:>8.1f} {jobs:>7} {seconds / n * 1000:>21.2f} "
                  f"{seconds / jobs * 1000:>11.2f}", flush=True)  # fmt: skip
            if args.profile:
                lines = out.splitlines()
                head = next(i for i, line in enumerate(lines) if "ncalls" in line)
                print("\n".join(lines[head : head + 16]))


if __name__ == "__main__":
    main()
