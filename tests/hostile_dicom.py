"""Hostile DICOM for the privacy tests: identifiers where real sites put them.

A small axial FLAIR series (IR, TI 2500 ms) whose header carries a person's identity the way
real exports do: in the patient attributes, but also in free text that no table names (a
surname typed into the description, the same name transliterated, the site's own subject code,
dates written in other notations), in a coil name and in a private attribute.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

#: Every value planted in a hostile header below: none may appear in any output.
PLANTED = {
    "surname": "Müller",
    "surname_transliterated": "Mueller",
    "given": "Jürgen",
    "given_transliterated": "Juergen",
    "patient_id": "MUC-448812",
    "site_code": "XJ4412",
    "birth_date": "19610703",
    "birth_date_german": "03.07.1961",
    "birth_date_short": "3.7.61",
    "birth_date_iso": "1961-07-03",
    "other_surname": "Schmidt-Hagen",
    "other_date": "1975/04/12",
    "ward": "Station Lindenhof",
}


def hostile_header(**overrides: object) -> Dataset:
    """The identity and free text of one hostile series (one file's worth, no geometry)."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: the umlauts are written as they are
    ds.PatientName = "Müller^Jürgen"
    ds.PatientID = PLANTED["patient_id"]
    ds.PatientBirthDate = PLANTED["birth_date"]
    ds.PatientSex = "M"
    # Free text only: none of these values appears in an attribute the table names.
    ds.SeriesDescription = "AX FLAIR Mueller Juergen XJ4412 03.07.1961"
    ds.ProtocolName = "flair_ax_JMueller_1961-07-03"
    ds.StudyDescription = "Kopf MUELLER Studie XJ4412 Station Lindenhof"
    ds.SequenceName = "*tir2d1_XJ4412"
    ds.ImageComments = "Pat. Mueller geb. 3.7.61 vgl. Schmidt-Hagen 1975/04/12"
    ds.ReceiveCoilName = "XJ4412_Head"
    ds.PerformedProcedureStepDescription = "MRT Schaedel Mueller"
    block = ds.private_block(0x0029, "SITE NOTES", create=True)
    block.add_new(0x10, "LO", "Juergen Mueller XJ4412")
    for keyword, value in overrides.items():
        setattr(ds, keyword, value)
    return ds


def write_hostile_series(
    folder: Path,
    *,
    n_slices: int = 12,
    size: int = 32,
    seed: int = 0,
    header: Dataset | None = None,
    per_slice: dict[int, dict[str, object]] | None = None,
) -> list[Path]:
    """One file per slice under ``folder``: a blob in noise, 4 mm pixels, 5 mm slices.

    ``per_slice`` sets attributes of single slices (e.g. another PatientID on some of them).
    """
    rng = np.random.default_rng(seed)
    base = header if header is not None else hostile_header()
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    yy, xx = np.mgrid[:size, :size]
    blob = (((yy - size / 2) ** 2 + (xx - size / 2) ** 2) < (size / 3) ** 2) * 600
    for k in range(n_slices):
        ds = Dataset()
        ds.update(base)
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
        sop = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = sop
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, sop
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.StudyDate = ds.SeriesDate = "20240305"
        ds.StudyTime = "101500"
        ds.Modality = "MR"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NORM"]
        ds.Manufacturer = "SIEMENS"
        ds.ManufacturerModelName = "Prisma_fit"
        ds.MagneticFieldStrength = "3"
        ds.SeriesNumber = 5
        ds.InstanceNumber = k + 1
        ds.ScanningSequence = ["SE", "IR"]
        ds.SequenceVariant = ["SK", "SP", "MP"]
        ds.MRAcquisitionType = "2D"
        ds.RepetitionTime, ds.EchoTime, ds.InversionTime = "9000", "81", "2500"
        ds.FlipAngle = "150"
        ds.PatientPosition = "HFS"
        ds.SliceThickness = ds.SpacingBetweenSlices = "5"
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.ImagePositionPatient = ["-64", "-64", f"{-30 + 5 * k}"]
        ds.SliceLocation = f"{-30 + 5 * k}"
        ds.PixelSpacing = ["4", "4"]
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        pixels = blob + rng.integers(0, 40, size=(size, size))
        ds.PixelData = pixels.astype("<u2").tobytes()
        for keyword, value in (per_slice or {}).get(k, {}).items():
            setattr(ds, keyword, value)
        path = folder / f"IM{k:04d}"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return files
