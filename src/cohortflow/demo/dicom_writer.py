"""Write a simulated MR volume as a classic single-frame DICOM series (one file per slice).

Used only to build the demo cohort: the files look like a PACS export (random file names,
nested folders, a stray non-DICOM file next to them, identifying header values) so that the
ingest stage is exercised the way real data would exercise it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, MRImageStorage

from cohortflow.demo.scanners import ScannerProfile, Sequence

_UID_ROOT = "1.2.826.0.1.3680043.10.1234."  # demo-only root; UIDs derived from the seed


@dataclass(frozen=True)
class SeriesGeometry:
    """A slice stack in DICOM patient coordinates (LPS, mm)."""

    row: np.ndarray  # direction of increasing column index (IOP[0:3])
    col: np.ndarray  # direction of increasing row index (IOP[3:6])
    pixel_spacing: tuple[float, float]  # DICOM order: between rows, between columns
    slice_spacing: float
    columns: int
    rows: int
    slices: int
    origin: np.ndarray  # ImagePositionPatient of slice 0, voxel (0, 0)

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.row, self.col)

    def lps_affine(self) -> np.ndarray:
        dr, dc = self.pixel_spacing
        aff = np.eye(4)
        aff[:3, 0] = self.row * dc
        aff[:3, 1] = self.col * dr
        aff[:3, 2] = self.normal * self.slice_spacing
        aff[:3, 3] = self.origin
        return aff

    def ras_affine(self) -> np.ndarray:
        return np.diag([-1.0, -1.0, 1.0, 1.0]) @ self.lps_affine()

    def voxel_to_lps(self, ijk: np.ndarray) -> np.ndarray:
        aff = self.lps_affine()
        return ijk @ aff[:3, :3].T + aff[:3, 3]


def _uid(*parts: object) -> str:
    digest = int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:12], "big")
    return (_UID_ROOT + str(digest))[:64]


def _ds_number(value: float) -> str:
    return f"{value:.6g}"


def write_dicom_series(
    out_dir: Path,
    stored: np.ndarray,
    geometry: SeriesGeometry,
    profile: ScannerProfile,
    sequence: Sequence,
    study: dict,
    series_number: int,
    rng: np.random.Generator,
) -> list[Path]:
    """Write ``stored`` (i=column, j=row, k=slice; int16) as one file per slice.

    File names are random and slices are spread over two sub-folders, so nothing about the
    order can be learned from the names: readers must sort by position.
    """
    seed = study["seed"]
    study_uid = _uid(seed, "study")
    series_uid = _uid(seed, "series", series_number)
    frame_uid = _uid(seed, "frame")
    files = []
    # 2D scanners number slices in acquisition order; interleaved (odd slices first) makes
    # InstanceNumber disagree with position, as it does on real scanners.
    if sequence.acquisition_type == "2D":
        order = [*range(0, geometry.slices, 2), *range(1, geometry.slices, 2)]
    else:
        order = list(range(geometry.slices))
    instance_number = {k: i + 1 for i, k in enumerate(order)}
    for k in range(geometry.slices):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
        sop_uid = _uid(seed, "sop", series_number, k)
        ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        ds.SOPClassUID = MRImageStorage
        ds.SOPInstanceUID = sop_uid
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_uid
        ds.Modality = "MR"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NORM"]
        for key in (
            "PatientName",
            "PatientID",
            "PatientBirthDate",
            "PatientSex",
            "AccessionNumber",
            "InstitutionName",
            "InstitutionAddress",
            "ReferringPhysicianName",
            "OperatorsName",
            "StudyDescription",
            "StationName",
            "DeviceSerialNumber",
            "ImageComments",
        ):
            setattr(ds, key, study[key])
        for key in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"):
            setattr(ds, key, study["StudyDate"])
        ds.StudyTime = ds.SeriesTime = "101500"
        ds.StudyID = str(seed % 10000)
        ds.Manufacturer = profile.manufacturer
        ds.ManufacturerModelName = profile.model
        ds.SoftwareVersions = profile.software
        ds.MagneticFieldStrength = _ds_number(profile.field_strength)
        ds.SeriesDescription = sequence.description
        ds.ProtocolName = sequence.description
        ds.SeriesNumber = series_number
        ds.AcquisitionNumber = 1
        ds.InstanceNumber = instance_number[k]
        ds.ScanningSequence = sequence.scanning_sequence.split("\\")
        ds.SequenceVariant = sequence.sequence_variant.split("\\")
        if sequence.sequence_name:
            ds.SequenceName = sequence.sequence_name
        ds.MRAcquisitionType = sequence.acquisition_type
        ds.EchoTime = _ds_number(sequence.echo_time)
        ds.RepetitionTime = _ds_number(sequence.repetition_time)
        if sequence.inversion_time is not None:
            ds.InversionTime = _ds_number(sequence.inversion_time)
        ds.FlipAngle = _ds_number(sequence.flip_angle)
        ds.PatientPosition = profile.patient_position
        ds.SliceThickness = _ds_number(geometry.slice_spacing)
        ds.SpacingBetweenSlices = _ds_number(geometry.slice_spacing)
        ds.ImageOrientationPatient = [_ds_number(v) for v in (*geometry.row, *geometry.col)]
        ipp = geometry.origin + geometry.normal * geometry.slice_spacing * k
        ds.ImagePositionPatient = [f"{v:.6f}" for v in ipp]
        ds.SliceLocation = f"{float(ipp @ geometry.normal):.6f}"
        ds.PixelSpacing = [_ds_number(v) for v in geometry.pixel_spacing]
        ds.Rows = geometry.rows
        ds.Columns = geometry.columns
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleSlope = _ds_number(profile.rescale_slope)
        ds.RescaleIntercept = _ds_number(profile.rescale_intercept)
        ds.RescaleType = "US"
        # Rows of the pixel matrix run along `col`, columns along `row`.
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).astype("<i2").tobytes()
        sub = out_dir / f"series{series_number:03d}" / ("A" if k % 2 else "B")
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"IM{rng.integers(16**7, 16**8):08X}"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return files
