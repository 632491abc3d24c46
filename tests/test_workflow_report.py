"""`snakemake --report` gives one ZIP report of the demo holding every QC figure and table the
rules mark with report(): checked on the full demo run (MRI, classification, defacing) here,
and on the genotype side in tests/test_workflow_reproducible.py (demo_run has no genotypes)."""

from __future__ import annotations

import re

from conftest import REPO, REPORTED, TEST_KEY, report_contents


def test_every_report_output_of_the_rules_is_listed_here():
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        declared = len(re.findall(r"\breport\(", smk.read_text()))
        assert declared == len(REPORTED.get(smk.stem, [])), smk.name


def test_demo_report_holds_every_figure_and_table(demo_run):
    assert demo_run.step3_returncode == 0, demo_run.step3_output[-3000:]
    env = {"COHORTFLOW_PSEUDONYM_KEY": TEST_KEY}
    stages = ("classify", "deface", "preprocess", "provenance", "wm_clusters")
    globs = [g for stage in stages for g in REPORTED[stage]]
    expected, missing, html = report_contents(demo_run.workdir, globs, env=env)
    assert not missing, f"marked for the report but not in report.zip: {missing}"
    # Every stage contributed (per subject figures for each demo subject).
    for stage in stages:
        assert any(p.startswith(f"results/{stage}") for p in expected), stage
    subjects = len(demo_run.good)
    mosaics = [p for p in expected if p.endswith("_desc-registration_qc.png")]
    assert len(mosaics) >= subjects
    for category in ("Preprocessing", "Classification", "Defacing", "Provenance"):
        assert category in html, category
