"""Hostile inputs for the robustness tests (issue 29), built in the tests themselves.

Each builder writes one source as an unlucky or hostile site would hand it over: small files
whose headers declare huge images (a gzip or deflate stream of zeros is ~1000 times smaller
than what it holds), wrong data types, no geometry, slices that disagree, repeated UIDs.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
from hostile_dicom import hostile_header, write_hostile_series
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import DeflatedExplicitVRLittleEndian, MRImageStorage, generate_uid

ZERO_CHUNK = bytes(1 << 24)


def nifti_bomb(path: Path, shape=(1024, 1024, 512), dtype=np.int16) -> Path:
    """A .nii.gz whose header declares ``shape`` and whose gzip stream really holds that many
    zero voxels (1 GiB of int16 in about 1 MB)."""
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(dtype)
    header.set_qform(np.eye(4), code=1)
    header.set_sform(np.eye(4), code=1)
    header["vox_offset"] = 352
    remaining = int(np.prod(shape)) * np.dtype(dtype).itemsize
    with gzip.open(path, "wb", compresslevel=6) as out:
        out.write(header.binaryblock + b"\0\0\0\0")
        while remaining:
            chunk = ZERO_CHUNK[: min(remaining, len(ZERO_CHUNK))]
            out.write(chunk)
            remaining -= len(chunk)
    return path


def deflated_dicom_bomb(
    path: Path, rows: int = 16384, columns: int = 16384, frames: int = 2, pixel_bytes=None
):
    """A deflated DICOM file (a localizer of its own series) whose dataset inflates to
    rows x columns x frames x 2 bytes of zeros (1 GiB by default), about 1 MB on disk;
    ``pixel_bytes`` makes the pixel data longer than the header declares."""
    ds = Dataset()
    ds.update(hostile_header(SeriesDescription="localizer"))
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = "MR"
    ds.SeriesNumber = 1
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, columns, frames
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    head = DicomBytesIO()
    head.is_little_endian, head.is_implicit_VR = True, False
    write_dataset(head, ds)
    n_bytes = rows * columns * frames * 2 if pixel_bytes is None else pixel_bytes
    pixel_tag = b"\xe0\x7f\x10\x00OW\x00\x00" + n_bytes.to_bytes(4, "little")
    meta_buffer = DicomBytesIO()
    meta_buffer.is_little_endian, meta_buffer.is_implicit_VR = True, False
    write_file_meta_info(meta_buffer, meta, enforce_standard=True)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        out.write(b"\0" * 128 + b"DICM" + meta_buffer.getvalue())
        out.write(deflater.compress(head.getvalue() + pixel_tag))
        remaining = n_bytes
        while remaining:
            chunk = ZERO_CHUNK[: min(remaining, len(ZERO_CHUNK))]
            out.write(deflater.compress(chunk))
            remaining -= len(chunk)
        out.write(deflater.flush())
    return path


def huge_dicom_series(folder: Path, n_slices: int = 4, size: int = 30000) -> list[Path]:
    """A series whose headers declare size x size pixels per slice (7.2 GB for 4 slices of
    30000 x 30000 x 16 bits), with a few bytes of pixel data each."""
    return write_hostile_series(
        folder,
        n_slices=n_slices,
        per_slice={k: {"Rows": size, "Columns": size} for k in range(n_slices)},
    )


def nifti(path: Path, data: np.ndarray, affine=None, **header_fields) -> Path:
    """A NIfTI with ``data`` and header fields set as given (codes, pixdim...)."""
    image = nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0]) if affine is None else affine)
    image.set_qform(image.affine, code=1)
    for name, value in header_fields.items():
        image.header[name] = value
    nib.save(image, path)
    return path


def blob(shape=(12, 12, 10)) -> np.ndarray:
    rng = np.random.default_rng(1)
    return (rng.random(shape) * 100 + 10).astype(np.float32)


def complex_nifti(path: Path) -> Path:
    return nifti(path, blob().astype(np.complex64) * (1 + 1j))


def rgb_nifti(path: Path) -> Path:
    rgb = np.zeros((12, 12, 10), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    return nifti(path, rgb)


def no_orientation_nifti(path: Path) -> Path:
    image = nib.Nifti1Image(blob(), None)
    image.header.set_zooms((1.2, 1.2, 3.0))
    image.header["qform_code"] = image.header["sform_code"] = 0
    nib.save(image, path)
    return path


def zero_voxel_nifti(path: Path) -> Path:
    image = nib.Nifti1Image(blob(), None)
    image.header["pixdim"][1:4] = [0.0, 1.0, 1.0]
    image.header["qform_code"] = image.header["sform_code"] = 0
    nib.save(image, path)
    return path


def non_finite_rescale_series(folder: Path) -> list[Path]:
    """RescaleSlope 1e38 on one slice: stored values above ~3.4 make the float32 infinite."""
    return write_hostile_series(folder, per_slice={6: {"RescaleSlope": "1e38"}})


def mixed_pixel_representation_series(folder: Path) -> list[Path]:
    """One slice declares signed values (PixelRepresentation 1) among unsigned ones."""
    return write_hostile_series(folder, per_slice={4: {"PixelRepresentation": 1}})


def repeated_uid_series(folder: Path) -> list[Path]:
    """Two slices at different positions with one SOP Instance UID."""
    files = write_hostile_series(folder)
    first = pydicom.dcmread(files[2])
    second = pydicom.dcmread(files[7])
    second.SOPInstanceUID = first.SOPInstanceUID
    second.file_meta.MediaStorageSOPInstanceUID = first.SOPInstanceUID
    second.save_as(files[7], enforce_file_format=True)
    return files
