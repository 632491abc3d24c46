"""Affine registration of the head template to a subject's head (antspyx), as a 4x4 matrix.

The template is the moving image and the subject the fixed one, so the transform ANTs writes
maps a subject point to a template point: exactly what is needed to pull template maps (face,
brain) onto the subject's grid. It is returned as a RAS 4x4 point matrix, and every resampling
after that is done with it in NumPy/SciPy (one interpolation, the same on every machine).

Stages: centre-of-mass initialisation, rigid then affine, Mattes mutual information (32 bins,
25 % regular sampling; MI so that a T1 template fits FLAIR or T2 heads), shrink 8x4x2,
smoothing 3x2x1 voxels, intensities winsorised at [0.005, 0.995], one thread and a fixed seed
(reproducible).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from scipy import ndimage

_FLIP = np.diag([-1.0, -1.0, 1.0, 1.0])  # LPS <-> RAS


def _stage(kind: str, fixed: str, moving: str) -> list[str]:
    return [
        "--transform", f"{kind}[0.1]",
        "--metric", f"MI[{fixed},{moving},1,32,Regular,0.25]",
        "--convergence", "[1000x500x250,1e-6,10]",
        "--shrink-factors", "8x4x2",
        "--smoothing-sigmas", "3x2x1vox",
    ]  # fmt: skip


def register_head(subject: Path | str, template_head: Path | str, *, seed: int = 1) -> np.ndarray:
    """The 4x4 RAS point matrix subject world -> template world (affine, antspyx)."""
    os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = "1"
    import ants

    fixed, moving = str(subject), str(template_head)
    with tempfile.TemporaryDirectory(prefix="cohortflow-deface-") as work:
        prefix = str(Path(work) / "head_")
        args = [
            "--dimensionality", "3",
            "--float", "1",
            "--output", prefix,
            "--interpolation", "Linear",
            "--winsorize-image-intensities", "[0.005,0.995]",
            "--use-histogram-matching", "0",
            "--random-seed", str(seed),
            "--initial-moving-transform", f"[{fixed},{moving},1]",
            *_stage("Rigid", fixed, moving),
            *_stage("Affine", fixed, moving),
        ]  # fmt: skip
        ants.registration(args, None)
        mat = Path(f"{prefix}0GenericAffine.mat")
        if not mat.is_file():
            raise RuntimeError(f"antsRegistration wrote no affine transform in {work}")
        return ants_affine_to_ras(mat)


def ants_affine_to_ras(mat: Path | str) -> np.ndarray:
    """An ANTs/ITK affine file (fixed point -> moving point, LPS) as a 4x4 RAS point matrix."""
    import ants

    tx = ants.read_transform(str(mat))
    params = np.asarray(tx.parameters, dtype=float)
    centre = np.asarray(tx.fixed_parameters, dtype=float)
    matrix = params[:9].reshape(3, 3)
    lps = np.eye(4)
    lps[:3, :3] = matrix
    lps[:3, 3] = params[9:12] + centre - matrix @ centre
    return _FLIP @ lps @ _FLIP


def pull(
    data: np.ndarray,
    data_affine: np.ndarray,
    target_shape: tuple[int, ...],
    target_affine: np.ndarray,
    target_to_data: np.ndarray,
    *,
    order: int = 1,
) -> np.ndarray:
    """Resample ``data`` onto a target grid through a RAS point map target -> data world.

    Points outside ``data`` get 0. Done slab by slab to keep memory flat on large grids.
    """
    vox = np.linalg.inv(data_affine) @ target_to_data @ target_affine
    rot = vox[:3, :3].astype(np.float32)
    shift = vox[:3, 3].astype(np.float32)
    src = np.asarray(data, dtype=np.float32)
    out = np.empty(target_shape, dtype=np.float32)
    jk = np.indices(target_shape[1:], dtype=np.float32).reshape(2, -1)
    for i in range(target_shape[0]):
        ijk = np.vstack([np.full((1, jk.shape[1]), i, dtype=np.float32), jk])
        coords = rot @ ijk + shift[:, None]
        out[i] = ndimage.map_coordinates(src, coords, order=order, cval=0.0).reshape(
            target_shape[1:]
        )
    return out
