"""The features DefaceQA-style evaluation computes for one original/defaced pair.

Regions (subject grid, from the affine template registration of the *original*):

* ``face`` — the template's face region (pydeface's mask, without any brain margin) that holds
  tissue in the original (above :func:`head_threshold`);
* ``brain`` — the template's intracranial region (MNI152 brain incl. CSF).

Per region (``face_*``, ``brain_*``):

* ``fsim``, ``ssim``, ``nmi``, ``correlation`` — see :mod:`.similarity`;
* ``removed_share`` — share of region voxels that are non-zero in the original and 0 in the
  defaced image;
* ``changed_share`` — share of region voxels that differ by more than 2 % of the original's
  99.5th percentile (after the intensity alignment below).

Per face rendering (``front_*``, ``left_*``, ``right_*``; see :mod:`.renders`), inside the
projection of the face region: ``render_ssim`` and ``render_fsim`` of the shaded surfaces, and
``depth_changed_share``, the share of surface pixels that moved back by more than 3 mm or
vanished.

Before comparing, the defaced image is brought onto the original's intensity scale by a
least-squares line fitted on the voxels both keep outside the face region (tools may rewrite
with another scaling or data type). The same fit is the provenance check: a "defaced" image
whose correlation with the original there is below ``min_provenance_correlation`` does not come
from that original (another subject or another scan) and is refused, as is any image on
another grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from cohortflow.deface.defacer import Template
from cohortflow.deface.renders import (
    VIEWS,
    Render,
    depth_changed_share,
    project,
    render,
    render_grid,
    to_render_grid,
)
from cohortflow.deface.similarity import FsimReference, correlation, nmi, ssim, to_byte_scale
from cohortflow.errors import InputError

REGIONS = ("face", "brain")
REGION_FEATURES = ("fsim", "ssim", "nmi", "correlation", "removed_share", "changed_share")
RENDER_FEATURES = ("render_ssim", "render_fsim", "depth_changed_share")
FEATURES = tuple(
    [f"{r}_{f}" for r in REGIONS for f in REGION_FEATURES]
    + [f"{v}_{f}" for v in VIEWS for f in RENDER_FEATURES]
)
CHANGE_TOLERANCE = 0.02 * 255.0  # 2 % of the original's 99.5th percentile, on the byte scale


class PairError(InputError):
    """An original/defaced pair that cannot be judged (other grid, other subject)."""


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of positive values (between-class variance maximum)."""
    values = values[values > 0]
    if values.size == 0:
        return 0.0
    hist, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    s0 = np.cumsum(hist * centres)
    m0 = s0 / np.maximum(w0, 1)
    m1 = (s0[-1] - s0) / np.maximum(w1, 1)
    between = w0 * w1 * (m0 - m1) ** 2
    return float(centres[int(np.argmax(between[:-1]))])


def head_threshold(image: np.ndarray) -> float:
    """Intensity separating air from the darkest tissue (skin, fat, bone marrow).

    Otsu on the whole image splits dark from bright tissue; a second Otsu on the values below
    that split separates the air (noise) from the dark tissue, which is where the skin is.
    """
    first = otsu_threshold(image)
    below = image[(image > 0) & (image < first)]
    return otsu_threshold(below) if below.size else first


def check_same_grid(
    original: tuple[tuple[int, ...], np.ndarray],
    defaced: tuple[tuple[int, ...], np.ndarray],
    original_path: str,
    defaced_path: str,
) -> None:
    """Refuse a pair whose grids differ (shape, or affine by more than 0.01 mm / 1e-4)."""
    (shape_a, aff_a), (shape_b, aff_b) = original, defaced
    if tuple(shape_a) != tuple(shape_b):
        raise PairError(
            defaced_path,
            f"defaced image has shape {tuple(shape_b)} but the original {original_path} has "
            f"{tuple(shape_a)}: not the same grid (deface the original file itself, or resample "
            "the defaced image onto the original's grid first)",
        )
    rot = np.abs(aff_a[:3, :3] - aff_b[:3, :3]).max()
    shift = np.abs(aff_a[:3, 3] - aff_b[:3, 3]).max()
    if rot > 1e-4 or shift > 0.01:
        raise PairError(
            defaced_path,
            f"defaced image's voxel-to-world affine differs from the original {original_path}'s "
            f"(matrix by {rot:.4g}, origin by {shift:.4g} mm): not the same grid",
        )


@dataclass
class Alignment:
    slope: float
    intercept: float
    correlation: float
    voxels: int


class PairScorer:
    """Everything about one original that the features of its defaced versions need."""

    def __init__(
        self,
        original: np.ndarray,
        affine: np.ndarray,
        template: Template,
        subject_to_template: np.ndarray,
        *,
        min_provenance_correlation: float = 0.95,
        path: str = "original",
    ):
        self.original = np.asarray(original, dtype=np.float32)
        self.affine = affine
        self.path = path
        self.subject_to_template = subject_to_template
        self.min_correlation = min_provenance_correlation
        shape = self.original.shape
        self.head_threshold = head_threshold(self.original)
        head = self.original > self.head_threshold
        face_region = template.to_subject(template.face, shape, affine, subject_to_template)
        self.regions = {
            "face": face_region & head,
            "brain": template.to_subject(template.brain, shape, affine, subject_to_template),
        }
        for name, region in self.regions.items():
            if region.sum() < 50:
                raise InputError(
                    path,
                    f"the template's {name} region covers {int(region.sum())} voxels of this "
                    "image: not a whole head, or the head template did not register to it",
                )
        voxel = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
        self.axis = int(np.flatnonzero(voxel >= voxel.max() - 1e-3)[-1])  # in-plane slices
        # Voxels that any defacing should leave alone: outside the face region grown by 10 mm.
        near_face = ndimage.distance_transform_edt(~face_region, sampling=voxel) <= 10.0
        self.reference_voxels = (self.original != 0) & ~near_face
        self.byte_a, _ = to_byte_scale(self.original, self.original, self.original)
        self.fsim_ref = {
            name: FsimReference(self.byte_a, region, axis=self.axis)
            for name, region in self.regions.items()
        }
        self.grid = render_grid(template.affine, template.head.shape)
        self.view_masks = {}
        self.renders_before = {}
        face_render = to_render_grid(
            template.face.astype(np.float32), template.affine, np.eye(4),
            (self.grid[0], self.grid[1]),
        ) >= 0.5  # fmt: skip
        volume = self._render_volume(self.original)
        for view in VIEWS:
            self.renders_before[view] = render(volume, self.head_threshold, view)
            self.view_masks[view] = project(face_render, view)

    def _render_volume(self, data: np.ndarray) -> np.ndarray:
        return to_render_grid(data, self.affine, self.subject_to_template, self.grid)

    def align(self, defaced: np.ndarray, defaced_path: str = "defaced") -> tuple:
        """The defaced image on the original's scale, and the provenance check's numbers."""
        keep = self.reference_voxels & (defaced != 0)
        idx = np.flatnonzero(keep)
        if idx.size < 1000:
            # Nothing outside the face survives: no scale to fit; the brain features will
            # show the damage, so compare as stored.
            return np.asarray(defaced, np.float32), Alignment(1.0, 0.0, float("nan"), idx.size)
        step = max(1, idx.size // 200_000)
        x = self.original.ravel()[idx[::step]].astype(np.float64)
        y = np.asarray(defaced).ravel()[idx[::step]].astype(np.float64)
        r = correlation(x, y, np.ones(x.size, bool))
        if not r >= self.min_correlation:
            raise PairError(
                defaced_path,
                f"does not come from the original {self.path}: outside the face region the two "
                f"images correlate at r = {r:.3f} (< {self.min_correlation}); another subject "
                "or another scan?",
            )
        slope, intercept = np.polyfit(x, y, 1)
        if slope <= 0:
            raise PairError(defaced_path, f"intensity fit to the original has slope {slope:.3g}")
        aligned = (np.asarray(defaced, np.float32) - intercept) / slope
        aligned[np.asarray(defaced) == 0] = 0.0
        return aligned.astype(np.float32), Alignment(float(slope), float(intercept), r, idx.size)

    def features(
        self, defaced: np.ndarray, defaced_path: str = "defaced"
    ) -> tuple[dict[str, float], dict[str, Render], Alignment]:
        aligned, alignment = self.align(defaced, defaced_path)
        byte_a = self.byte_a
        byte_b, _ = to_byte_scale(aligned, aligned, self.original)
        values: dict[str, float] = {}
        for name, region in self.regions.items():
            a, b = byte_a[region], byte_b[region]
            values[f"{name}_fsim"] = self.fsim_ref[name].score(byte_b)
            values[f"{name}_ssim"] = ssim(byte_a, byte_b, region, axis=self.axis)
            values[f"{name}_nmi"] = nmi(byte_a, byte_b, region)
            values[f"{name}_correlation"] = correlation(byte_a, byte_b, region)
            removed = (self.original[region] != 0) & (np.asarray(defaced)[region] == 0)
            values[f"{name}_removed_share"] = float(removed.mean())
            values[f"{name}_changed_share"] = float((np.abs(a - b) > CHANGE_TOLERANCE).mean())
        after = self.renders(aligned)
        for view in VIEWS:
            before, mask = self.renders_before[view], self.view_masks[view]
            seen = mask & ~np.isnan(before.depth)
            values[f"{view}_render_ssim"] = ssim(before.shaded, after[view].shaded, seen)
            values[f"{view}_render_fsim"] = FsimReference(before.shaded, seen).score(
                after[view].shaded
            )
            values[f"{view}_depth_changed_share"] = depth_changed_share(before, after[view], mask)
        return {k: values[k] for k in FEATURES}, after, alignment

    def renders(self, aligned: np.ndarray) -> dict[str, Render]:
        volume = self._render_volume(aligned)
        return {view: render(volume, self.head_threshold, view) for view in VIEWS}
