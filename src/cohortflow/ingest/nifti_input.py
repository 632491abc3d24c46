"""NIfTI and BIDS sources: accepted as they are, checked, and stripped of header text.

A NIfTI input keeps its voxels and its voxel-to-world affine; everything else in the header
(description, aux_file, db_name, intent name: places where converters and people leave names
and dates) is dropped by building a fresh header. The image is reoriented to the closest
canonical RAS+ orientation like DICOM inputs, exactly (axis flips and permutations only).
"""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

from cohortflow.errors import InputError, NiftiError

NIFTI_SUFFIXES = (".nii", ".nii.gz")
#: BIDS sidecar keys carried into our sidecar: acquisition parameters only, no free text.
BIDS_SIDECAR_KEYS = (
    "Manufacturer",
    "ManufacturersModelName",
    "MagneticFieldStrength",
    "EchoTime",
    "RepetitionTime",
    "InversionTime",
    "FlipAngle",
    "MRAcquisitionType",
    "ScanningSequence",
    "SequenceVariant",
)


def is_bids_dataset(path: Path) -> bool:
    """A BIDS dataset is a folder with dataset_description.json at its top."""
    return (Path(path) / "dataset_description.json").is_file()


def is_nifti_path(path: Path) -> bool:
    return path.name.endswith(NIFTI_SUFFIXES)


def load_nifti_3d(path: Path) -> nib.Nifti1Image:
    """Load a 3D NIfTI as a canonical (RAS+) image with a fresh, text-free header.

    A 4D file whose fourth dimension has length 1 is accepted as 3D; any other 4D or higher
    image is refused, as are files that are not NIfTI images at all.
    """
    path = Path(path)
    try:
        img = nib.load(path)
        data = np.asanyarray(img.dataobj)
    except (
        nib.filebasedimages.ImageFileError,
        OSError,
        EOFError,
        ValueError,
        gzip.BadGzipFile,
        zlib.error,
    ) as exc:
        raise NiftiError(path, f"not a readable NIfTI image ({type(exc).__name__}: {exc})") from exc
    if not isinstance(img, nib.Nifti1Image | nib.Nifti2Image):
        raise NiftiError(path, f"not a NIfTI image (nibabel reads it as {type(img).__name__})")
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise NiftiError(
            path,
            f"expected a 3D image, found {data.ndim}D with shape {tuple(data.shape)} "
            "(split a 4D series and list the volume to use)",
        )
    if min(data.shape) < 2:
        raise NiftiError(path, f"image shape {tuple(data.shape)} is not a 3D volume")
    affine = img.affine
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-6:
        raise NiftiError(path, "voxel-to-world affine is missing or singular")
    if np.issubdtype(data.dtype, np.floating) and not np.all(np.isfinite(data)):
        raise NiftiError(path, "image contains NaN or infinite values")
    fresh = nib.Nifti1Image(np.asarray(data), affine)
    fresh.set_qform(affine, code=1)
    fresh.set_sform(affine, code=1)
    fresh.header.set_xyzt_units("mm")
    return nib.as_closest_canonical(fresh)


def nifti_header_text(path: Path) -> set[str]:
    """The free-text header fields of a NIfTI file (they must not reach any output)."""
    try:
        header = nib.load(path).header
    except Exception:  # unreadable files are reported by load_nifti_3d
        return set()
    values = set()
    for name in ("descrip", "aux_file", "db_name", "intent_name"):
        if name in header:
            raw = bytes(np.asarray(header[name]).tobytes()).split(b"\0")[0]
            text = raw.decode("latin-1").strip()
            values.update(t for t in [text, *text.split()] if len(t) >= 4)
    return values


def find_bids_image(dataset: Path, subject_id: str, session: str, role: str) -> tuple[Path, dict]:
    """The subject's ``*_{role}.nii[.gz]`` in a BIDS dataset, and the whitelisted sidecar keys.

    The sample-sheet subject is the BIDS label (with or without ``sub-``). Several matches
    (runs, acquisitions) are refused: name the file itself in the sheet instead.
    """
    label = subject_id.removeprefix("sub-")
    sub_dir = dataset / f"sub-{label}"
    if not sub_dir.is_dir():
        raise InputError(dataset, f"BIDS dataset has no folder sub-{label}")
    anat_dirs = [sub_dir / f"ses-{session}" / "anat", sub_dir / "anat"]
    matches = sorted(
        p
        for d in anat_dirs
        if d.is_dir()
        for p in d.iterdir()
        if is_nifti_path(p) and p.name.split(".")[0].endswith(f"_{role}")
    )
    if not matches:
        raise InputError(sub_dir, f"no *_{role}.nii[.gz] image in anat/ (session {session})")
    if len(matches) > 1:
        names = ", ".join(p.name for p in matches)
        raise InputError(
            sub_dir, f"{len(matches)} *_{role} images ({names}); name one in the sheet"
        )
    image = matches[0]
    sidecar_path = image.with_name(image.name.split(".")[0] + ".json")
    fields: dict = {}
    if sidecar_path.is_file():
        try:
            raw = json.loads(sidecar_path.read_text())
        except json.JSONDecodeError as exc:
            raise InputError(sidecar_path, f"BIDS sidecar is not valid JSON ({exc})") from exc
        fields = {k: raw[k] for k in BIDS_SIDECAR_KEYS if k in raw}
    return image, fields
