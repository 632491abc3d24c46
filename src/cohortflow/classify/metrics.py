"""Confusion matrix and the metrics HeteroMRI reports, per run and as mean ± SD over runs.

Undefined ratios (no predicted positives for precision, a zero factor in the MCC denominator,
...) are reported as 0, scikit-learn's ``zero_division=0`` convention.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

METRICS = ("accuracy", "precision", "sensitivity", "specificity", "f1", "mcc")
COUNTS = ("tn", "fp", "fn", "tp")


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def confusion(y_true: Sequence[int], y_pred: Sequence[int]) -> dict[str, int]:
    t = np.asarray(y_true, dtype=int)
    p = np.asarray(y_pred, dtype=int)
    if t.shape != p.shape:
        raise ValueError(f"{t.size} labels but {p.size} predictions")
    if not set(np.unique(np.concatenate([t, p]))) <= {0, 1}:
        raise ValueError("labels and predictions must be 0 or 1")
    return {
        "tn": int(((t == 0) & (p == 0)).sum()),
        "fp": int(((t == 0) & (p == 1)).sum()),
        "fn": int(((t == 1) & (p == 0)).sum()),
        "tp": int(((t == 1) & (p == 1)).sum()),
    }


def metrics_from_counts(tn: int, fp: int, fn: int, tp: int) -> dict[str, float]:
    precision = _ratio(tp, tp + fp)
    sensitivity = _ratio(tp, tp + fn)
    den = math.sqrt(float(tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return {
        "accuracy": _ratio(tp + tn, tp + tn + fp + fn),
        "precision": precision,
        "sensitivity": sensitivity,
        "specificity": _ratio(tn, tn + fp),
        "f1": _ratio(2 * precision * sensitivity, precision + sensitivity),
        "mcc": _ratio(tp * tn - fp * fn, den),
    }


def evaluate(y_true: Sequence[int], probabilities: Sequence[float], threshold: float = 0.5):
    """Counts and metrics of thresholded probabilities (label 1 when p >= threshold)."""
    pred = (np.asarray(probabilities, dtype=float) >= threshold).astype(int)
    counts = confusion(y_true, pred)
    return {**counts, **metrics_from_counts(**counts)}


def summarise(rows: Iterable[dict[str, float]]) -> dict[str, tuple[float, float]]:
    """Mean and sample SD (ddof 1; NaN for a single run) of every metric and count."""
    rows = list(rows)
    out = {}
    for key in COUNTS + METRICS:
        values = np.array([r[key] for r in rows], dtype=float)
        sd = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
        out[key] = (float(values.mean()), sd)
    return out
