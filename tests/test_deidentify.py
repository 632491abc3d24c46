"""DICOM de-identification with the PS3.15 Basic Profile, on synthetic and (if present) real data.

The synthetic MR image carries identifying values in every place the profile must reach: plain
attributes, free text, private tags, removed and kept sequences, per-frame functional groups, an
overlay and the file meta. Every test writes files, since the PHI check reads raw bytes.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.tag import Tag
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
    RLELossless,
    generate_uid,
)

from cohortflow import __version__
from cohortflow.errors import DicomError
from cohortflow.privacy.deidentify import (
    IMPLEMENTATION_CLASS_UID,
    deidentify_dataset,
    deidentify_file,
)
from cohortflow.privacy.phi import find_phi, identifying_values
from cohortflow.privacy.profile import profile_action
from cohortflow.privacy.ps3_15 import BASIC_PROFILE, COMPOUND_RESOLUTION
from cohortflow.privacy.pseudonym import DEMO_KEY, PseudonymKey, remap_uid

KEY = PseudonymKey(DEMO_KEY, "demo")
OTHER_KEY = PseudonymKey(b"another-test-key-of-enough-bytes", "env")
LABEL = "3fa9c2d17e01"
PATIENT = "MUSTERMANN^ERIKA^M"
FACE_REMOVAL = ("113102", "DCM", "Clean Recognizable Visual Features Option")
SERIES_KEYWORDS = ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID")
# Geometry and acquisition parameters that analysis needs: Table E.1-1 does not list them (K).
KEPT = (
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "SliceThickness",
    "Rows",
    "Columns",
    "EchoTime",
    "RepetitionTime",
    "InversionTime",
    "FlipAngle",
    "MagneticFieldStrength",
    "Manufacturer",
    "ManufacturerModelName",
)
REAL_SERIES = (
    "philips_elition_3t_t1_mprage",
    "siemens_prisma_t1_2d_HFP",
    "siemens_prisma_t1_2d_HFS",
    "siemens_prisma_xa30_t1_enhanced",
)


def _series_uids() -> dict[str, str]:
    return {keyword: generate_uid() for keyword in SERIES_KEYWORDS}


def _item(**attributes: object) -> Dataset:
    item = Dataset()
    for keyword, value in attributes.items():
        setattr(item, keyword, value)
    return item


def _mr_image(series: dict[str, str], instance: int, referenced_sop: str | None = None) -> Dataset:
    """A small MR image full of identifying values (the names are invented)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.SourceApplicationEntityTitle = "KLINIK_PACS"
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for keyword, uid in series.items():
        setattr(ds, keyword, uid)
    ds.Modality = "MR"
    # Patient
    ds.PatientName = PATIENT
    ds.PatientID = "PID-4711-0815"
    ds.IssuerOfPatientID = "Klinikum Musterstadt"
    ds.OtherPatientIDs = "ALT-99887766"
    ds.PatientBirthDate = "19761123"
    ds.PatientSex = "F"
    ds.PatientAge = "047Y"
    ds.PatientSize = "1.68"
    ds.PatientWeight = "61"
    ds.PatientAddress = "Hauptstrasse 12, 20095 Hamburg"
    ds.PatientTelephoneNumbers = "+49 40 1234567"
    ds.PatientMotherBirthName = "SCHMIDT^ANNA"
    # Study, series, equipment
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = "20240305"
    ds.StudyTime = "101112.500"
    ds.AcquisitionTime = "101530.250"
    ds.AccessionNumber = "ACC20240305-17"
    ds.StudyID = "STUDY-9911"
    ds.InstitutionName = "Klinikum Musterstadt"
    ds.InstitutionAddress = "Klinikweg 1, Musterstadt"
    ds.InstitutionalDepartmentName = "Neuroradiologie"
    ds.ReferringPhysicianName = "HYDE^EDWARD"
    ds.PerformingPhysicianName = "JEKYLL^HENRY"
    ds.OperatorsName = "POIROT^HERCULE"
    ds.NameOfPhysiciansReadingStudy = "MARPLE^JANE"
    ds.StationName = "MRC99999"
    ds.DeviceSerialNumber = "SN-778812"
    ds.StudyDescription = "Kopf MUSTERMANN"
    ds.SeriesDescription = ds.ProtocolName = "t1_mprage_sag"
    ds.ImageComments = "Patientin Erika Mustermann, Rueckruf bei Dr. Hyde"
    # Acquisition and geometry
    ds.Manufacturer = "SIEMENS"
    ds.ManufacturerModelName = "Prisma_fit"
    ds.MagneticFieldStrength = "3"
    ds.EchoTime = "2.98"
    ds.RepetitionTime = "2300"
    ds.InversionTime = "900"
    ds.FlipAngle = "9"
    ds.SliceThickness = "1"
    ds.InstanceNumber = instance
    ds.ImagePositionPatient = [-120.5, -110.25, 60.0 + instance]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [0.9375, 0.9375]
    ds.BurnedInAnnotation = "NO"
    ds.Rows = ds.Columns = 4
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = (np.arange(16, dtype="<u2") * (instance + 7)).tobytes()
    # Private tags
    block = ds.private_block(0x0029, "ACME MR HEADER", create=True)
    block.add_new(0x10, "LO", "ERIKA MUSTERMANN private note")
    block.add_new(0x11, "SH", "ACME-7731")
    # Sequences the profile removes (X, X/Z) ...
    ds.RequestAttributesSequence = [
        _item(
            RequestedProcedureID="RP-778899",
            ScheduledProcedureStepID="SPS-445566",
            AccessionNumber="ACC20240305-17",
            ScheduledProcedureStepDescription="Kopf nativ Station 4B",
        )
    ]
    ds.ReferencedStudySequence = [
        _item(
            ReferencedSOPClassUID="1.2.840.10008.3.1.2.3.1", ReferencedSOPInstanceUID=generate_uid()
        )
    ]
    # ... one whose UIDs it replaces (X/Z/U*) ...
    if referenced_sop is not None:
        ds.ReferencedImageSequence = [
            _item(ReferencedSOPClassUID=MRImageStorage, ReferencedSOPInstanceUID=referenced_sop)
        ]
    # ... and one it keeps, cleaning its items.
    procedure = _item(CodeValue="MRKOPF", CodingSchemeDesignator="99LOCAL", CodeMeaning="MRT Kopf")
    procedure.ContentCreatorName = "WATSON^JOHN"
    procedure.private_block(0x0031, "ACME ITEM", create=True).add_new(0x01, "LO", "WATSON notes")
    ds.ProcedureCodeSequence = [procedure]
    # Enhanced-MR-like functional groups with nested dates, free text and UIDs
    ds.DimensionOrganizationSequence = [_item(DimensionOrganizationUID=generate_uid())]
    ds.SharedFunctionalGroupsSequence = [
        _item(PixelMeasuresSequence=[_item(PixelSpacing=[0.9375, 0.9375], SliceThickness="1")])
    ]
    frames = []
    for frame in range(2):
        content = _item(
            FrameAcquisitionDateTime=f"2024030510153{frame}.250",
            FrameComments="frame checked by WATSON",
        )
        source = _item(
            ReferencedSOPClassUID=MRImageStorage, ReferencedSOPInstanceUID=generate_uid()
        )
        derivation = _item(SourceImageSequence=[source])
        group = _item(FrameContentSequence=[content], DerivationImageSequence=[derivation])
        group.private_block(0x0021, "ACME FRAME", create=True).add_new(0x02, "LO", "HEIDI KLUM")
        frames.append(group)
    ds.PerFrameFunctionalGroupsSequence = frames
    # An overlay plane with an identifying description
    ds.add_new(0x60000010, "US", 4)
    ds.add_new(0x60000011, "US", 4)
    ds.add_new(0x60000022, "LO", "annotated by Dr. Hyde")
    ds.add_new(0x60000040, "CS", "G")
    ds.add_new(0x60000050, "SS", [1, 1])
    ds.add_new(0x60000100, "US", 1)
    ds.add_new(0x60000102, "US", 0)
    ds.add_new(0x60003000, "OW", b"\x00\x00")
    return ds


def _write(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return path


def test_no_identifying_value_survives_in_the_written_file(tmp_path: Path) -> None:
    src = _write(_mr_image(_series_uids(), 1, referenced_sop=generate_uid()), tmp_path / "in.dcm")
    dst = tmp_path / "out" / "deid.dcm"
    deidentify_file(src, dst, KEY, subject_label=LABEL)

    original = pydicom.dcmread(src)
    phi = identifying_values(original)
    expected = {
        PATIENT,
        "MUSTERMANN",
        "ERIKA",
        "PID-4711-0815",
        "ALT-99887766",
        "19761123",
        "20240305",
        "20240305101530.250",
        "ACC20240305-17",
        "STUDY-9911",
        "Klinikum Musterstadt",
        "HYDE^EDWARD",
        "MARPLE^JANE",
        "SN-778812",
        "Kopf MUSTERMANN",
        "RP-778899",
        "Kopf nativ Station 4B",
        "ERIKA MUSTERMANN private note",
        "ACME-7731",
        "WATSON^JOHN",
        "WATSON notes",
        "HEIDI KLUM",
        "frame checked by WATSON",
        "annotated by Dr. Hyde",
        "KLINIK_PACS",
        # A local procedure code: not named by the table, not on the acquisition keep-list
        "MRKOPF",
        "MRT Kopf",
        original.SOPInstanceUID,
        original.StudyInstanceUID,
        original.ReferencedImageSequence[0].ReferencedSOPInstanceUID,
    }
    assert expected <= phi
    # Short, numeric and coded values would raise false alarms; kept values are not secrets;
    # text made only of the controlled vocabulary ("t1_mprage_sag", removed here as a
    # descriptor) identifies no one, and outputs write such terms on purpose.
    assert not phi & {
        "F", "61", "1.68", "Prisma_fit", MRImageStorage, "t1_mprage_sag"
    }  # fmt: skip
    # The scanner finds every term in the original file, and none in the de-identified one.
    assert set(find_phi(src.read_bytes(), phi)) == phi
    assert find_phi(dst.read_bytes(), phi) == []

    result = pydicom.dcmread(dst)
    everything = list(result.iterall())
    assert not [elem.tag for elem in everything if elem.tag.is_private]
    assert not [elem.tag for elem in everything if 0x6000 <= elem.tag.group <= 0x601E]
    names = [elem for elem in everything if elem.VR == "PN" and not elem.is_empty]
    assert [(elem.keyword, elem.value) for elem in names] == [("PatientName", LABEL)]


def test_actions_of_the_basic_profile_are_applied(tmp_path: Path) -> None:
    ds = _mr_image(_series_uids(), 1, referenced_sop=generate_uid())
    out = deidentify_dataset(ds, KEY, subject_label=LABEL)

    assert out.PatientName == LABEL and out.PatientID == LABEL  # Z (dummy), Z/D (dummy)
    for keyword in ("PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "ContentDate"):
        assert keyword in out and out[keyword].is_empty, keyword  # Z, Z/D: present, empty
    assert out.AccessionNumber == "" and out.ReferringPhysicianName == ""
    removed = (
        "PatientAge",  # X
        "PatientSize",  # X
        "PatientWeight",  # X
        "IssuerOfPatientID",  # X
        "AcquisitionDate",  # X/Z
        "SeriesDate",  # X/D
        "ProtocolName",  # X/D
        "InstitutionName",  # X/Z/D
        "OperatorsName",  # X/Z/D
        "SeriesDescription",  # X
        "ImageComments",  # X
        "RequestAttributesSequence",  # X
        "ReferencedStudySequence",  # X/Z
    )
    assert not [keyword for keyword in removed if keyword in out]
    # Attributes the table does not name are kept only when on the acquisition keep-list: a
    # local procedure code sequence is not (its code meaning is the site's text).
    assert "ProcedureCodeSequence" not in out
    # Kept sequences are cleaned item by item (K), per-frame groups included.
    for frame, original in zip(
        out.PerFrameFunctionalGroupsSequence, ds.PerFrameFunctionalGroupsSequence, strict=True
    ):
        content = frame.FrameContentSequence[0]
        assert content.FrameAcquisitionDateTime == "19000101000000"  # D: a fixed dummy
        assert "FrameComments" not in content
        source = frame.DerivationImageSequence[0].SourceImageSequence[0]
        original_uid = original.DerivationImageSequence[0].SourceImageSequence[0]
        assert source.ReferencedSOPInstanceUID == remap_uid(
            KEY, original_uid.ReferencedSOPInstanceUID
        )
        assert source.ReferencedSOPClassUID == MRImageStorage
    assert out.DimensionOrganizationSequence[0].DimensionOrganizationUID == remap_uid(
        KEY, ds.DimensionOrganizationSequence[0].DimensionOrganizationUID
    )
    assert out.BurnedInAnnotation == "NO"  # left as it is: pixels are not inspected


def test_uids_are_remapped_consistently_across_a_series() -> None:
    series = _series_uids()
    first = _mr_image(series, 1)
    second = _mr_image(series, 2, referenced_sop=first.SOPInstanceUID)
    a = deidentify_dataset(first, KEY, subject_label=LABEL)
    b = deidentify_dataset(second, KEY, subject_label=LABEL)

    for keyword, uid in series.items():
        assert a[keyword].value == b[keyword].value == remap_uid(KEY, uid) != uid
    assert a.SOPInstanceUID == remap_uid(KEY, first.SOPInstanceUID) != first.SOPInstanceUID
    assert a.SOPInstanceUID != b.SOPInstanceUID
    assert UID(a.SOPInstanceUID).is_valid
    assert a.file_meta.MediaStorageSOPInstanceUID == a.SOPInstanceUID
    # A reference between two de-identified instances still resolves.
    assert b.ReferencedImageSequence[0].ReferencedSOPInstanceUID == a.SOPInstanceUID

    again = deidentify_dataset(first, KEY, subject_label=LABEL)
    other = deidentify_dataset(first, OTHER_KEY, subject_label=LABEL)
    for keyword in ("SOPInstanceUID", *SERIES_KEYWORDS):
        assert again[keyword].value == a[keyword].value
        assert other[keyword].value != a[keyword].value


def test_deidentification_is_recorded() -> None:
    out = deidentify_dataset(
        _mr_image(_series_uids(), 1), KEY, subject_label=LABEL, extra_methods=[FACE_REMOVAL]
    )
    assert out.PatientIdentityRemoved == "YES"
    assert list(out.DeidentificationMethod) == [
        f"cohortflow {__version__}",
        "PS3.15 Basic Application Level Confidentiality Profile",
    ]
    codes = [
        (item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning)
        for item in out.DeidentificationMethodCodeSequence
    ]
    assert codes == [("113100", "DCM", "Basic Application Confidentiality Profile"), FACE_REMOVAL]
    assert out.LongitudinalTemporalInformationModified == "REMOVED"
    assert out.file_meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert "SourceApplicationEntityTitle" not in out.file_meta


@pytest.mark.parametrize(
    ("method", "complaint"),
    [
        (("113102", "DCM", "Face removal"), "CID 7050 gives the meaning"),
        (("113108", "DCM", "Retain Patient Characteristics Option"), "does not implement"),
        (("113999", "DCM", "Something"), "not a code of CID 7050"),
    ],
)
def test_wrong_method_codes_are_refused(method: tuple[str, str, str], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        deidentify_dataset(
            _mr_image(_series_uids(), 1), KEY, subject_label=LABEL, extra_methods=[method]
        )


@pytest.mark.parametrize("label", ["", "a^b", "x" * 65, "tab\there"])
def test_unusable_subject_labels_are_refused(label: str) -> None:
    with pytest.raises(ValueError, match="subject label"):
        deidentify_dataset(_mr_image(_series_uids(), 1), KEY, subject_label=label)


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless])
def test_pixels_transfer_syntax_and_input_stay_as_they_were(tmp_path: Path, syntax: UID) -> None:
    ds = _mr_image(_series_uids(), 1)
    if syntax.is_compressed:
        ds.compress(syntax)
    else:
        ds.file_meta.TransferSyntaxUID = syntax
    src = _write(ds, tmp_path / "in.dcm")
    original = pydicom.dcmread(src)
    snapshot = copy.deepcopy(original)

    out = deidentify_dataset(original, KEY, subject_label=LABEL, keep_descriptions=True)
    assert out is not original
    assert original == snapshot and original.file_meta == snapshot.file_meta
    assert original.preamble == snapshot.preamble

    dst = tmp_path / "out.dcm"
    deidentify_file(src, dst, KEY, subject_label=LABEL)
    result = pydicom.dcmread(dst)
    assert result.file_meta.TransferSyntaxUID == syntax
    assert result.PixelData == original.PixelData
    assert result.preamble == bytes(128)
    assert [p.name for p in tmp_path.iterdir()] == ["in.dcm", "out.dcm"]  # no temporary left


def test_geometry_and_acquisition_parameters_are_kept(tmp_path: Path) -> None:
    assert not [keyword for keyword in KEPT if Tag(keyword) in BASIC_PROFILE]
    src = _write(_mr_image(_series_uids(), 3), tmp_path / "in.dcm")
    dst = tmp_path / "out.dcm"
    deidentify_file(src, dst, KEY, subject_label=LABEL)
    original, result = pydicom.dcmread(src), pydicom.dcmread(dst)
    for keyword in KEPT:
        assert result[keyword].value == original[keyword].value, keyword
    spacing = result.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing
    assert list(spacing) == [0.9375, 0.9375]


@pytest.mark.parametrize(
    ("keyword", "code"),
    [
        ("PatientName", "Z"),
        ("PatientID", "Z/D"),
        ("PatientBirthDate", "Z"),
        ("PatientSex", "Z"),
        ("PatientAge", "X"),
        ("PatientSize", "X"),
        ("PatientWeight", "X"),
        ("OtherPatientIDsSequence", "X"),
        ("AccessionNumber", "Z"),
        ("StudyID", "Z"),
        ("StudyDate", "Z"),
        ("SeriesDate", "X/D"),
        ("AcquisitionDate", "X/Z"),
        ("AcquisitionDateTime", "X/Z/D"),
        ("ContentDate", "Z/D"),
        ("InstitutionName", "X/Z/D"),
        ("InstitutionalDepartmentName", "X"),
        ("ProtocolName", "X/D"),
        ("StudyDescription", "X"),
        ("SeriesDescription", "X"),
        ("RequestAttributesSequence", "X"),
        ("ReferencedImageSequence", "X/Z/U*"),
        ("SOPInstanceUID", "U"),
        ("MediaStorageSOPInstanceUID", "U"),
        ("IrradiationEventUID", "U"),
    ],
)
def test_table_e1_1_actions(keyword: str, code: str) -> None:
    assert BASIC_PROFILE[Tag(keyword)] == code


def test_every_code_of_the_table_resolves_to_a_simple_action() -> None:
    assert len(BASIC_PROFILE) == 617
    codes = set(BASIC_PROFILE.values())
    assert codes - set(COMPOUND_RESOLUTION) <= {"D", "Z", "X", "U"}
    assert {profile_action(tag) for tag in BASIC_PROFILE} == {"D", "Z", "X", "U"}
    assert profile_action(Tag("ReferencedImageSequence")) == "U"
    assert profile_action(Tag("SeriesDescription"), keep_descriptions=True) == "C"
    assert profile_action(Tag(0x0029, 0x1010)) == "X"  # private
    assert profile_action(Tag(0x6002, 0x0010)) == "X"  # overlay plane
    assert profile_action(Tag(0x5000, 0x0005)) == "X"  # curve
    assert profile_action(Tag(0x0008, 0x0000)) == "X"  # group length
    assert profile_action(Tag("EchoTime")) is None  # K


def test_keep_descriptions_cleans_them_instead(tmp_path: Path) -> None:
    ds = _mr_image(_series_uids(), 1)
    out = deidentify_dataset(ds, KEY, subject_label=LABEL, keep_descriptions=True)
    # Rebuilt from the controlled vocabulary: no source text, not even the parts that pass.
    assert out.SeriesDescription == out.ProtocolName == "T1 MPRAGE SAG"
    assert out.StudyDescription == "BRAIN"  # "Kopf MUSTERMANN": the name is no term
    assert out.DeidentificationMethod[-1] == "Descriptions rebuilt from a controlled vocabulary"
    codes = [item.CodeValue for item in out.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113105"]  # Basic Profile, Clean Descriptors Option

    phi = identifying_values(ds, keep_descriptions=True)
    assert "t1_mprage_sag" not in phi and "MUSTERMANN" in phi
    dst = _write(out, tmp_path / "out.dcm")
    assert find_phi(dst.read_bytes(), phi) == []


def test_find_phi_knows_the_forms_of_names_and_dates() -> None:
    phi = [PATIENT, "19761123"]
    for text in (
        "Befund fuer Erika Mustermann",
        "MUSTERMANN, ERIKA",
        "mustermann^erika",
        "Mustermann Erika",
        "Erika M Mustermann",
    ):
        assert find_phi(text, phi) == [PATIENT], text
    assert find_phi('{"PatientBirthDate": "1976-11-23"}', phi) == ["19761123"]
    assert find_phi("Erika Musterfrau, 23.12.1976", phi) == []
    assert find_phi("12345678", ["12345678"]) == ["12345678"]  # eight digits, no date: fine

    umlauts = "MÜLLER^JÜRGEN"
    assert find_phi("Jürgen Müller".encode(), [umlauts]) == [umlauts]
    assert find_phi("MÜLLER, JÜRGEN".encode("latin-1"), [umlauts]) == [umlauts]
    assert find_phi(b"\x00MUS\xffTERMANN^ERIKA", [PATIENT]) == []


@pytest.mark.shared_data
@pytest.mark.parametrize("series", REAL_SERIES)
def test_real_files_come_out_clean(shared_data: Path, tmp_path: Path, series: str) -> None:
    src = sorted((shared_data / "mri" / "dicom" / series).glob("*.dcm"))[0]
    dst = tmp_path / "deid.dcm"
    deidentify_file(src, dst, KEY, subject_label=LABEL, extra_methods=[FACE_REMOVAL])

    original = pydicom.dcmread(src)
    phi = identifying_values(original)
    assert {original.SOPInstanceUID, original.PatientID} <= phi
    assert find_phi(dst.read_bytes(), phi) == []

    result = pydicom.dcmread(dst)
    assert not [elem.tag for elem in result.iterall() if elem.tag.is_private]
    assert result.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
    assert result.PixelData == original.PixelData
    assert result.PatientIdentityRemoved == "YES"
    assert result.SeriesInstanceUID == remap_uid(KEY, original.SeriesInstanceUID)


def test_a_file_that_is_not_dicom_is_named(tmp_path: Path) -> None:
    src = tmp_path / "IM_0007"
    src.write_text("not a DICOM file")
    with pytest.raises(DicomError, match=r"IM_0007: cannot read as DICOM"):
        deidentify_file(src, tmp_path / "out.dcm", KEY, subject_label=LABEL)
    assert [p.name for p in tmp_path.iterdir()] == ["IM_0007"]
