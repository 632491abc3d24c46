"""Reproducibility and resumption on a small demo: two clean runs give the same bytes, a run
killed with SIGKILL during registration resumes to the same outputs, and the same workflow
run through a real (one-node) Slurm cluster with profiles/slurm, or inside the podman-built
container, gives the same tables and bundles.

The demo here is cut to fit CI: two demo subjects (DICOM), a 3 mm copy of the MNI template,
stages ingest → preprocess → wm_clusters, genotype QC + association, FHIR and the run record
(classification and defacing are left out: the suite repeats them on the session's demo run,
tests/test_workflow_classify.py retraining the CNN and tests/test_workflow_deface.py one
subject's defacing and evaluation, to the same bytes; the full demo, every stage in two clean
runs, is compared by bench/reproducibility.py). Runs after the first take the generated demo inputs
(resources/demo, byte-identical by tests/test_demo_mri.py) from it, to save its half minute.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from conftest import (
    REPO,
    REPORTED,
    SHARED_DATA,
    fhir_config_yaml,
    fhir_fallback_args,
    needs_plink,
    report_contents,
    slurm_up,
    snakemake,
    snakemake_command,
)

from cohortflow.reproducibility import compare_runs

pytestmark = [needs_plink, pytest.mark.slow]

EPOCH = "1767225600"  # SOURCE_DATE_EPOCH: FHIR Provenance.recorded = 2026-01-01T00:00:00Z


def _template(out: Path) -> dict[str, str]:
    """A 3 mm MNI template (registration in seconds), as paths relative to the working
    folder (absolute ones would make the configs, and so their hash in every FHIR Provenance,
    differ between the runs' folders)."""
    from cohortflow.preprocess.templates import coarse_nilearn_template

    files = coarse_nilearn_template(out, 3)
    return {name: path.relative_to(out.parent).as_posix() for name, path in files.items()}


def _setup(work: Path, demo_from: Path | None = None) -> Path:
    from cohortflow.demo.cohort import demo_manifest, sample_sheet_text

    work.mkdir(parents=True, exist_ok=True)
    (work / "samples.tsv").write_text(sample_sheet_text(demo_manifest(2, 20251123)))
    tpl = _template(work / "template")
    config = work / "config.yaml"
    config.write_text(
        "samples: samples.tsv\n"
        "stages: {ingest: true, preprocess: true, wm_clusters: true, classify: false,\n"
        "         deface: false, deface_qa: false, genotype_qc: true, association: true,\n"
        "         fhir: true}\n"
        "demo: {n_subjects: 2, genotypes: true}\npseudonymise: {allow_demo_key: true}\n"
        "ingest: {export_dicom: true}\n"
        "preprocess:\n  template:\n    source: files\n    files:\n      space: MNI3mm\n"
        f"      image: {tpl['image']}\n      wm_probseg: {tpl['wm_probseg']}\n"
        "genotypes:\n  input: resources/demo/genotypes/demo\n"
        "  phenotype_file: resources/demo/genotypes/demo.pheno.tsv\n  covariates: [AGE]\n"
        + fhir_config_yaml()
    )
    if demo_from is not None:
        shutil.copytree(demo_from / "resources" / "demo", work / "resources" / "demo")
    return config


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORTFLOW_PSEUDONYM")}
    return env | {"SOURCE_DATE_EPOCH": EPOCH}


def _run(work: Path, config: Path) -> None:
    result = snakemake(REPO, work, "--configfile", str(config), env=_env())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The uninterrupted local run every other run is compared with."""
    work = tmp_path_factory.mktemp("repro") / "reference"
    _run(work, _setup(work))
    return work


def _assert_same(reference: Path, other: Path) -> None:
    result = compare_runs(reference, other)
    assert result.ok, result.summary()
    identical = set(result.identical)
    # Every table, image and FHIR bundle is byte-identical; what is not is a JSON record whose
    # only differences are timings (listed in cohortflow.reproducibility), a log or the run
    # record.
    for rel in [*result.equal_without_volatile, *result.numerically_equal]:
        assert rel.endswith(".json") and "_bundle" not in rel, (rel, result.summary())
    for reasons in result.equal_without_volatile.values():
        assert all(why.split(":")[0].endswith(("seconds", "Seconds")) for why in reasons), reasons
    for pattern in ("*.tsv", "*.tsv.gz", "*.nii.gz", "*_bundle.json", "*.png", "*.bed"):
        files = [p for p in identical if Path(p).match(pattern)]
        assert files or pattern == "*.png", pattern
    bundles = list((other / "results" / "fhir").rglob("*_bundle.json"))
    assert bundles and all(str(b.relative_to(other)) in identical for b in bundles)


def test_two_clean_runs_are_byte_identical(reference, tmp_path):
    """Determinism: a second clean run (fresh folder, same command) gives the same bytes for
    every table, image and bundle; JSON records differ only in their timing fields."""
    work = tmp_path / "second"
    _run(work, _setup(work, demo_from=reference))
    _assert_same(reference, work)
    record = json.loads((work / "results" / "provenance" / "run.json").read_text())
    assert record["software"]["antspyx"] == ["0.6.3"]
    assert any(name.startswith("plink2") for name in record["software"])
    assert set(record["inputs"]["mri_sources"]) and record["config"]["sha256"]
    bundle = next((work / "results" / "fhir").rglob("sub-*_bundle.json"))
    prov = next(
        e["resource"] for e in json.loads(bundle.read_text())["entry"]
        if e["resource"]["resourceType"] == "Provenance"
    )  # fmt: skip
    assert prov["recorded"] == "2026-01-01T00:00:00Z"
    assert "ni:///sha-256;" in prov["policy"][0]
    if record["workflow"]["git_commit"]:
        assert prov["policy"][1] == f"urn:cohortflow:git:{record['workflow']['git_commit']}"


def test_sigkill_during_registration_then_resume(reference, tmp_path):
    """A run killed with SIGKILL while a registration job runs is resumed by the same command:
    no partial output survives, and the outputs equal the uninterrupted run's."""
    work = tmp_path / "killed"
    config = _setup(work, demo_from=reference)
    cmd = snakemake_command(REPO, work, "--configfile", str(config), cores=1)
    proc = subprocess.Popen(
        cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    logs = work / "logs"
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if any(logs.rglob("*register*.log")):
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the run ended before registration started"
        time.sleep(3)  # inside antsRegistration now
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    registered = list((work / "results" / "preprocess").rglob("*desc-preproc_FLAIR.nii.gz"))
    assert registered == [], "a registration output appeared although its job was killed"
    # The same command again: Snakemake unlocks nothing by itself, so the profile's
    # rerun-incomplete and the lock check are what a user meets.
    result = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    leftovers = [  # atomic writers' temporaries (Snakemake's own directory markers aside)
        p
        for p in (work / "results").rglob("*")
        if ".tmp" in p.name or (p.name.startswith(".") and p.name != ".snakemake_timestamp")
    ]
    assert leftovers == []
    _assert_same(reference, work)


# ------------------------------------------------------------------------------------ Slurm
def test_demo_through_slurm_equals_local_run(reference, tmp_path):
    """profiles/slurm on a real one-node Slurm (with accounting, so sacct): every job goes
    through sbatch, and the tables and bundles equal the local run's."""
    pytest.importorskip("snakemake_executor_plugin_slurm")
    why = slurm_up()
    if why:
        pytest.skip(why)
    work = tmp_path / "slurm"
    config = _setup(work, demo_from=reference)
    result = subprocess.run(
        # This node has 2 cores: cap each job's threads, and (with snakemake_command's
        # --cores 2) let Snakemake stack a group's side-by-side jobs so the group fits the node.
        snakemake_command(
            REPO, work, "--configfile", str(config),
            "--workflow-profile", str(REPO / "profiles" / "slurm"),
            "--slurm-no-account", "--slurm-init-seconds-before-status-checks", "2",
            "--max-threads", "2",
        ),
        capture_output=True, text=True, env=_env(), timeout=1200, cwd=work,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    submitted = [line for line in output.splitlines() if "SLURM jobid" in line]
    slurm_ids = {line.split("SLURM jobid ")[1].split()[0] for line in submitted}
    assert len(slurm_ids) >= 5, output[-3000:]
    # The profile's groups were used: one job per subject up to the map, one per subject for its
    # FHIR bundle.
    assert sum("slurm_logs/group_subject" in line for line in submitted) == 2, submitted
    assert sum("slurm_logs/group_results" in line for line in submitted) == 2, submitted
    acct = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", ",".join(sorted(slurm_ids))],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    states = dict(line.split("|") for line in acct.splitlines() if line)
    assert set(states) == slurm_ids and set(states.values()) == {"COMPLETED"}, acct
    _assert_same(reference, work)


# ------------------------------------------------------------------------------- container
CONTAINERS_CONF = SHARED_DATA.parent / "containers" / "containers.conf"
IMAGE = "localhost/cohortflow:test"


def _base_image(podman: list[str], env: dict[str, str]) -> str | None:
    """None when the Containerfile's FROM image is there (made from Debian packages with
    debootstrap when missing, as ../shared/containers/README.md does), else why not."""
    text = (REPO / "containers" / "Containerfile").read_text()
    base = next(ln.split()[1] for ln in text.splitlines() if ln.startswith("FROM "))
    if subprocess.run([*podman, "image", "exists", base], env=env).returncode == 0:
        return None
    if not shutil.which("debootstrap") or os.geteuid() != 0:
        return f"{base} is not in podman's store and debootstrap (as root) cannot make it"
    with tempfile.TemporaryDirectory() as rootfs:
        made = subprocess.run(
            ["debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates",
             "bookworm", rootfs],
            capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        if made.returncode != 0:
            return f"debootstrap failed: {made.stderr[-500:]}"
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run([*podman, "import", "-", base], stdin=tar.stdout, env=env)
        tar.wait()
    return None if imported.returncode == 0 else f"podman import of {base} failed"


def _build_args() -> list[str]:
    """This machine builds offline: PyPI through a TLS proxy (its CA), torch's CPU wheel and
    the package indexes from local folders. Elsewhere the Containerfile's defaults apply."""
    args = []
    ca = Path("/etc/ssl/certs/ca-certificates.crt")
    if ca.is_file():
        args += ["--volume", f"{ca}:/host-ca.crt:ro", "--build-arg", "PIP_CERT=/host-ca.crt",
                 "--build-arg", "NODE_EXTRA_CA_CERTS=/host-ca.crt"]  # fmt: skip
    if Path("/opt/wheels").is_dir():
        args += ["--volume", "/opt/wheels:/opt/wheels:ro", "--build-arg",
                 "PIP_FIND_LINKS=/opt/wheels"]  # fmt: skip
    indexes = [d for d in ("/opt/pypi", "/opt/pypi-more") if Path(d, "simple").is_dir()]
    for folder in indexes:
        args += ["--volume", f"{folder}:{folder}:ro"]
    urls = " ".join(f"file://{d}/simple" for d in indexes)
    return [*args, "--build-arg", f"PIP_EXTRA_INDEX_URL={urls}"] if indexes else args


def test_demo_in_container_equals_local_run(reference, tmp_path):
    """containers/Containerfile built with podman; the same demo run inside the image gives
    the same tables, images and bundles as the run outside it. About 3 min from nothing
    (base image by debootstrap, build, run); podman's layer cache makes later runs shorter."""
    if not shutil.which("podman"):
        pytest.skip("podman is not installed (apt-get install podman runc debootstrap)")
    env = dict(os.environ)
    if CONTAINERS_CONF.is_file():  # runc and ulimits this machine needs
        env["CONTAINERS_CONF"] = str(CONTAINERS_CONF)
    podman = ["podman"]
    why = _base_image(podman, env)
    if why:
        pytest.skip(why)
    record = json.loads((reference / "results" / "provenance" / "run.json").read_text())
    commit = record["workflow"]["git_commit"] or ""
    build = subprocess.run(
        [*podman, "build", "--network=host", "-f", "containers/Containerfile", "-t", IMAGE,
         "--build-arg", f"COHORTFLOW_GIT_COMMIT={commit}", *_build_args(), "."],
        cwd=REPO, capture_output=True, text=True, env=env, timeout=3600, check=False,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    work = tmp_path / "container"
    config = _setup(work, demo_from=reference)
    # The same absolute paths inside: the working folder, and ../shared/fhir, which the
    # config names by absolute path (fhir_fallback_args turns it off when absent).
    mounts = ["-v", f"{work}:{work}"]
    fhir = SHARED_DATA.parent / "fhir"
    if fhir.is_dir():
        mounts += ["-v", f"{fhir}:{fhir}:ro"]
    run = subprocess.run(
        [*podman, "run", "--rm", "--network=none", *mounts, "-w", str(work),
         "-e", f"SOURCE_DATE_EPOCH={EPOCH}", IMAGE, "--cores", "2", "--configfile", str(config),
         *fhir_fallback_args()],
        capture_output=True, text=True, env=env, timeout=1800, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-6000:]
    _assert_same(reference, work)
    inside = json.loads((work / "results" / "provenance" / "run.json").read_text())
    assert inside["workflow"]["git_commit"] == record["workflow"]["git_commit"]


def test_report_holds_the_genotype_qc_and_provenance_items(reference):
    """`snakemake --report`: the genotype QC tables and plots, the association plots and the
    run record are in report.zip (the MRI side is checked on the full demo by
    tests/test_workflow_report.py)."""
    globs = [g for stage in ("genotype_qc", "provenance") for g in REPORTED[stage]]
    expected, missing, html = report_contents(reference, globs, env=_env())
    assert not missing, f"marked for the report but not in report.zip: {missing}"
    assert "results/provenance/run.json" in expected
    assert any(p.endswith("manhattan.png") for p in expected)
    assert len([p for p in expected if p.startswith("results/genotype_qc/report/plots/")]) >= 4
    for category in ("Genotype QC", "Association", "Provenance"):
        assert category in html, category
