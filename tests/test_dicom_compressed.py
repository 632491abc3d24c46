"""Compressed transfer syntaxes decode to exactly the voxels of the uncompressed series."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEG2000Lossless, RLELossless

from cohortflow.ingest.dicom_series import discover_series
from cohortflow.ingest.dicom_volume import read_volume


def _volume(folder):
    (series,) = discover_series(folder).series
    return read_volume(series)


@pytest.mark.parametrize("syntax", [JPEG2000Lossless, RLELossless], ids=lambda s: s.name)
def test_compressed_series_reads_identically(shared_data, tmp_path, syntax):
    source = shared_data / "mri" / "dicom" / "siemens_prisma_t1_2d_HFS"
    out = tmp_path / "compressed"
    out.mkdir()
    for path in sorted(source.iterdir()):
        ds = pydicom.dcmread(path)
        ds.compress(syntax)
        ds.save_as(out / path.name)
    assert pydicom.dcmread(next(out.iterdir())).file_meta.TransferSyntaxUID == syntax
    plain, packed = _volume(source), _volume(out)
    assert np.array_equal(plain.affine, packed.affine)
    assert np.array_equal(plain.data, packed.data)
