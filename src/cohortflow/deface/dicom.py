"""Defaced, de-identified DICOM: the series ingest converted, with the face removed.

Each file of the selected series is de-identified exactly as ``ingest`` exports it (PS3.15
Basic Application Level Confidentiality Profile) and, in addition:

* every pixel whose centre falls in a removed voxel of the defaced NIfTI is set to the stored
  value that rescales to 0 (so the DICOM and the NIfTI agree voxel for voxel);
* the De-identification Method Code Sequence gains (113102, DCM, "Clean Recognizable Visual
  Features Option"), Recognizable Visual Features (0028,0302) becomes NO, and Image Type
  starts with DERIVED;
* series and instance UIDs are new (derived from the de-identified ones with the key), so the
  defaced series never collides with the plain de-identified export.

Pixel data are written uncompressed (Explicit VR Little Endian).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian

from cohortflow.errors import DicomError, InputError
from cohortflow.ingest import dicom_volume
from cohortflow.ingest.run import IngestSettings, export_deidentified_dicom
from cohortflow.privacy.deidentify import deidentify_dataset
from cohortflow.privacy.pseudonym import PseudonymKey, remap_uid

CLEAN_VISUAL_FEATURES = ("113102", "DCM", "Clean Recognizable Visual Features Option")
_LPS_TO_RAS = np.array([-1.0, -1.0, 1.0])

log = logging.getLogger("cohortflow.deface")


def frame_mask(plane: dicom_volume._Slice, mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """(rows, columns) bool: the pixels whose centre lies in a removed voxel."""
    rows, cols = plane.pixels.shape
    row_cos, col_cos = plane.orientation[:3], plane.orientation[3:]
    r, c = np.mgrid[0:rows, 0:cols]
    lps = (
        plane.position[None, None, :]
        + (c[..., None] * plane.pixel_spacing[1]) * row_cos[None, None, :]
        + (r[..., None] * plane.pixel_spacing[0]) * col_cos[None, None, :]
    )
    ras = lps * _LPS_TO_RAS
    inverse = np.linalg.inv(affine)
    ijk = np.rint(ras @ inverse[:3, :3].T + inverse[:3, 3]).astype(int)
    inside = np.all((ijk >= 0) & (ijk < np.array(mask.shape)), axis=-1)
    out = np.zeros((rows, cols), bool)
    i, j, k = ijk[inside].T
    out[inside] = mask[i, j, k]
    return out


def _zero_value(plane: dicom_volume._Slice, dtype: np.dtype) -> int:
    """The stored value that rescales to 0 (or the nearest one the data type holds)."""
    value = round(-plane.intercept / plane.slope)
    info = np.iinfo(dtype)
    return int(min(max(value, info.min), info.max))


def deface_dataset(
    ds: Dataset,
    path: Path,
    key: PseudonymKey,
    subject: str,
    mask: np.ndarray,
    affine: np.ndarray,
) -> tuple[Dataset, int]:
    """A de-identified, defaced copy of ``ds``; also the number of pixels removed."""
    planes = dicom_volume.frame_planes(ds, path)
    out = deidentify_dataset(ds, key, subject_label=subject, extra_methods=[CLEAN_VISUAL_FEATURES])
    pixels = np.stack([p.pixels for p in planes]).copy()
    removed = 0
    for index, plane in enumerate(planes):
        hit = frame_mask(plane, mask, affine)
        pixels[index][hit] = _zero_value(plane, pixels.dtype)
        removed += int(hit.sum())
    array = pixels if len(planes) > 1 or "NumberOfFrames" in ds else pixels[0]
    out.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out.PixelData = np.ascontiguousarray(array).tobytes()
    out["PixelData"].VR = "OW" if array.dtype.itemsize > 1 else "OB"
    out.RecognizableVisualFeatures = "NO"
    image_type = list(out.get("ImageType", ["ORIGINAL", "PRIMARY"]))
    out.ImageType = ["DERIVED", *image_type[1:]]
    out.DeidentificationMethod = [*out.DeidentificationMethod, "face removed (cohortflow deface)"]
    for keyword in ("SeriesInstanceUID", "SOPInstanceUID"):
        setattr(out, keyword, remap_uid(key, f"{getattr(out, keyword)}/defaced"))
    out.file_meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
    return out, removed


def export_defaced_dicom(
    *,
    source: str | Path,
    mask_path: str | Path,
    out_dir: str | Path,
    subject: str,
    sheet_row: int,
    key: PseudonymKey,
    settings: IngestSettings,
) -> int:
    """Write the subject's selected series, de-identified and defaced; pixels removed.

    The series, file order and atomic folder are those of ingest's de-identified export; only
    the writing of each file differs.
    """
    import nibabel as nib

    mask_img = nib.load(str(mask_path))
    mask = np.asarray(mask_img.dataobj) > 0
    removed = 0

    def write_defaced(path: Path, target: Path) -> None:
        nonlocal removed
        ds = pydicom.dcmread(path, force=True)
        try:
            out, count = deface_dataset(ds, path, key, subject, mask, mask_img.affine)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise DicomError(path, f"cannot deface ({type(exc).__name__}: {exc})") from None
        removed += count
        pydicom.dcmwrite(target, out, enforce_file_format=True)

    files = export_deidentified_dicom(
        source=source, out_dir=out_dir, subject=subject, sheet_row=sheet_row, key=key,
        settings=settings, logger=log, write_file=write_defaced,
    )  # fmt: skip
    who = f"sub-{subject} (sample sheet row {sheet_row})"
    if removed == 0:
        shutil.rmtree(out_dir, ignore_errors=True)  # no folder claims a defacing it lacks
        raise InputError(mask_path, "no DICOM pixel falls in the removed face region", who)
    log.info("%s: %d defaced DICOM files (%d pixels removed)", who, files, removed)
    return removed
