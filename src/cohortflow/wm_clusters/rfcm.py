"""Robust fuzzy c-means (RFCM; Pham, "Spatial models for fuzzy clustering", CVIU 2001).

The objective adds to fuzzy c-means a penalty for a voxel belonging to a class that its six
face neighbours do not belong to::

    J = sum_j sum_k u_jk^q (y_j - v_k)^2
        + beta/2 * sum_j sum_k u_jk^q * sum_{l in N(j)} sum_{m != k} u_lm^q

which gives the membership update (Pham 2001, eq. 8)::

    u_jk ∝ (d_jk + beta * sum_{l in N(j)} sum_{m != k} u_lm^q) ** (-1 / (q - 1))

and the usual weighted-mean centroids. With ``beta = 0`` this is exactly fuzzy c-means.

Conventions (documented because results depend on them):

* Only voxels inside ``mask`` are clustered; with ``mask_zero`` the mask is "image != 0", as in
  nighres' ``fuzzy_cmeans(mask_zero=True)``. Voxels outside the mask have membership 0 and so
  do not count as neighbours.
* Intensities are divided by the largest masked absolute value, so ``y`` lies in [0, 1] and
  ``beta`` is a dimensionless weight that means the same for every scanner's intensity scale.
* Initialisation is deterministic: centroids at the (k + 0.5) / C quantiles of the masked
  intensities (so for three classes the 1/6, 1/2 and 5/6 quantiles), memberships from those
  centroids by the plain FCM rule. No random numbers are involved.
* One iteration = centroids from memberships, then memberships from centroids, swept in
  red-black order (voxels with even i + j + k first, then odd ones, which see their
  neighbours' fresh values: a Gauss-Seidel sweep; with beta = 0 the order does not matter and
  each iteration equals one FCM iteration). Iteration stops
  when the largest change of any membership is below ``tol`` or after ``max_iter``
  iterations.
* Classes are returned ordered by ascending centroid (cluster mean intensity).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

_TINY = np.float32(1e-12)


@dataclass(frozen=True)
class RFCMResult:
    memberships: np.ndarray  # (C, *shape) float32, 0 outside the mask, classes by centroid
    centroids: np.ndarray  # (C,) in the input's intensity units, ascending
    iterations: int
    converged: bool
    max_change: float  # the largest membership change of the last iteration
    scale: float  # the intensity divisor used (largest masked |value|)


def _memberships(g: np.ndarray, exponent: float) -> np.ndarray:
    """Normalised ``g ** -exponent`` over classes (axis 0), robust to g == 0."""
    w = np.maximum(g, _TINY)
    if exponent == 1.0:
        np.reciprocal(w, out=w)
    else:
        np.power(w, -exponent, out=w)
    w /= w.sum(axis=0, keepdims=True)
    return w


def quantile_centroids(values: np.ndarray, n_clusters: int) -> np.ndarray:
    """The deterministic start: the (k + 0.5) / C quantiles of the masked intensities."""
    q = (np.arange(n_clusters) + 0.5) / n_clusters
    return np.quantile(values.astype(np.float64), q).astype(np.float32)


def rfcm(
    image: np.ndarray,
    *,
    n_clusters: int = 3,
    fuzziness: float = 2.0,
    beta: float = 0.1,
    max_iter: int = 200,
    tol: float = 0.01,
    mask: np.ndarray | None = None,
    mask_zero: bool = True,
    init_memberships: np.ndarray | None = None,
    threads: int = 1,
) -> RFCMResult:
    """Cluster a 2D or 3D image (a 2D image is treated as one slice).

    ``init_memberships`` ((C, n_masked) or (C, *shape)) replaces the quantile start; it exists
    so the algorithm can be compared with another FCM implementation from the same start.
    """
    if fuzziness <= 1.0:
        raise ValueError(f"fuzziness must be > 1, got {fuzziness}")
    if n_clusters < 2:
        raise ValueError(f"need at least 2 clusters, got {n_clusters}")
    data = np.asarray(image, dtype=np.float32)
    squeeze = data.ndim == 2
    if squeeze:
        data = data[..., None]
    if data.ndim != 3:
        raise ValueError(f"expected a 2D or 3D image, got shape {image.shape}")
    if not np.isfinite(data).all():
        raise ValueError("image contains NaN or infinite values")
    region = (
        np.ones(data.shape, bool) if mask is None else np.asarray(mask, bool).reshape(data.shape)
    )
    if mask_zero:
        region &= data != 0
    n_voxels = int(region.sum())
    if n_voxels < n_clusters:
        raise ValueError(f"only {n_voxels} voxels to cluster into {n_clusters} classes")

    y = data[region]
    scale = float(np.abs(y).max()) or 1.0
    y = y / np.float32(scale)
    exponent = 1.0 / (fuzziness - 1.0)
    grid = _RedBlack(region)

    if init_memberships is not None:
        init = np.asarray(init_memberships, np.float32)
        u = init if init.ndim == 2 else init.reshape(n_clusters, -1)[:, region.reshape(-1)]
        u = u / np.maximum(u.sum(axis=0, keepdims=True), _TINY)
    else:
        v0 = quantile_centroids(y, n_clusters)
        u = _memberships((y[None] - v0[:, None]) ** 2, exponent)
    # Red-black (Gauss-Seidel) order: a voxel's six face neighbours all have the other
    # parity, so updating one parity from the other's current memberships is exactly a
    # sequential sweep. A simultaneous (Jacobi) update oscillates when beta couples
    # neighbours strongly.
    parts = [u[:, grid.order[0]].copy(), u[:, grid.order[1]].copy()]
    ys = [y[grid.order[0]], y[grid.order[1]]]

    # u**q of each parity, with a trailing zero column standing for "outside the mask".
    powered = [np.zeros((n_clusters, len(o) + 1), np.float32) for o in grid.order]
    for side in (0, 1):
        _power(parts[side], fuzziness, out=powered[side][:, :-1])
    weight = np.float32(beta / 6.0)
    grid.split(max(1, threads))
    pool = ThreadPoolExecutor(threads) if threads > 1 else None
    centroids = np.zeros(n_clusters, np.float32)
    change = np.inf
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 (used after the loop)
        num = sum(q[:, :-1] @ yy for q, yy in zip(powered, ys, strict=True))
        den = sum(q.sum(axis=1) for q in powered)
        centroids = (num / np.maximum(den, np.float32(1e-30))).astype(np.float32)
        change = 0.0
        for side in (0, 1):
            # Voxels of one parity are independent given the other parity, so they are
            # updated in chunks on several threads (NumPy releases the GIL); each voxel's
            # arithmetic is the same whatever the chunking, so results do not depend on it.
            chunks = grid.chunks[side]
            changes = _map(
                pool,
                lambda c, side=side, v=centroids: _update(
                    c, side, grid, parts, powered, ys, v, weight, beta, exponent, fuzziness
                ),
                chunks,
            )
            change = max(change, *changes)
        if change < tol:
            break

    if pool is not None:
        pool.shutdown()
    order = np.argsort(centroids, kind="stable")
    flat = np.empty((n_clusters, n_voxels), np.float32)
    flat[:, grid.order[0]] = parts[0]
    flat[:, grid.order[1]] = parts[1]
    out = np.zeros((n_clusters, *data.shape), np.float32)
    out[:, region] = flat[order]
    if squeeze:
        out = out[..., 0]
    return RFCMResult(
        memberships=out,
        centroids=centroids[order].astype(np.float64) * scale,
        iterations=iterations,
        converged=change < tol,
        max_change=change,
        scale=scale,
    )


def _map(pool: ThreadPoolExecutor | None, func, items) -> list:
    return list(pool.map(func, items)) if pool is not None else [func(i) for i in items]


def _update(chunk, side, grid, parts, powered, ys, centroids, weight, beta, exponent, q) -> float:
    """New memberships of one chunk of one parity; returns the largest change there."""
    g = ys[side][chunk][None] - centroids[:, None]
    g *= g
    if beta > 0:
        near = grid.neighbour_sum(powered[1 - side], side, chunk)
        near -= near.sum(axis=0, keepdims=True)
        near *= -weight
        g += near
    new = _memberships(g, exponent)
    change = float(np.abs(new - parts[side][:, chunk]).max()) if new.size else 0.0
    parts[side][:, chunk] = new
    _power(new, q, out=powered[side][:, chunk])
    return change


def _power(u: np.ndarray, q: float, out: np.ndarray) -> np.ndarray:
    return np.multiply(u, u, out=out) if q == 2.0 else np.power(u, q, out=out)


class _RedBlack:
    """Masked voxels split by parity of i + j + k, with each voxel's six face neighbours.

    ``order[p]`` are the positions (in C order of the masked voxels) of parity ``p``;
    ``neighbours[p]`` (6, n_p) index the other parity's array, where the extra last column
    (index n_other) stands for "outside the mask" and holds 0.
    """

    def __init__(self, region: np.ndarray):
        coords = np.nonzero(region)
        parity = (coords[0] + coords[1] + coords[2]) % 2
        self.order = [np.flatnonzero(parity == 0), np.flatnonzero(parity == 1)]
        padded = np.pad(region, 1)
        lookup = np.full(padded.shape, -1, np.int64)
        cpad = tuple(c + 1 for c in coords)
        self.sizes = [len(o) for o in self.order]
        for p in (0, 1):
            lookup[tuple(c[self.order[p]] for c in cpad)] = np.arange(self.sizes[p])
        self.neighbours = []
        for p in (0, 1):
            own = tuple(c[self.order[p]] for c in cpad)
            rows = []
            for axis in range(3):
                for step in (-1, 1):
                    at = list(own)
                    at[axis] = at[axis] + step
                    idx = lookup[tuple(at)]
                    rows.append(np.where(idx < 0, self.sizes[1 - p], idx))
            self.neighbours.append(np.stack(rows))

    def split(self, n: int) -> None:
        """Cut each parity into ``n`` contiguous chunks (slices) for parallel updates."""
        self.chunks = []
        for size in self.sizes:
            edges = np.linspace(0, size, n + 1).round().astype(int)
            self.chunks.append([slice(a, b) for a, b in pairwise(edges)])

    def neighbour_sum(self, padded: np.ndarray, side: int, chunk: slice) -> np.ndarray:
        """Sum over each ``side`` voxel's neighbours (in ``chunk``) of the other parity's
        values; ``padded`` is (C, n_other + 1) with a final column of zeros (outside)."""
        return np.take(padded, self.neighbours[side][:, chunk], axis=1).sum(axis=1)
