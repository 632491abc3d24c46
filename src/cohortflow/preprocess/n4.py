"""N4 bias-field correction (Tustison et al. 2010) as HeteroMRI runs it, with SimpleITK.

The field is estimated on a shrunk copy of the image inside a Li-threshold foreground mask
(default N4 parameters: 4 fitting levels of 50 iterations, B-spline order 3, 4 control points,
convergence 0.001) and then evaluated on the full-resolution grid, so the corrected image
keeps the input's resolution: ``corrected = image / exp(log_field)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cohortflow.errors import InputError

MIN_VOXELS_PER_AXIS = 8  # a "3D" image thinner than this is a slice or a localiser
MIN_EXTENT_MM = 60.0  # a head is > 60 mm in every direction


@dataclass(frozen=True)
class N4Settings:
    shrink_factor: int = 4
    iterations: tuple[int, ...] = (50, 50, 50, 50)
    convergence: float = 0.001
    spline_order: int = 3
    control_points: int = 4

    @classmethod
    def from_config(cls, cfg: dict) -> N4Settings:
        return cls(
            shrink_factor=int(cfg["shrink_factor"]),
            iterations=tuple(int(i) for i in cfg["iterations"]),
            convergence=float(cfg["convergence"]),
            spline_order=int(cfg["spline_order"]),
            control_points=int(cfg["control_points"]),
        )


def check_head_image(data: np.ndarray, zooms: tuple[float, ...], path: Path | str) -> None:
    """Refuse what no later step can handle, with the reason (never a silent garbage output)."""
    if data.ndim != 3:
        raise InputError(path, f"expected a 3D image, got shape {data.shape}")
    finite = np.isfinite(data)
    if not finite.all():
        bad = int((~finite).sum())
        raise InputError(path, f"{bad} voxels are NaN or infinite; fix the conversion upstream")
    thin = [n for n in data.shape if n < MIN_VOXELS_PER_AXIS]
    extent = [n * float(z) for n, z in zip(data.shape, zooms, strict=False)]
    if thin or min(extent) < MIN_EXTENT_MM:
        raise InputError(
            path,
            f"not a 3D head volume: shape {data.shape}, field of view "
            f"{' x '.join(f'{e:.0f}' for e in extent)} mm (need >= {MIN_VOXELS_PER_AXIS} voxels "
            f"and >= {MIN_EXTENT_MM:.0f} mm per axis)",
        )
    if float(data.max()) <= float(data.min()):
        raise InputError(path, f"image is constant (every voxel = {float(data.min()):g})")
    if float(data.max()) <= 0:
        raise InputError(path, "image has no positive intensities")


def n4_correct(
    image_path: Path | str,
    settings: N4Settings,
    threads: int = 1,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Bias-corrected image (float32, the input's grid and affine) and a record of the run."""
    import nibabel as nib
    import SimpleITK as sitk  # noqa: N813

    from cohortflow.io.nifti import read_volume

    data, affine = read_volume(image_path)
    zooms = nib.load(image_path).header.get_zooms()[:3]
    check_head_image(data, zooms, image_path)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(max(1, threads))

    # SimpleITK sees the array through an identity geometry scaled by the voxel size; N4 only
    # needs spacing (the B-spline lattice is laid over the physical extent).
    low = min(float(data.min()), 0.0)
    img = sitk.GetImageFromArray(np.ascontiguousarray((data - low).transpose(2, 1, 0)))
    img.SetSpacing([float(z) for z in zooms])
    mask = sitk.LiThreshold(img, 0, 1)
    foreground = int(sitk.GetArrayViewFromImage(mask).sum())
    if foreground < 1000:
        raise InputError(image_path, f"Li threshold finds only {foreground} foreground voxels")
    shrink = [max(1, min(settings.shrink_factor, n // MIN_VOXELS_PER_AXIS)) for n in img.GetSize()]
    small = sitk.Shrink(img, shrink)
    small_mask = sitk.Shrink(mask, shrink)
    n4 = sitk.N4BiasFieldCorrectionImageFilter()
    n4.SetMaximumNumberOfIterations(list(settings.iterations))
    n4.SetConvergenceThreshold(settings.convergence)
    n4.SetSplineOrder(settings.spline_order)
    n4.SetNumberOfControlPoints([settings.control_points] * 3)
    n4.Execute(small, small_mask)
    log_field = sitk.GetArrayFromImage(n4.GetLogBiasFieldAsImage(img)).transpose(2, 1, 0)
    field = np.exp(log_field).astype(np.float32)
    corrected = ((data - low) / field + low).astype(np.float32)
    fg = sitk.GetArrayViewFromImage(mask).transpose(2, 1, 0).astype(bool)
    record = {
        "Method": "N4BiasFieldCorrection (SimpleITK)",
        "MaskMethod": "Li threshold of the image",
        "ShrinkFactors": shrink,
        "MaximumNumberOfIterations": list(settings.iterations),
        "ConvergenceThreshold": settings.convergence,
        "SplineOrder": settings.spline_order,
        "NumberOfControlPoints": settings.control_points,
        "ElapsedIterationsLastLevel": int(n4.GetElapsedIterations()),
        "FinalConvergence": float(n4.GetCurrentConvergenceMeasurement()),
        "ForegroundVoxels": foreground,
        "BiasFieldRange": [float(field[fg].min()), float(field[fg].max())],
        "Threads": threads,
        "SimpleITKVersion": sitk.Version_VersionString(),
    }
    return corrected, affine, record
