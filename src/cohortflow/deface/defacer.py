"""Defacing: the template's face region carried onto the subject, with the brain kept clear.

Steps (one subject):

1. affine registration of the head template to the subject (:mod:`.registration`);
2. the template's face region, minus every voxel closer than ``brain_margin_mm`` to the
   template brain, is pulled onto the subject grid (linear interpolation, >= 0.5);
3. those voxels are set to 0; everything else keeps its exact stored value.

The margin is what keeps the brain intact when the affine fit is a few millimetres off: the
pydeface face region touches the brain of its own template (1 mm away at the orbits).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from scipy import ndimage

from cohortflow.deface.registration import pull


@dataclass(frozen=True)
class DefaceSettings:
    brain_margin_mm: float = 4.0
    seed: int = 1

    @classmethod
    def from_config(cls, section: dict[str, Any]) -> DefaceSettings:
        return cls(brain_margin_mm=float(section["brain_margin_mm"]), seed=int(section["seed"]))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Template:
    head: np.ndarray
    face: np.ndarray  # bool, 1 = face region
    brain: np.ndarray  # bool
    affine: np.ndarray
    paths: dict[str, Path]

    @classmethod
    def load(cls, folder: Path | str) -> Template:
        folder = Path(folder)
        paths = {name: folder / f"{name}.nii.gz" for name in ("head", "face", "brain")}
        imgs = {name: nib.load(p) for name, p in paths.items()}
        return cls(
            head=np.asarray(imgs["head"].dataobj, dtype=np.float32),
            face=np.asarray(imgs["face"].dataobj) > 0,
            brain=np.asarray(imgs["brain"].dataobj) > 0,
            affine=imgs["head"].affine,
            paths=paths,
        )

    @property
    def voxel_mm(self) -> np.ndarray:
        return np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))

    @cached_property
    def brain_distance(self) -> np.ndarray:
        """Distance (mm) of every template voxel from the brain (0 inside)."""
        return ndimage.distance_transform_edt(~self.brain, sampling=self.voxel_mm).astype(
            np.float32
        )

    def protected_face(self, margin_mm: float) -> np.ndarray:
        """The face region without the voxels within ``margin_mm`` of the brain."""
        if margin_mm <= 0:
            return self.face.copy()
        return self.face & (self.brain_distance > margin_mm)

    def to_subject(
        self, template_map: np.ndarray, shape: tuple[int, ...], affine: np.ndarray, matrix
    ) -> np.ndarray:
        """A template-space map on the subject grid (linear, thresholded at 0.5)."""
        return pull(template_map.astype(np.float32), self.affine, shape, affine, matrix) >= 0.5


def removal_mask(
    template: Template,
    shape: tuple[int, ...],
    affine: np.ndarray,
    subject_to_template: np.ndarray,
    settings: DefaceSettings,
) -> np.ndarray:
    """Subject voxels to remove (bool, subject grid)."""
    face = template.protected_face(settings.brain_margin_mm)
    return template.to_subject(face, shape, affine, subject_to_template)


def apply_removal(img: nib.Nifti1Image, remove: np.ndarray) -> nib.Nifti1Image:
    """The image with ``remove`` voxels set to 0 and every other stored value unchanged."""
    raw = np.asanyarray(img.dataobj)
    slope, inter = img.header.get_slope_inter()
    if inter is not None and not np.isnan(inter) and inter != 0:
        # A non-zero intercept means no stored value is 0: write scaled floats instead.
        data = np.asarray(img.get_fdata(dtype=np.float32)).copy()
        data[remove] = 0
        out = nib.Nifti1Image(data, img.affine, img.header)
        out.set_data_dtype(np.float32)
        out.header.set_slope_inter(1.0, 0.0)
        return out
    data = np.array(raw, copy=True)
    data[remove] = 0
    out = nib.Nifti1Image(data, img.affine, img.header)
    if slope is not None and not np.isnan(slope):
        out.header.set_slope_inter(slope, 0.0)
    return out


def registration_correlation(
    template: Template, data: np.ndarray, affine: np.ndarray, matrix: np.ndarray
) -> float:
    """Correlation of the subject with the registered template inside the template head.

    A cross-contrast fit (T1 template, FLAIR subject) gives about 0.5-0.75 on good fits; a
    failed fit is far lower. Reported in the sidecar and QC table.
    """
    warped = pull(template.head, template.affine, data.shape, affine, matrix)
    inside = warped > np.percentile(template.head[template.head > 0], 25)
    if inside.sum() < 100:
        return 0.0
    return float(np.corrcoef(warped[inside], data[inside])[0, 1])
