"""Benchmark: two clean runs of the demo, every stage on (classification and defacing
included), compared file by file.

The test suite compares a cut-down demo (tests/test_workflow_reproducible.py, no CNN, no
defacing) to stay within CI's time; this runs the demo with every stage twice, each in a fresh
folder with the same command and SOURCE_DATE_EPOCH, and prints cohortflow.reproducibility's
comparison: how many files are byte-identical, which are equal once the listed volatile fields
are set aside (with the reason), which are only numerically equal, and any real difference
(exit status 1 then).

Usage::

    python bench/reproducibility.py [--subjects 12] [--template-mm 1] [--fast] [--keep DIR]
                                    [--profile profiles/slurm [--profile-args ...]]

``--fast`` shrinks what takes minutes on a laptop (a 4 mm CNN input with a sixteenth of the
filters and 3 epochs, one permutation, split strategy A, 2 defacing pairs per type) without
leaving a stage out; ``--template-mm 2`` registers to a 2 mm copy of the MNI template.
Defaults: the demo config as shipped.

``--profile`` runs the second run through that workflow profile instead of locally, so the
comparison also tells whether the executor changes any byte: ``--profile profiles/slurm`` on a
cluster (its account and partition from the user's own profile, or given with
``--profile-args "--slurm-no-account"``), after which both runs must still agree file by file.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EPOCH = "1767225600"


def _template(out: Path, mm: int) -> dict[str, str]:
    """The MNI template at ``mm`` mm, as paths relative to the working folder."""
    from cohortflow.preprocess.templates import coarse_nilearn_template

    files = coarse_nilearn_template(out, mm)
    return {name: f"{out.name}/{path.name}" for name, path in files.items()}


def _config(work: Path, args: argparse.Namespace) -> Path:
    import yaml

    from cohortflow.demo.cohort import demo_manifest, sample_sheet_text

    work.mkdir(parents=True)
    (work / "samples.tsv").write_text(sample_sheet_text(demo_manifest(args.subjects, 20251123)))
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["samples"] = "samples.tsv"
    config["demo"]["n_subjects"] = args.subjects
    shared = REPO.parent / "shared" / "fhir"
    for key, rel in (("schema", "fhir.schema.r4.json"), ("profiles", "mii/profiles"),
                     ("validator", "server/medplum-validate.mjs")):  # fmt: skip
        config["fhir"]["validation"][key] = str(shared / rel) if shared.is_dir() else None
    if args.template_mm != 1:
        tpl = _template(work / "template", args.template_mm)
        config["preprocess"]["template"] = {
            "source": "files",
            "files": {"space": "MNI152NLin2009aSym", **tpl},
        }
    if args.fast:
        config["classify"]["input"] = {"resolution_mm": 4, "shape": None}
        config["classify"]["model"].update(width=0.0625, padding="same")
        config["classify"]["train"].update(max_epochs=3, patience=2)
        config["classify"]["permutations"] = 1
        config["classify"]["split"]["strategy"] = "A"  # C needs more subjects per protocol
        config["deface_qa"].update(pairs_per_type=2, folds=3)
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _run(work: Path, config: Path, cores: int, extra: list[str]) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORTFLOW_PSEUDONYM")}
    env["SOURCE_DATE_EPOCH"] = EPOCH
    cmd = [
        *(sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")),
        *("--directory", str(work), "--configfile", str(config), "--cores", str(cores)),
        *extra,
    ]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"run in {work} failed:\n{done.stdout[-3000:]}{done.stderr[-5000:]}")
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--subjects", type=int, default=12)
    ap.add_argument("--template-mm", type=int, default=1)
    ap.add_argument("--fast", action="store_true")
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--keep", type=Path, help="run in this folder and keep it")
    ap.add_argument("--profile", type=Path, help="workflow profile for the second run")
    ap.add_argument("--profile-args", default="", help="more options for the second run")
    args = ap.parse_args()
    from cohortflow.reproducibility import compare_runs

    base = args.keep or Path(tempfile.mkdtemp(prefix="cohortflow-repro-"))
    runs = [base / "run_a", base / "run_b"]
    second = shlex.split(args.profile_args)
    if args.profile is not None:
        second = ["--workflow-profile", str(args.profile.resolve()), *second]
    for work, extra in ((runs[0], []), (runs[1], second)):
        seconds = _run(work, _config(work, args), args.cores, extra)
        how = " ".join(extra) or "local"
        print(f"{work}: {seconds:.0f} s ({how})", flush=True)
    result = compare_runs(*runs)
    stages = sorted({Path(p).parts[1] for p in result.identical if p.startswith("results/")})
    print(f"byte-identical: {len(result.identical)} files (results/ stages: {', '.join(stages)})")
    print(f"equal without volatile fields: {len(result.equal_without_volatile)}")
    print(f"numerically equal only: {len(result.numerically_equal)}")
    print(f"not compared: {len(result.skipped)}; different: {len(result.different)}")
    print(result.summary())
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
