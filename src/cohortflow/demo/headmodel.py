"""The anatomical model behind the demo cohort, built from data inside installed packages.

* nilearn ships the MNI ICBM152 2009a (symmetric) T1, GM and WM maps, brain only;
* the pydeface wheel ships a whole-head T1 template with a face (``mean_reg2mean``) and its
  face mask (1 = keep, 0 = face).

The MNI brain maps are carried into the head template's space with a masked similarity
registration (SimpleITK, deterministic), so every model map lives on the head template's 1 mm
grid ("model space"). The demo subjects are that model seen through a random pose, a smooth
deformation and a simulated scanner. The MNI -> model transform is kept, so the true subject ->
MNI mapping is known.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from cohortflow.io.atomic import atomic_output_dir

MODEL_FILES = ("gm", "wm", "csf", "head", "facemask", "lesion_sites")


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


@dataclass
class HeadModel:
    """Tissue maps on the head template's grid (float32, probabilities in [0, 1])."""

    gm: np.ndarray
    wm: np.ndarray
    csf: np.ndarray
    head: np.ndarray  # head template intensity scaled to [0, 1]
    facemask: np.ndarray  # 1 keep, 0 face (pydeface convention)
    lesion_sites: np.ndarray  # 1 periventricular WM, 2 deep WM: where demo lesions may sit
    affine: np.ndarray  # voxel -> RAS world of the head template
    mni_to_model: np.ndarray  # 4x4, RAS world MNI -> RAS world model (points)

    @property
    def brain(self) -> np.ndarray:
        return np.clip(self.gm + self.wm + self.csf, 0.0, 1.0)


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


def _resample(
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


def build_head_model(out_dir: Path) -> None:
    """Register the MNI brain into the head template and write the model maps (atomic folder)."""
    paths = packaged_data_paths()
    head_nii = nib.load(paths["head"])
    head = np.asarray(head_nii.dataobj, dtype=np.float32)
    affine = head_nii.affine
    mni = {key: nib.load(paths[key]) for key in ("mni_t1", "mni_gm", "mni_wm")}
    mni_affine = mni["mni_t1"].affine
    model_to_mni = register_mni_to_head(
        head, affine, np.asarray(mni["mni_t1"].dataobj, dtype=np.float32), mni_affine
    )

    def to_model(key: str) -> np.ndarray:
        data = np.asarray(mni[key].dataobj, dtype=np.float32)
        return _resample(data, mni_affine, head.shape, affine, model_to_mni)

    t1 = to_model("mni_t1")
    gm = np.clip(to_model("mni_gm") / 255.0, 0, 1)
    wm = np.clip(to_model("mni_wm") / 255.0, 0, 1)
    brain = np.clip(t1 / max(float(t1.max()), 1.0) * 8.0, 0, 1)  # soft intracranial mask
    csf = np.clip(brain - gm - wm, 0, 1)
    head = head / np.percentile(head[head > 0], 99.5)
    face = np.asarray(nib.load(paths["facemask"]).dataobj, dtype=np.float32)
    maps = {
        "gm": gm,
        "wm": wm,
        "csf": csf,
        "head": np.clip(head, 0, 1.5),
        "facemask": face,
        "lesion_sites": lesion_sites(gm, wm, csf),
    }
    with atomic_output_dir(out_dir) as tmp:
        for name, arr in maps.items():
            img = nib.Nifti1Image(arr.astype(np.float32), affine)
            img.header.set_xyzt_units("mm")
            # Uncompressed: every demo subject reads the model, and gzip would dominate.
            nib.save(img, tmp / f"{name}.nii")
        (tmp / "transforms.json").write_text(
            json.dumps(
                {
                    "mni_to_model": np.linalg.inv(model_to_mni).round(8).tolist(),
                    "description": "4x4 RAS point matrix: MNI152 2009a world -> model world",
                    "sources": {k: p.name for k, p in paths.items()},
                },
                indent=2,
            )
            + "\n"
        )


def lesion_sites(gm: np.ndarray, wm: np.ndarray, csf: np.ndarray) -> np.ndarray:
    """Candidate lesion centres: 1 periventricular white matter, 2 deep white matter.

    White-matter hyperintensities cluster as caps and bands around the lateral ventricles and
    as punctate foci in deep white matter; these masks let the demo plant them there.
    """
    brain = (gm + wm + csf) > 0.5
    depth = ndimage.distance_transform_edt(brain)
    ventricles = (csf > 0.6) & (depth > 18)  # deep CSF = lateral ventricles, not sulci
    dist_vent = ndimage.distance_transform_edt(~ventricles)
    sites = np.zeros(wm.shape, np.float32)
    sites[(wm > 0.7) & (dist_vent > 2) & (dist_vent < 6)] = 1
    sites[(wm > 0.9) & (dist_vent > 10) & (depth > 12)] = 2
    return sites


def load_head_model(model_dir: Path) -> HeadModel:
    arrays = {}
    affine = None
    for name in MODEL_FILES:
        img = nib.load(Path(model_dir) / f"{name}.nii")
        arrays[name] = np.asarray(img.dataobj, dtype=np.float32)
        affine = img.affine
    meta = json.loads((Path(model_dir) / "transforms.json").read_text())
    return HeadModel(affine=affine, mni_to_model=np.asarray(meta["mni_to_model"]), **arrays)
