"""Simulated scanner/protocol profiles of the demo cohort.

Three profiles that differ the way real multi-site cohorts do (HeteroMRI's point): vendor and
field strength, FLAIR/T1w contrast, noise, bias field, voxel size and slice thickness, slice
orientation (3D sagittal, 2D axial, 2D oblique axial), stored-value scaling and header tags.
The acquisition parameters are plausible values for such protocols, not copies of any vendor's.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Sequence:
    """One series' acquisition parameters and tissue contrast."""

    role: str  # FLAIR or T1w: ground truth for the series classifier
    description: str
    scanning_sequence: str  # DICOM (0018,0020), e.g. "SE\\IR"
    sequence_variant: str
    sequence_name: str
    echo_time: float  # ms
    repetition_time: float  # ms
    inversion_time: float | None  # ms
    flip_angle: float  # degrees
    acquisition_type: str  # "2D" or "3D" (MRAcquisitionType)
    #: relative signal of white matter, grey matter, CSF, lesion; the non-brain head tissue
    #: (scalp, face) is the head template scaled by `head_scale`
    tissue: tuple[float, float, float, float]
    head_scale: float


FLAIR_TISSUE = (0.50, 0.66, 0.07, 1.0)
T1W_TISSUE = (0.82, 0.52, 0.12, 0.38)


@dataclass(frozen=True)
class ScannerProfile:
    name: str
    manufacturer: str
    model: str
    field_strength: float  # T
    voxel_size: tuple[float, float, float]  # mm: column spacing, row spacing, slice spacing
    orientation: str  # axial, sagittal
    oblique_deg: float  # tilt of the slice plane about the left-right axis
    matrix: tuple[int, int]  # columns, rows
    n_slices: int
    patient_position: str
    noise: float  # Rician noise SD as a share of white-matter FLAIR signal
    bias: float  # peak-to-peak amplitude of the multiplicative bias field (log scale)
    contrast_gamma: float  # monotone intensity distortion between scanners
    rescale_slope: float
    rescale_intercept: float
    max_stored: int  # the brightest voxel's stored value
    flair: Sequence
    t1w: Sequence
    software: str = ""
    extra: dict[str, str] = field(default_factory=dict)


PROFILES: dict[str, ScannerProfile] = {
    "siteA_3T_3D": ScannerProfile(
        name="siteA_3T_3D",
        manufacturer="SIEMENS",
        model="Prisma_fit",
        field_strength=3.0,
        voxel_size=(1.6, 1.6, 1.6),
        orientation="sagittal",
        oblique_deg=0.0,
        matrix=(150, 150),
        n_slices=112,
        patient_position="HFS",
        noise=0.025,
        bias=0.25,
        contrast_gamma=1.0,
        rescale_slope=1.0,
        rescale_intercept=0.0,
        max_stored=1200,
        software="syngo MR XA30",
        flair=Sequence(
            "FLAIR",
            "t2_space_dark-fluid_sag_p2_iso",
            "SE\\IR",
            "SK\\SP\\MP",
            "*spcir_242ns",
            386.0,
            5000.0,
            1800.0,
            120.0,
            "3D",
            FLAIR_TISSUE,
            0.55,
        ),
        t1w=Sequence(
            "T1w",
            "t1_mprage_sag_p2_iso",
            "GR\\IR",
            "SK\\SP\\MP",
            "*tfl3d1_16ns",
            2.98,
            2300.0,
            900.0,
            9.0,
            "3D",
            T1W_TISSUE,
            0.9,
        ),
    ),
    "siteB_1T5_2D": ScannerProfile(
        name="siteB_1T5_2D",
        manufacturer="Philips Medical Systems",
        model="Ingenia",
        field_strength=1.5,
        voxel_size=(1.2, 1.2, 4.0),
        orientation="axial",
        oblique_deg=0.0,
        matrix=(200, 200),
        n_slices=58,
        patient_position="HFS",
        noise=0.045,
        bias=0.45,
        contrast_gamma=0.8,
        # Philips stores scaled integers: real value = stored * slope + intercept.
        rescale_slope=1.523,
        rescale_intercept=0.0,
        max_stored=3000,
        software="5.7.1",
        flair=Sequence(
            "FLAIR",
            "T2W_FLAIR_TRA",
            "IR",
            "SK",
            "",
            140.0,
            11000.0,
            2800.0,
            90.0,
            "2D",
            FLAIR_TISSUE,
            0.45,
        ),
        t1w=Sequence(
            "T1w",
            "T1W_SE_TRA",
            "SE",
            "SK",
            "",
            15.0,
            550.0,
            None,
            90.0,
            "2D",
            T1W_TISSUE,
            0.8,
        ),
    ),
    "siteC_3T_oblique": ScannerProfile(
        name="siteC_3T_oblique",
        manufacturer="GE MEDICAL SYSTEMS",
        model="DISCOVERY MR750",
        field_strength=3.0,
        voxel_size=(0.94, 0.94, 5.0),
        orientation="axial",
        oblique_deg=14.0,
        matrix=(256, 256),
        n_slices=48,
        patient_position="HFS",
        noise=0.035,
        bias=0.35,
        contrast_gamma=1.25,
        rescale_slope=1.0,
        rescale_intercept=0.0,
        max_stored=2000,
        software="DV26.0_R03",
        flair=Sequence(
            "FLAIR",
            "Ax T2 FLAIR",
            "SE\\IR",
            "SK\\SS\\OSP",
            "",
            120.0,
            9000.0,
            2400.0,
            160.0,
            "2D",
            FLAIR_TISSUE,
            0.5,
        ),
        t1w=Sequence(
            "T1w",
            "AX T1 3D BRAVO",
            "GR\\IR",
            "SS\\SK",
            "",
            3.2,
            8.2,
            450.0,
            12.0,
            "3D",
            T1W_TISSUE,
            0.85,
        ),
    ),
}
