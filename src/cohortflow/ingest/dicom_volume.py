"""Turn one DICOM series into a 3D volume with a voxel -> world (RAS+, mm) affine.

Written from the DICOM standard (PS3.3 C.7.6.2 Image Plane, C.7.6.16 functional groups), not
by calling a converter, so that every geometric decision is explicit and checked:

* A pixel at column ``i``, row ``j`` of a slice lies at
  ``ImagePositionPatient + i * PixelSpacing[1] * row_cosine + j * PixelSpacing[0] * col_cosine``
  where ``row_cosine`` (IOP[0:3]) is the direction of *increasing column index* and
  ``PixelSpacing`` is ``[between rows, between columns]``. Voxel axes are therefore
  ``(i=column, j=row, k=slice)``.
* Slices are ordered by the projection of their position on the slice normal
  ``cross(row_cosine, col_cosine)``; file names and InstanceNumber are never trusted.
* DICOM's patient system is LPS, NIfTI's is RAS: x and y change sign.

Anything that would make that affine a lie is refused with a :class:`GeometryError` naming the
reason (mixed orientations or sizes, duplicated positions, several volumes in one series,
gantry tilt, missing slices or uneven spacing), unless the caller asks for resampling.
"""

from __future__ import annotations

import math
import zlib
from collections import Counter
from dataclasses import dataclass, field
from os.path import commonpath
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from scipy import ndimage

from cohortflow.errors import ConfigError, DicomError, GeometryError
from cohortflow.ingest import dicom_series
from cohortflow.ingest.budget import MAX_HEADER_BYTES, image_mb, refuse_above
from cohortflow.ingest.dicom_series import DicomSeries

IRREGULAR = ("error", "resample")
#: Direction cosines (unitless) that differ by less than this are the same orientation.
#: Scanners write IOP with >= 6 decimals; a real change of plane differs by far more.
ORIENTATION_TOLERANCE = 1e-4
#: Pixel spacings (mm) that differ by less than this are the same: 1e-4 mm moves the last of
#: 512 columns by 0.05 mm.
PIXEL_SPACING_TOLERANCE_MM = 1e-4
#: Default tolerance (mm) on slice positions: every slice must lie within this distance of
#: where the affine puts it. Above the rounding of DS values written with 3-6 significant
#: decimals (<= 5e-4 mm per coordinate), far below anything visible in a 1 mm voxel.
DEFAULT_TOLERANCE_MM = 0.01
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass
class Volume:
    """A 3D image and where it is: ``affine @ [i, j, k, 1]`` is the RAS+ position in mm."""

    data: np.ndarray  # axes (i, j, k) of `affine`; real-world values (rescale applied)
    affine: np.ndarray  # 4x4 voxel -> RAS+ world (mm), NIfTI convention
    slice_spacing: float  # distance between acquired slices along their normal (mm)
    notes: list[str] = field(default_factory=list)  # warnings, e.g. resampling done


@dataclass
class _Slice:
    """One 2D image (a single-frame file, or one frame of a multi-frame file) and its plane."""

    source: Path
    frame: int | None  # 0-based frame of a multi-frame file; None for a single-frame file
    pixels: np.ndarray  # (rows, columns) stored values
    position: np.ndarray  # ImagePositionPatient (LPS, mm)
    orientation: np.ndarray  # ImageOrientationPatient: row cosine, column cosine
    pixel_spacing: np.ndarray  # [between rows, between columns] (mm)
    slope: float
    intercept: float

    @property
    def label(self) -> str:
        return (
            self.source.name if self.frame is None else f"{self.source.name} frame {self.frame + 1}"
        )


def _series_path(series: DicomSeries) -> Path:
    """What geometry errors name: the file of a one-file series, else the files' folder."""
    if len(series.files) == 1:
        return series.files[0]
    return Path(commonpath([str(path) for path in series.files]))


def _numbers(value: Any, count: int, what: str, path: Path) -> np.ndarray:
    """A multi-valued DS/FD attribute as floats, checked for its number of values."""
    try:
        numbers = np.array([float(v) for v in value], dtype=float)
    except (TypeError, ValueError):
        raise DicomError(path, f"{what} is not numeric ({value!r})") from None
    if numbers.shape != (count,) or not np.all(np.isfinite(numbers)):
        raise DicomError(path, f"{what} must hold {count} finite numbers, got {value!r}")
    return numbers


def _read_dataset(path: Path, pixel_bytes: int = 0) -> Dataset:
    """Full dataset (pixels included). Part 10 files are read normally; files without the
    preamble (older exports, accepted by discovery) are read with ``force`` and get the
    transfer syntax pydicom detected, which pixel decoding needs. A deflated file is inflated
    to at most its header's declared ``pixel_bytes`` plus a header's worth, never further."""
    try:
        if dicom_series.is_deflated(path):
            data, complete = dicom_series.inflate(path, pixel_bytes + MAX_HEADER_BYTES)
            if not complete:
                raise DicomError(
                    path,
                    f"deflated file inflates to more than the {image_mb(pixel_bytes)} of pixel "
                    f"data its header declares (stopped at {image_mb(len(data))})",
                )
            ds = dicom_series.dataset_from_inflated(path, data, complete)
        else:
            ds = pydicom.dcmread(path, force=True)
    except (
        InvalidDicomError,
        OSError,
        EOFError,
        ValueError,
        KeyError,
        TypeError,
        zlib.error,
    ) as exc:
        raise DicomError(path, f"cannot read DICOM file ({type(exc).__name__}: {exc})") from None
    if "TransferSyntaxUID" not in ds.file_meta:
        implicit, _ = ds.original_encoding
        ds.file_meta.TransferSyntaxUID = (
            ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
        )
    return ds


def _frames(ds: Dataset, path: Path) -> np.ndarray:
    """Stored pixel values as (frames, rows, columns); DicomError for truncated or undecodable
    pixel data (checked before decoding, so the message says what is missing)."""
    if "PixelData" not in ds:
        raise DicomError(path, "no pixel data (truncated file, or not an image)")
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if samples != 1:
        photometric = ds.get("PhotometricInterpretation", "?")
        raise DicomError(path, f"{samples} samples per pixel ({photometric}): not a grey image")
    rows, columns = int(ds.Rows), int(ds.Columns)
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    syntax = ds.file_meta.TransferSyntaxUID
    if not syntax.is_compressed:
        bits = int(ds.BitsAllocated)
        expected = math.ceil(rows * columns * n_frames * bits / 8)
        found = len(ds.PixelData)
        if found < expected:
            raise DicomError(
                path,
                f"truncated file: pixel data holds {found} bytes, {expected} expected "
                f"(Rows {rows} x Columns {columns} x {n_frames} frame(s) x {bits} bits)",
            )
    try:
        array = ds.pixel_array
    except (RuntimeError, NotImplementedError, ValueError, AttributeError) as exc:
        if syntax.is_compressed:
            raise DicomError(
                path,
                f"cannot decode compressed pixel data, transfer syntax {syntax.name} "
                f"({syntax}): {exc}",
            ) from None
        raise DicomError(path, f"cannot decode pixel data ({exc})") from None
    array = np.asarray(array)
    if array.size != n_frames * rows * columns:
        raise DicomError(
            path,
            f"pixel data holds {array.size} values, but NumberOfFrames {n_frames} x Rows {rows}"
            f" x Columns {columns} = {n_frames * rows * columns}",
        )
    return array.reshape(n_frames, rows, columns)


def _rescale(item: Dataset | None) -> tuple[float, float] | None:
    """(slope, intercept) of a dataset or functional-group item, None when it has none."""
    if item is None or item.get("RescaleSlope") in (None, ""):
        return None
    slope = float(item.RescaleSlope)
    if slope == 0 or not math.isfinite(slope):
        raise ValueError(f"RescaleSlope {item.RescaleSlope!r} would erase the image")
    return slope, float(item.get("RescaleIntercept", 0.0) or 0.0)


def _classic_slices(ds: Dataset, path: Path) -> list[_Slice]:
    pixels = _frames(ds, path)
    if pixels.shape[0] != 1:
        raise DicomError(
            path,
            f"{pixels.shape[0]} frames without per-frame functional groups: "
            "cannot place the frames in space",
        )
    missing = [
        keyword
        for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing")
        if keyword not in ds
    ]
    if missing:
        raise DicomError(path, f"no {', '.join(missing)}: cannot place the slice in space")
    slope, intercept = _rescale(ds) or (1.0, 0.0)
    return [
        _Slice(
            source=path,
            frame=None,
            pixels=pixels[0],
            position=_numbers(ds.ImagePositionPatient, 3, "ImagePositionPatient", path),
            orientation=_numbers(ds.ImageOrientationPatient, 6, "ImageOrientationPatient", path),
            pixel_spacing=_numbers(ds.PixelSpacing, 2, "PixelSpacing", path),
            slope=slope,
            intercept=intercept,
        )
    ]


def _group_item(frame: Dataset, shared: Dataset | None, sequence: str) -> Dataset | None:
    """The item of a functional-group macro for one frame: per-frame first, else shared."""
    for container in (frame, shared):
        if container is not None and container.get(sequence):
            return container.get(sequence)[0]
    return None


def _enhanced_slices(ds: Dataset, path: Path) -> list[_Slice]:
    """One _Slice per frame, geometry and rescale from the (per-frame or shared) groups."""
    pixels = _frames(ds, path)
    per_frame = ds.PerFrameFunctionalGroupsSequence
    if len(per_frame) != pixels.shape[0]:
        raise DicomError(
            path,
            f"{pixels.shape[0]} frames but {len(per_frame)} PerFrameFunctionalGroupsSequence items",
        )
    shared_items = ds.get("SharedFunctionalGroupsSequence")
    shared = shared_items[0] if shared_items else None
    top_level_rescale = _rescale(ds) or (1.0, 0.0)
    slices = []
    for index, frame in enumerate(per_frame):
        where = f"frame {index + 1}"
        position = _group_item(frame, shared, "PlanePositionSequence")
        orientation = _group_item(frame, shared, "PlaneOrientationSequence")
        measures = _group_item(frame, shared, "PixelMeasuresSequence")
        if position is None or orientation is None or measures is None:
            raise DicomError(
                path,
                f"{where}: no PlanePosition/PlaneOrientation/PixelMeasures functional group: "
                "cannot place the frame in space",
            )
        rescale = _group_item(frame, shared, "PixelValueTransformationSequence")
        slope, intercept = _rescale(rescale) or top_level_rescale
        slices.append(
            _Slice(
                source=path,
                frame=index,
                pixels=pixels[index],
                position=_numbers(
                    position.ImagePositionPatient, 3, f"{where} ImagePositionPatient", path
                ),
                orientation=_numbers(
                    orientation.ImageOrientationPatient, 6, f"{where} ImageOrientationPatient", path
                ),
                pixel_spacing=_numbers(measures.PixelSpacing, 2, f"{where} PixelSpacing", path),
                slope=slope,
                intercept=intercept,
            )
        )
    return slices


#: Largest drift across the normal per mm of stack length still taken as rounding, not tilt.
TILT_TOLERANCE = 2e-4


def _distinct(values: list[np.ndarray], tolerance: float) -> list[int]:
    """Index of the first member of each group of values equal within ``tolerance``."""
    representatives: list[int] = []
    for index, value in enumerate(values):
        if not any(np.max(np.abs(value - values[r])) <= tolerance for r in representatives):
            representatives.append(index)
    return representatives


def _check_same_plane_geometry(slices: list[_Slice], where: Path) -> None:
    """All slices must share size, pixel spacing and orientation to form one grid."""
    if np.any(slices[0].pixel_spacing <= 0):
        raise GeometryError(
            where, f"PixelSpacing {slices[0].pixel_spacing.tolist()} is not positive"
        )
    shapes = Counter(s.pixels.shape for s in slices)
    if len(shapes) > 1:
        listing = ", ".join(f"{n} of {r}x{c}" for (r, c), n in shapes.items())
        raise GeometryError(
            where,
            f"mixed geometry: {len(shapes)} different image sizes (rows x columns): {listing}",
        )
    for attribute, what, tolerance in (
        ("pixel_spacing", "pixel spacings", PIXEL_SPACING_TOLERANCE_MM),
        ("orientation", "orientations", ORIENTATION_TOLERANCE),
    ):
        values = [getattr(s, attribute) for s in slices]
        groups = _distinct(values, tolerance)
        if len(groups) > 1:
            examples = " vs ".join(
                f"{slices[g].label}: {np.round(values[g], 5).tolist()}" for g in groups[:3]
            )
            raise GeometryError(
                where, f"mixed geometry: {len(groups)} different {what} in one series ({examples})"
            )


def _unit_axes(orientation: np.ndarray, where: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row cosine, column cosine and unit slice normal; refuses a non-orthonormal IOP."""
    row, col = orientation[:3], orientation[3:]
    if (
        abs(np.linalg.norm(row) - 1) > 1e-3
        or abs(np.linalg.norm(col) - 1) > 1e-3
        or abs(row @ col) > 1e-3
    ):
        raise GeometryError(
            where,
            f"ImageOrientationPatient {orientation.tolist()} is not two orthogonal unit vectors",
        )
    normal = np.cross(row, col)
    return row, col, normal / np.linalg.norm(normal)


def _check_single_volume(ordered: list[_Slice], along: np.ndarray, tol: float, where: Path) -> None:
    """Refuse repeated positions: duplicates, or several volumes (echoes, time points)."""
    same = np.diff(along) <= tol
    if not same.any():
        return
    n_positions = int(np.count_nonzero(~same)) + 1
    if len(ordered) % n_positions == 0:
        repeats = len(ordered) // n_positions
        counts = np.diff(np.flatnonzero(np.r_[True, ~same, True]))
        if np.all(counts == repeats):
            raise GeometryError(
                where,
                f"{len(ordered)} images at {n_positions} slice positions: the series holds "
                f"{repeats} volumes (echoes, temporal positions or repetitions); only one 3D "
                "volume per series is supported",
            )
    first = int(np.flatnonzero(same)[0])
    raise GeometryError(
        where,
        f"duplicate slice positions: {ordered[first].label} and {ordered[first + 1].label} both "
        f"at {along[first]:.3f} mm along the slice normal",
    )


def _describe_spacing(ordered: list[_Slice], along: np.ndarray, tol: float) -> str:
    """Which steps break the regular spacing: missing slices or uneven steps."""
    steps = np.diff(along)
    expected = float(np.median(steps))
    odd = [k for k, step in enumerate(steps) if abs(step - expected) > tol]
    missing = all(
        round(steps[k] / expected) >= 2
        and abs(steps[k] - round(steps[k] / expected) * expected) <= tol
        for k in odd
    )
    details = "; ".join(
        f"{steps[k]:.3f} mm between {ordered[k].label} and {ordered[k + 1].label}" for k in odd[:3]
    )
    more = f" (and {len(odd) - 3} more)" if len(odd) > 3 else ""
    kind = "missing slice(s)" if missing else "non-uniform slice spacing"
    return f"{kind}: {details}{more}, expected {expected:.3f} mm"


def _correct_tilt(
    data: np.ndarray, offsets: np.ndarray, row: np.ndarray, col: np.ndarray, spacing: np.ndarray
) -> np.ndarray:
    """Shift each slice in its plane so that all slices stack along the normal.

    Slice k was acquired ``offsets[k]`` (mm, in-plane) away from the line through the first
    slice's origin along the normal; sampling it at (i - di, j - dj) puts it on the grid of the
    first slice (linear interpolation, 0 outside the acquired field of view). This is the
    standard gantry-tilt correction (a shear removed slice by slice).
    """
    out = np.empty(data.shape, dtype=np.float32)
    for k in range(data.shape[2]):
        # Rounded to 1e-6 voxel: positions are not known better, and a shift of 1e-12 would
        # otherwise push the edge row just outside the slice and blank it.
        shift = np.round([offsets[k] @ row / spacing[1], offsets[k] @ col / spacing[0]], 6)
        out[:, :, k] = ndimage.shift(data[:, :, k], shift, order=1, mode="constant")
    return out


def _regular_positions(along: np.ndarray) -> np.ndarray:
    """A regular grid from the first to the last slice with (about) the median step."""
    step = float(np.median(np.diff(along)))
    count = round((along[-1] - along[0]) / step) + 1
    return np.linspace(along[0], along[-1], count)


def _interpolate_slices(data: np.ndarray, along: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Linear interpolation along k from slices at ``along`` to slices at ``targets``."""
    lower = np.clip(np.searchsorted(along, targets, side="right") - 1, 0, len(along) - 2)
    weight = ((targets - along[lower]) / (along[lower + 1] - along[lower])).astype(np.float32)
    return (1 - weight) * data[:, :, lower] + weight * data[:, :, lower + 1]


def _to_closest_canonical(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flip/permute axes (no interpolation) so that they point closest to R, A, S, exactly as
    :func:`nibabel.as_closest_canonical` does for an image."""
    ornt = nib.orientations.io_orientation(affine)
    # inv_ornt_aff needs the shape *before* reorienting (a flip moves the origin by n - 1).
    new_affine = affine @ nib.orientations.inv_ornt_aff(ornt, data.shape)
    return np.ascontiguousarray(nib.orientations.apply_orientation(data, ornt)), new_affine


def frame_planes(ds: Dataset, path: Path) -> list[_Slice]:
    """Every 2D image of one dataset (classic or enhanced multi-frame) with its plane."""
    if "PerFrameFunctionalGroupsSequence" in ds:
        return _enhanced_slices(ds, path)
    return _classic_slices(ds, path)


#: Attributes that say how stored values become numbers: every file of a series must agree
#: (one slice with signed values among unsigned ones decodes into a bright slice).
PIXEL_ENCODING = ("PixelRepresentation", "BitsAllocated", "BitsStored", "PhotometricInterpretation")


def _declared_pixel_bytes(header: Dataset, path: Path) -> tuple[int, str]:
    """Bytes of decoded pixel data one file's header declares, and how (for messages)."""
    try:
        rows, columns = int(header.Rows), int(header.Columns)
        frames = int(header.get("NumberOfFrames", 1) or 1)
        bits = int(header.BitsAllocated)
        samples = int(header.get("SamplesPerPixel", 1) or 1)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise DicomError(path, f"malformed image header ({type(exc).__name__}: {exc})") from None
    if min(rows, columns, frames, bits, samples) < 1:
        raise DicomError(
            path, f"Rows {rows}, Columns {columns}, {frames} frame(s), {bits} bits: not an image"
        )
    declared = f"Rows {rows} x Columns {columns} x {frames} frame(s) x {bits} bits"
    if samples != 1:
        declared += f" x {samples} samples"
    return math.ceil(rows * columns * frames * samples * bits / 8), declared


def check_series_headers(series: DicomSeries, max_image_mb: float | None) -> list[Dataset]:
    """Every file's header (pixel data not read), after checking what they declare together
    against ``max_image_mb`` and that they agree on how pixels are encoded."""
    headers, total = [], 0
    for path in series.files:
        try:
            header = dicom_series.read_header(path, force=True)
        except (InvalidDicomError, OSError, EOFError, ValueError, KeyError, TypeError) as exc:
            reason = f"cannot read DICOM header ({type(exc).__name__}: {exc})"
            raise DicomError(path, reason) from None
        n_bytes, declared = _declared_pixel_bytes(header, path)
        # Values become float32 (rescaling; float64 pixel data stays 8 bytes).
        widen = max(4, int(header.BitsAllocated) // 8) / (int(header.BitsAllocated) / 8)
        total += n_bytes
        n_files = len(series.files)
        # Checked for the whole series up front (this file x files), then with the running
        # total (files may differ), so that nothing is read of a series that is too large.
        if n_files > 1:
            each = f"{declared} in each of {n_files} files"
            memory = n_bytes * n_files * widen
            refuse_above(path, each, n_bytes * n_files, memory, "float32", max_image_mb, DicomError)
        so_far = f"{len(headers) + 1} files up to this one of {declared}" if headers else declared
        refuse_above(path, so_far, total, total * widen, "float32", max_image_mb, DicomError)
        headers.append(header)
    _check_same_encoding(series.files, headers)
    _check_unique_instances(series.files, headers)
    return headers


def _check_same_encoding(files: list[Path], headers: list[Dataset]) -> None:
    for keyword in PIXEL_ENCODING:
        values = [str(header.get(keyword, "")).strip() for header in headers]
        counts = Counter(values)
        if len(counts) > 1:
            common = counts.most_common(1)[0][0]
            odd = [f.name for f, v in zip(files, values, strict=True) if v != common]
            shown = ", ".join(odd[:3]) + (f" and {len(odd) - 3} more" if len(odd) > 3 else "")
            listing = ", ".join(f"{n} file(s) with {v or 'none'}" for v, n in counts.items())
            raise DicomError(
                _common_folder(files),
                f"the files of one series disagree on {keyword} ({listing}; e.g. {shown}): "
                "their stored values cannot be decoded alike, refused rather than converted "
                "into a volume with wrong slices",
            )


def _check_unique_instances(files: list[Path], headers: list[Dataset]) -> None:
    """One SOP Instance UID, one image: a repeated UID at another position is two images
    claiming one identity (the export would repeat the UID); at the same position, a copy."""
    seen: dict[str, tuple[Path, Any]] = {}
    for path, header in zip(files, headers, strict=True):
        uid = str(header.get("SOPInstanceUID", "") or "").strip()
        if not uid:
            continue
        try:
            where = tuple(float(v) for v in header.get("ImagePositionPatient") or ())
        except (TypeError, ValueError):
            where = ()
        if uid in seen:
            other, other_where = seen[uid]
            same = len(where) == len(other_where) and np.allclose(where, other_where, atol=1e-3)
            if not same:
                raise DicomError(
                    _common_folder([other, path]),
                    f"{other.name} and {path.name} share one SOP Instance UID but lie at "
                    "different positions: two images with one identity (a faulty export or an "
                    "edited copy); a series must give each image its own UID",
                )
            raise DicomError(
                _common_folder([other, path]),
                f"{other.name} and {path.name} are the same image twice (same SOP Instance "
                "UID, same position): remove the copy",
            )
        seen[uid] = (path, where)


def _common_folder(files: list[Path]) -> Path:
    return Path(commonpath([str(f.parent) for f in files]))


def _read_slices(series: DicomSeries, max_image_mb: float | None = None) -> list[_Slice]:
    """Every 2D image of the series with its plane, whatever mix of classic and enhanced files.

    Headers first: the declared size against ``max_image_mb``, the pixel encoding and the
    instance UIDs are checked before any pixel data is read or decoded."""
    headers = check_series_headers(series, max_image_mb)
    slices: list[_Slice] = []
    for path, header in zip(series.files, headers, strict=True):
        ds = _read_dataset(path, _declared_pixel_bytes(header, path)[0])
        try:
            slices.extend(frame_planes(ds, path))
        except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
            # A required attribute is missing or malformed in a way no check above names:
            # still this file's fault, not a crash of the pipeline.
            raise DicomError(
                path, f"malformed DICOM header ({type(exc).__name__}: {exc})"
            ) from None
    return slices


def read_volume(
    series: DicomSeries,
    *,
    irregular: str = "error",
    tolerance_mm: float = DEFAULT_TOLERANCE_MM,
    canonical: bool = True,
    max_image_mb: float | None = None,
) -> Volume:
    """Read a series' pixels and geometry into one 3D :class:`Volume`.

    ``irregular="resample"`` accepts two kinds of irregular stack instead of raising:
    gantry tilt (slices sheared in-plane: each slice is shifted back onto the first slice's
    grid, linear interpolation) and non-uniform spacing (missing slices: slices are linearly
    interpolated along the normal onto a regular grid spanning first to last slice with the
    median step). Either adds a note and makes the data float32. ``tolerance_mm`` is how far
    any slice may lie from where the affine puts it. ``canonical`` reorders the axes to the
    closest RAS+ (exact flips/permutations). ``max_image_mb`` limits what the headers may
    declare (checked before any pixel data is read); values that are not finite after
    rescaling are refused.
    """
    if irregular not in IRREGULAR:
        raise ConfigError(f"ingest.irregular_slices: {irregular!r} is not one of {list(IRREGULAR)}")
    where = _series_path(series)
    slices = _read_slices(series, max_image_mb)
    if len(slices) < 2:
        raise GeometryError(where, f"only {len(slices)} image(s): not a 3D volume")
    _check_same_plane_geometry(slices, where)
    row, col, normal = _unit_axes(slices[0].orientation, where)
    spacing = slices[0].pixel_spacing

    order = np.argsort([s.position @ normal for s in slices], kind="stable")
    ordered = [slices[k] for k in order]
    positions = np.array([s.position for s in ordered])
    along = (positions - positions[0]) @ normal
    _check_single_volume(ordered, along, tolerance_mm, where)

    notes: list[str] = []
    # Pixel arrays are (row, column); voxel axes are (i=column, j=row, k=slice).
    data = np.stack([s.pixels for s in ordered], axis=-1).transpose(1, 0, 2)
    slopes = np.array([s.slope for s in ordered])
    intercepts = np.array([s.intercept for s in ordered])
    if np.any(slopes != 1) or np.any(intercepts != 0):
        # Slice by slice: the float64 arithmetic of a whole volume would double the peak.
        rescaled = np.empty_like(data, dtype=np.float32)
        with np.errstate(over="ignore", invalid="ignore"):  # refused just below, with a reason
            for k in range(data.shape[2]):
                rescaled[:, :, k] = data[:, :, k] * slopes[k] + intercepts[k]
        data = rescaled
    if data.dtype.kind == "f":
        _refuse_non_finite(data, ordered, where)

    # In-plane displacement of each slice from the line through the first along the normal.
    offsets = (positions - positions[0]) - np.outer(along, normal)
    drift = float(np.linalg.norm(offsets, axis=1).max())
    # IOP is often written with 4-6 decimals: a cosine error of 1e-4 drifts 0.02 mm over a
    # 200 mm stack. Allow that much (0.01 degrees); a real gantry tilt is degrees.
    if drift > max(tolerance_mm, TILT_TOLERANCE * abs(float(along[-1]))):
        angle = math.degrees(math.atan2(float(np.linalg.norm(offsets[-1])), float(along[-1])))
        reason = (
            f"gantry tilt: slice positions drift up to {drift:.3f} mm across the slice normal "
            f"(stack tilted {angle:.2f} degrees from the normal)"
        )
        if irregular == "error":
            raise GeometryError(where, f"{reason}; set irregular_slices to 'resample' to correct")
        data = _correct_tilt(data, offsets, row, col, spacing)
        notes.append(f"{reason}: corrected by shifting each slice in-plane (linear interpolation)")

    # Every slice must lie where a regular grid from the first to the last slice puts it.
    regular = np.linspace(0.0, along[-1], len(along))
    if np.abs(along - regular).max() > tolerance_mm:
        reason = _describe_spacing(ordered, along, tolerance_mm)
        if irregular == "error":
            raise GeometryError(
                where, f"{reason}; set irregular_slices to 'resample' to interpolate"
            )
        regular = _regular_positions(along)
        data = _interpolate_slices(data.astype(np.float32, copy=False), along, regular)
        notes.append(
            f"{reason}: resampled to {len(regular)} slices every "
            f"{regular[1] - regular[0]:.3f} mm (linear interpolation along the stack)"
        )
    slice_spacing = float(regular[1] - regular[0])

    lps = np.eye(4)
    lps[:3, 0] = row * spacing[1]
    lps[:3, 1] = col * spacing[0]
    lps[:3, 2] = normal * slice_spacing
    lps[:3, 3] = positions[0]
    affine = _LPS_TO_RAS @ lps
    if canonical:
        data, affine = _to_closest_canonical(data, affine)
    return Volume(data=data, affine=affine, slice_spacing=slice_spacing, notes=notes)


def _refuse_non_finite(data: np.ndarray, ordered: list[_Slice], where: Path) -> None:
    """NaN or infinite voxels (float pixel data, or a rescale beyond float32) are refused,
    naming the first slices that hold them: no later step can tell them from tissue."""
    finite = np.isfinite(data)
    if finite.all():
        return
    bad = np.flatnonzero(~finite.all(axis=(0, 1)))
    labels = ", ".join(ordered[k].label for k in bad[:3])
    more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
    raise DicomError(
        where,
        f"{int((~finite).sum())} voxel(s) are NaN or infinite after rescaling "
        f"(RescaleSlope x stored value + RescaleIntercept, as float32), in {labels}{more}: "
        "a damaged RescaleSlope/Intercept or float pixel data",
    )


def volume_to_nifti(volume: Volume) -> nib.Nifti1Image:
    """NIfTI-1 image of a volume: qform and sform both the affine (code 1, scanner), units mm.

    ``descrip`` stays empty and nothing else from the DICOM header is written, so the file
    carries no identifying text.
    """
    image = nib.Nifti1Image(volume.data, volume.affine)
    image.header.set_qform(volume.affine, code=1)
    image.header.set_sform(volume.affine, code=1)
    image.header.set_xyzt_units(xyz="mm")
    image.header["descrip"] = b""
    return image


def files_in_slice_order(series: DicomSeries) -> list[Path]:
    """The series' files ordered by position along the slice normal (headers only).

    An enhanced multi-frame series is one file and comes back as it is. Used where files are
    copied (de-identified export), so that their order follows anatomy, not file names.
    """
    if series.enhanced or len(series.files) == 1:
        return sorted(series.files)
    keyed = []
    for path in series.files:
        ds = dicom_series.read_header(path, force=True)
        orientation = np.array([float(v) for v in ds.ImageOrientationPatient])
        normal = np.cross(orientation[:3], orientation[3:])
        position = np.array([float(v) for v in ds.ImagePositionPatient])
        keyed.append((float(position @ normal), str(path), path))
    return [path for _, _, path in sorted(keyed)]
