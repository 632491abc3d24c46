"""Budgets before bytes (issue 29, point 1): sizes come from headers, refusals cost nothing.

Hostile inputs are small files whose headers declare huge images: a 1 MB .nii.gz holding a
gigavoxel of zeros, a DICOM series declaring 30000 x 30000 pixels per slice, a deflated DICOM
file of 1 MB that inflates to 1 GiB lying in a series that is not converted. Ingest runs on
them in a child process under an address-space limit, and its peak memory is measured.
"""

from __future__ import annotations

import gzip
import json
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pydicom
import pytest
import yaml
from conftest import REPO
from hostile_dicom import write_hostile_series
from hostile_inputs import deflated_dicom_bomb, huge_dicom_series, nifti_bomb
from pydicom.uid import DeflatedExplicitVRLittleEndian

from cohortflow.errors import DicomError, NiftiError
from cohortflow.ingest import dicom_series, dicom_volume
from cohortflow.ingest.budget import INGEST_IMAGE_COPIES, MB, ingest_mem_mb
from cohortflow.ingest.nifti_input import read_nifti_3d

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
#: Ceiling of the child's address space: well below what any bomb would allocate when read.
ADDRESS_SPACE_LIMIT = 1500 * MB
PEAK_LIMIT_MB = 500


def _default_max_image_mb() -> float:
    schema = yaml.safe_load(SCHEMA.read_text())
    return schema["properties"]["ingest"]["properties"]["max_image_mb"]["default"]


CHILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from cohortflow.errors import InputError
    from cohortflow.ingest.run import IngestSettings, ingest_subject
    from cohortflow.privacy.pseudonym import PseudonymKey

    cases, out, limit = json.loads(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
    results = {}
    for row, (name, source) in enumerate(cases.items(), start=1):
        try:
            ingest_subject(
                source=source, nifti_out=out / f"{name}.nii.gz", sidecar_out=out / f"{name}.json",
                subject="0123456789ab", session="01", sheet_row=row,
                key=PseudonymKey(b"budget-test-key-0123456789abcdef", "env"),
                settings=IngestSettings(max_image_mb=limit),
            )
            results[name] = "ok"
        except InputError as exc:
            results[name] = str(exc)
    # VmHWM: the peak resident set of this process's own memory since exec. (ru_maxrss would
    # also count the forked copy of the parent before exec: a large pytest process.)
    status = Path("/proc/self/status").read_text().splitlines()
    hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print(json.dumps({"results": results, "peak_bytes": hwm * 1024}))
    """
)


def _run_child(cases: dict[str, str], out: Path, limit: float) -> dict:
    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))

    out.mkdir(exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(cases), str(out), str(limit)],
        capture_output=True, text=True, timeout=300, preexec_fn=cap, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("budget")
    good_with_bomb = root / "good_with_bomb"
    write_hostile_series(good_with_bomb / "flair")
    deflated_dicom_bomb(good_with_bomb / "localizer" / "LOC0001.dcm")
    return {
        "nifti_bomb": nifti_bomb(root / "gigavoxel.nii.gz"),
        "dicom_huge": huge_dicom_series(root / "huge")[0].parent,
        "good_with_bomb": good_with_bomb,
    }


def test_refused_inputs_cost_under_500_mb(hostile, tmp_path):
    limit = _default_max_image_mb()
    report = _run_child({k: str(v) for k, v in hostile.items()}, tmp_path / "out", limit)
    results, peak_mb = report["results"], report["peak_bytes"] / MB
    print(f"peak memory of ingest on the refused inputs: {peak_mb:.0f} MB")
    assert peak_mb < PEAK_LIMIT_MB, results

    nifti = results["nifti_bomb"]
    assert nifti.startswith("subject sub-0123456789ab (sample sheet row 1): ")
    assert (
        "<source of sample sheet row 1>: the header declares an image of 1024 x 1024 x 512" in nifti
    )
    assert "1,073.7 MB" in nifti and f"ingest.max_image_mb = {limit:g} MB" in nifti
    assert str(hostile["nifti_bomb"]) not in nifti  # never the full path

    dicom = results["dicom_huge"]
    assert "(sample sheet row 2)" in dicom and "<source of sample sheet row 2>/IM0000" in dicom
    assert "Rows 30000 x Columns 30000 x 1 frame(s) x 16 bits in each of 4 files" in dicom
    assert f"ingest.max_image_mb = {limit:g} MB" in dicom

    # The deflated bomb lies in a series that is not converted: the FLAIR is, at no cost.
    assert results["good_with_bomb"] == "ok"
    sidecar = json.loads((tmp_path / "out" / "good_with_bomb.json").read_text())
    assert sidecar["ImageShape"] == [32, 32, 12]


def test_discovery_reads_the_header_of_a_deflated_file_only(hostile):
    bomb = hostile["good_with_bomb"] / "localizer" / "LOC0001.dcm"
    assert bomb.stat().st_size < 2 * MB
    data, complete = dicom_series.inflate(bomb, 4 * MB)
    assert len(data) == 4 * MB and not complete  # stops where it is told to
    header = dicom_series.read_header(bomb)
    assert (header.Rows, header.Columns, header.NumberOfFrames) == (16384, 16384, 2)
    assert "PixelData" not in header
    assert header.file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian
    found = dicom_series.discover_series(hostile["good_with_bomb"])
    assert sorted(len(s.files) for s in found.series) == [1, 12]


def test_default_limit_fits_the_rules_declared_memory(tmp_path):
    """The schema's default limit, times the copies a conversion holds, is what the ingest rule
    declares; a real conversion stays within that factor."""
    limit = _default_max_image_mb()
    assert ingest_mem_mb(limit) == 3000
    assert (
        "mem_mb=attempt_scaled(INGEST_MEM_MB)" in (REPO / "workflow/rules/ingest.smk").read_text()
    )
    # 256 x 256 x 100 int16 with a rescale: 26 MB in memory as float32.
    source = tmp_path / "series"
    slope = {"RescaleSlope": "0.5", "RescaleIntercept": "1"}
    write_hostile_series(source, n_slices=100, size=256, per_slice=dict.fromkeys(range(100), slope))
    baseline = _run_child({}, tmp_path / "base", limit)["peak_bytes"]
    report = _run_child({"real": str(source)}, tmp_path / "out", limit)
    assert report["results"] == {"real": "ok"}
    in_memory = 256 * 256 * 100 * 4
    copies = (report["peak_bytes"] - baseline) / in_memory
    print(f"conversion peak: {copies:.1f} image copies (budget {INGEST_IMAGE_COPIES})")
    assert copies <= INGEST_IMAGE_COPIES


def test_a_deflated_series_is_converted_like_the_plain_one(tmp_path):
    files = write_hostile_series(tmp_path / "plain")
    (tmp_path / "deflated").mkdir()
    for path in files:
        ds = pydicom.dcmread(path)
        ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
        ds.save_as(tmp_path / "deflated" / path.name, enforce_file_format=True)
    plain, deflated = (
        dicom_volume.read_volume(dicom_series.discover_series(tmp_path / name).series[0])
        for name in ("plain", "deflated")
    )
    assert np.array_equal(plain.data, deflated.data) and np.array_equal(
        plain.affine, deflated.affine
    )


def test_a_deflated_file_holding_more_than_its_header_declares_is_refused(tmp_path):
    # 32 x 32 x 16 bits declared (2 kB), 256 MB of pixel data in the stream.
    bomb = deflated_dicom_bomb(tmp_path / "IM1", rows=32, columns=32, frames=1,
                               pixel_bytes=256 * MB)  # fmt: skip
    with pytest.raises(DicomError, match=r"inflates to more than the 2\.0 kB of pixel data"):
        dicom_volume._read_dataset(bomb, 32 * 32 * 2)


def test_a_nifti_header_with_gigabyte_extensions_is_refused_unread(tmp_path):
    """vox_offset at 1 GB: nibabel would read every extension byte before the image."""
    path = nifti_bomb(tmp_path / "ext.nii.gz", shape=(4, 4, 4))
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[108:112] = np.array([1e9], "<f4").tobytes()
    raw[348:352] = b"\x01\0\0\0"  # "extensions follow"
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(NiftiError, match="vox_offset"):
        read_nifti_3d(path, max_image_mb=500)
