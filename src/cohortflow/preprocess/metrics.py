"""Similarity and overlap measures used for registration QC and preset comparison."""

from __future__ import annotations

import numpy as np


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient of two boolean masks (1.0 when both are empty)."""
    a = np.asarray(a, bool)
    b = np.asarray(b, bool)
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def correlation(x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> float:
    """Pearson correlation of two images inside ``mask`` (nan when one is constant there)."""
    a = np.asarray(x, np.float64)[mask]
    b = np.asarray(y, np.float64)[mask]
    a = a - a.mean()
    b = b - b.mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denom) if denom > 0 else float("nan")


def mutual_information(x: np.ndarray, y: np.ndarray, mask: np.ndarray, bins: int = 32) -> float:
    """Mutual information (nats) of the joint intensity histogram inside ``mask``.

    Each image is binned over its own 0.5-99.5 percentile range (outliers go to the end bins),
    so the value does not depend on the intensity scale of either image.
    """
    a = np.asarray(x, np.float64)[mask]
    b = np.asarray(y, np.float64)[mask]
    if a.size == 0:
        return float("nan")

    def _bin(v: np.ndarray) -> np.ndarray:
        lo, hi = np.percentile(v, [0.5, 99.5])
        if hi <= lo:
            return np.zeros(v.shape, np.intp)
        return np.clip(((v - lo) / (hi - lo) * bins).astype(np.intp), 0, bins - 1)

    joint = np.bincount(_bin(a) * bins + _bin(b), minlength=bins * bins).reshape(bins, bins)
    p = joint / joint.sum()
    px = p.sum(axis=1, keepdims=True)
    py = p.sum(axis=0, keepdims=True)
    nz = p > 0
    return float((p[nz] * np.log(p[nz] / (px @ py)[nz])).sum())


def jacobian_summary(jacobian: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Min / max Jacobian determinant and the share of folded voxels (det <= 0) in ``mask``."""
    values = np.asarray(jacobian, np.float64)[mask]
    if values.size == 0:
        return {
            "jacobian_min": float("nan"),
            "jacobian_max": float("nan"),
            "folded_fraction": float("nan"),
        }
    return {
        "jacobian_min": float(values.min()),
        "jacobian_max": float(values.max()),
        "folded_fraction": float((values <= 0).mean()),
    }
