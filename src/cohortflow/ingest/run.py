"""One subject's ingest: source (DICOM folder, NIfTI file or BIDS dataset) -> NIfTI + sidecar.

The NIfTI holds voxels and geometry only (a fresh header, canonical RAS+ orientation). The
JSON sidecar holds the acquisition parameters, re-mapped UIDs, how the series was chosen,
software versions and input checksums — and nothing identifying: before anything is written,
both outputs are scanned for every identifying value of the source headers, and a hit is an
error, never a warning.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from cohortflow import __version__
from cohortflow.errors import DicomError, InputError
from cohortflow.ingest import dicom_series, dicom_volume
from cohortflow.ingest.nifti_input import (
    find_bids_image,
    is_bids_dataset,
    is_nifti_path,
    nifti_header_text,
    read_nifti_3d,
)
from cohortflow.io.atomic import atomic_output_file, sha256_file, write_json
from cohortflow.privacy.demo_source import verify_demo_source
from cohortflow.privacy.descriptors import rebuild_sequence_name
from cohortflow.privacy.phi import MIN_PHI_CHARS, find_phi, name_attributes
from cohortflow.privacy.pseudonym import PseudonymKey, remap_uid


@dataclass(frozen=True)
class IngestSettings:
    target_role: str = "FLAIR"
    on_multiple: str = "error"
    irregular_slices: str = "error"
    role_rules: dict[str, Any] = field(default_factory=dict)
    clean_descriptors: bool = False
    # None: no limit (package use); the workflow passes the schema's default or the config's.
    max_image_mb: float | None = None
    nifti_without_orientation: str = "error"

    @classmethod
    def from_config(cls, section: dict[str, Any]) -> IngestSettings:
        return cls(
            target_role=section["target_role"],
            on_multiple=section["on_multiple"],
            irregular_slices=section["irregular_slices"],
            role_rules=dict(section.get("role_rules", {})),
            clean_descriptors=section["clean_descriptors"],
            max_image_mb=section["max_image_mb"],
            nifti_without_orientation=section["nifti_without_orientation"],
        )


def source_kind(source: Path) -> str:
    """'dicom', 'nifti' or 'bids' — or an InputError saying why the path is unusable."""
    if not source.exists():
        raise InputError(source, "source path does not exist (check the sample sheet's source)")
    if source.is_file():
        if is_nifti_path(source):
            return "nifti"
        raise InputError(
            source,
            "source is a file but not a NIfTI (.nii/.nii.gz); give a "
            "DICOM folder, a NIfTI file or a BIDS dataset",
        )
    if is_bids_dataset(source):
        return "bids"
    return "dicom"


def ingest_subject(
    *,
    source: str | Path,
    nifti_out: str | Path,
    sidecar_out: str | Path,
    subject: str,
    session: str,
    sheet_row: int,
    key: PseudonymKey,
    settings: IngestSettings,
    subject_id: str | None = None,
    logger: logging.Logger | None = None,
) -> dict:
    """Ingest one subject; returns the sidecar. Errors name the subject, file and reason.

    ``subject`` is the pseudonym; ``subject_id`` (the sheet's ID) finds the subject inside a
    BIDS dataset and is one of the PHI scan's search terms: it is never written anywhere.
    """
    log = logger or logging.getLogger("cohortflow.ingest")
    who = f"sub-{subject} (sample sheet row {sheet_row})"
    source = Path(source)
    if key.is_demo:  # the public key: only for the demo's own files, never through a link
        verify_demo_source(source)
    checks = {
        "max_image_mb": settings.max_image_mb,
        "without_orientation": settings.nifti_without_orientation,
    }
    try:
        kind = source_kind(source)
        log.info("%s: ingesting a %s source", who, kind.upper())
        if kind == "dicom":
            image, sidecar, phi = _from_dicom(source, key, settings, log)
        elif kind == "nifti":
            image, notes = read_nifti_3d(source, **checks)
            sidecar = _nifti_sidecar(source, image, {}, notes)
            phi = _nifti_phi(source)
        else:
            if subject_id is None:
                raise InputError(source, "a BIDS source needs the sheet's subject ID")
            path, fields = find_bids_image(source, subject_id, session, settings.target_role)
            image, notes = read_nifti_3d(path, **checks)
            sidecar = _nifti_sidecar(path, image, fields, notes)
            phi = _nifti_phi(path)
    except InputError as exc:
        raise _relative_to_source(exc, source, sheet_row).with_subject(who) from None
    except PermissionError as exc:
        raise _relative_to_source(
            InputError(exc.filename, "permission denied: this job may not read it"),
            source,
            sheet_row,
        ).with_subject(who) from None
    except MemoryError:
        raise InputError(
            f"<source of sample sheet row {sheet_row}>",
            "ran out of memory while reading the source: more than the job's memory "
            "(mem_mb) although the headers declared a size within ingest.max_image_mb",
            subject=who,
        ) from None
    sidecar.update(
        {
            "Subject": subject,
            "Session": session,
            "Role": sidecar.get("Role", settings.target_role),
            "PseudonymKey": "demo (public, protects nothing)" if key.is_demo else "secret",
            "GeneratedBy": [
                {"Name": "cohortflow", "Version": __version__, "Description": "ingest"}
            ],
            "Software": _software_versions(),
            # The array's own buffer: a bytes copy would add an image's worth to the peak.
            "ImageDataSHA256": hashlib.sha256(
                np.ascontiguousarray(np.asanyarray(image.dataobj)).data
            ).hexdigest(),
        }
    )
    if subject_id and len(subject_id.strip()) >= MIN_PHI_CHARS:
        phi.setdefault(subject_id.strip(), "the sample sheet's subject ID")
    _write_outputs(image, sidecar, Path(nifti_out), Path(sidecar_out), phi, who)
    log.info(
        "%s: wrote %s (shape %s, voxel %s mm)", who, nifti_out, image.shape, sidecar["VoxelSize"]
    )
    return sidecar


def _from_dicom(
    folder: Path, key: PseudonymKey, settings: IngestSettings, log: logging.Logger
) -> tuple[nib.Nifti1Image, dict, dict[str, str]]:
    discovery = dicom_series.discover_series(folder, logger=log)
    _refuse_unreadable(discovery)
    rules = dicom_series.RoleRules.from_mapping(settings.role_rules)
    series, candidates = dicom_series.select_series(
        discovery, settings.target_role, rules, on_multiple=settings.on_multiple
    )
    dicom_series.refuse_mixed_identity(series)
    volume = dicom_volume.read_volume(
        series, irregular=settings.irregular_slices, max_image_mb=settings.max_image_mb
    )
    for note in volume.notes:
        log.warning("%s", note.replace(str(folder), "<source>"))
    image = dicom_volume.volume_to_nifti(volume)
    header = series.header
    phi = series.identifying_attributes
    role, reason = dicom_series.classify_role(series, rules)
    zooms = [round(float(z), 6) for z in image.header.get_zooms()[:3]]
    sidecar: dict[str, Any] = {
        "SourceFormat": "DICOM",
        "Role": role,
        "RoleReason": reason,
        "Modality": series.modality,
        "Manufacturer": series.manufacturer,
        "ManufacturersModelName": series.model,
        "MagneticFieldStrength": series.field_strength,
        "EchoTime": _seconds(series.echo_time),
        "RepetitionTime": _seconds(series.repetition_time),
        "InversionTime": _seconds(series.inversion_time),
        "FlipAngle": series.flip_angle,
        "ScanningSequence": list(series.scanning_sequence),
        "SequenceVariant": list(series.sequence_variant),
        # Descriptive texts are rebuilt from the controlled vocabulary, never copied.
        "SequenceName": rebuild_sequence_name(series.sequence_name),
        "MRAcquisitionType": _str_or_none(header.get("MRAcquisitionType")),
        "PatientPosition": _str_or_none(header.get("PatientPosition")),
        "SeriesDescription": series.safe_description,
        "SeriesNumber": series.series_number,
        "StudyInstanceUID": (
            remap_uid(key, str(header.StudyInstanceUID)) if header.get("StudyInstanceUID") else None
        ),
        "SeriesInstanceUID": remap_uid(key, series.series_uid),
        "SOPClassUID": _str_or_none(header.get("SOPClassUID")),
        "NumberOfInstances": len(series.files),
        "VoxelSize": zooms,
        "ImageShape": list(image.shape),
        "SeriesCandidates": candidates,
        "Notes": list(volume.notes),
        "InputFiles": len(series.files),
        "InputSHA256": _files_digest(series.files),
    }
    return image, sidecar, phi


def _nifti_phi(path: Path) -> dict[str, str]:
    """The NIfTI header's free text, as PHI search terms (see :func:`nifti_header_text`)."""
    return dict.fromkeys(nifti_header_text(path), "the NIfTI header's text fields")


def _relative_to_source(exc: InputError, source: Path, sheet_row: int) -> InputError:
    """Name files relative to the sheet row's source, never by their full path.

    Source folders are often named after the patient; a log that pairs the pseudonym with
    such a path would undo the pseudonymisation. ``<source of sample sheet row 7>/series5/IM3``
    tells the user exactly where to look, with the sheet in hand.
    """
    anchor = f"<source of sample sheet row {sheet_row}>"
    if exc.path is not None:
        path = Path(exc.path)
        try:
            rel = path.relative_to(source)
            exc.path = anchor if rel == Path() else f"{anchor}/{rel.as_posix()}"
        except ValueError:
            exc.path = f"{anchor} (a file outside it)"
    exc.reason = exc.reason.replace(str(source), anchor)
    exc.args = (exc._message(),)
    return exc


def _refuse_unreadable(discovery: dicom_series.Discovery) -> None:
    """A damaged DICOM file fails the subject: it may be a slice of the chosen series (an end
    slice would not even leave a gap), and a volume one slice short is a silent error."""
    if discovery.unreadable:
        path, reason = discovery.unreadable[0]
        more = len(discovery.unreadable) - 1
        extra = f" (and {more} more unreadable file(s))" if more else ""
        raise DicomError(path, f"unreadable DICOM file, possibly truncated: {reason}{extra}")


def _nifti_sidecar(
    path: Path, image: nib.Nifti1Image, fields: dict, notes: list[str] | None = None
) -> dict:
    source = nib.load(path)
    return {
        "SourceFormat": "NIfTI",
        **fields,
        "SourceOrientation": "".join(nib.aff2axcodes(source.affine)),
        "SourceDataType": str(source.get_data_dtype()),
        "SourceQformCode": int(source.header["qform_code"]),
        "SourceSformCode": int(source.header["sform_code"]),
        "VoxelSize": [round(float(z), 6) for z in image.header.get_zooms()[:3]],
        "ImageShape": list(image.shape),
        "Notes": [
            "NIfTI input: header text fields (descrip, aux_file, db_name) were dropped",
            *(notes or []),
        ],
        "InputFiles": 1,
        "InputSHA256": sha256_file(path),
    }


def _write_outputs(
    image: nib.Nifti1Image,
    sidecar: dict,
    nifti_out: Path,
    sidecar_out: Path,
    phi: dict[str, str],
    who: str,
) -> None:
    # Values only: the keys are ours (a key such as "MRAcquisitionType" would match a
    # header value "ACQUISITION").
    text = "\n".join(_values(sidecar))
    header_bytes = image.header.binaryblock
    leaks = find_phi(text, phi) + find_phi(header_bytes, phi)
    if leaks:
        # Never reached with the checks above; if it is, refusing to write is the only safe act.
        raise InputError(
            nifti_out,
            f"{who}: identifying values would reach the outputs (from "
            f"{name_attributes(leaks, phi)}); nothing was written",
        )
    with atomic_output_file(nifti_out) as tmp:
        nib.save(image, tmp)
    try:
        write_json(sidecar_out, sidecar)
    except BaseException:
        nifti_out.unlink(missing_ok=True)
        raise


def _values(data: Any) -> list[str]:
    """Every leaf value of a JSON-like structure, as text."""
    if isinstance(data, dict):
        return [v for item in data.values() for v in _values(item)]
    if isinstance(data, list | tuple):
        return [v for item in data for v in _values(item)]
    return [] if data is None else [str(data)]


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else round(float(ms) / 1000.0, 9)


def _str_or_none(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _files_digest(files: list[Path]) -> str:
    h = hashlib.sha256()
    for digest in sorted(sha256_file(f) for f in files):
        h.update(digest.encode())
    return h.hexdigest()


def _software_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in ("pydicom", "nibabel", "numpy")}


def export_deidentified_dicom(
    *,
    source: str | Path,
    out_dir: str | Path,
    subject: str,
    sheet_row: int,
    key: PseudonymKey,
    settings: IngestSettings,
    logger: logging.Logger | None = None,
    write_file: Callable[[Path, Path], None] | None = None,
) -> int:
    """Write the selected series as de-identified DICOM (PS3.15 Basic profile); file count.

    The same series that :func:`ingest_subject` converts is chosen; its files are written in
    slice order as ``0001.dcm`` ... into a folder that appears whole or not at all.
    ``write_file(source_file, target_file)`` replaces the plain de-identification (the defacer
    passes one that also removes the face).
    """
    from cohortflow.io.atomic import atomic_output_dir
    from cohortflow.privacy.deidentify import deidentify_file

    log = logger or logging.getLogger("cohortflow.ingest")
    who = f"sub-{subject} (sample sheet row {sheet_row})"
    source = Path(source)
    if key.is_demo:
        verify_demo_source(source)
    try:
        if source_kind(source) != "dicom":
            raise InputError(source, "DICOM export needs a DICOM source")
        discovery = dicom_series.discover_series(source, logger=log)
        _refuse_unreadable(discovery)
        rules = dicom_series.RoleRules.from_mapping(settings.role_rules)
        series, _ = dicom_series.select_series(
            discovery, settings.target_role, rules, on_multiple=settings.on_multiple
        )
        dicom_series.refuse_mixed_identity(series)
        # The same header checks as the conversion: the export never writes a repeated UID.
        dicom_volume.check_series_headers(series, settings.max_image_mb)
        with atomic_output_dir(out_dir) as tmp:
            for number, path in enumerate(dicom_volume.files_in_slice_order(series), start=1):
                target = tmp / f"{number:04d}.dcm"
                if write_file is not None:
                    write_file(path, target)
                else:
                    # Descriptors are removed (Basic Profile) or rebuilt from the controlled
                    # vocabulary (Clean Descriptors Option, recorded as such).
                    deidentify_file(
                        path,
                        target,
                        key,
                        subject_label=subject,
                        keep_descriptions=settings.clean_descriptors,
                    )
    except InputError as exc:
        raise _relative_to_source(exc, source, sheet_row).with_subject(who) from None
    log.info("%s: wrote %d de-identified DICOM files", who, len(series.files))
    return len(series.files)
