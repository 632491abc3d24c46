"""The whole-head template that defacing and the demo share, built from installed packages.

* the pydeface wheel ships a whole-head T1 template with a face (``mean_reg2mean``) and its
  face mask (1 = keep, 0 = face);
* nilearn ships the MNI ICBM152 2009a (symmetric) T1, GM and WM maps, brain only.

The MNI brain is carried into the head template's space by a masked similarity registration
(SimpleITK, deterministic), so a brain mask exists on the head template's grid: the defacer keeps
a margin around it and the defacing evaluator measures damage inside it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage


def packaged_data_paths() -> dict[str, Path]:
    """Paths of the package-shipped maps this model is built from."""
    import nilearn
    import pydeface

    mni = Path(nilearn.__file__).parent / "datasets" / "data"
    face = Path(pydeface.__file__).parent / "data"
    return {
        "mni_t1": mni / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
        "mni_gm": mni / "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
        "mni_wm": mni / "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
        "head": face / "mean_reg2mean.nii.gz",
        "facemask": face / "facemask.nii.gz",
    }


_LPS = np.diag([-1.0, -1.0, 1.0])


def _sitk_image(data: np.ndarray, affine: np.ndarray):
    """A SimpleITK image with exactly the geometry of a nibabel (RAS) array and affine."""
    import SimpleITK as sitk  # noqa: N813 (the library's usual name)

    img = sitk.GetImageFromArray(np.ascontiguousarray(data.transpose(2, 1, 0), dtype=np.float32))
    lps = _LPS @ affine[:3, :3]
    spacing = np.linalg.norm(lps, axis=0)
    img.SetSpacing(spacing.tolist())
    img.SetDirection((lps / spacing).flatten().tolist())
    img.SetOrigin((_LPS @ affine[:3, 3]).tolist())
    return img


def register_mni_to_head(
    head: np.ndarray, head_affine: np.ndarray, mni_t1: np.ndarray, mni_affine: np.ndarray
) -> np.ndarray:
    """Similarity MNI brain -> head template; returns the 4x4 RAS point map model -> MNI.

    Registering a brain-only image to a whole head pulls the brain onto the scalp, so Mattes
    mutual information is computed only inside the brain region of the world-space overlap
    (already close), dilated by one 2 mm voxel. antspyx was tried first: its random point
    sampling gave a different transform on every run despite a fixed seed.
    """
    import SimpleITK as sitk  # noqa: N813 (the library's usual name)

    fixed = sitk.BinShrink(_sitk_image(head, head_affine), [2, 2, 2])
    moving = sitk.BinShrink(_sitk_image(mni_t1, mni_affine), [2, 2, 2])
    brain = sitk.Cast(moving > 0, sitk.sitkUInt8)
    region = sitk.Resample(brain, fixed, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    region = sitk.BinaryDilate(region, [1, 1, 1])

    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(region)
    # A similarity transform (rotation, translation, one scale): head size differs, brain shape
    # barely; a full affine let the brain stretch into the scalp.
    initial = sitk.Similarity3DTransform()
    initial.SetCenter(stats.GetCentroid(1))
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    # Regular sampling with a fixed seed on one thread: the same points, the same sums and
    # the same result on every run (random sampling or several threads would not be).
    method.SetMetricSamplingStrategy(method.REGULAR)
    method.SetMetricSamplingPercentage(0.3, 20251123)
    method.SetMetricFixedMask(region)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=2.0, minStep=1e-4, numberOfIterations=300, gradientMagnitudeTolerance=1e-8
    )
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel([2, 1])
    method.SetSmoothingSigmasPerLevel([2.0, 0.0])
    method.SetInitialTransform(initial, inPlace=False)
    method.SetNumberOfThreads(1)
    threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)  # the metric threads on its own
    try:
        result = sitk.CompositeTransform(method.Execute(fixed, moving)).GetNthTransform(0)
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    similarity = sitk.Similarity3DTransform(result)
    a = np.asarray(similarity.GetMatrix()).reshape(3, 3)
    centre = np.asarray(similarity.GetCenter())
    lps = np.eye(4)
    lps[:3, :3] = a
    lps[:3, 3] = np.asarray(similarity.GetTranslation()) + centre - a @ centre
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    return flip @ lps @ flip


def resample_ras(
    data: np.ndarray,
    affine: np.ndarray,
    shape: tuple,
    target_affine: np.ndarray,
    target_to_source: np.ndarray,
) -> np.ndarray:
    """Linear resampling of ``data`` onto a grid, through a RAS point map target -> source."""
    vox_map = np.linalg.inv(affine) @ target_to_source @ target_affine
    ijk = np.indices(shape, dtype=np.float32).reshape(3, -1)
    coords = vox_map[:3, :3].astype(np.float32) @ ijk + vox_map[:3, 3:4].astype(np.float32)
    out = ndimage.map_coordinates(data.astype(np.float32), coords, order=1, cval=0.0)
    return out.reshape(shape)


DEFACE_TEMPLATE_FILES = ("head", "face", "brain")


def build_deface_template(out_dir: Path | str) -> dict:
    """Write ``head``, ``face`` (1 = face to remove) and ``brain`` (1 = brain) on the head grid.

    ``face`` is pydeface's mask inverted (pydeface marks the voxels to keep). ``brain`` is the
    MNI152 2009a brain (T1 above 1/16 of its maximum, the intracranial volume including CSF)
    carried into the head template by :func:`register_mni_to_head`. The folder appears whole
    or not at all; ``template.json`` records sources, checksums and the MNI -> head transform.
    """
    import json

    import nibabel as nib

    from cohortflow.io.atomic import atomic_output_dir, sha256_file

    paths = packaged_data_paths()
    head_nii = nib.load(paths["head"])
    head = np.asarray(head_nii.dataobj, dtype=np.float32)
    affine = head_nii.affine
    mni = nib.load(paths["mni_t1"])
    mni_t1 = np.asarray(mni.dataobj, dtype=np.float32)
    model_to_mni = register_mni_to_head(head, affine, mni_t1, mni.affine)
    t1 = resample_ras(mni_t1, mni.affine, head.shape, affine, model_to_mni)
    brain = t1 > float(mni_t1.max()) / 16.0
    brain = ndimage.binary_fill_holes(brain)
    face = np.asarray(nib.load(paths["facemask"]).dataobj) < 0.5
    maps = {"head": head, "face": face.astype(np.uint8), "brain": brain.astype(np.uint8)}
    record = {
        "Description": "whole-head template (pydeface mean_reg2mean), its face region and the "
        "MNI152 2009a brain on the same grid",
        "Sources": {k: {"file": p.name, "sha256": sha256_file(p)} for k, p in paths.items()
                    if k in ("head", "facemask", "mni_t1")},
        "MNIToHead": np.linalg.inv(model_to_mni).round(8).tolist(),
        "FaceVoxels": int(face.sum()),
        "BrainVoxels": int(brain.sum()),
        "BrainFaceOverlapVoxels": int((brain & face).sum()),
    }  # fmt: skip
    with atomic_output_dir(out_dir) as tmp:
        for name, arr in maps.items():
            img = nib.Nifti1Image(arr, affine)
            img.set_qform(affine, code=1)
            img.set_sform(affine, code=1)
            img.header.set_xyzt_units("mm")
            nib.save(img, tmp / f"{name}.nii.gz")
        (tmp / "template.json").write_text(json.dumps(record, indent=2) + "\n")
    return record
