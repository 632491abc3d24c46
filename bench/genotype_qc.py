"""Benchmark of the genotype QC stage: the whole QC on a simulated 5,000 samples x 100,000 SNPs.

    python bench/genotype_qc.py [--workdir /tmp/cohortflow_bench_gqc] [--samples 5000]
        [--snps 100000] [--cores 2] [--association] [--ancestry] [--resimulate]

With ``--ancestry`` the ancestry step runs with a reference panel: every fifth simulated sample
(written once to ``<workdir>/sim/reference.*``, labelled with its simulated group), so the
projection, the per-group sex checks and the per-group HWE tests are all in the figures.

Measured in one run:

1. **Simulation** (not part of the figures): the demo simulator of
   :mod:`cohortflow.demo.genotypes` with its planted failures scaled up (per 500 samples: 3
   low-call samples, one of each sex mismatch, a duplicate pair, a parent-offspring pair, a
   contaminated sample; per 10,000 SNPs: 15 low-call, 10 HWE-failure, 3 monomorphic and 4 rare
   SNPs) and 5 % of the SNPs on chrX (~1.7 GiB, ~30 s at full size). The data is kept in
   ``<workdir>/sim`` and reused when the spec is the same.
2. **The pipeline**: a genotype-only config (every other stage off) and one Snakemake run from
   an empty results folder (``results``, ``logs``, ``benchmarks`` and ``.snakemake`` removed) up
   to the QC report (and association with ``--association``). Wall time of the whole Snakemake
   process; peak memory of its process tree (the sum of the RSS of Snakemake, the job processes
   and PLINK, polled every 100 ms with psutil; shared pages count once per process), beside the
   largest single process and each job's ``max_rss`` from Snakemake's benchmark files. The
   poller also records when each job process and PLINK process starts and ends (start from
   the kernel's start time, end to within one poll). The repository's ``profiles/default``
   applies (Snakemake finds it next to the Snakefile); ``--cores`` caps each rule's threads
   (relatedness and PCA ask for 8).
3. **PLINK by hand**: every PLINK command the pipeline ran (read from PLINK's own ``.log``
   files: the options in effect, with the same ``--threads`` and ``--memory``; checked against
   the arguments in each ``step.json``), run again one after the other with the same
   executable, cwd and inputs, outputs into ``<workdir>/by_hand``, each timed with
   ``time.perf_counter``.

Printed (and written to ``<workdir>/bench_genotype_qc.json``): the overhead
``(pipeline wall - PLINK by hand) / PLINK by hand`` (the issue asks for < 20 %) and, beside it,
``(pipeline wall - PLINK inside the pipeline) / PLINK inside the pipeline``, which does not
depend on how fast the same PLINK command runs twice (the PCA, ~90 % of the time, varied by
up to 25 % between runs on a 2-core VM, more than the whole overhead), a table per
job (Snakemake benchmark seconds, job process lifetime, PLINK seconds inside the job and by
hand, Python seconds before the first and after the last PLINK run, threads and memory), where
the difference goes (Snakemake start-up and shutdown, gaps between jobs, job Python, PLINK
run-to-run), and the cost of the imports each job process pays (bare interpreter,
``snakemake.script`` which the script preamble imports, the QC modules with pandas, the report
with matplotlib).
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import psutil
import yaml

import cohortflow.demo.genotypes as sim
from cohortflow.genotype_qc.plink import executable
from cohortflow.genotype_qc.steps import STEPS, step_dir_name

REPO = Path(__file__).resolve().parents[1]
SCRIPT_JOBS = {  # workflow script -> job name (the QC steps are named in STEPS order)
    "genotype_qc_clean.py": "clean",
    "genotype_qc_report.py": "report",
    "genotype_association.py": "association",
}
POLL_S = 0.1
TEMP_STEP = re.compile(r"/\.(\d+_[a-z_]+)\.[^/]*\.tmp(?=/|$)")


# ------------------------------------------------------------------------------ simulation
def demo_spec(n_samples: int, n_snps: int) -> sim.GenotypeDemoSpec:
    """The demo spec at this size, planted failures scaled with it, 5 % of SNPs on chrX."""
    s = max(1, round(n_samples / 500))
    v = max(1, round(n_snps / 10_000))
    n_x = n_snps // 20
    return sim.GenotypeDemoSpec(
        n_samples=n_samples, n_autosomal_snps=n_snps - n_x, n_chrx_snps=n_x,
        n_low_call_samples=3 * s, n_reported_female_genetic_male=s,
        n_reported_male_genetic_female=s, n_duplicate_pairs=s, n_first_degree_pairs=s,
        n_contaminated=s, n_low_call_variants=15 * v, n_hwe_deficit_variants=5 * v,
        n_hwe_excess_variants=5 * v, n_monomorphic_variants=3 * v, n_rare_variants=4 * v,
    )  # fmt: skip


def simulate(folder: Path, spec: sim.GenotypeDemoSpec, force: bool) -> dict:
    """Write (or reuse) ``folder/cohort.*``; returns how it went."""
    prefix = folder / "cohort"
    record = folder / "spec.json"
    wanted = json.loads(json.dumps(asdict(spec)))
    files = [Path(f"{prefix}{ext}") for ext in (".bed", ".bim", ".fam", ".pheno.tsv")]
    same = record.is_file() and json.loads(record.read_text()) == wanted
    if not force and same and all(f.is_file() for f in files):
        return {"prefix": str(prefix), "reused": True}
    record.unlink(missing_ok=True)
    start = time.perf_counter()
    sim.simulate_genotypes(prefix, spec)
    seconds = time.perf_counter() - start
    record.write_text(json.dumps(wanted, indent=1))
    return {
        "prefix": str(prefix),
        "reused": False,
        "seconds": round(seconds, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def make_reference(folder: Path, prefix: str) -> dict:
    """A labelled reference panel from the simulation: every fifth sample, its true group."""
    reference = folder / "reference"
    labels = folder / "reference_labels.tsv"
    if not (labels.is_file() and Path(f"{reference}.bed").is_file()):
        truth = pd.read_csv(f"{prefix}.truth_samples.tsv", sep="\t", dtype=str)
        panel = truth.iloc[::5]
        panel[["FID", "IID"]].to_csv(folder / "reference.keep", sep="\t", header=False,
                                     index=False)  # fmt: skip
        subprocess.run(
            [executable("plink2"), "--bfile", prefix, "--keep", str(folder / "reference.keep"),
             "--make-bed", "--out", str(reference)],
            check=True, capture_output=True,
        )  # fmt: skip
        panel[["IID", "ancestry"]].to_csv(labels, sep="\t", index=False)
    return {"bfile": str(reference), "labels": str(labels), "label_column": "ancestry"}


# ------------------------------------------------------------------------------ the pipeline
def write_config(work: Path, prefix: str, association: bool, reference: dict | None) -> Path:
    """A genotype-only config; QC and association settings as in the demo config."""
    demo = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    sheet = work / "samples.tsv"
    shutil.copyfile(REPO / "tests" / "configs" / "ok_demo_small" / "samples.tsv", sheet)
    config = {
        "samples": str(sheet),
        "stages": {
            "ingest": False, "preprocess": False, "wm_clusters": False, "classify": False,
            "deface": False, "deface_qa": False, "genotype_qc": True, "association": association,
        },
        "demo": {"genotypes": False},
        "pseudonymise": {"allow_demo_key": True},
        "genotypes": {
            "input": prefix, "phenotype_file": f"{prefix}.pheno.tsv", "phenotype": "PHENO",
            "covariates": ["AGE"],
        },
        "genotype_qc": (
            demo["genotype_qc"] | {"ancestry": {"reference": reference}}
            if reference else demo["genotype_qc"]
        ),
        "association": demo["association"],
    }  # fmt: skip
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@dataclass
class Proc:
    pid: int
    ppid: int
    cmdline: list[str]
    start: float  # seconds after launch
    end: float
    max_rss: int = 0


@dataclass
class Monitor:
    """Polls a process tree: the peak of its summed RSS, and every process's lifetime."""

    root: psutil.Process
    t0: float  # epoch of the launch
    procs: dict[int, Proc] = field(default_factory=dict)
    peak_tree_rss: int = 0
    polls: int = 0
    cpu_s: float = 0.0  # the poller's own CPU time (it shares the cores with PLINK)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        # psutil's create_time rests on the boot time in whole seconds, so it is off from
        # time.time() by a constant of up to 1 s: measure it on the root (started at t0).
        offset = self.root.create_time() - self.t0
        while not self.stop.is_set():
            now = time.time() - self.t0
            try:
                tree = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                break
            total = 0
            for p in tree:
                try:
                    if p.status() == psutil.STATUS_ZOMBIE:  # exited, not yet reaped
                        continue
                    rss = p.memory_info().rss
                    if p.pid not in self.procs:
                        self.procs[p.pid] = Proc(
                            p.pid,
                            p.ppid(),
                            p.cmdline(),
                            p.create_time() - offset - self.t0,
                            now,
                        )
                except psutil.Error:
                    continue
                total += rss
                proc = self.procs[p.pid]
                proc.end, proc.max_rss = now, max(proc.max_rss, rss)
            self.peak_tree_rss = max(self.peak_tree_rss, total)
            self.polls += 1
            self.cpu_s = time.thread_time()
            self.stop.wait(POLL_S)


def run_pipeline(work: Path, config: Path, cores: int, targets: list[str]) -> dict:
    for name in ("results", "logs", "benchmarks", ".snakemake", "by_hand"):
        shutil.rmtree(work / name, ignore_errors=True)
    command = [
        sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(work), "--configfile", str(config), "--cores", str(cores), *targets,
    ]  # fmt: skip
    out = work / "snakemake.out"
    with out.open("w") as handle:
        t0 = time.time()
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=work, stdout=handle, stderr=subprocess.STDOUT)
        monitor = Monitor(psutil.Process(process.pid), t0)
        thread = threading.Thread(target=monitor.run, daemon=True)
        thread.start()
        code = process.wait()
        wall = time.perf_counter() - start
        monitor.stop.set()
        thread.join()
    if code != 0:
        sys.exit(f"snakemake failed (exit {code}); see {out}")
    return {"command": command, "wall_s": wall, "monitor": monitor, "output": out}


def job_resources(snakemake_output: Path) -> dict[str, dict]:
    """Threads and mem_mb each rule's job got, from Snakemake's printed job blocks."""
    jobs: dict[str, dict] = {}
    rule = None
    for line in snakemake_output.read_text().splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):$", line):
            rule = m.group(1)
            jobs[rule] = {"threads": 1}
        elif rule and (m := re.match(r"^\s+threads: (\d+)$", line)):
            jobs[rule]["threads"] = int(m.group(1))
        elif rule and (m := re.search(r"^\s+resources: .*\bmem_mb=(\d+)", line)):
            jobs[rule]["mem_mb"] = int(m.group(1))
        elif not line.strip():
            rule = None
    return jobs


# ------------------------------------------------------------------------------ PLINK runs
def log_options(log: Path) -> tuple[str, list[list[str]]]:
    """Engine and the option groups (``--flag value ...``) of a PLINK log."""
    lines = log.read_text().splitlines()
    engine = "plink2" if lines[0].startswith("PLINK v2") else "plink1.9"
    first = lines.index("Options in effect:") + 1
    groups = []
    for line in lines[first:]:
        if not line.startswith("  --"):
            break
        groups.append(line.split())
    return engine, groups


def _groups(args: list[str]) -> list[list[str]]:
    groups: list[list[str]] = []
    for arg in args:
        if arg.startswith("--"):
            groups.append([arg])
        else:
            groups[-1].append(arg)
    return groups


def _untemp(text: str) -> str:
    """A path inside a step's temporary folder, as it is after the folder was renamed."""
    return TEMP_STEP.sub(r"/\1", text)


RUNNER_OPTIONS = ("--threads", "--memory", "--out")  # what PlinkSession.run appends


def _key(groups: list[list[str]]) -> list[tuple[str, ...]]:
    """Option groups without the runner's, temporary paths resolved, order-free."""
    return sorted(tuple(_untemp(a) for a in g) for g in groups if g[0] not in RUNNER_OPTIONS)


@dataclass
class PlinkRun:
    job: str
    name: str  # the --out name
    engine: str
    args: list[str]  # without --threads/--memory/--out, temporary paths resolved
    threads: int
    memory_mb: int
    log: str
    pipeline_s: float | None = None  # as the pipeline recorded it (step.json, association)
    hand_s: float | None = None


def _run_from_log(job: str, log: Path, recorded: dict | None) -> PlinkRun:
    engine, groups = log_options(log)
    opts = {g[0]: g[1:] for g in groups}
    if recorded is None:  # PLINK's log lists options sorted; their order does not matter
        args = [a for g in _key(groups) for a in g]
    else:  # the pipeline's order, after checking that it is the same command
        args = [_untemp(a) for a in recorded["args"]]
        if _key(_groups(args)) != _key(groups) or engine != recorded["engine"]:
            sys.exit(f"{log}: options differ from the recorded run {recorded['args']}")
    return PlinkRun(
        job=job, name=Path(_untemp(opts["--out"][0])).name, engine=engine, args=args,
        threads=int(opts["--threads"][0]), memory_mb=int(opts["--memory"][0]), log=str(log),
        pipeline_s=None if recorded is None else recorded["seconds"],
    )  # fmt: skip


def pipeline_plink_runs(work: Path, association: bool) -> list[PlinkRun]:
    """Every PLINK run of the pipeline, in order, with its log and recorded seconds."""
    steps_root = work / "results" / "genotype_qc" / "steps"
    runs: list[PlinkRun] = []
    for name in STEPS:
        folder = steps_root / step_dir_name(name)
        recorded = json.loads((folder / "step.json").read_text())["plink_runs"]
        logs = {log: _key(log_options(log)[1]) for log in sorted(folder.rglob("*.log"))}
        if len(logs) != len(recorded):
            sys.exit(f"{folder}: {len(logs)} PLINK logs for {len(recorded)} recorded runs")
        for record in recorded:
            key = _key(_groups(record["args"]))
            log = next((log for log, k in logs.items() if k == key), None)
            if log is None:
                sys.exit(f"{folder}: no PLINK log for the recorded run {record['args']}")
            runs.append(_run_from_log(name, log, record))
    clean_log = work / "results" / "genotype_qc" / "clean" / "plink" / "cohort.log"
    runs.append(_run_from_log("clean", clean_log, None))
    if association:
        summary = json.loads((work / "results" / "association" / "summary.json").read_text())
        for record in summary["plink_runs"]:
            runs.append(_run_from_log("association", work / record["log"], record))
    return runs


def run_by_hand(work: Path, runs: list[PlinkRun]) -> None:
    """Each command again, sequentially, same cwd/executable/threads/memory; new outputs."""
    scratch = work / "by_hand"
    for run in runs:
        out = scratch / run.job / run.name
        out.parent.mkdir(parents=True, exist_ok=True)
        command = [
            executable(run.engine), *run.args, "--threads", str(run.threads),
            "--memory", str(run.memory_mb), "--out", str(out.relative_to(work)),
        ]  # fmt: skip
        start = time.perf_counter()
        result = subprocess.run(command, cwd=work, capture_output=True, text=True, check=False)
        run.hand_s = time.perf_counter() - start
        if result.returncode != 0:
            sys.exit(f"by hand: {' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")


# ------------------------------------------------------------------------------ analysis
def job_timeline(monitor: Monitor) -> list[dict]:
    """The job processes (Snakemake runs each script as a child python), in start order, with
    the PLINK processes under them (the executable is a shell wrapper: the outermost counts)."""
    steps = iter(STEPS)
    jobs = []
    procs = sorted(monitor.procs.values(), key=lambda p: p.start)
    for proc in procs:
        script = next((a for a in proc.cmdline if "/.snakemake/scripts/" in a), None)
        if proc.ppid != monitor.root.pid or script is None:
            continue
        base = script.rsplit(".", 2)[-2] + ".py"
        name = next(steps) if base == "genotype_qc_step.py" else SCRIPT_JOBS[base]
        plink = [
            p for p in procs
            if p.ppid == proc.pid and any("plink" in Path(a).name for a in p.cmdline[:2])
            and "--version" not in p.cmdline
        ]  # fmt: skip
        jobs.append({
            "job": name, "start": proc.start, "end": proc.end, "python_max_rss": proc.max_rss,
            "plink_first_start": min((p.start for p in plink), default=None),
            "plink_last_end": max((p.end for p in plink), default=None),
            "plink_polled_s": sum(p.end - p.start for p in plink),
        })  # fmt: skip
    return jobs


def uncovered(intervals: list[tuple[float, float]]) -> float:
    """Time between the first start and the last end that no interval covers."""
    intervals = sorted(intervals)
    gap, reach = 0.0, intervals[0][1]
    for start, end in intervals[1:]:
        gap += max(0.0, start - reach)
        reach = max(reach, end)
    return gap


def import_costs(repeats: int = 3) -> dict[str, float]:
    """Seconds a fresh interpreter needs for each import (best of ``repeats``)."""
    probes = {
        "python -c pass": "pass",
        "import snakemake.script (script preamble)": "import snakemake.script, snakemake.logging",
        "import cohortflow.genotype_qc.run (pandas)": "import cohortflow.genotype_qc.run",
        "import cohortflow.genotype_qc.report (matplotlib)": "import cohortflow.genotype_qc.report",
    }
    costs = {}
    for label, code in probes.items():
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            best = min(best, time.perf_counter() - start)
        costs[label] = round(best, 3)
    return costs


def _benchmark_tsv(work: Path, job: str) -> dict:
    folder = "association/glm" if job == "association" else f"genotype_qc/{job}"
    path = work / "benchmarks" / f"{folder}.tsv"
    if not path.is_file():
        return {}
    row = pd.read_csv(path, sep="\t").iloc[0]
    return {"benchmark_s": float(row["s"]), "benchmark_max_rss_mib": float(row["max_rss"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/cohortflow_bench_gqc"))
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--snps", type=int, default=100_000)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--association", action="store_true", help="also run association")
    parser.add_argument("--resimulate", action="store_true", help="never reuse simulated data")
    parser.add_argument(
        "--ancestry", action="store_true", help="run the ancestry step with a reference panel"
    )
    args = parser.parse_args()
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)

    spec = demo_spec(args.samples, args.snps)
    simulation = simulate(work / "sim", spec, args.resimulate)
    reference = make_reference(work / "sim", simulation["prefix"]) if args.ancestry else None
    config = write_config(work, simulation["prefix"], args.association, reference)
    targets = ["results/genotype_qc/report/summary.json"]
    targets += ["results/association/summary.json"] if args.association else []
    pipeline = run_pipeline(work, config, args.cores, targets)
    monitor: Monitor = pipeline["monitor"]
    wall = pipeline["wall_s"]

    runs = pipeline_plink_runs(work, args.association)
    run_by_hand(work, runs)
    resources = job_resources(pipeline["output"])
    jobs = job_timeline(monitor)
    imports = import_costs()

    # Per job: Snakemake's benchmark, the job process, PLINK inside it and by hand.
    rows = []
    for job in jobs:
        mine = [r for r in runs if r.job == job["job"]]
        recorded = [r.pipeline_s for r in mine]
        plink_in = sum(recorded) if mine and None not in recorded else job["plink_polled_s"]
        rule = (
            "genotype_association" if job["job"] == "association" else f"genotype_qc_{job['job']}"
        )
        granted = resources.get(rule, {})
        lifetime = job["end"] - job["start"]
        first, last = job["plink_first_start"], job["plink_last_end"]
        rows.append({
            "job": job["job"],
            **_benchmark_tsv(work, job["job"]),
            "job_s": lifetime,
            "plink_runs": len(mine),
            "plink_in_job_s": plink_in,
            "plink_by_hand_s": sum(r.hand_s for r in mine),
            "python_s": lifetime - plink_in,
            "python_before_plink_s": (first - job["start"]) if first is not None else None,
            "python_after_plink_s": (job["end"] - last) if last is not None else None,
            "python_peak_rss_mib": job["python_max_rss"] / 2**20,
            "rule_threads": granted.get("threads"),
            "rule_mem_mb": granted.get("mem_mb"),
            "plink_threads": sorted({r.threads for r in mine}) or None,
            "plink_memory_mb": sorted({r.memory_mb for r in mine}) or None,
        })  # fmt: skip
    table = pd.DataFrame(rows)
    # --threads and --memory must be the rule's threads and 90 % of its mem_mb.
    for row in rows:
        if row["plink_runs"] and (
            row["plink_threads"] != [row["rule_threads"]]
            or row["plink_memory_mb"] != [max(256, int(row["rule_mem_mb"] * 0.9))]
        ):
            print(f"WARNING: {row['job']}: PLINK --threads/--memory differ from the rule's")

    hand = sum(r.hand_s for r in runs)
    plink_in_pipeline = float(table["plink_in_job_s"].sum())
    intervals = [(j["start"], j["end"]) for j in jobs]
    first_job, last_job = min(s for s, _ in intervals), max(e for _, e in intervals)
    breakdown = {
        "snakemake_startup_to_first_job_s": first_job,
        "snakemake_between_jobs_s": uncovered(intervals),
        "snakemake_after_last_job_s": wall - last_job,
        "job_python_s": float(table["python_s"].sum()),
        "plink_in_pipeline_minus_by_hand_s": plink_in_pipeline - hand,
    }
    summary_path = work / "results" / "genotype_qc" / "report" / "summary.json"
    qc = json.loads(summary_path.read_text())
    step_json_s = qc["plink_seconds"]
    figures = {
        "samples": args.samples,
        "snps": args.snps,
        "chrx_snps": spec.n_chrx_snps,
        "cores": args.cores,
        "association": args.association,
        "simulation": simulation,
        "pipeline_wall_s": round(wall, 2),
        "plink_by_hand_s": round(hand, 2),
        "plink_in_pipeline_s": round(plink_in_pipeline, 2),
        "plink_in_pipeline_step_json_s": step_json_s,
        "overhead": round((wall - hand) / hand, 4),
        "overhead_vs_plink_in_pipeline": round((wall - plink_in_pipeline) / plink_in_pipeline, 4),
        "overhead_target": 0.20,
        "peak_tree_rss_mib": round(monitor.peak_tree_rss / 2**20),
        "peak_single_process_rss_mib": round(
            max(p.max_rss for p in monitor.procs.values()) / 2**20
        ),
        "rss_polls": monitor.polls,
        "poller_cpu_s": round(monitor.cpu_s, 2),
        "job_timeline_s": [
            {k: (round(v, 3) if isinstance(v, float) else v) for k, v in j.items()} for j in jobs
        ],
        "samples_kept": qc["samples_kept"],
        "samples_in": qc["samples_in"],
        "variants_kept": qc["variants_kept"],
        "variants_in": qc["variants_in"],
        "samples_removed_by_reason": qc["samples_removed_by_reason"],
        "variants_removed_by_reason": qc["variants_removed_by_reason"],
        "breakdown_s": {k: round(v, 2) for k, v in breakdown.items()},
        "import_costs_s": imports,
        "jobs": json.loads(table.round(3).to_json(orient="records")),
        "plink_runs": [
            {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(r).items()}
            for r in runs
        ],
        "snakemake_command": pipeline["command"],
    }
    (work / "bench_genotype_qc.json").write_text(json.dumps(figures, indent=1) + "\n")

    print(f"## Genotype QC: {args.samples} samples x {args.snps} SNPs "
          f"({spec.n_chrx_snps} on chrX), --cores {args.cores}\n")  # fmt: skip
    if simulation["reused"]:
        print(f"simulated data reused from {simulation['prefix']}\n")
    else:
        print(f"simulated in {simulation['seconds']} s, peak RSS "
              f"{simulation['peak_rss_mib']} MiB\n")  # fmt: skip
    head = [
        ("pipeline wall (s)", f"{wall:.1f}"),
        ("PLINK by hand, summed (s)", f"{hand:.1f} ({len(runs)} runs)"),
        ("PLINK inside the pipeline (s)", f"{plink_in_pipeline:.1f} "
         f"(step.json: {step_json_s:.1f}; clean/association: process poll or summary)"),
        ("overhead (wall - by hand) / by hand", f"{(wall - hand) / hand:.1%} (target < 20 %)"),
        ("overhead over PLINK inside the pipeline",
         f"{(wall - plink_in_pipeline) / plink_in_pipeline:.1%} (same run: free of PLINK's "
         "run-to-run noise)"),
        ("peak RSS, whole process tree (MiB)", f"{figures['peak_tree_rss_mib']}"),
        ("peak RSS, largest process (MiB)", f"{figures['peak_single_process_rss_mib']}"),
        ("CPU of the RSS poller (s)", f"{monitor.cpu_s:.1f} ({monitor.polls} polls)"),
        ("samples kept", f"{qc['samples_kept']} of {qc['samples_in']}"),
        ("variants kept", f"{qc['variants_kept']} of {qc['variants_in']}"),
    ]  # fmt: skip
    print(pd.DataFrame(head, columns=["figure", "value"]).to_markdown(index=False))
    print("\n## Per job (seconds; benchmark_s from Snakemake's benchmark files)\n")
    shown = table.drop(columns=["rule_mem_mb", "rule_threads"]).copy()
    for col in ("plink_threads", "plink_memory_mb"):
        shown[col] = shown[col].map(lambda v: ",".join(map(str, v)) if v else "")
    print(shown.to_markdown(index=False, floatfmt=".2f"))
    print(f"\n## Where wall - by hand = {wall - hand:.1f} s goes\n")
    print(pd.DataFrame(list(breakdown.items()), columns=["part", "s"]).to_markdown(
        index=False, floatfmt=".2f"))  # fmt: skip
    print("\n## Fresh-interpreter import cost (best of 3; every job process pays one)\n")
    print(pd.DataFrame(list(imports.items()), columns=["import", "s"]).to_markdown(index=False))
    print(f"\nfigures: {work / 'bench_genotype_qc.json'}")
    compact = {
        k: v for k, v in figures.items() if k not in ("jobs", "plink_runs", "snakemake_command")
    }
    print(json.dumps(compact))


if __name__ == "__main__":
    main()
