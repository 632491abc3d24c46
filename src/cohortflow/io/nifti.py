"""Reading and writing the NIfTI images passed between stages."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from cohortflow.errors import NiftiError
from cohortflow.io.atomic import atomic_output_file

MNI_CODE = 4  # NIfTI xform code "MNI_152"
SCANNER_CODE = 1


def write_nifti(
    target: Path | str, data: np.ndarray, affine: np.ndarray, *, code: int = MNI_CODE
) -> None:
    """Write ``data`` atomically with a clean header (qform = sform = ``affine``, mm units)."""
    img = nib.Nifti1Image(np.asarray(data), affine)
    img.set_qform(affine, code=code)
    img.set_sform(affine, code=code)
    img.header.set_xyzt_units("mm")
    with atomic_output_file(target) as tmp:
        nib.save(img, tmp)


def read_volume(path: Path | str, what: str = "image") -> tuple[np.ndarray, np.ndarray]:
    """A 3D float32 array and its affine; a clear error for anything else."""
    try:
        img = nib.load(path)
        data = np.asarray(img.get_fdata(dtype=np.float32))
    except Exception as exc:  # nibabel raises many types for damaged files
        raise NiftiError(path, f"cannot read {what}: {type(exc).__name__}: {exc}") from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise NiftiError(path, f"{what} must be 3D, has shape {data.shape}")
    return data, img.affine
