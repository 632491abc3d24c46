"""Find the DICOM series in a folder, summarise their headers and pick the one a stage needs.

Real exports come in every layout: nested folders, files without extension or named by UID,
a ``DICOMDIR`` index, stray PDFs or text notes, several series mixed in one folder. So nothing
here trusts names or layout: every file is probed for DICOM content, files are grouped by
``SeriesInstanceUID`` only, and each series gets a *role* (FLAIR, T1w, T2w or other) from its
header with a human-readable reason, so that a wrong pick can be understood from the log and
the sidecar without opening the images.

Only headers are read here (``stop_before_pixels``); pixel data and geometry are the business
of :mod:`cohortflow.ingest.dicom_volume`.
"""

from __future__ import annotations

import logging
import math
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, BinaryIO

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filebase import DicomBytesIO
from pydicom.multival import MultiValue
from pydicom.uid import DeflatedExplicitVRLittleEndian, MediaStorageDirectoryStorage

from cohortflow.errors import ConfigError, DicomError, SeriesSelectionError
from cohortflow.ingest.budget import MAX_HEADER_BYTES, MB
from cohortflow.privacy.descriptors import is_vocabulary_text, rebuild_description
from cohortflow.privacy.phi import identifying_attributes
from cohortflow.privacy.profile import attribute_name

ROLES = ("FLAIR", "T1w", "T2w", "other")
TARGET_ROLES = ROLES[:-1]  # "other" is never a target
ON_MULTIPLE = ("error", "largest", "last")

_PREAMBLE_BYTES = 128
_MAGIC = b"DICM"
# A DICOM file without the Part 10 preamble (old exports) starts directly with a group 0x0008
# element (little endian); only such files are parsed with force=True, so that random binary
# files are not mistaken for DICOM.
_RAW_DICOM_START = b"\x08\x00"

# Enhanced MR replaces the classic ScanningSequence/SequenceVariant by separate attributes.
# These tables translate them back so that one set of rules serves both kinds of file.
_ECHO_PULSE_TO_SCANNING = {"SPIN": ["SE"], "GRADIENT": ["GR"], "BOTH": ["SE", "GR"]}
_ENHANCED_VARIANTS = (  # (keyword, value meaning "absent", classic SequenceVariant code)
    ("SegmentedKSpaceTraversal", "SINGLE", "SK"),
    ("MagnetizationTransfer", "NONE", "MTC"),
    ("SteadyStatePulseSequence", "NONE", "SS"),
    ("Spoiling", "NONE", "SP"),
    ("OversamplingPhase", "NONE", "OSP"),
)
# Where enhanced files keep what classic files have at the top level (first item used).
_TIMING = ("MRTimingAndRelatedParametersSequence",)
_ECHO = ("MREchoSequence",)
_MODIFIER = ("MRModifierSequence",)
_IMAGING_MODIFIER = ("MRImagingModifierSequence",)
_PIXEL_MEASURES = ("PixelMeasuresSequence",)


def _functional_group_value(ds: Dataset, keyword: str, groups: tuple[str, ...]) -> Any:
    """``keyword`` from the top level, else from the shared, else from the first frame's groups.

    Enhanced files may put a parameter in the shared groups (same for all frames) or per frame;
    for a series summary the first frame is representative (frames of one series differing in
    e.g. echo time are rejected later, when the volume is built).
    """
    value = ds.get(keyword)
    if value not in (None, ""):
        return value
    for container in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        items = ds.get(container)
        if not items:
            continue
        for group in groups:
            group_items = items[0].get(group)
            if group_items:
                value = group_items[0].get(keyword)
                if value not in (None, ""):
                    return value
    return None


def _as_float(value: Any) -> float | None:
    """First number of a DS/FD value (multi-valued ones included), None when absent/invalid."""
    if value is None or value == "":
        return None
    if isinstance(value, list | tuple | MultiValue):
        if not value:
            return None
        value = value[0]
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _as_strings(value: Any) -> list[str]:
    """A CS value (single or multi-valued) as a list of upper-case strings."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [part.strip().upper() for part in value.split("\\") if part.strip()]
    return [str(part).strip().upper() for part in value if str(part).strip()]


#: Image storage SOP classes whose pixels are an MR acquisition (PS3.4 B.5): MR Image,
#: Enhanced MR Image, Legacy Converted Enhanced MR Image. Secondary captures, spectroscopy,
#: colour maps and reports can carry Modality MR but are not images to convert.
MR_IMAGE_SOP_CLASSES = frozenset(
    {"1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.4.1", "1.2.840.10008.5.1.4.1.1.4.4"}
)
#: Attributes that name the person a file belongs to: every file of one series must agree on
#: them (a series assembled from two patients' files is refused, naming the attribute).
IDENTITY_KEYWORDS = ("PatientID", "PatientName", "PatientBirthDate", "IssuerOfPatientID")


def identity_of(header: Dataset) -> tuple[str, ...]:
    """The patient-identity values of one file (compared within a series, never written)."""
    return tuple(str(header.get(keyword, "") or "").strip() for keyword in IDENTITY_KEYWORDS)


@dataclass
class DicomSeries:
    """One DICOM series: its files and a summary of the first file's header."""

    series_uid: str
    files: list[Path] = field(repr=False)  # all files of this series, sorted by path
    header: Dataset = field(repr=False)  # first file's header, read with stop_before_pixels
    enhanced: bool  # enhanced multi-frame (per-frame functional groups)
    # Attributes of IDENTITY_KEYWORDS on which the files disagree ("PatientID (0010,0020)")
    identity_conflicts: list[str] = field(default_factory=list)

    # -- identification ---------------------------------------------------------------------
    @property
    def modality(self) -> str:
        return str(self.header.get("Modality", "") or "")

    @property
    def series_number(self) -> int | None:
        value = _as_float(self.header.get("SeriesNumber"))
        return None if value is None else int(value)

    @property
    def description(self) -> str:
        """SeriesDescription, or ProtocolName when the description is empty."""
        for keyword in ("SeriesDescription", "ProtocolName"):
            value = str(self.header.get(keyword, "") or "").strip()
            if value:
                return value
        return ""

    @property
    def safe_description(self) -> str:
        """The description as it may appear in outputs: rebuilt from the controlled vocabulary
        (:func:`cohortflow.privacy.descriptors.rebuild_description`), never the source text."""
        return rebuild_description(self.description)

    @property
    def identifying_attributes(self) -> dict[str, str]:
        """Identifying header values (PS3.15) -> their attribute, minus the writer's file-meta
        strings (see :func:`cohortflow.privacy.phi.identifying_attributes`)."""
        meta = {str(e.value) for e in getattr(self.header, "file_meta", [])}
        found = identifying_attributes(self.header, keep_descriptions=True)
        return {v: name for v, name in found.items() if v not in meta and len(v) >= 4}

    @property
    def protocol_name(self) -> str:
        return str(self.header.get("ProtocolName", "") or "").strip()

    @property
    def image_type(self) -> list[str]:
        return _as_strings(self.header.get("ImageType"))

    @property
    def manufacturer(self) -> str:
        return str(self.header.get("Manufacturer", "") or "")

    @property
    def model(self) -> str:
        return str(self.header.get("ManufacturerModelName", "") or "")

    @property
    def field_strength(self) -> float | None:
        return _as_float(self.header.get("MagneticFieldStrength"))

    # -- sequence parameters (classic top level, or enhanced functional groups) ---------------
    @property
    def echo_time(self) -> float | None:
        """TE in ms (classic EchoTime; enhanced MREchoSequence EffectiveEchoTime)."""
        classic = _as_float(self.header.get("EchoTime"))
        if classic is not None:
            return classic
        return _as_float(_functional_group_value(self.header, "EffectiveEchoTime", _ECHO))

    @property
    def repetition_time(self) -> float | None:
        """TR in ms."""
        return _as_float(_functional_group_value(self.header, "RepetitionTime", _TIMING))

    @property
    def flip_angle(self) -> float | None:
        """Flip angle in degrees."""
        return _as_float(_functional_group_value(self.header, "FlipAngle", _TIMING))

    @property
    def inversion_time(self) -> float | None:
        """TI in ms (classic InversionTime; enhanced MRModifierSequence InversionTimes)."""
        classic = _as_float(self.header.get("InversionTime"))
        if classic is not None:
            return classic
        return _as_float(_functional_group_value(self.header, "InversionTimes", _MODIFIER))

    @property
    def inversion_recovery(self) -> bool:
        """Whether an inversion pulse precedes the readout (IR in ScanningSequence, or enhanced
        InversionRecovery = YES, or a positive TI)."""
        if "IR" in self.scanning_sequence:
            return True
        ti = self.inversion_time
        return ti is not None and ti > 0

    @property
    def scanning_sequence(self) -> list[str]:
        """Classic ScanningSequence codes (SE, GR, IR, EP, ...); derived for enhanced files."""
        classic = _as_strings(self.header.get("ScanningSequence"))
        if classic or not self.enhanced:
            return classic
        echo_pulse = _as_strings(self.header.get("EchoPulseSequence"))
        codes = list(_ECHO_PULSE_TO_SCANNING.get(echo_pulse[0], [])) if echo_pulse else []
        modifier = _as_strings(_functional_group_value(self.header, "InversionRecovery", _MODIFIER))
        if modifier == ["YES"]:
            codes.append("IR")
        if _as_strings(self.header.get("EchoPlanarPulseSequence")) == ["YES"]:
            codes.append("EP")
        return codes

    @property
    def sequence_variant(self) -> list[str]:
        """Classic SequenceVariant codes (SK, SP, MP, SS, MTC, OSP); derived for enhanced."""
        classic = _as_strings(self.header.get("SequenceVariant"))
        if classic or not self.enhanced:
            return classic
        codes = []
        for keyword, absent, code in _ENHANCED_VARIANTS:
            value = _as_strings(
                _functional_group_value(self.header, keyword, _MODIFIER + _IMAGING_MODIFIER)
            )
            if value and value != [absent]:
                codes.append(code)
        prepared = ("InversionRecovery", "T2Preparation")
        if any(
            _as_strings(_functional_group_value(self.header, keyword, _MODIFIER)) == ["YES"]
            for keyword in prepared
        ):
            codes.append("MP")
        return codes

    @property
    def sequence_name(self) -> str:
        """SequenceName (classic) or PulseSequenceName (enhanced), e.g. '*tfl3d1_16ns'."""
        for keyword in ("SequenceName", "PulseSequenceName"):
            value = str(self.header.get(keyword, "") or "").strip()
            if value:
                return value
        return ""

    # -- size, for choosing among several candidates -----------------------------------------
    @property
    def n_frames(self) -> int:
        """Number of 2D images: files x frames per file (all files assumed alike)."""
        per_file = _as_float(self.header.get("NumberOfFrames"))
        return len(self.files) * (int(per_file) if per_file else 1)

    @property
    def n_voxels(self) -> int:
        rows = int(self.header.get("Rows", 0) or 0)
        columns = int(self.header.get("Columns", 0) or 0)
        return rows * columns * self.n_frames

    @property
    def voxel_volume_mm3(self) -> float | None:
        """Nominal voxel volume from PixelSpacing and slice spacing (or thickness)."""
        spacing = _functional_group_value(self.header, "PixelSpacing", _PIXEL_MEASURES)
        slice_step = _as_float(
            _functional_group_value(self.header, "SpacingBetweenSlices", _PIXEL_MEASURES)
        ) or _as_float(_functional_group_value(self.header, "SliceThickness", _PIXEL_MEASURES))
        if not spacing or len(spacing) != 2 or slice_step is None:
            return None
        return float(spacing[0]) * float(spacing[1]) * slice_step

    @property
    def sop_class(self) -> str:
        meta = getattr(self.header, "file_meta", None)
        value = self.header.get("SOPClassUID") or (
            meta.get("MediaStorageSOPClassUID") if meta else None
        )
        return str(value or "")

    @property
    def label(self) -> str:
        """How the series is named in messages: number and file count (its role, where known,
        is added by the caller); never its description, which is free text."""
        number = "?" if self.series_number is None else str(self.series_number)
        return f"series {number} ({len(self.files)} files)"


@dataclass
class Discovery:
    """What :func:`discover_series` found under ``root``."""

    root: Path
    series: list[DicomSeries]  # sorted by (series_number, series_uid)
    non_dicom: list[Path] = field(default_factory=list)  # not DICOM: noted, ignored
    unreadable: list[tuple[Path, str]] = field(default_factory=list)  # DICOM-looking, broken
    indexes: list[Path] = field(default_factory=list)  # DICOMDIR files (media index, no images)


_PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00009, 0x7FE00008})  # (Float/Double) Pixel Data
# File meta elements whose length has 4 bytes (after 2 reserved bytes); others have 2.
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT"}


def _meta_end(handle: BinaryIO) -> tuple[int, str]:
    """Offset where a Part 10 file's dataset starts (after the file meta group, always explicit
    VR little endian) and the transfer syntax it names."""
    handle.seek(_PREAMBLE_BYTES + len(_MAGIC))
    syntax = ""
    while True:
        start = handle.tell()
        head = handle.read(8)
        if len(head) < 8 or int.from_bytes(head[:2], "little") != 0x0002:
            return start, syntax
        element, vr = int.from_bytes(head[2:4], "little"), head[4:6]
        if vr in _LONG_VRS:
            length = int.from_bytes(handle.read(4), "little")
        else:
            length = int.from_bytes(head[6:8], "little")
        value = handle.read(length)
        if element == 0x0010:
            syntax = value.decode("ascii", "replace").strip("\0 ")


def inflate(path: Path, limit: int) -> tuple[bytes, bool]:
    """The dataset of a deflated DICOM file, inflated up to ``limit`` bytes, and whether that
    is all of it. pydicom inflates a deflated file whole, whatever it is asked to read (a 1 MB
    file can hold a gigabyte of zeros); this reads what is needed and stops."""
    with path.open("rb") as handle:
        handle.seek(_meta_end(handle)[0])
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        out = bytearray()
        while len(out) < limit and not inflater.eof:
            chunk = inflater.unconsumed_tail or handle.read(1 << 16)
            if not chunk:
                break
            try:
                out += inflater.decompress(chunk, limit - len(out))
            except zlib.error as exc:
                raise ValueError(f"deflated data cannot be inflated ({exc})") from None
        complete = inflater.eof or (not inflater.unconsumed_tail and not handle.read(1))
        return bytes(out), complete


def is_deflated(path: Path) -> bool:
    with path.open("rb") as handle:
        if handle.read(_PREAMBLE_BYTES + len(_MAGIC))[_PREAMBLE_BYTES:] != _MAGIC:
            return False
        return _meta_end(handle)[1] == DeflatedExplicitVRLittleEndian


def read_header(path: Path, *, force: bool = False) -> Dataset:
    """A DICOM file's header, up to the pixel data, which is never read or decoded.

    A deflated file (Deflated Explicit VR Little Endian compresses the whole dataset) is
    inflated only as far as the header goes, at most :data:`MAX_HEADER_BYTES`; a header
    longer than that is refused (ValueError).
    """
    if not is_deflated(path):
        return pydicom.dcmread(path, stop_before_pixels=True, force=force)
    data, complete = inflate(path, MAX_HEADER_BYTES)
    return dataset_from_inflated(path, data, complete, stop_before_pixels=True)


def dataset_from_inflated(
    path: Path, data: bytes, complete: bool, *, stop_before_pixels: bool = False
) -> Dataset:
    """Parse inflated dataset bytes; the file's own meta (deflated syntax) is kept."""
    reached = []

    def stop(tag: Any, vr: Any, length: int) -> bool:
        if tag in _PIXEL_TAGS:
            reached.append(tag)
            return stop_before_pixels
        return False

    buffer = DicomBytesIO(data)
    dataset = pydicom.filereader.read_dataset(
        buffer, is_implicit_VR=False, is_little_endian=True, stop_when=stop
    )
    if not complete and not (stop_before_pixels and reached):
        raise ValueError(f"no pixel data in the first {len(data) / MB:,.0f} MB of deflated data")
    ds = pydicom.dataset.FileDataset(
        str(path),
        dataset,
        preamble=b"\0" * _PREAMBLE_BYTES,
        file_meta=pydicom.filereader.read_file_meta_info(path),
        is_implicit_VR=False,
        is_little_endian=True,
    )
    ds.set_original_encoding(False, True, dataset._character_set)
    return ds


def _probe(path: Path) -> tuple[str, Dataset | str | None]:
    """Classify one file: ("dicom", header) / ("index", None) / ("non_dicom", None) /
    ("unreadable", reason)."""
    try:
        with path.open("rb") as handle:
            start = handle.read(_PREAMBLE_BYTES + len(_MAGIC))
    except OSError as exc:
        return "unreadable", f"cannot open file ({exc.strerror or exc})"
    if not start:
        return "unreadable", "empty file (0 bytes): an interrupted copy?"
    if len(start) < _PREAMBLE_BYTES + len(_MAGIC) and not start.strip(b"\0"):
        return "unreadable", f"only {len(start)} zero bytes: a DICOM file cut inside its preamble"
    has_magic = start[_PREAMBLE_BYTES:] == _MAGIC
    if not has_magic and not start.startswith(_RAW_DICOM_START):
        return "non_dicom", None
    try:
        header = read_header(path, force=not has_magic)
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError) as exc:
        if not has_magic:
            return "non_dicom", None
        return "unreadable", f"DICOM header cannot be parsed ({type(exc).__name__}: {exc})"
    meta = getattr(header, "file_meta", None)
    sop_class = (meta.get("MediaStorageSOPClassUID") if meta else None) or header.get("SOPClassUID")
    if sop_class == MediaStorageDirectoryStorage or "DirectoryRecordSequence" in header:
        return "index", None
    if not header.get("SeriesInstanceUID"):
        if not has_magic:
            return "non_dicom", None
        return "unreadable", "no SeriesInstanceUID in the header (truncated file?)"
    return "dicom", header


def _rel(path: Path, root: Path) -> str:
    """Paths in log lines are relative to the source folder: its name may identify a person."""
    try:
        return f"<source>/{path.relative_to(root).as_posix()}"
    except ValueError:
        return "<outside the source>"


def discover_series(root: Path, logger: logging.Logger | None = None) -> Discovery:
    """Walk ``root`` (any layout, any file names) and group its DICOM files by series.

    Raises DicomError when ``root`` is missing, not a folder, empty, or holds no readable DICOM
    file, because the caller can do nothing useful with such a folder. Non-DICOM files and
    DICOMDIR indexes are logged and ignored; DICOM files that cannot be parsed are listed in
    ``unreadable`` (and logged as warnings) so that one corrupt file does not hide a series.
    """
    log = logger or logging.getLogger(__name__)
    root = Path(root)
    if not root.exists():
        raise DicomError(root, "folder does not exist")
    if not root.is_dir():
        raise DicomError(root, "not a folder (expected a folder of DICOM files)")
    paths = sorted(path for path in root.rglob("*") if path.is_file())
    if not paths:
        raise DicomError(root, "folder is empty")

    by_uid: dict[str, list[tuple[Path, Dataset]]] = defaultdict(list)
    discovery = Discovery(root=root, series=[])
    for path in paths:
        kind, result = _probe(path)
        if kind == "dicom":
            assert isinstance(result, Dataset)
            by_uid[str(result.SeriesInstanceUID)].append((path, result))
        elif kind == "index":
            log.info("%s: DICOMDIR index, ignored (the images are read directly)", _rel(path, root))
            discovery.indexes.append(path)
        elif kind == "non_dicom":
            log.info("%s: not a DICOM file, ignored", _rel(path, root))
            discovery.non_dicom.append(path)
        else:
            log.warning("%s: %s", _rel(path, root), result)
            discovery.unreadable.append((path, str(result)))

    for uid, members in by_uid.items():
        first_header = members[0][1]
        discovery.series.append(
            DicomSeries(
                series_uid=uid,
                files=[path for path, _ in members],
                header=first_header,
                enhanced="PerFrameFunctionalGroupsSequence" in first_header,
                identity_conflicts=_identity_conflicts([header for _, header in members]),
            )
        )
    discovery.series.sort(
        key=lambda s: (s.series_number is None, s.series_number or 0, s.series_uid)
    )
    if not discovery.series:
        counts = []
        if discovery.non_dicom:
            counts.append(f"{len(discovery.non_dicom)} non-DICOM file(s)")
        if discovery.unreadable:
            first, reason = discovery.unreadable[0]
            counts.append(
                f"{len(discovery.unreadable)} unreadable DICOM file(s), e.g. {first.name}: {reason}"
            )
        if discovery.indexes:
            counts.append(f"{len(discovery.indexes)} DICOMDIR index(es)")
        raise DicomError(root, f"no readable DICOM image file ({'; '.join(counts)})")
    for series in discovery.series:
        log.info("found %s, modality %s", series.label, series.modality or "?")
    return discovery


def _identity_conflicts(headers: list[Dataset]) -> list[str]:
    """Identity attributes on which the files of one series disagree (names, not values)."""
    conflicts = []
    identities = [identity_of(header) for header in headers]
    for index, keyword in enumerate(IDENTITY_KEYWORDS):
        if len({identity[index] for identity in identities}) > 1:
            element = next(h[keyword] for h in headers if keyword in h)
            conflicts.append(attribute_name(element))
    return conflicts


def refuse_mixed_identity(series: DicomSeries) -> None:
    """A series whose files name different patients is refused: it may be two people's slices
    (a mis-filed export), and one volume, one pseudonym for both would be wrong and a leak."""
    if series.identity_conflicts:
        raise DicomError(
            series.files[0].parent,
            f"{series.label}: its files disagree on the patient identity "
            f"({', '.join(series.identity_conflicts)}); a series must hold one person's images. "
            "Separate the files of each person into their own source folder",
        )


# ---------------------------------------------------------------------------------------------
# Roles
# ---------------------------------------------------------------------------------------------

_DEFAULT_PATTERNS = {
    # FLAIR is tried first: "T2 FLAIR" and "t2_space_dark-fluid" are FLAIR, not T2w.
    "FLAIR": r"flair|dark.?fluid|tirm",
    "T1w": r"t1|mp-?rage|tfl|spgr|bravo|tfe",
    # "T2*" / "t2star" are susceptibility-weighted GRE, not T2w.
    "T2w": r"t2(?!\*|_?star)|tse",
}
# Series that are not a structural image whatever their parameters (diffusion, functional,
# perfusion, susceptibility, localisers): they must never be picked as FLAIR/T1w/T2w.
_DEFAULT_EXCLUDE = (
    r"localizer|localiser|scout|survey|dwi|dti|diff|adc|trace|bold|fmri|perf|asl"
    r"|swi|mip|field.?map|b0.?map|t2\*|t2_?star"
)


@dataclass
class RoleRules:
    """Thresholds and patterns that decide a series' role; every value can be set in the config.

    Order of the decision (first hit wins), see :func:`classify_role`:

    1. ``exclude_derived``: ImageType DERIVED (reformats, maps) -> other.
    2. ``exclude_pattern`` on SeriesDescription / ProtocolName -> other.
    3. ``description_patterns`` on SeriesDescription, then ProtocolName, roles in the order
       FLAIR, T1w, T2w (a "T2 FLAIR" is FLAIR).
    4. Sequence parameters: echo-planar -> other; inversion recovery with TI >=
       ``flair_min_ti_ms`` -> FLAIR, with TI <= ``t1_ir_max_ti_ms`` and TR <=
       ``t1_ir_max_tr_ms`` -> T1w (MPRAGE-like); no IR with TR < ``t1_max_tr_ms`` and TE <
       ``t1_max_te_ms`` -> T1w (SE/GRE T1); TR >= ``t2_min_tr_ms`` and TE >= ``t2_min_te_ms``
       -> T2w.
    5. Only when the header lacks TR/TE (or the TI of an IR sequence): ``description_patterns``
       on SequenceName (a vendor code such as '*tse2d1', which says little about contrast:
       a T1w SE is often a TSE too, so the parameters are trusted first).
    """

    # FLAIR nulls CSF: TI ~ 0.69 x T1(CSF) ~ 2500 ms at 3T (1800-2800 in practice). 1500 ms
    # is well above the TI of T1w IR sequences (MPRAGE 900-1100, BRAVO 450).
    flair_min_ti_ms: float = 1500.0
    # MPRAGE/TFL/BRAVO-like T1w IR: TI up to ~1300 ms (1100 at 3T, ~1300 at 7T); STIR (TI
    # 150-250 ms) has TR > 3000 and is excluded by the TR limit.
    t1_ir_max_ti_ms: float = 1300.0
    # TR of a 3D IR T1w as reported (Siemens: time between inversions, 1800-2500 ms; GE/Philips
    # report the readout TR of a few ms).
    t1_ir_max_tr_ms: float = 3000.0
    # T1w SE/GRE without IR: short TR (SE 400-800 ms, GRE a few ms to ~300 ms)...
    t1_max_tr_ms: float = 1000.0
    # ... and short TE (SE 8-15 ms, GRE 2-5 ms); T2*-weighted GRE uses TE >= 20 ms.
    t1_max_te_ms: float = 20.0
    # T2w: long TR (>= 2000 ms, T1 recovery) and long TE (>= 60 ms; TSE T2 uses 80-120 ms).
    t2_min_tr_ms: float = 2000.0
    t2_min_te_ms: float = 60.0
    description_patterns: dict[str, str] = field(default_factory=lambda: dict(_DEFAULT_PATTERNS))
    exclude_pattern: str = _DEFAULT_EXCLUDE
    exclude_derived: bool = True

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None) -> RoleRules:
        """Rules from a config mapping; ``description_patterns`` entries override the defaults
        role by role. Raises ConfigError naming the key for unknown keys, bad values, bad
        regular expressions."""
        mapping = dict(mapping or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(mapping) - known)
        if unknown:
            raise ConfigError(
                f"ingest.role_rules: unknown key(s) {unknown}; known keys: {sorted(known)}"
            )
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in mapping:
                continue
            value = mapping[f.name]
            where = f"ingest.role_rules.{f.name}"
            if f.name == "description_patterns":
                if not isinstance(value, Mapping):
                    raise ConfigError(f"{where}: expected a mapping role -> regex, got {value!r}")
                bad_roles = sorted(set(value) - set(_DEFAULT_PATTERNS))
                if bad_roles:
                    raise ConfigError(
                        f"{where}: unknown role(s) {bad_roles}; roles: {list(_DEFAULT_PATTERNS)}"
                    )
                values[f.name] = {**_DEFAULT_PATTERNS, **value}
            elif f.name == "exclude_derived":
                if not isinstance(value, bool):
                    raise ConfigError(f"{where}: expected true/false, got {value!r}")
                values[f.name] = value
            elif f.name == "exclude_pattern":
                values[f.name] = str(value)
            else:
                if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                    raise ConfigError(f"{where}: expected a positive number (ms), got {value!r}")
                values[f.name] = float(value)
        rules = cls(**values)
        rules.compile_check()
        return rules

    def compile_check(self) -> None:
        """Raise ConfigError naming the key of any pattern that is not a valid regex."""
        patterns = {"exclude_pattern": self.exclude_pattern}
        patterns.update(
            {f"description_patterns.{role}": p for role, p in self.description_patterns.items()}
        )
        for key, pattern in patterns.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError(
                    f"ingest.role_rules.{key}: invalid regular expression {pattern!r} ({exc})"
                ) from None


def _match_text(text: str, pattern: str) -> str | None:
    """The matched substring of a case-insensitive search, or None (reasons quote it only
    through :func:`_shown`)."""
    if not text or not pattern:
        return None
    found = re.search(pattern, text, flags=re.IGNORECASE)
    if found is None:
        return None
    return found.group(0)


def _shown(matched: str) -> str:
    """How a reason quotes a match: vocabulary text verbatim, anything else not at all."""
    return f"('{matched}')" if is_vocabulary_text(matched) else "(matched text not shown)"


def _role_from_text(
    fields_to_check: list[tuple[str, str]], rules: RoleRules
) -> tuple[str, str] | None:
    for field_name, text in fields_to_check:
        for role in ("FLAIR", "T1w", "T2w"):
            matched = _match_text(text, rules.description_patterns.get(role, ""))
            if matched is not None:
                return role, f"{field_name} matches the {role} pattern {_shown(matched)}"
    return None


def _role_from_parameters(series: DicomSeries, rules: RoleRules) -> tuple[str, str] | None:
    """Role from TR/TE/TI and the sequence type; None when the header lacks what is needed."""
    tr, te, ti = series.repetition_time, series.echo_time, series.inversion_time
    if "EP" in series.scanning_sequence:
        return "other", "echo-planar acquisition (diffusion/functional/perfusion)"
    if series.inversion_recovery:
        if ti is None:
            return None
        if ti >= rules.flair_min_ti_ms:
            return "FLAIR", f"IR with TI={ti:g} ms >= {rules.flair_min_ti_ms:g}"
        if ti <= rules.t1_ir_max_ti_ms and (tr is None or tr <= rules.t1_ir_max_tr_ms):
            tr_text = "TR unknown" if tr is None else f"TR={tr:g} ms <= {rules.t1_ir_max_tr_ms:g}"
            return "T1w", f"IR with TI={ti:g} ms <= {rules.t1_ir_max_ti_ms:g} and {tr_text}"
        tr_text = "" if tr is None else f", TR={tr:g} ms"
        return "other", f"IR with TI={ti:g} ms{tr_text} fits neither FLAIR nor T1w IR rules"
    if tr is None or te is None:
        return None
    if tr < rules.t1_max_tr_ms and te < rules.t1_max_te_ms:
        return "T1w", (
            f"TR={tr:g} ms < {rules.t1_max_tr_ms:g} and TE={te:g} ms < {rules.t1_max_te_ms:g}"
            " without IR"
        )
    if tr >= rules.t2_min_tr_ms and te >= rules.t2_min_te_ms:
        return "T2w", (
            f"TR={tr:g} ms >= {rules.t2_min_tr_ms:g} and TE={te:g} ms >= {rules.t2_min_te_ms:g}"
            " without IR"
        )
    return "other", f"TR={tr:g} ms, TE={te:g} ms without IR fit no rule (PD/T2*-weighted?)"


def classify_role(series: DicomSeries, rules: RoleRules) -> tuple[str, str]:
    """(role, reason) of a series; role is one of :data:`ROLES`. See :class:`RoleRules`."""
    if rules.exclude_derived and series.image_type[:1] == ["DERIVED"]:
        return "other", "ImageType is DERIVED (a reformat or computed map, not an acquisition)"
    described = [
        (keyword, text)
        for keyword, text in (
            ("SeriesDescription", str(series.header.get("SeriesDescription", "") or "").strip()),
            ("ProtocolName", series.protocol_name),
        )
        if text
    ]
    for keyword, text in described:
        matched = _match_text(text, rules.exclude_pattern)
        if matched is not None:
            return "other", f"{keyword} matches the exclusion pattern {_shown(matched)}"
    decided = _role_from_text(described, rules) or _role_from_parameters(series, rules)
    if decided is None and series.sequence_name:
        decided = _role_from_text([("SequenceName", series.sequence_name)], rules)
    if decided is None:
        return "other", "no description match and TR/TE (or TI of an IR) missing from the header"
    return decided


# ---------------------------------------------------------------------------------------------
# Selection
# ---------------------------------------------------------------------------------------------


def _summary(series: DicomSeries, role: str, reason: str, selected: bool) -> dict[str, Any]:
    """Sidecar entry: what was there and why; no UIDs, dates or names."""
    return {
        "series_number": series.series_number,
        "description": series.safe_description,
        "role": role,
        "reason": reason,
        "n_files": len(series.files),
        "selected": selected,
    }


def select_series(
    discovery: Discovery, role: str, rules: RoleRules, *, on_multiple: str = "error"
) -> tuple[DicomSeries, list[dict[str, Any]]]:
    """Pick the one MR series of ``role``; return it and one sidecar summary per MR series.

    ``on_multiple`` decides between several candidates: "error" refuses (the user must say
    which; a silent pick could mix contrasts across a cohort), "largest" takes the most voxels,
    then the smallest voxel volume, then the highest series number, "last" the highest series
    number (usually a repeat after motion).
    """
    if role not in TARGET_ROLES:
        raise ConfigError(f"ingest.target_role: {role!r} is not one of {list(TARGET_ROLES)}")
    if on_multiple not in ON_MULTIPLE:
        raise ConfigError(f"ingest.on_multiple: {on_multiple!r} is not one of {list(ON_MULTIPLE)}")
    mr = [series for series in discovery.series if series.modality == "MR"]
    not_images = [series for series in mr if series.sop_class not in MR_IMAGE_SOP_CLASSES]
    mr = [series for series in mr if series.sop_class in MR_IMAGE_SOP_CLASSES]
    if not mr and not_images:
        listing = "; ".join(
            f"{series.label} (SOP class {series.sop_class})" for series in not_images
        )
        raise SeriesSelectionError(
            discovery.root,
            f"no MR image series found: the MR series are not MR images (screenshots, reports, "
            f"spectroscopy...): {listing}",
        )
    if not mr:
        found = Counter(series.modality or "unknown-modality" for series in discovery.series)
        listing = ", ".join(f"{n} {modality} series" for modality, n in sorted(found.items()))
        raise SeriesSelectionError(discovery.root, f"no MR series found (found: {listing})")
    roles = [classify_role(series, rules) for series in mr]
    candidates = [series for series, (got, _) in zip(mr, roles, strict=True) if got == role]
    overview = "; ".join(
        f"{series.label}: {got} ({reason})" for series, (got, reason) in zip(mr, roles, strict=True)
    )
    if not candidates:
        found_roles = Counter(got for got, _ in roles)
        counts = ", ".join(f"{n} {got}" for got, n in sorted(found_roles.items()))
        raise SeriesSelectionError(
            discovery.root, f"no {role} series among {len(mr)} MR series ({counts}): {overview}"
        )
    if len(candidates) == 1:
        chosen = candidates[0]
    elif on_multiple == "error":
        listing = "; ".join(series.label for series in candidates)
        raise SeriesSelectionError(
            discovery.root,
            f"{len(candidates)} {role} series, expected one: {listing}. Remove the extra "
            "series or set ingest.on_multiple to 'largest' or 'last'",
        )
    elif on_multiple == "largest":
        chosen = max(
            candidates,
            key=lambda s: (
                s.n_voxels,
                -(s.voxel_volume_mm3 or math.inf),
                s.series_number if s.series_number is not None else -1,
            ),
        )
    else:
        chosen = max(
            candidates, key=lambda s: s.series_number if s.series_number is not None else -1
        )
    summaries = [
        _summary(series, got, reason, series is chosen)
        for series, (got, reason) in zip(mr, roles, strict=True)
    ]
    return chosen, summaries
