"""The conda envs get the cohortflow package: each env's post-deploy script installs it.

Conda channels are unreachable here, so Snakemake cannot build the envs themselves; what is
tested is the piece cohortflow adds: the post-deploy script, run in a fresh Python environment
the way Snakemake runs it (env active, COHORTFLOW_SOURCE exported by the workflow).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ENV_GROUPS = ("imaging", "torch", "plink", "fhir")


def test_every_env_has_a_post_deploy_script_that_installs_the_package(repo):
    envs = repo / "envs"
    assert sorted(p.stem for p in envs.glob("*.yaml")) == sorted(ENV_GROUPS)
    for group in ENV_GROUPS:
        script = envs / f"{group}.post-deploy.sh"
        assert script.is_file(), f"{script.name} missing: Snakemake would not install cohortflow"
        assert "install-package.sh" in script.read_text()


def test_rules_name_envs_that_exist(repo):
    named = set()
    for smk in (repo / "workflow" / "rules").glob("*.smk"):
        named |= set(re.findall(r'"\.\./\.\./envs/([a-z]+)\.yaml"', smk.read_text()))
    assert named == set(ENV_GROUPS)


def test_workflow_exports_the_checkout_for_the_post_deploy_scripts(repo):
    common = (repo / "workflow" / "rules" / "common.smk").read_text()
    assert "os.environ.update(COHORTFLOW_SOURCE=str(Path(workflow.basedir).resolve()))" in common


def _fresh_env(tmp_path: Path) -> Path:
    prefix = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", str(prefix)], check=True, timeout=120)
    return prefix


@pytest.mark.parametrize("group", ["plink"])
def test_post_deploy_installs_the_package_into_a_fresh_env(repo, tmp_path, group):
    """The env's python imports cohortflow from the checkout afterwards, with no dependency
    pulled in (--no-deps: the env's yaml pins those)."""
    prefix = _fresh_env(tmp_path)
    env = {
        **os.environ,
        "PATH": f"{prefix / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "VIRTUAL_ENV": str(prefix),
        "COHORTFLOW_SOURCE": str(repo),
    }
    env.pop("PYTHONPATH", None)
    script = repo / "envs" / f"{group}.post-deploy.sh"
    done = subprocess.run(
        ["bash", str(script)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cohortflow" in done.stdout and str(prefix) in done.stdout
    python = prefix / "bin" / "python"
    where = subprocess.run(
        [str(python), "-c", "import cohortflow; print(cohortflow.__file__)"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).resolve().is_relative_to((repo / "src").resolve())
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names = {line.split("==")[0].lower() for line in listed.splitlines() if "==" in line}
    assert "cohortflow" in names
    assert not names & {"numpy", "torch", "antspyx", "snakemake"}, names


def _bash(script: Path, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(script)], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_post_deploy_without_the_checkout_path_fails_clearly(repo, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "COHORTFLOW_SOURCE"}
    done = _bash(repo / "envs" / "imaging.post-deploy.sh", env, tmp_path)
    assert done.returncode != 0
    assert "COHORTFLOW_SOURCE" in done.stderr
    env["COHORTFLOW_SOURCE"] = str(tmp_path)
    done = _bash(repo / "envs" / "install-package.sh", env, tmp_path)
    assert done.returncode == 1
    assert "not a cohortflow checkout" in done.stderr
