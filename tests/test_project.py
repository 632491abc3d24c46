"""The project's own standing checks: README commands, CI script, env pins, linters."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

BIN = Path(sys.executable).parent


def _readme_commands(repo: Path) -> list[str]:
    lines = (repo / "README.md").read_text().splitlines()[:6]
    return [m.group(1) for line in lines if (m := re.search(r"`([^`]*&&[^`]*)`", line))]


def test_readme_opens_with_demo_and_test_commands(repo):
    demo, tests = _readme_commands(repo)[:2]
    assert "snakemake --cores all && snakemake --report results/report.html" in demo
    assert demo.startswith("apt-get update") and "plink2 plink1.9" in demo
    assert tests.endswith("pytest")


def test_ci_runs_the_readme_test_command_verbatim(repo):
    tests = _readme_commands(repo)[1]
    ci_lines = (repo / ".ci" / "run").read_text().splitlines()
    assert tests in ci_lines


def _pins(repo: Path) -> dict[str, str]:
    deps = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {}
    for dep in deps:
        name, _, version = dep.partition("==")
        pins[name.strip().lower()] = version.strip()
    return pins


def test_dependencies_are_exact_pins_with_torch_exactly(repo):
    pins = _pins(repo)
    assert pins["torch"] == "2.13.0"
    assert all(pins.values()), "every runtime dependency is pinned exactly"


def test_conda_env_pins_agree_with_pyproject(repo):
    pins = _pins(repo)
    for env_file in sorted((repo / "envs").glob("*.yaml")):
        env = yaml.safe_load(env_file.read_text())
        assert env["channels"] == ["conda-forge", "bioconda", "nodefaults"], env_file
        for dep in env["dependencies"]:
            items = dep["pip"] if isinstance(dep, dict) else [dep]
            for item in items:
                match = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*==?\s*(\S+)", item)
                if match and match[1].lower() in pins:
                    assert match[2] == pins[match[1].lower()], f"{env_file.name}: {item}"


def test_every_rule_has_log_and_env(repo):
    for smk in (repo / "workflow" / "rules").glob("*.smk"):
        text = smk.read_text()
        for block in re.split(r"\n(?=rule )", text)[1:]:
            name = block.split(":")[0]
            assert "log:" in block, f"{smk.name}: {name} lacks log:"
            assert "conda:" in block or "container:" in block, f"{smk.name}: {name} lacks env"


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)


def _tool(name: str) -> str:
    exe = BIN / name
    if exe.exists():
        return str(exe)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return found


def test_ruff_clean(repo):
    ruff = _tool("ruff")
    for cmd in ([ruff, "check", "."], [ruff, "format", "--check", "."]):
        result = _run(cmd, repo)
        assert result.returncode == 0, result.stdout + result.stderr


def test_snakefmt_clean(repo):
    result = _run([_tool("snakefmt"), "--check", "Snakefile", "workflow"], repo)
    assert result.returncode == 0, result.stdout + result.stderr


def test_snakemake_lint_clean(repo):
    result = _run([_tool("snakemake"), "--lint", "--directory", str(repo)], repo)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr, result.stdout + result.stderr


def test_every_rule_declares_threads_memory_and_runtime(repo):
    """What a scheduler needs comes from the rules; memory grows with the attempt (retries)."""
    for smk in (repo / "workflow" / "rules").glob("*.smk"):
        for block in re.split(r"\n(?=rule )", smk.read_text())[1:]:
            name = block.split(":")[0]
            assert "threads:" in block, f"{smk.name}: {name} lacks threads"
            assert "mem_mb=attempt_scaled(" in block, f"{smk.name}: {name} lacks mem_mb"
            assert "runtime=" in block, f"{smk.name}: {name} lacks runtime"


def _assert_every_setting_commented(text: str) -> None:
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#") and not line.endswith(":"):
            assert "#" in line, f"uncommented setting: {line}"


def test_slurm_profile_is_commented_and_leaves_site_settings_out(repo):
    profile = repo / "profiles" / "slurm" / "config.yaml"
    settings = yaml.safe_load(profile.read_text())
    assert settings["executor"] == "slurm" and settings["retries"] >= 1
    assert "slurm_partition" not in profile.read_text().split("# What belongs")[0]
    for key in ("slurm_partition", "slurm_account"):
        assert key not in (settings.get("default-resources") or {})
    _assert_every_setting_commented(profile.read_text())
    assert set(settings["group-components"]) <= set(settings["groups"].values())
    # One subject per group job: a failing step makes Snakemake remove the outputs of every job
    # in its group job, so several subjects per job would let one bad subject sink the others.
    assert set(settings["group-components"].values()) == {1}
    rules = {
        m.group(1)
        for smk in (repo / "workflow" / "rules").glob("*.smk")
        for m in re.finditer(r"^rule (\w+):", smk.read_text(), re.M)
    }
    assert set(settings["groups"]) <= rules, set(settings["groups"]) - rules  # real rules


def test_array_profile_differs_from_the_slurm_profile_only_where_it_says(repo):
    """profiles/slurm-array is profiles/slurm without groups, with job arrays and a larger
    `jobs`; every other setting agrees, and every setting is commented."""
    base = yaml.safe_load((repo / "profiles" / "slurm" / "config.yaml").read_text())
    text = (repo / "profiles" / "slurm-array" / "config.yaml").read_text()
    array = yaml.safe_load(text)
    assert "groups" not in array and "group-components" not in array
    assert array["slurm-array-jobs"] == "all" and array["jobs"] >= array["slurm-array-limit"]
    own = {"groups", "group-components", "jobs", "slurm-array-jobs", "slurm-array-limit"}
    shared = set(base) | set(array)
    assert {k: base.get(k) for k in shared - own} == {k: array.get(k) for k in shared - own}
    _assert_every_setting_commented(text)
