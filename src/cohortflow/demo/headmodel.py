"""The anatomical model behind the demo cohort, built from data inside installed packages.

* nilearn ships the MNI ICBM152 2009a (symmetric) T1, GM and WM maps, brain only;
* the pydeface wheel ships a whole-head T1 template with a face (``mean_reg2mean``) and its
  face mask (1 = keep, 0 = face).

The MNI brain maps are carried into the head template's space with a masked affine
registration (antspyx), so every model map lives on the head template's 1 mm grid ("model
space"). The demo subjects are that model seen through a random pose, a smooth deformation and a
simulated scanner. The MNI -> model affine is kept, so the true subject -> MNI mapping is known.
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


def _ants_affine_to_world_matrix(mat_path: str) -> np.ndarray:
    """ITK affine file (LPS, fixed -> moving points) as a 4x4 RAS point matrix fixed -> moving."""
    import ants

    tx = ants.read_transform(mat_path)
    params = np.asarray(tx.parameters, dtype=float)
    centre = np.asarray(tx.fixed_parameters, dtype=float)
    a = params[:9].reshape(3, 3)
    t = params[9:12]
    lps = np.eye(4)
    lps[:3, :3] = a
    lps[:3, 3] = t + centre - a @ centre
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    return flip @ lps @ flip


def build_head_model(out_dir: Path, *, seed: int = 1) -> None:
    """Register the MNI brain into the head template and write the model maps (atomic folder)."""
    import ants

    paths = packaged_data_paths()
    head_img = ants.image_read(str(paths["head"]))
    mni_t1 = ants.image_read(str(paths["mni_t1"]))
    # Registering a brain-only image to a whole head pulls the brain onto the scalp; restricting
    # the metric to a dilated brain-sized region around the world-coordinate overlap avoids it.
    head2 = ants.resample_image(head_img, (2, 2, 2), False, 0)
    mni2 = ants.resample_image(mni_t1, (2, 2, 2), False, 0)
    region = ants.resample_image_to_target(
        ants.threshold_image(mni2, 1, 1e9), head2, interp_type="nearestNeighbor"
    )
    region = ants.iMath(region, "MD", 4)
    reg = ants.registration(
        fixed=head2,
        moving=mni2,
        type_of_transform="Affine",
        aff_metric="mattes",
        mask=region,
        initial_transform="identity",
        random_seed=seed,
    )
    # fwdtransforms map fixed (model) points to moving (MNI) points.
    model_to_mni = _ants_affine_to_world_matrix(reg["fwdtransforms"][0])

    def to_model(key: str) -> np.ndarray:
        img = ants.image_read(str(paths[key]))
        warped = ants.apply_transforms(
            fixed=head_img, moving=img, transformlist=reg["fwdtransforms"], interpolator="linear"
        )
        return warped.numpy().astype(np.float32)

    t1 = to_model("mni_t1")
    gm = np.clip(to_model("mni_gm") / 255.0, 0, 1)
    wm = np.clip(to_model("mni_wm") / 255.0, 0, 1)
    brain = np.clip(t1 / max(float(t1.max()), 1.0) * 8.0, 0, 1)  # soft intracranial mask
    csf = np.clip(brain - gm - wm, 0, 1)
    head_nii = nib.load(paths["head"])
    head = np.asarray(head_nii.dataobj, dtype=np.float32)
    head /= np.percentile(head[head > 0], 99.5)
    face = np.asarray(nib.load(paths["facemask"]).dataobj, dtype=np.float32)
    affine = head_nii.affine
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
