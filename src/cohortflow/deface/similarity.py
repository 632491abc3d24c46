"""Similarity measures between an original and a defaced image, restricted to a region.

All take the original ``a`` and the defaced ``b`` (same grid, ``b`` already brought to ``a``'s
intensity scale) and a boolean ``mask``; every one is 1 for identical images and drops as the
images differ inside the mask.

* :func:`fsim` — Feature Similarity Index (Zhang, Zhang, Mou, Zhang, IEEE TIP 2011), the
  strongest single predictor in DefaceQA. Per 2D slice: phase congruency (PC, Kovesi's
  log-Gabor construction, 4 scales x 4 orientations, noise-compensated) and Scharr gradient
  magnitude (GM) of both images; S_PC = (2 PC_a PC_b + T1)/(PC_a^2 + PC_b^2 + T1), S_G the same
  with GM and T2; FSIM = sum(S_PC S_G PC_max) / sum(PC_max) over the masked pixels of all
  slices. Intensities are mapped to 0..255 with the original's 99.5th percentile so that the
  published constants T1 = 0.85, T2 = 160 apply.
* :func:`ssim` — structural similarity (Wang et al. 2004) with a Gaussian window (sigma 1.5
  voxels, in-plane), K1 = 0.01, K2 = 0.03, L = 255 on the same scale, averaged over the mask.
* :func:`nmi` — normalised mutual information 2 I(a;b) / (H(a) + H(b)) from a 64-bin joint
  histogram (1 identical, 0 independent; 0 when either side is constant).
* :func:`correlation` — Pearson correlation (0 when either side is constant).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage

T1_PC = 0.85
T2_GM = 160.0
_SCHARR = np.array([[3, 0, -3], [10, 0, -10], [3, 0, -3]], dtype=np.float64) / 16.0


def to_byte_scale(a: np.ndarray, b: np.ndarray, reference: np.ndarray) -> tuple:
    """Both images on 0..255 by the reference's 99.5th percentile (values above clip)."""
    ref = np.asarray(reference, dtype=np.float64)
    top = float(np.percentile(ref[ref > 0], 99.5)) if np.any(ref > 0) else 1.0
    top = top if top > 0 else 1.0
    return (
        np.clip(np.asarray(a, np.float64) / top * 255.0, 0, 255),
        np.clip(np.asarray(b, np.float64) / top * 255.0, 0, 255),
    )


# ------------------------------------------------------------------------------ phase congruency
@lru_cache(maxsize=32)
def _filter_bank(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Log-Gabor filters (scales x orientations x rows x cols) and their spatial versions."""
    n_scale, n_orient, min_wavelength, mult, sigma_onf = 4, 4, 6.0, 2.0, 0.55
    theta_sigma = np.pi / n_orient / 1.2
    fy = np.fft.fftfreq(rows)[:, None]
    fx = np.fft.fftfreq(cols)[None, :]
    radius = np.sqrt(fx**2 + fy**2)
    radius[0, 0] = 1.0
    theta = np.arctan2(-fy, fx)
    lowpass = 1.0 / (1.0 + (radius / 0.45) ** 30)
    radial = []
    for s in range(n_scale):
        f0 = 1.0 / (min_wavelength * mult**s)
        g = np.exp(-(np.log(radius / f0) ** 2) / (2 * np.log(sigma_onf) ** 2)) * lowpass
        g[0, 0] = 0.0
        radial.append(g)
    filters = np.empty((n_scale, n_orient, rows, cols))
    for o in range(n_orient):
        angle = o * np.pi / n_orient
        ds = np.sin(theta) * np.cos(angle) - np.cos(theta) * np.sin(angle)
        dc = np.cos(theta) * np.cos(angle) + np.sin(theta) * np.sin(angle)
        spread = np.exp(-(np.arctan2(ds, dc) ** 2) / (2 * theta_sigma**2))
        for s in range(n_scale):
            filters[s, o] = radial[s] * spread
    spatial = np.real(np.fft.ifft2(filters[:, 0])) * np.sqrt(rows * cols)
    return filters, spatial


def phase_congruency(image: np.ndarray) -> np.ndarray:
    """Phase congruency of a 2D image (values 0..1), noise threshold per orientation (k = 2)."""
    image = np.asarray(image, dtype=np.float64)
    rows, cols = image.shape
    filters, spatial = _filter_bank(rows, cols)
    n_scale, n_orient = filters.shape[:2]
    eo = np.fft.ifft2(np.fft.fft2(image)[None, None] * filters)  # scale, orient, r, c
    amplitude = np.abs(eo)
    # Noise statistics from the smallest scale (Rayleigh: median -> mean), as in Kovesi (1999).
    sum_an2 = (spatial**2).sum(axis=0).sum()
    sum_aiaj = sum(
        (spatial[i] * spatial[j]).sum() for i in range(n_scale) for j in range(i + 1, n_scale)
    )
    energy_all = np.zeros((rows, cols))
    amplitude_all = np.zeros((rows, cols))
    for o in range(n_orient):
        even = eo[:, o].real
        odd = eo[:, o].imag
        sum_even, sum_odd = even.sum(axis=0), odd.sum(axis=0)
        norm = np.sqrt(sum_even**2 + sum_odd**2) + 1e-4
        mean_e, mean_o = sum_even / norm, sum_odd / norm
        energy = (even * mean_e + odd * mean_o - np.abs(even * mean_o - odd * mean_e)).sum(axis=0)
        em_n = (filters[0, o] ** 2).sum()
        mean_e2n = -np.median(amplitude[0, o] ** 2) / np.log(0.5)
        noise_power = mean_e2n / em_n if em_n > 0 else 0.0
        noise_energy2 = 2 * noise_power * sum_an2 + 4 * noise_power * sum_aiaj
        tau = np.sqrt(max(noise_energy2, 0.0) / 2)
        threshold = (tau * np.sqrt(np.pi / 2) + 2.0 * np.sqrt((2 - np.pi / 2) * tau**2)) / 1.7
        energy_all += np.maximum(energy - threshold, 0.0)
        amplitude_all += amplitude[:, o].sum(axis=0)
    return energy_all / (amplitude_all + 1e-4)


def gradient_magnitude(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, dtype=np.float64)
    gx = ndimage.convolve(image, _SCHARR, mode="nearest")
    gy = ndimage.convolve(image, _SCHARR.T, mode="nearest")
    return np.sqrt(gx**2 + gy**2)


def _slices(volume: np.ndarray, axis: int):
    return np.moveaxis(volume, axis, 0)


def _crop(mask: np.ndarray, *arrays: np.ndarray, pad: int = 4):
    idx = np.argwhere(mask)
    lo = np.maximum(idx.min(axis=0) - pad, 0)
    hi = np.minimum(idx.max(axis=0) + pad + 1, mask.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    return mask[box], *(arr[box] for arr in arrays)


class FsimReference:
    """FSIM against one original: its per-slice PC and GM are computed once.

    A defaced slice identical to the original's contributes S_PC = S_G = 1 with weight PC, so
    only the slices that differ are computed again; scoring many defacings of one original
    (the training pairs) costs little more than the slices each one changes.
    """

    def __init__(self, a: np.ndarray, mask: np.ndarray, *, axis: int = 2):
        if a.ndim == 2:
            a, mask, axis = a[..., None], mask[..., None], 2
        self.axis = axis
        self.empty = not mask.any()
        if self.empty:
            return
        idx = np.argwhere(mask)
        lo = np.maximum(idx.min(axis=0) - 4, 0)
        hi = np.minimum(idx.max(axis=0) + 5, mask.shape)
        self.box = tuple(slice(int(x), int(y)) for x, y in zip(lo, hi, strict=True))
        self.mask = _slices(mask[self.box], axis)
        self.a = _slices(np.asarray(a, np.float64)[self.box], axis)
        self.used = [bool(m.any()) and min(m.shape) >= 3 for m in self.mask]
        self.pc = [
            phase_congruency(s) if u else None for s, u in zip(self.a, self.used, strict=True)
        ]
        self.gm = [
            gradient_magnitude(s) if u else None for s, u in zip(self.a, self.used, strict=True)
        ]
        self.same = [float(pc[m].sum()) if u else 0.0
                     for pc, m, u in zip(self.pc, self.mask, self.used, strict=True)]  # fmt: skip

    def score(self, b: np.ndarray) -> float:
        if self.empty:
            return float("nan")
        if b.ndim == 2:
            b = b[..., None]
        b = _slices(np.asarray(b, np.float64)[self.box], self.axis)
        num = den = 0.0
        for k, used in enumerate(self.used):
            if not used:
                continue
            if np.array_equal(b[k], self.a[k]):
                num += self.same[k]
                den += self.same[k]
                continue
            pc_a, g_a, m = self.pc[k], self.gm[k], self.mask[k]
            pc_b, g_b = phase_congruency(b[k]), gradient_magnitude(b[k])
            s_pc = (2 * pc_a * pc_b + T1_PC) / (pc_a**2 + pc_b**2 + T1_PC)
            s_g = (2 * g_a * g_b + T2_GM) / (g_a**2 + g_b**2 + T2_GM)
            weight = np.maximum(pc_a, pc_b)[m]
            num += float((s_pc * s_g)[m] @ weight)
            den += float(weight.sum())
        return num / den if den > 0 else 1.0


def fsim(a: np.ndarray, b: np.ndarray, mask: np.ndarray, *, axis: int = 2) -> float:
    """FSIM of two images on 0..255 inside ``mask``, slice by slice along ``axis``."""
    return FsimReference(a, mask, axis=axis).score(b)


def ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray, *, axis: int = 2) -> float:
    """Mean SSIM over ``mask`` (images on 0..255), Gaussian window within slices along ``axis``."""
    if not mask.any():
        return float("nan")
    mask, a, b = _crop(mask, a, b)
    sigma = [1.5] * a.ndim
    if a.ndim == 3:
        sigma[axis] = 0.0
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(x: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(x, sigma, truncate=3.5)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )
    return float(s[mask].mean())


def nmi(a: np.ndarray, b: np.ndarray, mask: np.ndarray, *, bins: int = 64) -> float:
    """2 I(a;b) / (H(a) + H(b)) over the mask, 64 bins spanning each image's range there."""
    x, y = np.asarray(a)[mask].ravel(), np.asarray(b)[mask].ravel()
    if x.size == 0:
        return float("nan")
    lo = min(x.min(), y.min())
    hi = max(x.max(), y.max())
    if hi <= lo:
        return 1.0
    joint, _, _ = np.histogram2d(x, y, bins=bins, range=[[lo, hi], [lo, hi]])
    p = joint / joint.sum()
    px, py = p.sum(axis=1), p.sum(axis=0)

    def entropy(q: np.ndarray) -> float:
        q = q[q > 0]
        return float(-(q * np.log(q)).sum())

    h_x, h_y, h_xy = entropy(px), entropy(py), entropy(p.ravel())
    if h_x + h_y == 0:
        return 1.0
    return float(max(0.0, 2 * (h_x + h_y - h_xy) / (h_x + h_y)))


def correlation(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    x, y = np.asarray(a, np.float64)[mask], np.asarray(b, np.float64)[mask]
    if x.size < 2:
        return float("nan")
    if np.array_equal(x, y):
        return 1.0
    sx, sy = x.std(), y.std()
    if sx == 0 or sy == 0:
        return 0.0
    return float(((x - x.mean()) * (y - y.mean())).mean() / (sx * sy))
