"""The demo MRI cohort: composition, heterogeneity, ground truth, faces, planted PHI."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pydicom
import pytest

from cohortflow.demo.cohort import demo_manifest, sample_sheet_text
from cohortflow.demo.scanners import PROFILES


def test_manifest_composition():
    subjects = demo_manifest(12, 20251123)
    assert len(subjects) == 12
    assert sum(s.lesions for s in subjects) == 6
    assert len({s.profile for s in subjects}) >= 3
    assert {s.source_format for s in subjects} == {"dicom", "nifti"}
    for profile in {s.profile for s in subjects}:
        labels = {s.lesions for s in subjects if s.profile == profile}
        assert labels == {True, False}, f"{profile} needs subjects with and without lesions"
    assert demo_manifest(12, 20251123) == subjects  # deterministic


def test_shipped_sheets_are_the_demo_manifest(repo):
    """config/samples.tsv: the ten-minute demo (6 heads); samples-full.tsv: the full one."""
    for name, n in (("samples.tsv", 6), ("samples-full.tsv", 12)):
        expected = sample_sheet_text(demo_manifest(n, 20251123))
        assert (repo / "config" / name).read_text() == expected


def test_the_small_demo_keeps_every_profile_with_and_without_lesions():
    subjects = demo_manifest(6, 20251123)
    for profile in {s.profile for s in subjects}:
        assert {s.lesions for s in subjects if s.profile == profile} == {True, False}
    assert len({s.profile for s in subjects}) == 3


def test_profiles_differ_in_the_ways_scanners_do():
    profiles = list(PROFILES.values())
    assert len(profiles) >= 3
    for attribute in (
        "voxel_size",
        "noise",
        "bias",
        "contrast_gamma",
        "manufacturer",
        "field_strength",
    ):
        assert len({getattr(p, attribute) for p in profiles}) >= 2, attribute
    assert len({p.voxel_size[2] for p in profiles}) == 3  # slice thickness
    assert {p.orientation for p in profiles} >= {"axial", "sagittal"}
    assert any(p.oblique_deg for p in profiles)


@pytest.mark.slow
def test_generated_subjects(demo_run):
    mri = demo_run.workdir / "resources" / "demo" / "mri"
    for subject in demo_manifest(4, 20251123):
        truth_dir = mri / subject.subject / "truth"
        truth = json.loads((truth_dir / "truth.json").read_text())
        assert truth["label"] == subject.label
        assert (truth["lesion_voxels_model"] > 200) == subject.lesions
        pose = truth["pose"]
        assert np.asarray(pose["A"]).shape == (4, 4) and len(pose["amplitudes_mm"]) >= 1
        lesion = np.asanyarray(nib.load(truth_dir / "lesion_mask_acq.nii.gz").dataobj)
        assert (lesion.sum() > 0) == subject.lesions
        # A head with a face: the face region is in the field of view and has signal.
        face = np.asanyarray(nib.load(truth_dir / "face_mask_acq.nii.gz").dataobj) > 0
        assert face.sum() > 2000, subject.subject
        phi = json.loads((truth_dir / "phi.json").read_text())
        if subject.source_format == "dicom":
            files = sorted((mri / subject.subject / "raw" / "dicom").rglob("IM*"))
            profile = PROFILES[subject.profile]
            assert len(files) == 2 * profile.n_slices  # FLAIR and T1w, one file per slice
            header = pydicom.dcmread(files[0], stop_before_pixels=True)
            assert str(header.PatientName) == phi["PatientName"]
            assert header.PatientBirthDate == phi["PatientBirthDate"]
            assert header.AccessionNumber == phi["AccessionNumber"]
            assert header.InstitutionName == phi["InstitutionName"]
            assert header.Manufacturer == profile.manufacturer
            for tag in (
                "EchoTime",
                "RepetitionTime",
                "MagneticFieldStrength",
                "ImagePositionPatient",
                "ImageOrientationPatient",
                "PixelSpacing",
            ):
                assert tag in header
        else:
            img = nib.load(mri / subject.subject / "raw" / "FLAIR.nii.gz")
            assert img.ndim == 3
            assert phi["PatientID"].encode() in img.header["db_name"].tobytes()


@pytest.mark.slow
def test_demo_generation_is_byte_identical(demo_run, tmp_path):
    """Rebuilding the head model and a subject gives the same bytes as the workflow run."""
    import hashlib

    from cohortflow.demo.cohort import simulate_subject
    from cohortflow.demo.headmodel import build_head_model

    def digests(root):
        return {
            p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != ".snakemake_timestamp"
        }

    demo = demo_run.workdir / "resources" / "demo"
    build_head_model(tmp_path / "head_model")
    assert digests(tmp_path / "head_model") == digests(demo / "head_model")
    subject = demo_manifest(4, 20251123)[2]  # the oblique 2D profile
    simulate_subject(demo / "head_model", subject, 2, tmp_path / "raw", tmp_path / "truth")
    for part in ("raw", "truth"):
        assert digests(tmp_path / part) == digests(demo / "mri" / subject.subject / part)
