"""Real FLAIR of MS patients (../shared/data/mri/nifti): preprocessing end to end.

* ms_patient07_mni: FLAIR with the multi-rater consensus lesion mask. The image goes through
  N4, registration (default preset) and clustering; the lesion mask is carried to the
  template with the same transform. Lesions are bright on FLAIR, so they must land in the
  chosen (bright white-matter) cluster far more often than a random brain voxel does.
* ms_patient01_native: raw 2D FLAIR with skull (0.72 x 0.72 x 4 mm): passes the cohort QC.

Each subject's pipeline is single-threaded (as in the workflow), so the two run side by side in
two processes, once for the module; each test then checks its own subject.
"""

from __future__ import annotations

import json
import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor

import nibabel as nib
import numpy as np
import pytest

from cohortflow.io.nifti import SCANNER_CODE, write_nifti
from cohortflow.preprocess.n4 import N4Settings
from cohortflow.preprocess.registration import apply_forward
from cohortflow.preprocess.run import qc_flags, run_n4, run_registration
from cohortflow.preprocess.templates import TEMPLATE_FILES, prepare_template
from cohortflow.wm_clusters.clusters import ClusterSettings
from cohortflow.wm_clusters.run import run_wm_clusters

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]

QC_BOUNDS = {
    "min_correlation": 0.3,
    "min_mutual_information": 0.15,
    "min_wm_dice": 0.7,
    "max_folded_fraction": 0.0,
    "jacobian_range": [0.05, 20.0],
}


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    work = tmp_path_factory.mktemp("template")
    files = {k: work / f"{k}.nii.gz" for k in TEMPLATE_FILES}
    prepare_template(
        {"source": "nilearn", "wm_reference": {"threshold": 0.5}}, files, work / "t.json"
    )
    return files, work / "t.json"


@pytest.fixture(scope="module")
def real_runs(shared_data, template, tmp_path_factory) -> dict[str, tuple[Future, object]]:
    """Both subjects through N4, registration and clustering at once: subject -> (future, work)."""
    folder = shared_data / "mri" / "nifti"
    images = {
        "patient07": folder / "ms_patient07_mni" / "FLAIR.nii.gz",
        "patient01": folder / "ms_patient01_native" / "FLAIR.nii.gz",
    }
    runs = {}
    spawn = multiprocessing.get_context("spawn")  # no forked copy of pytest's threads
    with ProcessPoolExecutor(max_workers=2, mp_context=spawn) as pool:
        for subject, image in images.items():
            work = tmp_path_factory.mktemp(subject)
            runs[subject] = (pool.submit(_pipeline, image, template, work, subject), work)
    return runs


def _pipeline(image, template, work, subject):
    files, record = template
    n4 = work / "n4.nii.gz"
    run_n4(image, n4, work / "n4.json", N4Settings(), subject=subject)
    reg = run_registration(
        n4, files, record, "fast", work / "reg.nii.gz", work / "reg.json", work / "reg.tsv",
        work / "xfm.nii.gz", subject=subject,
    )  # fmt: skip
    clusters = run_wm_clusters(
        work / "reg.nii.gz",
        files,
        ClusterSettings(),
        memberships_out=[work / f"c{k}.nii.gz" for k in (1, 2, 3)],
        wm_map_out=work / "wm.nii.gz",
        sidecar_out=work / "wm.json",
        metrics_out=work / "wm.tsv",
        mosaic_out=work / "wm.png",
        subject=subject,
    )
    return reg, clusters


def test_lesions_land_in_the_chosen_white_matter_cluster(shared_data, template, real_runs):
    folder = shared_data / "mri" / "nifti" / "ms_patient07_mni"
    future, tmp_path = real_runs["patient07"]
    reg, clusters = future.result()
    # The lesion mask is on the FLAIR's grid; same transform, nearest neighbour.
    lesion_img = nib.load(folder / "lesion_mask.nii.gz")
    write_nifti(tmp_path / "lesion.nii.gz", (lesion_img.get_fdata() > 0.5).astype(np.uint8),
                lesion_img.affine, code=SCANNER_CODE)  # fmt: skip
    files, _ = template
    lesion = (
        apply_forward(
            tmp_path / "lesion.nii.gz",
            files["template"],
            tmp_path / "xfm.nii.gz",
            "nearestNeighbor",
        )
        > 0.5
    )
    wm_map = nib.load(tmp_path / "wm.nii.gz").get_fdata() > 0
    brain = nib.load(files["brain_mask"]).get_fdata() > 0.5
    lesion_share = float((lesion & wm_map).sum() / lesion.sum())
    cluster_share = float((wm_map & brain).sum() / brain.sum())
    record = json.loads((tmp_path / "wm.json").read_text())
    print(
        f"patient07: {int(lesion.sum())} lesion voxels in template space; {lesion_share:.3f} in "
        f"cluster {record['ChosenCluster']} (Dice {clusters['wm_dice']:.3f}), which holds "
        f"{cluster_share:.3f} of the brain; registration {reg}"
    )
    assert lesion.sum() > 500
    assert lesion_share >= 2 * cluster_share, (lesion_share, cluster_share)
    assert record["ChosenCluster"] == 3  # the brightest cluster


def test_raw_native_flair_with_skull_passes_qc(real_runs):
    future, _ = real_runs["patient01"]
    reg, clusters = future.result()
    row = {k: str(v) for k, v in {**reg, **clusters}.items()}
    print(f"patient01: {row}")
    assert qc_flags(row, QC_BOUNDS) == []
