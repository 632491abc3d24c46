"""NIfTI and BIDS sources: accepted as they are, checked, and stripped of header text.

A NIfTI input keeps its voxels and its voxel-to-world affine; everything else in the header
(description, aux_file, db_name, intent name: places where converters and people leave names
and dates) is dropped by building a fresh header. The image is reoriented to the closest
canonical RAS+ orientation like DICOM inputs, exactly (axis flips and permutations only).
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

from cohortflow.errors import ConfigError, InputError, NiftiError
from cohortflow.ingest.budget import MAX_HEADER_BYTES, refuse_above

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


#: What ``ingest.nifti_without_orientation`` may say (schema: the default and the meaning).
WITHOUT_ORIENTATION = ("error", "assume_ras")
#: NIfTI data types that hold one real number per voxel; complex, RGB and other structured
#: types are refused (a complex image kept as complex, or its magnitude taken silently, would
#: be a different image than the one the later stages expect).
_REAL_KINDS = ("u", "i", "f")


def load_nifti_3d(
    path: Path, *, max_image_mb: float | None = None, without_orientation: str = "error"
) -> nib.Nifti1Image:
    """The image of :func:`read_nifti_3d`, without its notes."""
    image, _ = read_nifti_3d(
        path, max_image_mb=max_image_mb, without_orientation=without_orientation
    )
    return image


def read_nifti_3d(
    path: Path, *, max_image_mb: float | None = None, without_orientation: str = "error"
) -> tuple[nib.Nifti1Image, list[str]]:
    """Load a 3D NIfTI as a canonical (RAS+) image with a fresh, text-free header, and the
    notes that the sidecar must carry.

    Everything that can be judged from the header is judged before a voxel is read: the
    declared size (dimensions x data type) against ``max_image_mb``, the data type (one real
    number per voxel), the voxel sizes (positive) and the orientation (a qform or an sform;
    without either, ``without_orientation="assume_ras"`` takes the voxel axes as R, A, S with
    the header's voxel sizes, and says so in a note; "error" refuses). A 4D file whose fourth
    dimension has length 1 is accepted as 3D; any other 4D or higher image is refused, as are
    files that are not NIfTI images at all, and images with NaN or infinite values.
    """
    path = Path(path)
    if without_orientation not in WITHOUT_ORIENTATION:
        raise ConfigError(
            f"ingest.nifti_without_orientation: {without_orientation!r} is not one of "
            f"{list(WITHOUT_ORIENTATION)}"
        )
    _check_header_length(path)
    try:
        img = nib.load(path)
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
    notes = _check_header(path, img, max_image_mb, without_orientation)
    try:
        data = np.asanyarray(img.dataobj)
    except (OSError, EOFError, ValueError, gzip.BadGzipFile, zlib.error) as exc:
        raise NiftiError(path, f"not a readable NIfTI image ({type(exc).__name__}: {exc})") from exc
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
    assumed_ras = bool(notes)  # no orientation in the header, and the config asks for RAS
    if assumed_ras:
        affine = np.diag([*(float(z) for z in img.header.get_zooms()[:3]), 1.0])
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-6:
        raise NiftiError(path, "voxel-to-world affine is missing or singular")
    if np.issubdtype(data.dtype, np.floating) and not np.all(np.isfinite(data)):
        raise NiftiError(path, "image contains NaN or infinite values")
    fresh = nib.Nifti1Image(np.asarray(data), affine)
    fresh.set_qform(affine, code=1)
    fresh.set_sform(affine, code=1)
    fresh.header.set_xyzt_units("mm")
    return nib.as_closest_canonical(fresh), notes


def _check_header_length(path: Path) -> None:
    """Refuse a header whose extensions reach beyond :data:`MAX_HEADER_BYTES` (nibabel reads
    every extension, up to the image data, into memory when it opens the file)."""
    try:
        with nib.openers.ImageOpener(path) as handle:
            raw = handle.read(540)
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error):
        return  # reported by the loader, with its reason
    for order in ("<", ">"):
        size = int(np.frombuffer(raw[:4], dtype=f"{order}i4")[0]) if len(raw) >= 4 else 0
        if size == 348 and len(raw) >= 112:
            offset = float(np.frombuffer(raw[108:112], dtype=f"{order}f4")[0])
        elif size == 540 and len(raw) >= 176:
            offset = float(np.frombuffer(raw[168:176], dtype=f"{order}i8")[0])
        else:
            continue
        if not math.isfinite(offset) or offset > MAX_HEADER_BYTES:
            raise NiftiError(
                path,
                f"the header puts the image data at byte {offset:,.0f} (vox_offset): header "
                f"extensions above {MAX_HEADER_BYTES / 1e6:.0f} MB are refused unread",
            )
        return


def _check_header(
    path: Path, img: nib.Nifti1Image, max_image_mb: float | None, without_orientation: str
) -> list[str]:
    """Size, data type, voxel sizes and orientation, from the header alone; the notes of an
    assumed orientation."""
    header = img.header
    shape = tuple(int(n) for n in header.get_data_shape())
    stored = header.get_data_dtype()
    if stored.kind not in _REAL_KINDS or stored.fields is not None:
        kind = "complex" if stored.kind == "c" else "not one real number per voxel"
        raise NiftiError(
            path,
            f"data type {stored} ({kind}) is not a scalar image: convert it to a real-valued "
            "image (magnitude, or the component you mean) before ingest",
        )
    slope, intercept = header.get_slope_inter()
    scaled = (slope not in (None, 1.0)) or (intercept not in (None, 0.0))
    voxels = math.prod(shape)
    declared = " x ".join(str(n) for n in shape) + f" voxels of {stored}"
    # A scaling (scl_slope/scl_inter) makes the values float64 when read.
    in_memory = voxels * (8 if scaled else stored.itemsize)
    refuse_above(
        path, declared, voxels * stored.itemsize, in_memory, "float64", max_image_mb, NiftiError
    )
    # nibabel "fixes" zero or negative pixdim on load (to 1, or to their absolute value): the
    # header as written decides whether the voxel sizes are usable.
    with nib.openers.ImageOpener(path) as handle:
        written = type(header).from_fileobj(handle, check=False)
    spatial = [round(float(z), 6) for z in written["pixdim"][1 : 1 + min(3, len(shape))]]
    if not all(math.isfinite(z) and z > 0 for z in spatial):
        raise NiftiError(
            path,
            f"voxel sizes (pixdim) {spatial} are not all positive: the image's size in mm is "
            "unknown",
        )
    if int(header["qform_code"]) > 0 or int(header["sform_code"]) > 0:
        return []
    if without_orientation == "error":
        raise NiftiError(
            path,
            "no orientation: qform_code and sform_code are both 0, so where the voxels lie in "
            "the head is unknown (set ingest.nifti_without_orientation to 'assume_ras' to take "
            "the voxel axes as right, anterior, superior; the sidecar then says so)",
        )
    return [
        "NIfTI input without orientation (qform_code and sform_code 0): voxel axes assumed "
        f"to point right, anterior, superior with voxel sizes {spatial} mm "
        "(ingest.nifti_without_orientation: assume_ras); left-right may be swapped"
    ]


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
