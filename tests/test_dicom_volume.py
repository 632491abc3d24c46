"""DICOM -> volume geometry: synthetic series with a known affine, broken copies of real series,
and the head-first-supine / head-first-prone pair that must land in the same anatomy."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, JPEGLosslessSV1, MRImageStorage, RLELossless
from scipy import ndimage, optimize
from scipy.spatial.transform import Rotation

from cohortflow.errors import DicomError, GeometryError
from cohortflow.ingest.dicom_series import DicomSeries, discover_series
from cohortflow.ingest.dicom_volume import read_volume, volume_to_nifti

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
# Oblique in all three axes, so that any swap of row/column cosines or spacings shows.
OBLIQUE = Rotation.from_euler("xyz", [20, -15, 30], degrees=True).as_matrix()
ROW, COL = OBLIQUE[:, 0], OBLIQUE[:, 1]
NORMAL = np.cross(ROW, COL)
PIXEL_SPACING = (0.9, 1.2)  # DICOM order: between rows, between columns (deliberately unequal)
SLICE_SPACING = 2.5
ORIGIN = np.array([-30.0, 20.0, 15.0])
SHAPE = (16, 12, 8)  # columns, rows, slices (non-square, so a transposition cannot pass)


def _ds(value: float) -> str:
    return f"{value:.9f}"[:16]


def write_series(
    folder: Path,
    volume: np.ndarray,
    positions: list[np.ndarray],
    *,
    row: np.ndarray = ROW,
    col: np.ndarray = COL,
    pixel_spacing: tuple[float, float] = PIXEL_SPACING,
    rescale: tuple[float, float] | None = None,
) -> list[Path]:
    """Classic single-frame files of ``volume`` (i=column, j=row, k=slice), slice k at
    positions[k]. Names are random-looking and InstanceNumber runs backwards, so only the
    positions can give the order."""
    folder.mkdir(parents=True, exist_ok=True)
    series_uid, study_uid = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    paths = []
    for k in range(volume.shape[2]):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = sop_uid = pydicom.uid.generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, sop_uid
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.Modality, ds.Manufacturer = "MR", "Synthetic"
        ds.SeriesNumber, ds.InstanceNumber = 7, volume.shape[2] - k
        ds.SeriesDescription = "synthetic oblique"
        ds.StudyDate, ds.StudyTime, ds.AcquisitionTime = "20240101", "120000", "120000"
        ds.ImageOrientationPatient = [_ds(v) for v in (*row, *col)]
        ds.ImagePositionPatient = [_ds(v) for v in positions[k]]
        ds.PixelSpacing = [_ds(v) for v in pixel_spacing]
        ds.SliceThickness = "2"
        ds.Rows, ds.Columns = volume.shape[1], volume.shape[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        if rescale is not None:
            ds.RescaleSlope, ds.RescaleIntercept = (_ds(v) for v in rescale)
        ds.PixelData = np.ascontiguousarray(volume[:, :, k].T.astype("<u2")).tobytes()
        path = folder / sop_uid.rsplit(".", 1)[-1]
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def synthetic_volume() -> np.ndarray:
    """Distinct values everywhere, so any misplaced voxel changes the data."""
    return np.arange(np.prod(SHAPE), dtype=np.uint16).reshape(SHAPE)


def stack(n: int = SHAPE[2], step: np.ndarray | None = None) -> list[np.ndarray]:
    """Slice positions along the normal; ``step`` overrides the per-slice displacement."""
    step = NORMAL * SLICE_SPACING if step is None else step
    return [ORIGIN + k * step for k in range(n)]


def expected_ras_affine(origin: np.ndarray = ORIGIN) -> np.ndarray:
    """The affine the DICOM standard's Image Plane equation implies, in RAS."""
    lps = np.eye(4)
    lps[:3, 0] = ROW * PIXEL_SPACING[1]  # i: along the row cosine, column spacing
    lps[:3, 1] = COL * PIXEL_SPACING[0]  # j: along the column cosine, row spacing
    lps[:3, 2] = NORMAL * SLICE_SPACING
    lps[:3, 3] = origin
    return LPS_TO_RAS @ lps


def load(folder: Path) -> DicomSeries:
    discovery = discover_series(folder)
    assert len(discovery.series) == 1
    return discovery.series[0]


def run_dcm2niix(exe: str, source: Path, out: Path) -> nib.Nifti1Image:
    out.mkdir()
    subprocess.run(
        [exe, "-b", "n", "-z", "n", "-p", "n", "-l", "o", "-x", "n", "-f", "%s", "-o", out, source],
        check=True,
        capture_output=True,
    )
    (nifti,) = out.glob("*.nii")
    return nib.load(nifti)


# --- synthetic geometry with a known answer -------------------------------------------------


def test_oblique_affine_matches_image_plane_equation(tmp_path: Path) -> None:
    volume = synthetic_volume()
    write_series(tmp_path / "s", volume, stack())
    raw = read_volume(load(tmp_path / "s"), canonical=False)
    assert np.allclose(raw.affine, expected_ras_affine(), atol=1e-6)
    assert np.array_equal(raw.data, volume)
    assert raw.data.dtype == np.uint16
    assert raw.slice_spacing == pytest.approx(SLICE_SPACING)

    # Canonical: same voxels at the same world positions, axes closest to R, A, S.
    canon = read_volume(load(tmp_path / "s"))
    assert nib.aff2axcodes(canon.affine) == ("R", "A", "S")
    ijk = np.indices(canon.data.shape).reshape(3, -1)
    world = canon.affine[:3, :3] @ ijk + canon.affine[:3, 3:]
    back = np.linalg.inv(expected_ras_affine())[:3] @ np.vstack([world, np.ones(ijk.shape[1])])
    index = np.rint(back).astype(int)
    assert np.allclose(back, index, atol=1e-6)
    assert np.array_equal(canon.data.reshape(-1), volume[tuple(index)])


def test_oblique_matches_dcm2niix(tmp_path: Path, dcm2niix: str) -> None:
    write_series(tmp_path / "s", synthetic_volume(), stack())
    ours = read_volume(load(tmp_path / "s"))
    theirs = nib.as_closest_canonical(run_dcm2niix(dcm2niix, tmp_path / "s", tmp_path / "out"))
    assert np.allclose(ours.affine, theirs.affine, atol=1e-3)
    assert np.array_equal(ours.data, np.asanyarray(theirs.dataobj))


def test_rescale_gives_float_real_world_values(tmp_path: Path) -> None:
    volume = synthetic_volume()
    write_series(tmp_path / "s", volume, stack(), rescale=(0.5, -10.0))
    result = read_volume(load(tmp_path / "s"), canonical=False)
    assert result.data.dtype == np.float32
    assert np.array_equal(result.data, volume * 0.5 - 10.0)


def test_gantry_tilt_is_refused(tmp_path: Path) -> None:
    # Each slice one row further along the column cosine: a sheared stack.
    write_series(tmp_path / "s", synthetic_volume(), stack(step=NORMAL * 2.5 + COL * 0.9))
    with pytest.raises(GeometryError, match="gantry tilt") as caught:
        read_volume(load(tmp_path / "s"))
    assert str(tmp_path / "s") in str(caught.value)


def test_gantry_tilt_resampled_onto_first_slice_grid(tmp_path: Path) -> None:
    """Checked analytically only: dcm2niix (v1.0.20220720) writes tilted MR stacks without a
    GantryDetectorTilt tag with the plain normal scaled by the distance between positions,
    i.e. an affine that ignores the shear, so it is no reference here."""
    volume = synthetic_volume()
    write_series(tmp_path / "s", volume, stack(step=NORMAL * 2.5 + COL * PIXEL_SPACING[0]))
    result = read_volume(load(tmp_path / "s"), irregular="resample", canonical=False)
    assert any("gantry tilt" in note for note in result.notes)
    assert np.allclose(result.affine, expected_ras_affine(), atol=1e-6)
    # Slice k was acquired k rows further along the column cosine: on the first slice's grid
    # it moves down k rows, and what it never covered is 0.
    expected = np.zeros(SHAPE, dtype=np.float32)
    for k in range(SHAPE[2]):
        expected[:, k:, k] = volume[:, : SHAPE[1] - k, k]
    assert np.array_equal(result.data, expected)


def test_missing_slice_refused_then_resampled(tmp_path: Path) -> None:
    volume = synthetic_volume()
    keep = [k for k in range(SHAPE[2]) if k != 3]
    write_series(tmp_path / "s", volume[:, :, keep], [stack()[k] for k in keep])
    with pytest.raises(GeometryError, match="missing slice") as caught:
        read_volume(load(tmp_path / "s"))
    assert "5.000 mm" in str(caught.value) and "expected 2.500 mm" in str(caught.value)

    result = read_volume(load(tmp_path / "s"), irregular="resample", canonical=False)
    assert result.data.shape == SHAPE
    assert np.allclose(result.affine, expected_ras_affine(), atol=1e-6)
    assert np.allclose(result.data[:, :, 3], (volume[:, :, 2] + volume[:, :, 4]) / 2.0)
    assert np.array_equal(result.data[:, :, keep], volume[:, :, keep])
    assert any("resampled to 8 slices" in note for note in result.notes)


def test_uneven_spacing_refused(tmp_path: Path) -> None:
    positions = stack()
    positions[5] = positions[5] + NORMAL * 0.7
    write_series(tmp_path / "s", synthetic_volume(), positions)
    with pytest.raises(GeometryError, match="non-uniform slice spacing"):
        read_volume(load(tmp_path / "s"))


def test_several_volumes_in_one_series_refused(tmp_path: Path) -> None:
    volume = synthetic_volume()
    doubled = np.concatenate([volume, volume + 1], axis=2)
    write_series(tmp_path / "s", doubled, stack() + stack())
    with pytest.raises(GeometryError, match="2 volumes"):
        read_volume(load(tmp_path / "s"))


def test_duplicate_position_refused(tmp_path: Path) -> None:
    positions = stack()
    positions[4] = positions[3]
    write_series(tmp_path / "s", synthetic_volume(), positions)
    with pytest.raises(GeometryError, match="duplicate slice positions"):
        read_volume(load(tmp_path / "s"))


def test_nifti_header(tmp_path: Path) -> None:
    write_series(tmp_path / "s", synthetic_volume(), stack())
    volume = read_volume(load(tmp_path / "s"))
    path = tmp_path / "out.nii.gz"
    volume_to_nifti(volume).to_filename(path)
    image = nib.load(path)
    header = image.header
    assert int(header["qform_code"]) == 1 and int(header["sform_code"]) == 1
    assert header.get_xyzt_units()[0] == "mm"
    assert header["descrip"].item() == b""
    assert np.allclose(image.affine, volume.affine, atol=1e-4)
    assert np.allclose(header.get_qform(), volume.affine, atol=1e-4)
    assert np.array_equal(np.asanyarray(image.dataobj), volume.data)


# --- broken copies of real series ------------------------------------------------------------


def copy_slices(source: Path, target: Path, indices: list[int]) -> list[Path]:
    """Copy the files of ``source`` at ``indices`` (in slice order) into ``target``."""

    def along_normal(path: Path) -> float:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        iop = np.array(ds.ImageOrientationPatient, dtype=float)
        return float(np.array(ds.ImagePositionPatient, dtype=float) @ np.cross(iop[:3], iop[3:]))

    files = sorted(source.iterdir(), key=along_normal)
    target.mkdir(parents=True)
    return [Path(shutil.copy(files[i], target)) for i in indices]


@pytest.fixture
def hfs(shared_data: Path) -> Path:
    return shared_data / "mri" / "dicom" / "siemens_prisma_t1_2d_HFS"


def test_truncated_file(tmp_path: Path, hfs: Path) -> None:
    copies = copy_slices(hfs, tmp_path / "s", list(range(10, 16)))
    broken = copies[2]
    broken.write_bytes(broken.read_bytes()[:-5000])
    with pytest.raises(DicomError, match="truncated") as caught:
        read_volume(load(tmp_path / "s"))
    assert caught.value.path == str(broken)


def test_real_missing_middle_slice(tmp_path: Path, hfs: Path) -> None:
    copy_slices(hfs, tmp_path / "s", [10, 11, 12, 14, 15])
    with pytest.raises(GeometryError, match=r"missing slice.*9\.600 mm.*expected 4\.800 mm"):
        read_volume(load(tmp_path / "s"))
    resampled = read_volume(load(tmp_path / "s"), irregular="resample")
    assert resampled.data.shape == (6, 256, 256)


def test_mixed_orientation_in_one_series(tmp_path: Path, hfs: Path) -> None:
    copies = copy_slices(hfs, tmp_path / "s", list(range(10, 16)))
    tilted = Rotation.from_euler("x", 10, degrees=True).as_matrix()
    for path in copies[:2]:
        ds = pydicom.dcmread(path)
        iop = np.array(ds.ImageOrientationPatient, dtype=float)
        ds.ImageOrientationPatient = [_ds(v) for v in (*tilted @ iop[:3], *tilted @ iop[3:])]
        ds.save_as(path)
    with pytest.raises(GeometryError, match="mixed geometry: 2 different orientations"):
        read_volume(load(tmp_path / "s"))


def test_compressed_copies(tmp_path: Path, hfs: Path) -> None:
    """RLE is decoded by pydicom itself; a syntax without a decoder names the syntax."""
    copies = copy_slices(hfs, tmp_path / "plain", list(range(10, 14)))
    (tmp_path / "rle").mkdir()
    for path in copies:
        ds = pydicom.dcmread(path)
        ds.compress(RLELossless)
        ds.save_as(tmp_path / "rle" / path.name)
    plain = read_volume(load(tmp_path / "plain"))
    rle = read_volume(load(tmp_path / "rle"))
    assert np.array_equal(plain.data, rle.data) and np.allclose(plain.affine, rle.affine)

    relabelled = tmp_path / "rle" / copies[0].name
    ds = pydicom.dcmread(relabelled)
    ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1
    ds.save_as(relabelled)
    with pytest.raises(DicomError, match="transfer syntax JPEG Lossless"):
        read_volume(load(tmp_path / "rle"))


@pytest.fixture
def enhanced_file(shared_data: Path) -> Path:
    folder = shared_data / "mri" / "dicom" / "siemens_prisma_xa30_t1_enhanced"
    (path,) = folder.iterdir()
    return path


def test_enhanced_orientation_in_shared_groups(tmp_path: Path, enhanced_file: Path) -> None:
    """The plane orientation may sit in the shared groups instead of every frame."""
    ds = pydicom.dcmread(enhanced_file)
    ds.SharedFunctionalGroupsSequence[
        0
    ].PlaneOrientationSequence = ds.PerFrameFunctionalGroupsSequence[0].PlaneOrientationSequence
    for frame in ds.PerFrameFunctionalGroupsSequence:
        del frame.PlaneOrientationSequence
    (tmp_path / "s").mkdir()
    ds.save_as(tmp_path / "s" / "moved")
    moved = read_volume(load(tmp_path / "s"))
    original = read_volume(load(enhanced_file.parent))
    assert np.array_equal(moved.data, original.data)
    assert np.allclose(moved.affine, original.affine)


def test_enhanced_two_volumes_refused(tmp_path: Path, enhanced_file: Path) -> None:
    ds = pydicom.dcmread(enhanced_file)
    frames = ds.PerFrameFunctionalGroupsSequence
    half = len(frames) // 2
    for index, frame in enumerate(frames):
        source = frames[index % half].PlanePositionSequence[0]
        frame.PlanePositionSequence[0].ImagePositionPatient = list(source.ImagePositionPatient)
    (tmp_path / "s").mkdir()
    ds.save_as(tmp_path / "s" / "echoes")
    with pytest.raises(GeometryError, match="2 volumes") as caught:
        read_volume(load(tmp_path / "s"))
    assert "only one 3D volume per series" in str(caught.value)


# --- head-first-supine vs head-first-prone -----------------------------------------------------


def _downsampled(volume_path: Path) -> tuple[np.ndarray, np.ndarray, str]:
    """Canonical volume with 4x4 in-plane block means (the slices are 4.8 mm apart anyway),
    its affine, and the PatientPosition of the series."""
    series = load(volume_path)
    volume = read_volume(series)
    assert nib.aff2axcodes(volume.affine) == ("R", "A", "S")
    data = volume.data.astype(np.float32)
    n, a, s = data.shape
    blocks = data.reshape(n, a // 4, 4, s // 4, 4).mean(axis=(2, 4))
    affine = volume.affine @ np.array([[1, 0, 0, 0], [0, 4, 0, 1.5], [0, 0, 4, 1.5], [0, 0, 0, 1]])
    return blocks, affine, str(series.header.PatientPosition)


def _best_rigid_correlation(
    fixed: np.ndarray, fixed_affine: np.ndarray, moving: np.ndarray, moving_affine: np.ndarray
) -> tuple[float, float]:
    """Highest correlation inside the fixed head after a *local* rigid fit in world space.

    The volunteer lies differently in the two sessions (prone: the head sits ~45 mm further
    posterior and pitched), so the images are aligned first: centres of mass, then Powell on
    rotation + translation. A local fit from the identity rotation cannot turn a head
    around, so a wrong flip stays wrong. Returns (correlation, rotation angle in degrees).
    """

    def head(data: np.ndarray) -> np.ndarray:
        return data > 0.15 * np.percentile(data, 99)

    def centre(data: np.ndarray, affine: np.ndarray) -> np.ndarray:
        return affine[:3, :3] @ np.array(ndimage.center_of_mass(head(data))) + affine[:3, 3]

    mask = head(fixed)
    pivot = centre(fixed, fixed_affine)
    scale = np.array([0.1, 0.1, 0.1, 10.0, 10.0, 10.0])  # radians vs mm, for Powell's steps

    def correlation(scaled: np.ndarray) -> float:
        params = scaled * scale
        rotation = Rotation.from_rotvec(params[:3]).as_matrix()
        world = np.eye(4)
        world[:3, :3], world[:3, 3] = rotation, pivot + params[3:] - rotation @ pivot
        to_moving = np.linalg.inv(moving_affine) @ world @ fixed_affine
        sampled = ndimage.affine_transform(moving, to_moving, output_shape=fixed.shape, order=1)
        return float(np.corrcoef(fixed[mask], sampled[mask])[0, 1])

    start = np.r_[0.0, 0.0, 0.0, centre(moving, moving_affine) - pivot] / scale
    fit = optimize.minimize(
        lambda p: -correlation(p), start, method="Powell", options={"xtol": 1e-2, "ftol": 1e-3}
    )
    angle = np.degrees(np.linalg.norm(fit.x[:3] * scale[:3]))
    return -float(fit.fun), float(angle)


def test_supine_and_prone_land_in_the_same_anatomy(shared_data: Path) -> None:
    """Both sessions must come out RAS with the same anatomy; a converter that mishandled the
    prone position (face posterior, i.e. 180 degrees about S, or an A-P flip) must fail.

    Left-right flips are not tested here: a brain is too symmetric for intensity correlation
    to see them; the dcm2niix agreement tests pin that axis.
    """
    dicom = shared_data / "mri" / "dicom"
    supine, supine_affine, supine_position = _downsampled(dicom / "siemens_prisma_t1_2d_HFS")
    prone, prone_affine, prone_position = _downsampled(dicom / "siemens_prisma_t1_2d_HFP")
    assert (supine_position, prone_position) == ("HFS", "HFP")

    right, right_angle = _best_rigid_correlation(supine, supine_affine, prone, prone_affine)
    assert right > 0.5
    assert right_angle < 20  # same orientation: only a small pitch of the head
    wrong_flips = {
        "180 degrees about S": prone[::-1, ::-1, :],
        "A-P flip": prone[:, ::-1, :],
    }
    for name, flipped in wrong_flips.items():
        wrong, _ = _best_rigid_correlation(
            supine, supine_affine, np.ascontiguousarray(flipped), prone_affine
        )
        assert wrong < right - 0.3, f"{name}: correlation {wrong:.2f} vs correct {right:.2f}"
