"""Preprocessing and white-matter clustering end to end through Snakemake (demo_run).

The 4 demo subjects go through N4, registration (default preset) and RFCM; demo lesions (known
in acquisition space) must land in the chosen cluster; images that no step can use fail their
own job with a clear message; images that run but make no sense are flagged in the cohort QC
table.
"""

from __future__ import annotations

import csv
import json
import re

import nibabel as nib
import numpy as np
import pytest
from conftest import DEMO_SPACE

from cohortflow.io.nifti import SCANNER_CODE, write_nifti
from cohortflow.paths import bids, subject_log
from cohortflow.preprocess.registration import apply_forward

pytestmark = pytest.mark.slow

SPACE = DEMO_SPACE
REFUSED = {"constant": r"image is constant", "two_slices": r"not a 3D head volume"}


def outputs(label: str) -> dict[str, str]:
    def pre(desc, ext, space=SPACE, suffix="FLAIR", datatype="anat"):
        return bids(
            "preprocess", subject=label, session="01", space=space, desc=desc,
            suffix=suffix, ext=ext, datatype=datatype,
        )  # fmt: skip

    def wmc(desc, ext, suffix="probseg", datatype="anat"):
        return bids(
            "wm_clusters", subject=label, session="01", space=SPACE, desc=desc,
            suffix=suffix, ext=ext, datatype=datatype,
        )  # fmt: skip

    out = {
        "n4": pre("n4", ".nii.gz", space=None),
        "n4_json": pre("n4", ".json", space=None),
        "registered": pre("preproc", ".nii.gz"),
        "registered_json": pre("preproc", ".json"),
        "transform": pre(None, ".nii.gz", None, f"from-FLAIR_to-{SPACE}_mode-image_xfm"),
        "reg_qc": pre("registration", ".tsv", suffix="qc", datatype="figures"),
        "reg_png": pre("registration", ".png", suffix="qc", datatype="figures"),
        "wm_map": wmc("wmcluster", ".nii.gz"),
        "wm_json": wmc("wmcluster", ".json"),
        "wm_qc": wmc("clusters", ".tsv", suffix="qc", datatype="figures"),
        "wm_png": wmc("clusters", ".png", suffix="qc", datatype="figures"),
    }
    for k in (1, 2, 3):
        out[f"cluster{k}"] = wmc(f"cluster{k}", ".nii.gz")
    return out


def qc_table(run) -> dict[str, dict[str, str]]:
    path = run.workdir / "results" / "preprocess" / "qc.tsv"
    assert path.is_file(), run.step3_output[-3000:]
    with path.open() as fh:
        return {row["subject"]: row for row in csv.DictReader(fh, delimiter="\t")}


def test_good_subjects_have_every_output_and_pass_qc(demo_run):
    assert demo_run.step3_returncode == 0, demo_run.step3_output[-3000:]
    table = qc_table(demo_run)
    for label in demo_run.good.values():
        for name, rel in outputs(label).items():
            assert (demo_run.workdir / rel).is_file(), f"{name}: {rel} missing"
        row = table[label]
        assert row["qc_pass"] == "yes", row
        assert float(row["wm_dice"]) > 0.8 and row["wm_cluster"] == "3"
        assert float(row["folded_fraction"]) == 0.0
        sidecar = json.loads((demo_run.workdir / outputs(label)["registered_json"]).read_text())
        assert sidecar["Preset"]["name"] == "fast" and sidecar["Space"] == SPACE
        assert sidecar["Inputs"]["template"]["sha256"]
        wm = json.loads((demo_run.workdir / outputs(label)["wm_json"]).read_text())
        assert set(wm["DiceWithWMReference"]) == {"cluster1", "cluster2", "cluster3"}
        assert wm["Converged"]
        img = nib.load(demo_run.workdir / outputs(label)["wm_map"])
        template = nib.load(demo_run.workdir / f"resources/templates/{SPACE}/template.nii.gz")
        assert img.shape == template.shape and np.allclose(img.affine, template.affine)
        data = img.get_fdata()
        assert data.max() <= 1.0 and data[data > 0].min() >= 0.5  # below 0.5 set to 0


def test_demo_lesions_land_in_the_chosen_cluster(demo_run):
    """The ground-truth lesions, carried to the template with the subject's own transform."""
    from cohortflow.demo.cohort import demo_manifest

    work = demo_run.workdir
    brain = nib.load(work / f"resources/templates/{SPACE}/brain_mask.nii.gz").get_fdata() > 0.5
    checked = 0
    for subject in demo_manifest(4, 20251123):
        if not subject.lesions:
            continue
        out = outputs(demo_run.good[subject.subject])
        mask = nib.load(work / f"resources/demo/mri/{subject.subject}/truth/lesion_mask_acq.nii.gz")
        # Ingest reorients to RAS+; the transform expects the ingested grid.
        canonical = nib.as_closest_canonical(mask)
        lesion_path = work / f"{subject.subject}_lesion.nii.gz"
        write_nifti(
            lesion_path, canonical.get_fdata().astype(np.uint8), canonical.affine, code=SCANNER_CODE
        )
        template = work / f"resources/templates/{SPACE}/template.nii.gz"
        lesion = (
            apply_forward(lesion_path, template, work / out["transform"], "nearestNeighbor") > 0.5
        )
        wm_map = nib.load(work / out["wm_map"]).get_fdata() > 0
        lesion_share = (lesion & wm_map).sum() / lesion.sum()
        cluster_share = (wm_map & brain).sum() / brain.sum()
        assert lesion.sum() > 100
        assert lesion_share >= 2 * cluster_share, (subject.subject, lesion_share, cluster_share)
        checked += 1
    assert checked >= 2


@pytest.mark.parametrize("mode", sorted(REFUSED))
def test_unusable_images_fail_their_own_job(demo_run, mode):
    label, _ = demo_run.bad[mode]
    # Ingest accepted it (it is a valid NIfTI); N4 refuses it.
    assert (
        demo_run.workdir
        / bids("ingest", subject=label, session="01", suffix="FLAIR", ext=".nii.gz")
    ).is_file()
    for name, rel in outputs(label).items():
        assert not (demo_run.workdir / rel).exists(), f"{mode}: {name} left behind"
    log = demo_run.workdir / subject_log("preprocess", "n4", subject=label, session="01")
    error = [line for line in log.read_text().splitlines() if " ERROR " in line]
    assert error and f"sub-{label}" in error[-1], log.read_text()
    assert re.search(REFUSED[mode], error[-1]), error[-1]
    assert "FLAIR.nii.gz" in error[-1]  # the file at fault
    assert "Traceback" not in log.read_text()


@pytest.mark.parametrize("mode", ["not_brain", "upside_down"])
def test_nonsense_images_are_flagged_in_the_cohort_qc_table(demo_run, mode):
    row = qc_table(demo_run)[demo_run.flagged[mode]]
    assert row["qc_pass"] == "no", row
    # A correlation of 0.31-0.32 after three SyN passes; mutual information 0.07-0.09.
    assert "mutual_information" in row["qc_flags"], row


def test_no_temporary_files_left_by_preprocessing(demo_run):
    for stage in ("preprocess", "wm_clusters"):
        leftovers = [
            p for p in (demo_run.workdir / "results" / stage).rglob("*") if ".tmp" in p.name
        ]
        assert leftovers == []
