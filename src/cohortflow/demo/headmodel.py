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

from cohortflow.head_template import packaged_data_paths, register_mni_to_head, resample_ras
from cohortflow.io.atomic import atomic_output_dir

MODEL_FILES = ("gm", "wm", "csf", "head", "facemask", "lesion_sites")


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
        return resample_ras(data, mni_affine, head.shape, affine, model_to_mni)

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
