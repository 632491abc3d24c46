"""cohortflow.privacy by construction: descriptions from a vocabulary, a keep-list for DICOM,
refusals that name the attribute, the demo key bound to the demo's files, one key per results
folder, one row per person."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pydicom
import pytest
from conftest import ingest_one
from hostile_dicom import PLANTED, hostile_header, write_hostile_series

from cohortflow.cohort import Cohort
from cohortflow.errors import ConfigError, DicomError, InputError
from cohortflow.ingest.run import IngestSettings, export_deidentified_dicom
from cohortflow.ingest.sources import check_sources
from cohortflow.privacy import (
    DEMO_KEY,
    PseudonymKey,
    deidentify_dataset,
    identifying_attributes,
    rebuild_description,
    rebuild_sequence_name,
)
from cohortflow.privacy.demo_source import (
    SOURCE_MANIFEST,
    check_demo_rows,
    verify_demo_source,
    write_source_manifest,
)
from cohortflow.privacy.phi import find_phi
from cohortflow.privacy.ps3_15 import ACQUISITION_KEEP_LIST, TABLE_E1_1
from cohortflow.privacy.pseudonym import check_key_record, write_key_record
from cohortflow.runrecord import write_run_record

KEY = PseudonymKey(b"privacy-test-key-0123456789abcdef", "env")
DEMO = PseudonymKey(DEMO_KEY, "demo")


def _contains_planted(data: bytes) -> list[str]:
    """Planted values found in bytes (UTF-8 and Latin-1 readings, any case)."""
    texts = [data.decode("utf-8", "replace").casefold(), data.decode("latin-1").casefold()]
    return [v for v in PLANTED.values() if any(v.casefold() in t for t in texts)]


# --- controlled vocabulary ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "rebuilt"),
    [
        ("t1_mprage_sag_p2_iso_Mueller", "T1 MPRAGE SAG ISO"),
        ("AX FLAIR post Gd 12.03.1961", "AX FLAIR POST-CONTRAST"),
        ("t2_space_dark-fluid_sag_p2_iso", "T2 SPACE FLAIR SAG ISO"),
        ("3D_Brain_VIEW_FLAIR_SHC", "3D BRAIN FLAIR"),
        ("Sag CUBE FLAIR 1mm", "SAG CUBE FLAIR 1mm"),
        ("FLAIR 1x1x3mm 3T 32ch", "FLAIR 1x1x3mm 3T 32ch"),
        ("SITE-XJ4412 Schmidt-Hagen 1975/04/12", ""),
        ("Kopf MUELLER Studie 123456789mm", "BRAIN"),  # a long number is no voxel size
    ],
)
def test_descriptions_are_rebuilt_from_the_vocabulary(source: str, rebuilt: str) -> None:
    assert rebuild_description(source) == rebuilt


def test_sequence_codes_are_rebuilt_from_the_vocabulary() -> None:
    assert rebuild_sequence_name("*tfl3d1_16ns") == "TFL 3D"
    assert rebuild_sequence_name("*spcir_278ns") == "SPACE"
    assert rebuild_sequence_name("*tir2d1_XJ4412") == "IR 2D"
    assert rebuild_sequence_name("Mueller") == ""


# --- DICOM: keep-list, rebuilt descriptors, scan, names of attributes --------------------------
def test_keep_list_and_table_do_not_overlap() -> None:
    assert not ACQUISITION_KEEP_LIST & set(TABLE_E1_1)
    assert "SequenceName" not in ACQUISITION_KEEP_LIST  # rebuilt, not kept verbatim


@pytest.mark.parametrize("keep_descriptions", [False, True])
def test_deidentified_dicom_holds_no_planted_value(keep_descriptions: bool, tmp_path) -> None:
    (path,) = write_hostile_series(tmp_path / "src", n_slices=1)
    out = deidentify_dataset(
        pydicom.dcmread(path),
        KEY,
        subject_label="0a1b2c3d4e5f",
        keep_descriptions=keep_descriptions,
    )
    target = tmp_path / "out.dcm"
    out.save_as(target, enforce_file_format=True)
    assert _contains_planted(target.read_bytes()) == []
    assert "ReceiveCoilName" not in out  # free text not on the keep-list is removed
    assert out.SequenceName == "IR 2D"
    codes = [item.CodeValue for item in out.DeidentificationMethodCodeSequence]
    if keep_descriptions:
        assert out.SeriesDescription == "AX FLAIR" and out.StudyDescription == "BRAIN"
        assert codes == ["113100", "113105"]  # Clean Descriptors Option recorded
    else:
        assert "SeriesDescription" not in out and "ProtocolName" not in out
        assert codes == ["113100"]


def test_export_scan_refuses_naming_the_attribute_not_the_value(monkeypatch) -> None:
    ds = hostile_header()
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.4", "1.2.3.4"
    # A kept attribute that repeats the patient ID (as a careless vendor might): refused.
    ds.SoftwareVersions = f"syngo {PLANTED['patient_id']}"
    with pytest.raises(DicomError) as caught:
        deidentify_dataset(ds, KEY, subject_label="0a1b2c3d4e5f")
    message = str(caught.value)
    assert "PatientID (0010,0020)" in message and "SoftwareVersions (0018,1020)" in message
    assert PLANTED["patient_id"] not in message


def test_identifying_attributes_name_keyword_and_tag() -> None:
    found = identifying_attributes(hostile_header())
    assert found[PLANTED["patient_id"]] == "PatientID (0010,0020)"
    assert found["Pat. Mueller geb. 3.7.61 vgl. Schmidt-Hagen 1975/04/12"].startswith(
        "ImageComments (0020,4000)"
    )
    assert found["Juergen Mueller XJ4412"] == "private attribute (0029,1010)"


# --- ingest: sidecar from the vocabulary, mixed identities ---------------------------------------
def _ingest(source: Path, tmp_path: Path, key=KEY):
    return ingest_one(
        source, tmp_path, key=key, name="out", settings=IngestSettings(target_role="FLAIR")
    )


def test_ingest_outputs_hold_no_planted_value(tmp_path) -> None:
    write_hostile_series(tmp_path / "src")
    sidecar = _ingest(tmp_path / "src", tmp_path)
    assert sidecar["SeriesDescription"] == "AX FLAIR"
    assert sidecar["SequenceName"] == "IR 2D"
    assert [c["description"] for c in sidecar["SeriesCandidates"]] == ["AX FLAIR"]
    for output in ("out.nii.gz", "out.json"):
        assert _contains_planted((tmp_path / output).read_bytes()) == [], output
    assert export_deidentified_dicom(
        source=tmp_path / "src", out_dir=tmp_path / "dicom", subject="0a1b2c3d4e5f",
        sheet_row=3, key=KEY, settings=IngestSettings(target_role="FLAIR"),
    ) == 12  # fmt: skip
    for path in (tmp_path / "dicom").iterdir():
        assert _contains_planted(path.read_bytes()) == [], path.name


@pytest.mark.parametrize("keyword", ["PatientID", "PatientName", "PatientBirthDate"])
def test_series_mixing_patients_is_refused_naming_the_attribute(keyword, tmp_path) -> None:
    other = {"PatientID": "OTHER-99", "PatientName": "Other^Person", "PatientBirthDate": "19800101"}
    per_slice = {k: {keyword: other[keyword]} for k in range(6, 12)}
    write_hostile_series(tmp_path / "src", per_slice=per_slice)
    with pytest.raises(DicomError) as caught:
        _ingest(tmp_path / "src", tmp_path)
    message = str(caught.value)
    assert "disagree on the patient identity" in message and keyword in message
    assert "sample sheet row 3" in message
    assert not _contains_planted(message.encode()) and "OTHER-99" not in message
    assert not (tmp_path / "out.nii.gz").exists()


# --- the demo key ------------------------------------------------------------------------------
def _demo_tree(root: Path) -> Path:
    raw = root / "resources" / "demo" / "mri" / "demo01" / "raw"
    write_hostile_series(raw / "dicom", n_slices=3)
    (root / "resources" / "demo" / "mri" / "demo01" / "truth").mkdir()
    write_source_manifest(raw, raw.parent / "truth" / SOURCE_MANIFEST)
    return raw


def test_demo_key_only_for_the_demos_own_files(tmp_path, monkeypatch) -> None:
    raw = _demo_tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    source = "resources/demo/mri/demo01/raw/dicom"
    verify_demo_source(Path(source))  # the demo's own files pass
    check_demo_rows([(1, source, "demo01")], tmp_path)
    (raw / ".snakemake_timestamp").write_bytes(b"")  # Snakemake's marker of a folder output
    verify_demo_source(Path(source))
    (raw / ".snakemake_timestamp").write_bytes(b"not empty")
    with pytest.raises(ConfigError, match="snakemake_timestamp is not a demo file"):
        verify_demo_source(Path(source))
    (raw / ".snakemake_timestamp").unlink()

    first = sorted((raw / "dicom").iterdir())[0]
    first.write_bytes(first.read_bytes() + b"\0")  # real files copied over a demo file
    with pytest.raises(ConfigError, match="differs from the demo's file"):
        verify_demo_source(Path(source))
    with pytest.raises(ConfigError, match="public demo"):
        _ingest(Path(source), tmp_path / "out", key=DEMO)
    first.write_bytes(first.read_bytes()[:-1])

    (raw / "dicom" / "extra").write_bytes(b"x")
    with pytest.raises(ConfigError, match="extra is not a demo file"):
        verify_demo_source(Path(source))
    (raw / "dicom" / "extra").unlink()


def test_demo_key_never_through_a_link(tmp_path, monkeypatch) -> None:
    real = tmp_path / "real_patient"
    write_hostile_series(real, n_slices=3)
    work = tmp_path / "work"
    raw = _demo_tree(work)
    monkeypatch.chdir(work)
    # A real folder reached through a link under the demo tree.
    (raw / "dicom_link").symlink_to(real, target_is_directory=True)
    with pytest.raises(ConfigError, match="reached through a link"):
        check_demo_rows([(2, "resources/demo/mri/demo01/raw/dicom_link", "demo01")], work)
    with pytest.raises(ConfigError, match="is a link"):
        verify_demo_source(Path("resources/demo/mri/demo01/raw/dicom"))
    (raw / "dicom_link").unlink()
    # The whole demo folder replaced by a link to real data.
    demo02 = work / "resources" / "demo" / "mri" / "demo02"
    demo02.symlink_to(real.parent, target_is_directory=True)
    with pytest.raises(ConfigError, match="reached through a link"):
        check_demo_rows([(3, "resources/demo/mri/demo02/raw", "demo02")], work)
    with pytest.raises(ConfigError, match="outside resources/demo/mri"):
        check_demo_rows([(4, str(real), None)], work)


# --- one key per results folder; provenance of this run only --------------------------------------
def test_results_of_another_key_stop_the_run(tmp_path) -> None:
    results = tmp_path / "results"
    check_key_record(results, "aaaa")  # nothing written yet
    write_key_record(results, "aaaa", demo=False)
    check_key_record(results, "aaaa")
    with pytest.raises(ConfigError, match="another pseudonymisation key") as caught:
        check_key_record(results, "bbbb")
    assert "move or delete" in str(caught.value)


def test_run_record_lists_only_this_runs_subjects(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for label in ("aaaaaaaaaaaa", "bbbbbbbbbbbb"):
        folder = Path("results/ingest") / f"sub-{label}" / "ses-01" / "anat"
        folder.mkdir(parents=True)
        sidecar = folder / f"sub-{label}_ses-01_FLAIR.json"
        sidecar.write_text(json.dumps({"Subject": label, "Session": "01"}))
    Path("samples.tsv").write_text("subject\tsession\tsource\n")
    current = "results/ingest/sub-aaaaaaaaaaaa/ses-01/anat/sub-aaaaaaaaaaaa_ses-01_FLAIR.json"
    record = write_run_record(
        "results/provenance/run.json", "results/provenance/checksums.sha256", config={},
        config_sha256="0", commit=None, sample_sheet="samples.tsv",
        ingest_sidecars=[current], genotype_files=[], key_fingerprint="aaaa",
    )  # fmt: skip
    assert list(record["outputs"]) == [current]
    assert record["pseudonym_key"] == {"fingerprint": "aaaa"}


# --- one row per person ------------------------------------------------------------------------
def _sheet(sources: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {"subject": [f"S{i}" for i in range(len(sources))], "session": "01", "source": sources}
    )


def test_rows_sharing_a_source_path_are_refused_naming_both(tmp_path) -> None:
    write_hostile_series(tmp_path / "a" / "b", n_slices=2)
    (tmp_path / "alias").symlink_to(tmp_path / "a", target_is_directory=True)
    for sources, rows in (
        ([str(tmp_path / "a"), str(tmp_path / "x"), str(tmp_path / "a")], "1 and 3"),
        ([str(tmp_path / "a"), str(tmp_path / "a" / "b")], "1 and 2"),  # one inside the other
        ([str(tmp_path / "x"), str(tmp_path / "a"), str(tmp_path / "alias")], "2 and 3"),
    ):
        with pytest.raises(ConfigError, match=f"sample sheet rows {rows}: their sources"):
            Cohort(_sheet(sources), KEY)
    Cohort(_sheet([str(tmp_path / "a"), str(tmp_path / "x")]), KEY)


def test_rows_whose_sources_hold_the_same_images_are_refused(tmp_path) -> None:
    sidecars, rows = {}, {}
    for number, (sha, uid) in enumerate([("s1", "u1"), ("s2", "u2"), ("s3", "u1")], start=1):
        path = tmp_path / f"{number}.json"
        path.write_text(json.dumps({"Subject": f"l{number}", "Session": "01",
                                    "InputSHA256": sha, "SeriesInstanceUID": uid}))  # fmt: skip
        sidecars[f"l{number}_01"], rows[f"l{number}_01"] = str(path), number
    with pytest.raises(InputError, match="rows 1 and 3: their sources hold the same series"):
        check_sources(sidecars, rows, str(tmp_path / "sources.tsv"))
    assert not (tmp_path / "sources.tsv").exists()
    del sidecars["l3_01"]
    check_sources(sidecars, rows, str(tmp_path / "sources.tsv"))
    assert len(pd.read_csv(tmp_path / "sources.tsv", sep="\t")) == 2


def test_find_phi_knows_transliterations_only_as_planted(tmp_path) -> None:
    """The scan looks for header values; a transliteration the header does not hold is not a
    search term, which is why descriptions are rebuilt instead of scrubbed."""
    values = identifying_attributes(hostile_header(SeriesDescription="", ImageComments=""))
    assert find_phi("AX FLAIR Mueller", values) == []  # invisible to a deny-list ...
    assert rebuild_description("AX FLAIR Mueller") == "AX FLAIR"  # ... gone by construction
