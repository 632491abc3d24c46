"""PNG mosaics a person can check at a glance: axial, coronal and sagittal slices in a grid.

Images are 3D arrays on a RAS+ grid (as every image after ingest is), so "up" is superior
and the left of the picture is the subject's right (radiological convention is not used; the
caption says so).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cohortflow.io.atomic import atomic_output_file


def _slices(n: int, extent: tuple[int, int]) -> list[int]:
    lo, hi = extent
    return [round(x) for x in np.linspace(lo + 0.15 * (hi - lo), hi - 0.15 * (hi - lo), n)]


def _cut(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    plane = np.take(volume, index, axis=axis)
    return np.rot90(plane)  # first remaining axis to the right, second upwards


def _extent(mask: np.ndarray, axis: int) -> tuple[int, int]:
    other = tuple(a for a in range(3) if a != axis)
    present = np.flatnonzero(mask.any(axis=other))
    if present.size == 0:
        return 0, mask.shape[axis] - 1
    return int(present[0]), int(present[-1])


def write_mosaic(
    target: Path | str,
    image: np.ndarray,
    *,
    title: str,
    outline: np.ndarray | None = None,
    overlay: np.ndarray | None = None,
    n_per_axis: int = 6,
    overlay_label: str = "",
) -> None:
    """Grey image with an optional contour (``outline``, boolean) or a colour ``overlay``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    image = np.asarray(image, np.float32)
    finite = image[np.isfinite(image) & (image != 0)]
    vmax = float(np.percentile(finite, 99.5)) if finite.size else 1.0
    support = image != 0
    if overlay is not None:
        support |= overlay > 0
    fig, axes = plt.subplots(3, n_per_axis, figsize=(2.0 * n_per_axis, 6.6), facecolor="black")
    for row, axis in enumerate((2, 1, 0)):  # axial, coronal, sagittal
        for col, index in enumerate(_slices(n_per_axis, _extent(support, axis))):
            ax = axes[row, col]
            ax.imshow(_cut(image, axis, index), cmap="gray", vmin=0, vmax=vmax or 1.0)
            if overlay is not None:
                plane = _cut(overlay, axis, index)
                ax.imshow(
                    np.ma.masked_where(plane <= 0, plane), cmap="autumn", vmin=0, vmax=1, alpha=0.6
                )
            if outline is not None:
                plane = _cut(outline.astype(np.float32), axis, index)
                if plane.any() and not plane.all():
                    ax.contour(plane, levels=[0.5], colors="cyan", linewidths=0.6)
            ax.set_axis_off()
    fig.suptitle(
        title + (f" — {overlay_label}" if overlay_label else ""), color="white", fontsize=9
    )
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    with atomic_output_file(target) as tmp:
        # A fixed creation date keeps the PNG bytes reproducible.
        fig.savefig(tmp, format="png", dpi=80, facecolor="black", metadata={"Software": None})
    plt.close(fig)
