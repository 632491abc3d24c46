"""The container definitions, checked statically: the OCI Containerfile and the Apptainer
definition use the same pinned base and the same install steps, and the Python lock agrees
with pyproject.toml. (Building the image and running the demo in it, compared with the same run
outside, is in tests/test_workflow_reproducible.py.) Apptainer is not installed here, so its
definition is never built: these checks are all it gets on this machine."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

CONTAINERS = Path(__file__).resolve().parents[1] / "containers"


def _from_line(text: str, keyword: str) -> str:
    (line,) = [ln for ln in text.splitlines() if ln.startswith(keyword)]
    return line.split(None, 1)[1].strip()


def _lock() -> dict[str, str]:
    pins = {}
    for line in (CONTAINERS / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and version, f"constraints.txt: not an exact pin: {line}"
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_base_image_is_pinned_by_version_and_the_same_in_both():
    oci = _from_line((CONTAINERS / "Containerfile").read_text(), "FROM")
    apptainer = _from_line((CONTAINERS / "cohortflow.def").read_text(), "From:")
    assert re.fullmatch(r"docker\.io/library/debian:\d+\.\d+-slim", oci), oci
    assert "latest" not in oci and "latest" not in apptainer
    assert oci == f"docker.io/library/{apptainer}"
    assert "Bootstrap: docker" in (CONTAINERS / "cohortflow.def").read_text()


def test_both_definitions_run_the_same_install_steps():
    steps = ["system", "python", "package"]
    for name in ("Containerfile", "cohortflow.def"):
        text = (CONTAINERS / name).read_text()
        found = re.findall(r"sh /opt/cohortflow/containers/install\.sh (\w+)", text)
        assert found == steps, (name, found)
        assert "/opt/cohortflow/containers/entrypoint.sh" in text, name
    install = (CONTAINERS / "install.sh").read_text()
    for step in steps:
        assert f"\n{step})\n" in install


def test_apptainer_files_and_oci_copies_hold_the_same_sources():
    """What the Containerfile COPYs into /opt/cohortflow, the definition's %files lists too,
    and the build context (.dockerignore) lets it through."""
    oci = (CONTAINERS / "Containerfile").read_text()
    copied = set()
    for line in oci.splitlines():
        if line.startswith("COPY "):
            *sources, _target = line.split()[1:]
            copied |= {s.split("/")[0] for s in sources}
    definition = (CONTAINERS / "cohortflow.def").read_text()
    files_section = definition.split("\n%files", 1)[1].split("\n%", 1)[0]
    listed = {ln.split()[0].split("/")[0] for ln in files_section.splitlines() if ln.strip()}
    assert copied == listed
    ignore = (CONTAINERS.parent / ".dockerignore").read_text().splitlines()
    allowed = {ln[1:] for ln in ignore if ln.startswith("!")}
    assert copied <= allowed, copied - allowed
    for name in copied:
        assert (CONTAINERS.parent / name).exists(), name


def test_lock_holds_every_pyproject_pin():
    project = tomllib.loads((CONTAINERS.parent / "pyproject.toml").read_text())["project"]
    lock = _lock()
    for dep in project["dependencies"] + project["optional-dependencies"]["slurm"]:
        name, _, version = dep.partition("==")
        name = name.strip().lower().replace("_", "-")
        assert name in lock, f"constraints.txt lacks {name}"
        # The lock names torch's CPU build (2.13.0+cpu) of the pinned release.
        assert lock[name].split("+")[0] == version.strip(), (name, lock[name], version)
    assert lock["torch"] == "2.13.0+cpu"
    assert "cohortflow" not in lock


def test_debian_package_pins_are_the_ones_the_tests_run():
    install = (CONTAINERS / "install.sh").read_text()
    pins = dict(re.findall(r"^(PLINK2|PLINK19|DCM2NIIX)=(\S+)$", install, flags=re.M))
    assert set(pins) == {"PLINK2", "PLINK19", "DCM2NIIX"}
    if shutil.which("dpkg-query") is None:
        pytest.skip("not a Debian machine: cannot compare with the installed packages")
    for package, key in (("plink2", "PLINK2"), ("plink1.9", "PLINK19"), ("dcm2niix", "DCM2NIIX")):
        done = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True
        )
        if done.returncode != 0:
            continue  # not installed here; the workflow tests that need it skip
        assert done.stdout == pins[key], (package, done.stdout, pins[key])


def test_scripts_are_posix_shell_that_parses():
    for name in ("install.sh", "entrypoint.sh"):
        done = subprocess.run(["sh", "-n", str(CONTAINERS / name)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
