"""The built-in demo cohort: who is in it, and how each subject is simulated.

Each subject is the head model (see :mod:`cohortflow.demo.headmodel`) with, optionally,
white-matter hyperintensities, moved by a random pose (rotation, translation, scaling) and a
smooth deformation, and acquired by one of the scanner profiles of
:mod:`cohortflow.demo.scanners`. Everything random comes from one seed per subject, so the
cohort is reproducible byte for byte. Ground truth written per subject: the label, the lesion
mask (model space and acquisition space), the subject -> model mapping, the planted PHI.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from cohortflow.demo.dicom_writer import SeriesGeometry, write_dicom_series
from cohortflow.demo.headmodel import HeadModel, load_head_model
from cohortflow.demo.scanners import PROFILES, ScannerProfile, Sequence
from cohortflow.io.atomic import atomic_output_dir
from cohortflow.privacy.demo_source import SOURCE_MANIFEST, write_source_manifest

DEMO_ROOT = "resources/demo"
#: Centre of the field of view in subject coordinates (RAS, mm from the head model's centre).
FOV_CENTRE_MM = np.array([0.0, 10.0, 0.0])
SHEET_COLUMNS = ("subject", "session", "source", "label", "dataset", "protocol")

# Fake but realistic identities: the ingest PHI test looks for every one of these strings.
_FAMILY = [
    "MUSTERMANN",
    "SCHMIDT",
    "KOWALSKI",
    "NGUYEN",
    "OKONKWO",
    "LINDQVIST",
    "FERREIRA",
    "HOFFMANN",
    "YILMAZ",
    "DUBOIS",
    "MORETTI",
    "TANAKA",
    "ANDERSSON",
    "PETROV",
]
_GIVEN = [
    "ERIKA",
    "JONAS",
    "MARTA",
    "THANH",
    "CHIDI",
    "ASTRID",
    "LUIZA",
    "KLAUS",
    "ELIF",
    "CAMILLE",
    "GIULIA",
    "HARUTO",
    "NILS",
    "IRINA",
]
_INSTITUTIONS = [
    "Klinikum Beispielstadt",
    "Universitaetsklinik Musterhausen",
    "Radiologie am Nordpark",
]


@dataclass(frozen=True)
class DemoSubject:
    subject: str
    session: str
    profile: str
    lesions: bool
    source_format: str  # "dicom" or "nifti"
    seed: int

    @property
    def label(self) -> str:
        return "yes" if self.lesions else "no"

    def source(self, root: str = DEMO_ROOT) -> str:
        base = f"{root}/mri/{self.subject}/raw"
        return f"{base}/dicom" if self.source_format == "dicom" else f"{base}/FLAIR.nii.gz"


def demo_manifest(n_subjects: int = 12, seed: int = 20251123) -> list[DemoSubject]:
    """The cohort: profiles in rotation, lesions in every other subject, every 4th as NIfTI."""
    if n_subjects < 1:
        raise ValueError("n_subjects must be positive")
    names = sorted(PROFILES)
    subjects = []
    for i in range(n_subjects):
        sub_seed = int.from_bytes(hashlib.sha256(f"{seed}:{i}".encode()).digest()[:4], "big")
        subjects.append(
            DemoSubject(
                subject=f"demo{i + 1:02d}",
                session="01",
                profile=names[i % len(names)],
                # Alternate in pairs so that each profile has subjects with and without lesions.
                lesions=(i // len(names)) % 2 == 0 if len(names) % 2 else i % 2 == 0,
                source_format="nifti" if i % 4 == 3 else "dicom",
                seed=sub_seed,
            )
        )
    return subjects


def sample_sheet_text(subjects: list[DemoSubject], root: str = DEMO_ROOT) -> str:
    """The demo sample sheet (TSV) for these subjects."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t", lineterminator="\n")
    writer.writerow(SHEET_COLUMNS)
    for s in subjects:
        writer.writerow([s.subject, s.session, s.source(root), s.label, "demo", s.profile])
    return buf.getvalue()


def planted_phi(subject: DemoSubject, index: int) -> dict[str, str]:
    """Identifying header values written into this subject's raw data (never into results)."""
    rng = np.random.default_rng(subject.seed ^ 0x5EED)
    family = _FAMILY[index % len(_FAMILY)]
    given = _GIVEN[(index * 5) % len(_GIVEN)]
    year = int(rng.integers(1940, 1990))
    return {
        "PatientName": f"{family}^{given}",
        "PatientID": f"PID{int(rng.integers(10**6, 10**7))}",
        "PatientBirthDate": f"{year}{int(rng.integers(1, 13)):02d}{int(rng.integers(1, 29)):02d}",
        "AccessionNumber": f"ACC{int(rng.integers(10**7, 10**8))}",
        "InstitutionName": _INSTITUTIONS[index % len(_INSTITUTIONS)],
        "ReferringPhysicianName": f"DR {_FAMILY[(index + 3) % len(_FAMILY)]}^ANNA",
        "StudyDate": f"2024{int(rng.integers(1, 13)):02d}{int(rng.integers(1, 29)):02d}",
        "OperatorsName": f"{_FAMILY[(index + 7) % len(_FAMILY)]}^TECH",
        "ImageComments": f"follow-up {given} {family} ward 7",
        "DeviceSerialNumber": f"SN{int(rng.integers(10**5, 10**6))}",
    }


# --------------------------------------------------------------------------- anatomy


def make_lesions(model: HeadModel, rng: np.random.Generator) -> np.ndarray:
    """Soft lesion map (0..1) in model space: periventricular caps and deep-WM blobs."""
    wm = model.wm
    centres = []
    for site, count in ((1, rng.integers(3, 6)), (2, rng.integers(3, 7))):
        pool = np.argwhere(model.lesion_sites == site)
        centres.extend(pool[rng.choice(len(pool), size=int(count), replace=False)])
    lesion = np.zeros(wm.shape, np.float32)
    for c in centres:
        radii = rng.uniform(2.5, 6.0, size=3)
        lo = np.maximum(np.asarray(c) - 10, 0)
        hi = np.minimum(np.asarray(c) + 11, wm.shape)
        sl = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        grid = np.ogrid[sl]
        r2 = sum(((grid[ax] - c[ax]) / radii[ax]) ** 2 for ax in range(3))
        lesion[sl] = np.maximum(lesion[sl], np.clip(1.5 - r2, 0, 1))
    # Lesions live in white matter: cut at the WM border like real WMH do.
    return np.clip(lesion * np.clip(wm * 1.5, 0, 1), 0, 1).astype(np.float32)


@dataclass(frozen=True)
class Pose:
    """Subject world (RAS, mm) -> model world: x -> A (x + d(x)).

    d is a smooth displacement: a sum of a few sinusoids with random wave vectors, so it can be
    evaluated exactly anywhere from its recorded parameters.
    """

    matrix: np.ndarray  # 4x4
    amplitudes: np.ndarray  # (n, 3) mm
    wavevectors: np.ndarray  # (n, 3) rad/mm
    phases: np.ndarray  # (n,)

    def displacement(self, points: np.ndarray) -> np.ndarray:
        arg = points @ self.wavevectors.T + self.phases  # (m, n)
        return np.sin(arg) @ self.amplitudes

    def to_model(self, points: np.ndarray) -> np.ndarray:
        moved = points + self.displacement(points)
        return moved @ self.matrix[:3, :3].T + self.matrix[:3, 3]

    def as_json(self) -> dict:
        return {
            "description": (
                "subject RAS world x (mm) -> model RAS world: A @ (x + d(x)), "
                "d(x) = sum_n amplitudes[n] * sin(wavevectors[n] . x + phases[n])"
            ),
            "A": self.matrix.round(10).tolist(),
            "amplitudes_mm": self.amplitudes.round(10).tolist(),
            "wavevectors_rad_per_mm": self.wavevectors.round(10).tolist(),
            "phases_rad": self.phases.round(10).tolist(),
        }


def random_pose(rng: np.random.Generator, model_centre: np.ndarray) -> Pose:
    angles = np.deg2rad(rng.uniform(-8, 8, size=3))
    cx, cy, cz = np.cos(angles)
    sx, sy, sz = np.sin(angles)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    scale = np.diag(rng.uniform(0.94, 1.06, size=3))
    matrix = np.eye(4)
    matrix[:3, :3] = rz @ ry @ rx @ scale
    matrix[:3, 3] = model_centre + rng.uniform(-8, 8, size=3)
    n = 4
    wavelengths = rng.uniform(60, 140, size=n)  # mm: smooth on the scale of brain lobes
    directions = rng.normal(size=(n, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return Pose(
        matrix=matrix,
        amplitudes=rng.uniform(-2.5, 2.5, size=(n, 3)),
        wavevectors=directions * (2 * np.pi / wavelengths)[:, None],
        phases=rng.uniform(0, 2 * np.pi, size=n),
    )


# --------------------------------------------------------------------------- acquisition


def acquisition_geometry(profile: ScannerProfile, offset: np.ndarray) -> SeriesGeometry:
    """Slice stack (DICOM LPS conventions) centred near the subject's world origin."""
    tilt = np.deg2rad(profile.oblique_deg)
    if profile.orientation == "axial":
        row = np.array([1.0, 0.0, 0.0])
        col = np.array([0.0, np.cos(tilt), -np.sin(tilt)])
    elif profile.orientation == "sagittal":
        row = np.array([0.0, np.cos(tilt), -np.sin(tilt)])
        col = np.array([0.0, np.sin(tilt), np.cos(tilt)]) * -1.0
    else:
        raise ValueError(f"unknown orientation {profile.orientation!r}")
    normal = np.cross(row, col)
    ncols, nrows = profile.matrix
    dc, dr, ds = profile.voxel_size
    centre_lps = np.array([-offset[0], -offset[1], offset[2]])
    origin = (
        centre_lps
        - row * dc * (ncols - 1) / 2
        - col * dr * (nrows - 1) / 2
        - normal * ds * (profile.n_slices - 1) / 2
    )
    return SeriesGeometry(row, col, (dr, dc), ds, ncols, nrows, profile.n_slices, origin)


def _bias_field(points_ras: np.ndarray, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """exp(low-order polynomial) over the head: the slowly varying gain of a receive coil."""
    x = points_ras / 100.0
    coeffs = rng.normal(size=9)
    terms = np.stack(
        [
            x[:, 0],
            x[:, 1],
            x[:, 2],
            x[:, 0] ** 2,
            x[:, 1] ** 2,
            x[:, 2] ** 2,
            x[:, 0] * x[:, 1],
            x[:, 1] * x[:, 2],
            x[:, 0] * x[:, 2],
        ],
        axis=1,
    )
    field = terms @ coeffs
    span = np.ptp(field) or 1.0
    return np.exp(amplitude * (field - field.mean()) / span)


@dataclass
class SamplingGrid:
    """Where each acquisition voxel looks in the model, computed once per subject.

    Partial volume across a thick slice is simulated by averaging three samples through the
    slice; ``model_voxels`` holds the model-voxel coordinates of each, ready for
    map_coordinates.
    """

    model_voxels: list[np.ndarray]  # each (3, n) float32
    centre_ras: np.ndarray  # (n, 3) RAS world of the voxel centres
    shape: tuple[int, int, int]


def sampling_grid(geometry: SeriesGeometry, pose: Pose, model: HeadModel) -> SamplingGrid:
    shape = (geometry.columns, geometry.rows, geometry.slices)
    ijk = np.indices(shape, dtype=np.float32).reshape(3, -1).T
    inv = np.linalg.inv(model.affine)
    ras_affine = geometry.ras_affine()
    voxels = []
    centre = None
    for off in (-1 / 3, 0.0, 1 / 3):
        ras = (ijk + np.float32([0, 0, off])) @ ras_affine[:3, :3].T.astype(np.float32)
        ras += ras_affine[:3, 3].astype(np.float32)
        if off == 0.0:
            centre = ras
        pts = pose.to_model(ras)
        voxels.append((pts @ inv[:3, :3].T + inv[:3, 3]).T.astype(np.float32))
    assert centre is not None
    return SamplingGrid(voxels, centre, shape)


def _sample(volume: np.ndarray, grid: SamplingGrid) -> np.ndarray:
    total = np.zeros(grid.centre_ras.shape[0], np.float32)
    for vox in grid.model_voxels:
        total += ndimage.map_coordinates(volume, vox, order=1, mode="constant", cval=0.0)
    return total / len(grid.model_voxels)


def simulate_series(
    model: HeadModel,
    lesion: np.ndarray,
    grid: SamplingGrid,
    profile: ScannerProfile,
    sequence: Sequence,
    rng: np.random.Generator,
) -> np.ndarray:
    """Stored integer slices (i=column, j=row, k=slice) of one series."""
    wm_s, gm_s, csf_s, lesion_s = sequence.tissue
    brain_signal = model.wm * wm_s + model.gm * gm_s + model.csf * csf_s
    brain_signal = brain_signal * (1 - lesion) + lesion * lesion_s * np.maximum(model.brain, 0.5)
    outside = np.clip(1.0 - model.brain, 0, 1)
    signal = (brain_signal + outside * model.head * sequence.head_scale).astype(np.float32)
    image = np.clip(_sample(signal, grid), 0, None).astype(np.float64) ** profile.contrast_gamma
    image *= _bias_field(grid.centre_ras, profile.bias, rng)
    sigma = profile.noise * wm_s
    image = np.sqrt(
        (image + rng.normal(0, sigma, image.shape)) ** 2 + rng.normal(0, sigma, image.shape) ** 2
    )
    # Real-world value = stored * slope + intercept; scale so the head fills max_stored.
    scale = profile.max_stored / max(float(np.percentile(image, 99.9)), 1e-6)
    real = image * scale * profile.rescale_slope
    stored = np.rint((real - profile.rescale_intercept) / profile.rescale_slope)
    return np.clip(stored, 0, 2**15 - 1).astype(np.int16).reshape(grid.shape)


def _nifti_from_grid(data: np.ndarray, geometry: SeriesGeometry) -> nib.Nifti1Image:
    affine = geometry.ras_affine()
    img = nib.Nifti1Image(data, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_xyzt_units("mm")
    return img


def simulate_subject(
    model_dir: Path, subject: DemoSubject, index: int, raw_dir: Path, truth_dir: Path
) -> None:
    """Write one subject's raw data (DICOM tree or NIfTI) and its ground truth, atomically."""
    model = load_head_model(model_dir)
    profile = PROFILES[subject.profile]
    rng = np.random.default_rng(subject.seed)
    lesion = make_lesions(model, rng) if subject.lesions else np.zeros_like(model.wm)
    centre = model.affine[:3, :3] @ (np.asarray(model.wm.shape) / 2) + model.affine[:3, 3]
    pose = random_pose(rng, centre)
    # Radiographers centre the field of view a little in front of the head's centre, so that
    # the face (the defacing target) is inside it.
    geometry = acquisition_geometry(profile, FOV_CENTRE_MM + rng.uniform(-5, 5, size=3))
    phi = planted_phi(subject, index)
    grid = sampling_grid(geometry, pose, model)
    lesion_grid = _sample(lesion, grid).reshape(grid.shape)
    with atomic_output_dir(raw_dir) as raw, atomic_output_dir(truth_dir) as truth:
        flair = simulate_series(model, lesion, grid, profile, profile.flair, rng)
        if subject.source_format == "dicom":
            study = _study_tags(subject, profile, phi)
            for number, seq in ((3, profile.t1w), (5, profile.flair)):
                data = (
                    flair
                    if seq is profile.flair
                    else simulate_series(model, lesion, grid, profile, seq, rng)
                )
                write_dicom_series(
                    raw / "dicom",
                    data,
                    geometry,
                    profile,
                    seq,
                    study,
                    number,
                    rng,
                )
            (raw / "dicom" / "README.txt").write_text("exported by PACS; not a DICOM file\n")
        else:
            real = flair.astype(np.float32) * profile.rescale_slope + profile.rescale_intercept
            img = _nifti_from_grid(real, geometry)
            # Identifying text in the header, as some converters leave it: ingest must drop it.
            img.header["descrip"] = f"{phi['PatientName']} {phi['StudyDate']}".encode()[:79]
            img.header["db_name"] = phi["PatientID"].encode()[:17]
            nib.save(img, raw / "FLAIR.nii.gz")
        nib.save(
            _nifti_from_grid((lesion_grid >= 0.5).astype(np.uint8), geometry),
            truth / "lesion_mask_acq.nii.gz",
        )
        # The face (pydeface mask 0 inside the head) on the acquisition grid: ground truth for
        # defacing and its evaluation later.
        face = _sample((1.0 - model.facemask) * (model.head > 0.1), grid).reshape(grid.shape)
        nib.save(
            _nifti_from_grid((face >= 0.5).astype(np.uint8), geometry),
            truth / "face_mask_acq.nii.gz",
        )
        lesion_img = nib.Nifti1Image((lesion >= 0.5).astype(np.uint8), model.affine)
        nib.save(lesion_img, truth / "lesion_mask_model.nii.gz")
        meta = {
            "subject": asdict(subject),
            "label": subject.label,
            "lesion_voxels_model": int((lesion >= 0.5).sum()),
            "pose": pose.as_json(),
            "mni_to_model": model.mni_to_model.round(10).tolist(),
            "acquisition_affine_ras": geometry.ras_affine().round(10).tolist(),
            "profile": subject.profile,
        }
        (truth / "truth.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        (truth / "phi.json").write_text(json.dumps(phi, indent=2, sort_keys=True) + "\n")
        # What the public demo key may pseudonymise: exactly these files (see
        # cohortflow.privacy.demo_source).
        write_source_manifest(raw, truth / SOURCE_MANIFEST)


def _study_tags(subject: DemoSubject, profile: ScannerProfile, phi: dict[str, str]) -> dict:
    return {
        **phi,
        "PatientSex": "F" if subject.seed % 2 else "M",
        "StudyDescription": f"MRT Schaedel {phi['InstitutionName']}",
        "StationName": f"RADSTATION{subject.seed % 97:02d}",
        "InstitutionAddress": "Musterstrasse 1, 12345 Beispielstadt",
        "seed": subject.seed,
        "subject": subject.subject,
    }


def load_manifest_entry(subjects: list[DemoSubject], subject_id: str) -> tuple[DemoSubject, int]:
    for i, s in enumerate(subjects):
        if s.subject == subject_id:
            return s, i
    raise KeyError(f"{subject_id} is not a demo subject")
