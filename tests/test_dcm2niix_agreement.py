"""Our DICOM -> NIfTI conversion agrees with dcm2niix on every shared real series.

dcm2niix is the reference the field trusts; agreeing with it on a Philips classic 3D series,
a Siemens enhanced multi-frame file and a supine/prone 2D pair covers vendor layout, frame
geometry, slice ordering and rescaling. Both results are reoriented to the closest canonical
RAS+ before comparing, because dcm2niix stores rows flipped and 3D volumes rotated.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from cohortflow.ingest.dicom_series import discover_series
from cohortflow.ingest.dicom_volume import read_volume, volume_to_nifti

SERIES = (
    "philips_elition_3t_t1_mprage",
    "siemens_prisma_xa30_t1_enhanced",
    "siemens_prisma_t1_2d_HFS",
    "siemens_prisma_t1_2d_HFP",
)

# dcm2niix flags, each stated even where it is the default, so that a user's ~/.dcm2nii.ini
# cannot change the reference:
#   -b n -z n -f %s   no JSON sidecar, uncompressed output named by series number;
#   -p n              Philips *display* scaling: RescaleSlope/Intercept, the DICOM-standard
#                     real-world values we apply. The default (-p y) would use Philips'
#                     private "precise float" scale (2005,100E), a different unit;
#   -l o              keep the stored integers ("original"), no lossless rescaling to the
#                     int16 range, so the stored values + scl_slope/scl_inter are the DICOM ones;
#   -x n              no cropping (-x y would cut and rotate the 3D volume).
DCM2NIIX_FLAGS = ("-b", "n", "-z", "n", "-p", "n", "-l", "o", "-x", "n", "-f", "%s")
AFFINE_ATOL_MM = 1e-3


@pytest.mark.parametrize("name", SERIES)
def test_agrees_with_dcm2niix(name: str, shared_data: Path, dcm2niix: str, tmp_path: Path) -> None:
    source = shared_data / "mri" / "dicom" / name
    subprocess.run(
        [dcm2niix, *DCM2NIIX_FLAGS, "-o", tmp_path, source], check=True, capture_output=True
    )
    (reference_path,) = tmp_path.glob("*.nii")
    loaded = nib.load(reference_path)
    unscaled = loaded.dataobj.slope == 1 and loaded.dataobj.inter == 0
    reference = nib.as_closest_canonical(loaded)

    (series,) = discover_series(source).series
    ours = volume_to_nifti(read_volume(series))

    assert nib.aff2axcodes(ours.affine) == ("R", "A", "S")
    assert ours.shape == reference.shape
    # dcm2niix stores its affine as float32 in the header: ~1e-5 relative, ~1.5e-4 mm here.
    assert np.allclose(ours.affine, reference.affine, atol=AFFINE_ATOL_MM, rtol=0)
    their_values = reference.get_fdata()
    our_values = np.asanyarray(ours.dataobj)
    if np.issubdtype(our_values.dtype, np.integer):
        # No rescaling (slope 1, intercept 0): the stored integers must be identical.
        assert unscaled
        assert np.array_equal(our_values, their_values)
    else:
        # Philips: value = stored x RescaleSlope. We compute it in float64 and store float32;
        # dcm2niix keeps the integers and a float32 scl_slope. Both round the slope/product to
        # float32 (relative error <= 6e-8 each), so agreement within rtol 1e-6 means the same
        # scaling, while any real scaling difference (e.g. -p y) is off by orders of magnitude.
        assert np.allclose(our_values, their_values, rtol=1e-6, atol=0)
