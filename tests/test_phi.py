"""No identifying value planted in the demo's raw data reaches any output or log (images,
sidecars, tables, FHIR bundles, logs)."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import pydicom
import pytest

from cohortflow.privacy.phi import find_phi, identifying_values

pytestmark = pytest.mark.slow


def _planted_phi(workdir: Path) -> set[str]:
    values: set[str] = set()
    for truth in sorted((workdir / "resources" / "demo" / "mri").glob("*/truth/phi.json")):
        for value in json.loads(truth.read_text()).values():
            values.add(value)
            values.update(part for part in value.replace("^", " ").split() if len(part) >= 4)
    for raw in sorted((workdir / "resources" / "demo" / "mri").glob("*/raw/dicom")):
        for path in sorted(raw.rglob("IM*"))[:3]:
            header = pydicom.dcmread(path, stop_before_pixels=True)
            meta = {str(e.value) for e in header.file_meta}
            # Protocol names (SeriesDescription, ProtocolName) are kept on purpose, after a
            # check that they hold no identifying value; everything else counts as PHI.
            values |= identifying_values(header, keep_descriptions=True) - meta
    return {v for v in values if len(v) >= 4}


def _readable(path: Path) -> bytes:
    """The bytes of a file that can carry text.

    For a NIfTI that is the header and its extensions (everything before the voxel data:
    voxel values are numbers, and in 100 MB of floats any 4-letter name turns up by chance);
    for a PNG its text chunks; for anything else the whole (decompressed) file.
    """
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    if path.name.endswith((".nii", ".nii.gz")):
        vox_offset = int(struct.unpack("<f", data[108:112])[0])
        return data[: max(vox_offset, 348)]
    if path.suffix == ".png":
        chunks, pos = [], 8
        while pos + 8 <= len(data):
            length, kind = struct.unpack(">I4s", data[pos : pos + 8])
            if kind in (b"tEXt", b"iTXt", b"zTXt"):
                chunks.append(data[pos + 8 : pos + 8 + length])
            pos += 12 + length
        return b"\n".join(chunks)
    return data


def _scanned_files(workdir: Path) -> list[Path]:
    roots = [workdir / name for name in ("results", "logs", "benchmarks", ".snakemake/log")]
    return sorted(p for root in roots if root.exists() for p in root.rglob("*") if p.is_file())


def test_scan_finds_planted_phi_in_the_raw_data(demo_run):
    """Negative control: the scanner sees the PHI where it is (the raw demo data)."""
    phi = _planted_phi(demo_run.workdir)
    assert len(phi) > 50
    raw = sorted((demo_run.workdir / "resources" / "demo" / "mri").glob("*/raw/dicom/*/*/IM*"))
    assert find_phi(raw[0].read_bytes(), phi)
    nifti = sorted((demo_run.workdir / "resources" / "demo" / "mri").glob("*/raw/FLAIR.nii.gz"))
    assert find_phi(_readable(nifti[0]), phi), "the demo NIfTI header carries planted PHI"


def test_no_planted_phi_in_any_output_or_log(demo_run):
    phi = _planted_phi(demo_run.workdir)
    files = _scanned_files(demo_run.workdir)
    assert any(p.name.endswith(".nii.gz") for p in files)
    assert any(p.name.endswith(".log") for p in files)
    assert any(p.name.endswith("_bundle.json") for p in files), "the FHIR bundles are scanned"
    leaks = {str(p): hits for p in files if (hits := find_phi(_readable(p), phi))}
    assert leaks == {}


def test_sheet_subject_ids_stay_out_of_results_and_ingest_logs(demo_run):
    """Outputs and ingest logs are named by pseudonym; the site's IDs never appear there,
    not even inside a source path (Snakemake's own scheduler log lists the input paths
    the user gave, as the sheet does)."""
    ids = set(demo_run.good) | {f"bad{mode.replace('_', '')}" for mode in demo_run.bad}
    roots = [demo_run.workdir / "results", demo_run.workdir / "logs" / "ingest"]
    files = sorted(p for root in roots for p in root.rglob("*") if p.is_file())
    assert files
    leaks = {str(p): hits for p in files if (hits := find_phi(_readable(p), ids))}
    assert leaks == {}


def test_no_hostile_free_text_in_any_output_or_log(demo_run):
    """One demo subject's headers carry identifiers only in free text (a surname typed into
    the descriptions, its transliteration, a site code, dates in other notations, a coil name,
    a private note; tests/hostile_dicom.py): the subject goes through every stage, and none of
    the values reaches an image, sidecar, table, figure, FHIR bundle or log."""
    from conftest import HOSTILE_DEMO_SUBJECT
    from hostile_dicom import PLANTED

    raw = demo_run.workdir / "resources" / "demo" / "mri" / HOSTILE_DEMO_SUBJECT / "raw"
    planted = list(PLANTED.values())
    assert find_phi(next(raw.rglob("IM*")).read_bytes(), planted), "negative control"
    label = demo_run.good[HOSTILE_DEMO_SUBJECT]
    files = _scanned_files(demo_run.workdir)
    subject_files = [p for p in files if label in str(p)]
    assert any(p.suffix == ".png" for p in subject_files), "its figures are scanned"
    assert any(p.name.endswith("_bundle.json") for p in subject_files), "its bundle is scanned"
    leaks = {str(p): hits for p in files if (hits := find_phi(_readable(p), planted))}
    assert leaks == {}
