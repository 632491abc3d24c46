"""The demo's Snakemake report opened in a real headless browser (Debian's chromium).

The report is the one the README's first command writes (``results/report.html``); .ci/run
makes it in a fresh clone with nothing beside it and passes its path in
``COHORTFLOW_DEMO_REPORT``. Without it the test skips. The page must render (a screenshot
that is not blank) and, once its scripts have run, show every part a reviewer needs: the
preprocessing QC mosaics, the classifier's metrics, the defacing renders, the genotype QC
plots and the provenance record.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

REPORT = os.environ.get("COHORTFLOW_DEMO_REPORT")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# What a reviewer looks for, by the report's categories and file names.
EXPECTED = {
    "preprocessing QC mosaics": ["Preprocessing", "desc-registration_qc.png"],
    "classifier metrics": ["Classification", "metrics.tsv"],
    "defacing renders": ["Defacing", "_faces.png"],
    "genotype QC plots": ["Genotype QC", "plots"],
    "provenance": ["Provenance", "run.json"],
}

pytestmark = [
    pytest.mark.skipif(not REPORT, reason="COHORTFLOW_DEMO_REPORT not set (.ci/run sets it)"),
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed"),
]


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=15000", *args, Path(REPORT).resolve().as_uri()],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


def test_report_renders_in_a_browser(tmp_path):
    from PIL import Image

    shot = tmp_path / "report.png"
    done = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,1000")
    assert shot.is_file(), done.stdout + done.stderr
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 10, "the screenshot is blank: the report did not render"


def test_report_shows_every_part_a_reviewer_needs(tmp_path):
    done = _chromium(tmp_path, "--dump-dom")
    dom = done.stdout
    assert len(dom) > 10_000, done.stderr[-2000:]
    missing = {part: [w for w in words if w not in dom] for part, words in EXPECTED.items()}
    assert not any(missing.values()), missing
