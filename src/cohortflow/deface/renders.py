"""2D face renderings: depth projections of the head surface from the front and both sides.

The subject image is resampled into the head template's orientation on a 2 mm grid (through
the registration), so every subject is seen from the same three directions whatever its
acquisition orientation. Along each ray the first voxel above the head threshold gives the
depth of the skin surface; the render is that surface lit from the viewer (Lambert shading,
brightness = cosine between the surface normal and the viewing ray), which is what a person
would recognise. Pixels whose ray meets no tissue are 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cohortflow.deface.registration import pull

VIEWS = ("front", "left", "right")
RENDER_MM = 2.0


@dataclass
class Render:
    depth: np.ndarray  # mm from the grid's edge to the skin, NaN where no tissue is met
    shaded: np.ndarray  # 0..255


def render_grid(template_affine: np.ndarray, template_shape: tuple[int, ...]):
    """Shape and affine of the 2 mm render grid covering the template's field of view."""
    voxel = np.sqrt((template_affine[:3, :3] ** 2).sum(axis=0))
    factor = RENDER_MM / voxel
    shape = tuple(int(np.floor(n / f)) for n, f in zip(template_shape, factor, strict=True))
    affine = template_affine.copy()
    affine[:3, :3] = template_affine[:3, :3] * factor
    return shape, affine


def to_render_grid(
    data: np.ndarray,
    affine: np.ndarray,
    subject_to_template: np.ndarray,
    grid: tuple[tuple[int, ...], np.ndarray],
) -> np.ndarray:
    shape, render_affine = grid
    return pull(data, affine, shape, render_affine, np.linalg.inv(subject_to_template))


def _view_axes(volume: np.ndarray, view: str) -> np.ndarray:
    """The volume with the viewing ray along axis 0 (entering at index 0) and image axes
    (u, z), u running left to right as the viewer sees it (so renders are not mirrored)."""
    if view == "front":  # from anterior looking back: the subject's right is on the left
        return np.flip(volume, axis=(0, 1)).transpose(1, 0, 2)
    if view == "left":  # from the subject's left: anterior is on the viewer's left
        return np.flip(volume, axis=1)
    if view == "right":  # from the subject's right: anterior is on the viewer's right
        return np.flip(volume, axis=0)
    raise ValueError(f"unknown view {view!r}")


def render(volume: np.ndarray, threshold: float, view: str) -> Render:
    rays = _view_axes(volume, view) > threshold
    hit = rays.any(axis=0)
    first = np.argmax(rays, axis=0).astype(np.float64) * RENDER_MM
    depth = np.where(hit, first, np.nan)
    filled = np.where(hit, first, float(rays.shape[0]) * RENDER_MM)
    gu, gz = np.gradient(filled, RENDER_MM)
    shade = 1.0 / np.sqrt(1.0 + gu**2 + gz**2)
    return Render(depth=depth, shaded=np.where(hit, shade * 255.0, 0.0))


def project(mask: np.ndarray, view: str) -> np.ndarray:
    """Pixels whose ray crosses ``mask`` (e.g. the template face region)."""
    return _view_axes(mask, view).any(axis=0)


def depth_changed_share(before: Render, after: Render, mask: np.ndarray, mm: float = 3.0) -> float:
    """Share of the masked pixels hit before whose surface moved back by more than ``mm``
    (or vanished)."""
    seen = mask & ~np.isnan(before.depth)
    if not seen.any():
        return float("nan")
    moved = np.isnan(after.depth) | (np.nan_to_num(after.depth - before.depth, nan=0.0) > mm)
    return float((moved & seen).sum() / seen.sum())


def for_display(image: np.ndarray) -> np.ndarray:
    """Rotate a render so that superior is up (rows) for imshow."""
    return np.rot90(image)
