"""Series discovery in messy folders, header summaries, role classification and selection."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.fileset import FileSet
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from cohortflow.errors import ConfigError, DicomError, SeriesSelectionError
from cohortflow.ingest.dicom_series import (
    DicomSeries,
    Discovery,
    RoleRules,
    classify_role,
    discover_series,
    select_series,
)


def mr_file(
    path: Path,
    series_uid: str,
    *,
    series_number: int = 1,
    description: str = "t1_mprage",
    modality: str = "MR",
    z: float = 0.0,
) -> Path:
    """A tiny valid single-frame MR file (4x4 pixels)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, sop_uid
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.3.4", series_uid
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.InstanceNumber = "20240101", "120000", "1", 1
    ds.PatientID, ds.PatientName = "P1", "Doe^Jane"
    ds.Modality, ds.SeriesNumber, ds.SeriesDescription = modality, series_number, description
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [0, 0, z]
    ds.PixelSpacing = [1, 1]
    ds.Rows = ds.Columns = 4
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.zeros((4, 4), dtype="<u2").tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


# --- discovery ---------------------------------------------------------------------------------


def test_any_layout_names_and_stray_files(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    uid_a, uid_b = generate_uid(), generate_uid()
    mr_file(tmp_path / "x" / "y" / "IM0001", uid_a, series_number=3, z=0)
    mr_file(tmp_path / "x" / "z.weird", uid_a, series_number=3, z=1)
    mr_file(tmp_path / "1.2.840.99", uid_b, series_number=2, description="t2_tse")
    (tmp_path / "notes.txt").write_text("scanned on Tuesday\n")
    (tmp_path / "x" / "random.bin").write_bytes(bytes(range(256)) * 4)
    broken = mr_file(tmp_path / "cut.dcm", uid_a, z=2)
    broken.write_bytes(broken.read_bytes()[:200])  # preamble and part of the file meta only

    with caplog.at_level(logging.INFO):
        found = discover_series(tmp_path)
    assert [s.series_number for s in found.series] == [2, 3]
    assert [len(s.files) for s in found.series] == [1, 2]
    assert found.series[1].files == sorted(found.series[1].files)
    assert sorted(p.name for p in found.non_dicom) == ["notes.txt", "random.bin"]
    assert found.unreadable == [(broken, "no SeriesInstanceUID in the header (truncated file?)")]
    assert "not a DICOM file" in caplog.text and "notes.txt" in caplog.text


def test_dicomdir_is_not_a_series(tmp_path: Path) -> None:
    uid = generate_uid()
    staging = tmp_path / "staging"
    file_set = FileSet()
    for z in range(3):
        file_set.add(pydicom.dcmread(mr_file(staging / f"f{z}", uid, z=z)))
    file_set.write(tmp_path / "media")
    found = discover_series(tmp_path / "media")
    assert len(found.series) == 1 and len(found.series[0].files) == 3
    assert [p.name for p in found.indexes] == ["DICOMDIR"]
    assert found.non_dicom == [] and found.unreadable == []


def test_missing_empty_and_non_dicom_folders(tmp_path: Path) -> None:
    with pytest.raises(DicomError, match="folder does not exist"):
        discover_series(tmp_path / "nope")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(DicomError, match="folder is empty") as caught:
        discover_series(tmp_path / "empty")
    assert caught.value.path == str(tmp_path / "empty")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "report.pdf").write_bytes(b"%PDF-1.4 ...")
    (tmp_path / "docs" / "readme").write_text("hello")
    with pytest.raises(DicomError, match=r"no readable DICOM image file \(2 non-DICOM"):
        discover_series(tmp_path / "docs")


# --- selection ---------------------------------------------------------------------------------


def test_supine_and_prone_folders_mixed_are_two_series(tmp_path: Path, shared_data: Path) -> None:
    dicom = shared_data / "mri" / "dicom"
    for name in ("siemens_prisma_t1_2d_HFS", "siemens_prisma_t1_2d_HFP"):
        for path in sorted((dicom / name).iterdir())[:3]:
            shutil.copy(path, tmp_path / f"{name[-3:]}_{path.name[:4]}")
    found = discover_series(tmp_path)
    assert [s.series_number for s in found.series] == [2, 3]
    with pytest.raises(SeriesSelectionError) as caught:
        select_series(found, "T1w", RoleRules(), on_multiple="error")
    message = str(caught.value)
    assert "2 T1w series" in message
    # Series are named by number (and role), never by their free-text description.
    assert "series 2 (3 files)" in message and "series 3 (3 files)" in message
    assert "t1_fl2d_sag" not in message

    chosen, summary = select_series(found, "T1w", RoleRules(), on_multiple="last")
    assert chosen.series_number == 3
    assert [entry["selected"] for entry in summary] == [False, True]
    # Equal size and voxels: "largest" falls back to the highest series number.
    assert select_series(found, "T1w", RoleRules(), on_multiple="largest")[0].series_number == 3


def test_largest_prefers_more_voxels(tmp_path: Path) -> None:
    small, big = generate_uid(), generate_uid()
    mr_file(tmp_path / "a", big, series_number=1, z=0)
    mr_file(tmp_path / "b", big, series_number=1, z=1)
    mr_file(tmp_path / "c", small, series_number=9)
    chosen, _ = select_series(discover_series(tmp_path), "T1w", RoleRules(), on_multiple="largest")
    assert chosen.series_number == 1


def test_only_ct_series(tmp_path: Path) -> None:
    mr_file(tmp_path / "a", generate_uid(), modality="CT", series_number=1)
    mr_file(tmp_path / "b", generate_uid(), modality="CT", series_number=2)
    with pytest.raises(SeriesSelectionError, match=r"no MR series found \(found: 2 CT series\)"):
        select_series(discover_series(tmp_path), "FLAIR", RoleRules())


def test_real_copies_set_to_ct(tmp_path: Path, shared_data: Path) -> None:
    source = shared_data / "mri" / "dicom" / "siemens_prisma_t1_2d_HFS"
    for path in sorted(source.iterdir())[:4]:
        ds = pydicom.dcmread(path)
        ds.Modality = "CT"
        ds.save_as(tmp_path / path.name)
    with pytest.raises(SeriesSelectionError, match="no MR series found") as caught:
        select_series(discover_series(tmp_path), "T1w", RoleRules())
    assert caught.value.path == str(tmp_path)


def test_no_series_of_the_role_names_what_was_found(tmp_path: Path) -> None:
    mr_file(tmp_path / "a", generate_uid(), series_number=1, description="t1_mprage")
    mr_file(tmp_path / "b", generate_uid(), series_number=2, description="ep2d_diff")
    with pytest.raises(SeriesSelectionError, match=r"no FLAIR series among 2 MR series") as caught:
        select_series(discover_series(tmp_path), "FLAIR", RoleRules())
    assert "1 T1w" in str(caught.value) and "1 other" in str(caught.value)


def test_sidecar_summary_has_no_identifiers(tmp_path: Path) -> None:
    uid = generate_uid()
    mr_file(tmp_path / "a", uid, series_number=4, description="AX T2 FLAIR")
    mr_file(tmp_path / "b", generate_uid(), series_number=5, description="t1_mprage")
    chosen, summary = select_series(discover_series(tmp_path), "FLAIR", RoleRules())
    assert chosen.series_uid == uid
    assert summary[0] == {
        "series_number": 4,
        "description": "AX T2 FLAIR",
        "role": "FLAIR",
        "reason": "SeriesDescription matches the FLAIR pattern ('FLAIR')",
        "n_files": 1,
        "selected": True,
    }
    text = repr(summary)
    assert uid not in text and "1.2.3.4" not in text and "Doe" not in text


# --- header summary and roles -------------------------------------------------------------------


def header(**values: object) -> DicomSeries:
    ds = Dataset()
    ds.Modality = "MR"
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return DicomSeries(series_uid="1.2", files=[Path("f")], header=ds, enhanced=False)


@pytest.mark.parametrize(
    ("values", "role", "reason"),
    [
        (
            {
                "ScanningSequence": ["SE", "IR"],
                "RepetitionTime": 9000,
                "EchoTime": 120,
                "InversionTime": 2500,
            },
            "FLAIR",
            "IR with TI=2500 ms >= 1500",
        ),
        (
            {"SeriesDescription": "Ax T2 FLAIR", "RepetitionTime": 9000, "EchoTime": 120},
            "FLAIR",
            "SeriesDescription matches the FLAIR pattern ('FLAIR')",
        ),
        (
            {"ProtocolName": "t2_space_dark-fluid_sag"},
            "FLAIR",
            "ProtocolName matches the FLAIR pattern ('dark-fluid')",
        ),
        (
            {
                "ScanningSequence": ["GR", "IR"],
                "SequenceVariant": ["SK", "SP", "MP"],
                "RepetitionTime": 2300,
                "EchoTime": 2.98,
                "InversionTime": 900,
            },
            "T1w",
            "IR with TI=900 ms <= 1300 and TR=2300 ms <= 3000",
        ),
        (
            {"SeriesDescription": "MPRAGE sag"},
            "T1w",
            "SeriesDescription matches the T1w pattern ('MPRAGE')",
        ),
        (
            {"ScanningSequence": "SE", "RepetitionTime": 550, "EchoTime": 15},
            "T1w",
            "TR=550 ms < 1000 and TE=15 ms < 20 without IR",
        ),
        (
            {
                "ScanningSequence": "SE",
                "SequenceName": "*tse2d1_15",
                "RepetitionTime": 5000,
                "EchoTime": 100,
            },
            "T2w",
            "TR=5000 ms >= 2000 and TE=100 ms >= 60 without IR",
        ),
        (
            {"SeriesDescription": "ax T2 TSE"},
            "T2w",
            "SeriesDescription matches the T2w pattern ('T2')",
        ),
        (
            {"SequenceName": "*tse2d1_15"},
            "T2w",
            "SequenceName matches the T2w pattern ('tse')",
        ),
        (
            {
                "SeriesDescription": "ep2d_diff_mddw",
                "ScanningSequence": "EP",
                "RepetitionTime": 8000,
                "EchoTime": 90,
            },
            "other",
            "SeriesDescription matches the exclusion pattern ('diff')",
        ),
        (
            {"ScanningSequence": ["EP"], "RepetitionTime": 8000, "EchoTime": 90},
            "other",
            "echo-planar acquisition (diffusion/functional/perfusion)",
        ),
        (
            {"SeriesDescription": "gre T2* axial", "RepetitionTime": 600, "EchoTime": 20},
            "other",
            "SeriesDescription matches the exclusion pattern ('T2*')",
        ),
        (
            {"ScanningSequence": "SE", "RepetitionTime": 3000, "EchoTime": 12},
            "other",
            "TR=3000 ms, TE=12 ms without IR fit no rule (PD/T2*-weighted?)",
        ),
        (
            {"SeriesDescription": "t1_mprage_sag", "ImageType": ["DERIVED", "SECONDARY", "MPR"]},
            "other",
            "ImageType is DERIVED (a reformat or computed map, not an acquisition)",
        ),
        ({}, "other", "no description match and TR/TE (or TI of an IR) missing from the header"),
    ],
)
def test_classify_role(values: dict[str, object], role: str, reason: str) -> None:
    assert classify_role(header(**values), RoleRules()) == (role, reason)


def test_rules_from_config() -> None:
    rules = RoleRules.from_mapping(
        {"flair_min_ti_ms": 2600, "description_patterns": {"T2w": "t2w"}}
    )
    assert rules.flair_min_ti_ms == 2600.0
    assert rules.description_patterns["T2w"] == "t2w"
    assert rules.description_patterns["FLAIR"] == RoleRules().description_patterns["FLAIR"]
    series = header(
        ScanningSequence=["SE", "IR"], RepetitionTime=9000, EchoTime=120, InversionTime=2500
    )
    assert classify_role(series, rules)[0] == "other"
    assert RoleRules.from_mapping(None) == RoleRules()
    with pytest.raises(ConfigError, match="unknown key"):
        RoleRules.from_mapping({"flair_ti": 1})
    with pytest.raises(ConfigError, match=r"role_rules\.t2_min_te_ms: expected a positive number"):
        RoleRules.from_mapping({"t2_min_te_ms": "long"})
    with pytest.raises(ConfigError, match=r"description_patterns\.T1w: invalid regular"):
        RoleRules.from_mapping({"description_patterns": {"T1w": "t1("}})
    with pytest.raises(ConfigError, match="unknown role"):
        RoleRules.from_mapping({"description_patterns": {"DWI": "dwi"}})


def test_enhanced_header_parameters_come_from_functional_groups() -> None:
    """Enhanced MR keeps TR/TE/TI in functional groups and sequence type in separate flags."""
    ds = Dataset()
    ds.Modality = "MR"
    ds.EchoPulseSequence = "GRADIENT"
    ds.PulseSequenceName = "*tfl3d1_16ns"
    shared = Dataset()
    shared.MRTimingAndRelatedParametersSequence = Sequence([Dataset()])
    shared.MRTimingAndRelatedParametersSequence[0].RepetitionTime = 1800
    shared.MRTimingAndRelatedParametersSequence[0].FlipAngle = 9
    shared.MRModifierSequence = Sequence([Dataset()])
    shared.MRModifierSequence[0].InversionRecovery = "YES"
    shared.MRModifierSequence[0].InversionTimes = [900.0]
    shared.MRModifierSequence[0].Spoiling = "RF"
    frame = Dataset()
    frame.MREchoSequence = Sequence([Dataset()])
    frame.MREchoSequence[0].EffectiveEchoTime = 2.41
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    ds.PerFrameFunctionalGroupsSequence = Sequence([frame])
    series = DicomSeries(series_uid="1.2", files=[Path("f")], header=ds, enhanced=True)
    assert (series.repetition_time, series.echo_time, series.inversion_time) == (1800, 2.41, 900)
    assert series.flip_angle == 9
    assert series.scanning_sequence == ["GR", "IR"]
    assert series.sequence_variant == ["SP", "MP"]
    assert series.sequence_name == "*tfl3d1_16ns"
    assert classify_role(series, RoleRules()) == (
        "T1w",
        "IR with TI=900 ms <= 1300 and TR=1800 ms <= 3000",
    )


def test_real_headers(shared_data: Path) -> None:
    found = discover_series(shared_data / "mri" / "dicom")
    by_number = {s.series_number: s for s in found.series}
    assert sorted(by_number) == [2, 3, 5, 1301]
    enhanced, philips = by_number[5], by_number[1301]
    assert enhanced.enhanced and len(enhanced.files) == 1 and enhanced.n_frames == 96
    assert (enhanced.echo_time, enhanced.repetition_time, enhanced.inversion_time) == (
        2.41,
        1800,
        900,
    )
    assert enhanced.scanning_sequence == ["GR", "IR"]
    assert enhanced.manufacturer == "Siemens Healthineers" and enhanced.field_strength == 3
    assert not philips.enhanced and len(philips.files) == 170
    assert philips.model == "Ingenia Elition X" and philips.echo_time == 2.93
    assert philips.description == "ADNI_Sag3D MPRAGE"
    for series in found.series:
        assert classify_role(series, RoleRules())[0] == "T1w"
    assert isinstance(found, Discovery) and found.root == shared_data / "mri" / "dicom"
