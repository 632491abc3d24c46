"""The provenance record of a run (results/provenance/run.json) and its output checksums.

What a reproducibility reviewer needs to rerun and audit a run, in one file:

* ``workflow``: cohortflow's version and git commit (``-dirty`` when tracked files differ from it;
  from ``COHORTFLOW_GIT_COMMIT`` where there is no checkout, e.g. in the container);
* ``config``: the validated, resolved config and its SHA-256 (the hash FHIR Provenance.policy
  carries);
* ``software``: every package and tool version the jobs recorded in their sidecars and QC
  records (PLINK builds included), as used; two versions of one name mean the jobs ran in
  different environments, and both are listed;
* ``environment``: Python, platform and the versions installed where this record was written;
* ``inputs``: SHA-256 of the sample sheet, of each subject's source images (as ingest recorded
  them) and of the genotype files;
* ``outputs``: SHA-256 of every file under results/ (also written as checksums.sha256);
* ``this_run``: time, host and user — the only block that differs between two runs
  (cohortflow.reproducibility lists it as volatile).
"""

from __future__ import annotations

import getpass
import json
import os
import platform
import socket
import subprocess
import sys
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from cohortflow import __version__
from cohortflow.io.atomic import sha256_file, write_json, write_text
from cohortflow.provenance import input_checksums
from cohortflow.reproducibility import checksums

#: Packages whose installed versions the record lists for the writing environment.
PACKAGES = (
    "snakemake", "numpy", "scipy", "pandas", "nibabel", "pydicom", "SimpleITK", "antspyx",
    "nilearn", "torch", "scikit-learn", "matplotlib", "fhir.resources", "jsonschema",
    "snakemake-executor-plugin-slurm",
)  # fmt: skip


def workflow_commit(repo: str | Path) -> str | None:
    """The checkout's git commit (``<sha>-dirty`` with uncommitted changes to tracked files),
    else ``$COHORTFLOW_GIT_COMMIT``, else None."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("COHORTFLOW_GIT_COMMIT") or None
    return f"{sha}-dirty" if dirty else sha


def _installed() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def software_used(records: list[Path]) -> dict[str, list[str]]:
    """Versions recorded by the jobs: ``Software``/``software`` maps and PLINK runs."""
    used: dict[str, set[str]] = {}

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key in ("Software", "software") and isinstance(item, dict):
                    for name, ver in item.items():
                        used.setdefault(name, set()).add(str(ver))
                elif key == "plink_runs" and isinstance(item, list):
                    for run in item:
                        if isinstance(run, dict) and run.get("engine"):
                            used.setdefault(run["engine"], set()).add(str(run.get("version")))
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for path in records:
        try:
            walk(json.loads(Path(path).read_text()))
        except (OSError, ValueError):
            continue
    return {name: sorted(versions) for name, versions in sorted(used.items())}


def output_checksums(results: str | Path, exclude: tuple[str, ...] = ()) -> dict[str, str]:
    """SHA-256 of the files under ``results`` (path as given + relative path), hidden
    files (Snakemake's directory markers) and ``exclude`` left out."""
    results = Path(results)
    found = checksums(results.parent, (results.name,))
    return {
        path: sha
        for path, sha in found.items()
        if path not in exclude and not Path(path).name.startswith(".")
    }


def _is_subject(part: str) -> bool:
    """A BIDS subject entity as a path part ("sub-3fa9c2d17e01", "sub-3fa9..._ses-1_...")."""
    return part.startswith("sub-")


def write_run_record(
    out_json: str | Path,
    out_checksums: str | Path,
    *,
    config: dict[str, Any],
    config_sha256: str,
    commit: str | None,
    sample_sheet: str | Path | None,
    ingest_sidecars: list[str | Path],
    genotype_files: list[str | Path],
    key_fingerprint: str | None = None,
    results: str | Path = "results",
) -> dict[str, Any]:
    """Write the record and the checksum list. Outputs of subjects that are not in this run's
    sheet under this run's key (``ingest_sidecars``) are left out of both, though they may
    still lie in ``results``: a record lists what this run produced."""
    records = sorted(Path(results).rglob("*.json"))
    mri = {}
    for path in ingest_sidecars:
        sidecar = json.loads(Path(path).read_text())
        key = f"sub-{sidecar.get('Subject')}_ses-{sidecar.get('Session')}"
        mri[key] = {
            "format": sidecar.get("SourceFormat"),
            "files": sidecar.get("InputFiles"),
            "sha256": sidecar.get("InputSHA256"),
        }
    exclude = (Path(out_json).as_posix(), Path(out_checksums).as_posix())
    labels = {key.split("_ses-")[0] for key in mri}
    outputs = {
        path: sha
        for path, sha in output_checksums(results, exclude).items()
        if all(part.split("_")[0] in labels for part in Path(path).parts if _is_subject(part))
    }
    record = {
        "workflow": {"name": "cohortflow", "version": __version__, "git_commit": commit},
        "config": {"sha256": config_sha256, "resolved": config},
        "pseudonym_key": {"fingerprint": key_fingerprint},
        "software": software_used(records),
        "environment": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "executable": sys.executable,
            "packages": _installed(),
        },
        "inputs": {
            **(input_checksums({"sample_sheet": sample_sheet}) if sample_sheet else {}),
            "mri_sources": mri,
            "genotypes": {str(p): sha256_file(p) for p in genotype_files},
        },
        "outputs": outputs,
        "this_run": {
            "written": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "host": socket.gethostname(),
            "user": getpass.getuser(),
        },
    }
    write_text(out_checksums, "".join(f"{sha}  {path}\n" for path, sha in outputs.items()))
    write_json(out_json, record)
    return record
