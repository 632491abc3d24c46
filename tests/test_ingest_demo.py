"""Ingest of the demo agrees with dcm2niix and with the demo's own ground-truth geometry."""

from __future__ import annotations

import json
import subprocess

import nibabel as nib
import numpy as np
import pytest

from cohortflow.paths import bids

pytestmark = pytest.mark.slow


def _canonical(img):
    img = nib.as_closest_canonical(img)
    return img.affine, np.asanyarray(img.get_fdata(dtype=np.float64))


def test_demo_dicom_matches_dcm2niix(demo_run, dcm2niix, tmp_path):
    from cohortflow.demo.cohort import demo_manifest

    checked = 0
    for subject in demo_manifest(4, 20251123):
        if subject.source_format != "dicom":
            continue
        raw = demo_run.workdir / "resources" / "demo" / "mri" / subject.subject / "raw" / "dicom"
        out = tmp_path / subject.subject
        out.mkdir()
        subprocess.run(
            [dcm2niix, "-b", "n", "-z", "n", "-f", "%s", "-o", str(out), str(raw)],
            check=True,
            capture_output=True,
        )
        (reference,) = [p for p in out.glob("5*.nii")]  # series 5 is the FLAIR
        ours = demo_run.workdir / bids(
            "ingest",
            subject=demo_run.good[subject.subject],
            session="01",
            suffix="FLAIR",
            ext=".nii.gz",
        )
        ref_affine, ref_data = _canonical(nib.load(reference))
        our_affine, our_data = _canonical(nib.load(ours))
        assert np.abs(ref_affine - our_affine).max() < 1e-3, subject.profile
        assert ref_data.shape == our_data.shape
        # dcm2niix keeps stored integers with scl_slope; ours holds real-world values.
        np.testing.assert_allclose(our_data, ref_data, rtol=1e-6, atol=1e-4)
        checked += 1
    assert checked == 3


def test_demo_ingest_matches_ground_truth_geometry(demo_run):
    from cohortflow.demo.cohort import demo_manifest

    for subject in demo_manifest(4, 20251123):
        truth = json.loads(
            (
                demo_run.workdir
                / "resources"
                / "demo"
                / "mri"
                / subject.subject
                / "truth"
                / "truth.json"
            ).read_text()
        )
        lesion = nib.load(
            demo_run.workdir
            / "resources"
            / "demo"
            / "mri"
            / subject.subject
            / "truth"
            / "lesion_mask_acq.nii.gz"
        )
        assert np.allclose(lesion.affine, np.asarray(truth["acquisition_affine_ras"]))
        ours = nib.load(
            demo_run.workdir
            / bids(
                "ingest",
                subject=demo_run.good[subject.subject],
                session="01",
                suffix="FLAIR",
                ext=".nii.gz",
            )
        )
        expected_affine, _ = _canonical(lesion)
        assert np.abs(ours.affine - expected_affine).max() < 1e-3, subject.subject
        if subject.lesions:
            # Lesions are bright on FLAIR: the ingested image agrees with the truth mask.
            mask = np.asanyarray(nib.as_closest_canonical(lesion).dataobj) > 0
            data = ours.get_fdata()
            brain = data > np.percentile(data, 60)
            assert data[mask].mean() > 1.3 * data[brain & ~mask].mean()
