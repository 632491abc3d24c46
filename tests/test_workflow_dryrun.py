"""Dry runs over tests/configs/<case>/: config and sheet are checked before the DAG is built."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CASES = {
    "ok_demo_small": (0, ["demo_mri_subject", "ingest", "classify_cv", "classify_predict"]),
    "bad_classify_split": (1, ["split-00", "training subjects of one label only"]),
    "bad_classify_resolution": (
        1,
        ["classify.input.resolution_mm: 1.5 mm is not a whole multiple", "1, 2, 3, 4 mm"],
    ),
    "bad_config_key": (1, ["config key 'ingest.on_multiple'", "pick-one", "'enum'"]),
    "bad_sheet_row": (1, ["row 2", "column 'label'", "maybe", "'enum'"]),
    "no_pseudonym_key": (1, ["no pseudonymisation key", "COHORTFLOW_PSEUDONYM_KEY"]),
    "demo_key_real_data": (1, ["demo pseudonymisation key may only be used", "row 1"]),
    "bad_deface_sheet": (1, ["sample sheet row 2", "'defaced' and 'defacer' go together"]),
    # Your own cohort, without the demo's baggage (no sheet, key or genotypes inherited).
    "genetics_only": (
        0,
        ["cohort inputs: genotypes resources/demo/genotypes/demo", "genotype_qc_import"],
    ),
    "no_inputs": (1, ["stages.ingest is on but no sample sheet is named", "config key 'samples'"]),
    "demo_inputs_not_inherited": (
        1,
        ["stages.genotype_qc is on but no genotypes are named", "'genotypes.input'"],
    ),
}


def _dry_run(repo, workdir, config, *extra):
    """``snakemake -n`` in a fresh working directory holding copies of the configs."""
    shutil.copytree(repo / "config", workdir / "config")
    shutil.copytree(repo / "tests" / "configs", workdir / "tests" / "configs")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORTFLOW_PSEUDONYM")}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "--snakefile",
            str(repo / "Snakefile"),
            "--directory",
            str(workdir),
            "--configfile",
            config,
            *extra,
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_dry_run(repo, tmp_path, case):
    expected_rc, expected_text = CASES[case]
    result = _dry_run(repo, tmp_path, f"tests/configs/{case}/config.yaml")
    output = result.stdout + result.stderr
    assert (result.returncode != 0) == bool(expected_rc), output
    for text in expected_text:
        assert text in output, output
    if expected_rc:
        assert "Building DAG of jobs" not in output, "validation must come before the DAG"


def test_genetics_only_needs_no_sheet_and_no_key(repo, tmp_path):
    result = _dry_run(repo, tmp_path, "tests/configs/genetics_only/config.yaml")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "ingest " not in output and "demo_mri_subject" not in output
    assert "pseudonymisation key" not in output


def _job_counts(output: str) -> dict[str, int]:
    counts = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    return counts


def test_default_config_dry_run_is_the_whole_demo(repo, tmp_path):
    """The ten-minute demo (6 subjects) and the full-size one (12) run every stage."""
    for config, n, dicom, permutations in (
        ("config/config.yaml", 6, 5, 2),
        ("config/demo-full.yaml", 12, 9, 4),
    ):
        result = _dry_run(repo, tmp_path / Path(config).stem, config)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        counts = _job_counts(output)
        for rule, count in (
            ("demo_head_model", 1),
            ("demo_mri_subject", n),
            ("ingest", n),
            ("demo_genotypes", 1),
            ("genotype_qc_import", 1),
            ("genotype_association", 1),
            ("classify_cv", 3),
            ("classify_permutation", permutations),
            ("classify_train", 1),
            ("classify_predict", n),
            ("deface_template", 1),
            ("deface", n),
            ("deface_export_dicom", dicom),  # the DICOM sources
            ("deface_qa_pairs", n),
            ("deface_qa_train", 1),
            ("deface_qa_evaluate", n),
            ("deface_qa_decisions", 1),
            ("fhir_subject", n),
            ("provenance_run", 1),
        ):
            assert counts.get(rule) == count, (config, rule, counts)


def test_cli_passes_snakemake_flags_through(repo, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORTFLOW_PSEUDONYM")}
    cli = [sys.executable, "-m", "cohortflow.cli"]
    result = subprocess.run(
        [*cli, "run", "-n", "--quiet", "rules"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sheet = tmp_path / "sheet.tsv"
    subprocess.run(
        [*cli, "demo-sheet", "--n-subjects", "4", "-o", str(sheet)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    assert sheet.read_text() == (repo / "tests/configs/ok_demo_small/samples.tsv").read_text()


def test_site_profile_settings_reach_every_slurm_job(repo, tmp_path):
    """The partition and account in a site profile (profiles/slurm-site.example) survive the
    workflow profile read after it: profiles/slurm sets no default-resources to replace them."""
    pytest.importorskip("snakemake_executor_plugin_slurm")
    site = repo / "profiles" / "slurm-site.example"
    result = _dry_run(
        repo, tmp_path, "tests/configs/ok_demo_small/config.yaml",
        "--profile", str(site), "--workflow-profile", str(repo / "profiles" / "slurm"),
        "--slurm-no-account",
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    resources = [line for line in output.splitlines() if line.strip().startswith("resources:")]
    assert len(resources) > 20, output
    for line in resources:
        assert "slurm_partition=compute" in line and "slurm_account=myproject" in line, line
