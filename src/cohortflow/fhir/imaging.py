"""ImagingStudy (MII Bildgebungsstudie) and the scanner Device (MII Geraet) from an ingest sidecar.

The sidecar (``results/ingest/sub-*/ses-*/anat/*_<role>.json``) carries the re-mapped Study and
Series Instance UIDs and the acquisition parameters in BIDS units (seconds). The export:

* identifier ``urn:dicom:uid`` / ``urn:oid:<StudyInstanceUID>``; status ``available``; modality
  DCM ``MR``; subject → the Patient; no date (ingest keeps none);
* one series (the converted one): uid, number, description, modality, body site (SNOMED CT
  12738006 brain structure), number of instances, performer → the scanner Device, and the MR
  extension (field strength T, echo/repetition/inversion time in ms — seconds × 1000 — and flip
  angle in deg, each a UCUM Quantity; scanning sequence and variant as one CodeableConcept each
  with one coding per DICOM term). Terms outside the MII code systems are left out and named
  in the returned notes; one ``instance`` per file of the de-identified DICOM export (re-mapped
  SOP Instance UID, SOP Class UID, instance number), read by :func:`read_instances` — without
  that export there are no ``instance`` elements and the notes say so;
* NIfTI sources have no UIDs and no acquisition parameters: the study gets no series, and its
  identifier is left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cohortflow.errors import CohortflowError
from cohortflow.fhir import codes
from cohortflow.fhir.ids import resource_id


def _quantity(name: str, value: float) -> dict[str, Any]:
    unit, code = codes.MR_UNITS[name]
    return {"value": round(float(value), 6), "unit": unit, "system": codes.UCUM, "code": code}


def mr_extension(sidecar: dict[str, Any], notes: list[str]) -> dict[str, Any] | None:
    """The MII MR-modality extension of a series, or None when the sidecar has no parameters."""
    parts: list[dict[str, Any]] = []
    if sidecar.get("MagneticFieldStrength") is not None:
        value = _quantity("magneticFieldStrength", sidecar["MagneticFieldStrength"])
        parts.append({"url": "magneticFieldStrength", "valueQuantity": value})
    for key, allowed, system, url in (
        ("ScanningSequence", codes.SCANNING_SEQUENCES, codes.CS_SCANNING_SEQUENCE,
         "scanningSequence"),
        ("SequenceVariant", codes.SCANNING_VARIANTS, codes.CS_SCANNING_VARIANT,
         "scanningSequenceVariant"),
    ):  # fmt: skip
        terms = sidecar.get(key) or []
        terms = [terms] if isinstance(terms, str) else list(terms)
        unknown = [t for t in terms if t not in allowed]
        if unknown:
            notes.append(f"{key} {unknown} not in {system}: left out")
        coding = [{"system": system, "code": t} for t in terms if t in allowed]
        if coding:
            parts.append({"url": url, "valueCodeableConcept": {"coding": coding}})
    for key, url, factor in (
        ("EchoTime", "echoTime", 1000.0),
        ("RepetitionTime", "repetitionTime", 1000.0),
        ("InversionTime", "inversionTime", 1000.0),
        ("FlipAngle", "flipAngle", 1.0),
    ):
        if sidecar.get(key) is not None:
            parts.append({"url": url, "valueQuantity": _quantity(url, sidecar[key] * factor)})
    return {"url": codes.EXT_MR, "extension": parts} if parts else None


def scanner_device(sidecar: dict[str, Any]) -> dict[str, Any] | None:
    """The scanner as an MII Geraet Device (manufacturer and model), or None if unknown; one
    Device per make and model, shared by the subjects scanned on it."""
    manufacturer = sidecar.get("Manufacturer")
    model = sidecar.get("ManufacturersModelName")
    if not (manufacturer or model):
        return None
    device: dict[str, Any] = {
        "resourceType": "Device",
        "id": resource_id("scanner", str(manufacturer), str(model)),
        "meta": {"profile": [codes.PROFILE_DEVICE]},
    }
    if manufacturer:
        device["manufacturer"] = str(manufacturer)
    if model:
        device["deviceName"] = [{"name": str(model), "type": "model-name"}]
    return device


def read_instances(dicom_dir: str | Path, series_uid: str) -> list[dict[str, Any]]:
    """The ``series.instance`` elements of a de-identified DICOM export folder, in instance
    order; every file must belong to ``series_uid`` (the sidecar's re-mapped UID)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    rows = []
    for path in sorted(Path(dicom_dir).rglob("*.dcm")):
        try:
            header = pydicom.dcmread(
                path, stop_before_pixels=True,
                specific_tags=["SOPInstanceUID", "SOPClassUID", "InstanceNumber",
                               "SeriesInstanceUID"],
            )  # fmt: skip
        except (InvalidDicomError, OSError) as exc:
            raise CohortflowError(f"{path}: not a readable DICOM file ({exc})") from exc
        if str(header.get("SeriesInstanceUID", "")) != series_uid:
            raise CohortflowError(
                f"{path}: Series Instance UID {header.get('SeriesInstanceUID')} is not the "
                f"sidecar's {series_uid} (export and sidecar come from different runs)"
            )
        number = header.get("InstanceNumber")
        rows.append((int(number) if number is not None else len(rows) + 1, header))
    rows.sort(key=lambda r: r[0])
    return [
        {
            "uid": str(h.SOPInstanceUID),
            "sopClass": {"system": codes.RFC3986, "code": f"urn:oid:{h.SOPClassUID}"},
            "number": number,
        }
        for number, h in rows
    ]


def imaging_study(
    sidecar: dict[str, Any],
    pseudonym: str,
    patient_ref: str,
    scanner_ref: str | None,
    instances: list[dict[str, Any]] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The ImagingStudy of one ingested series; returns it with notes on anything left out."""
    notes: list[str] = []
    study: dict[str, Any] = {
        "resourceType": "ImagingStudy",
        "id": resource_id(pseudonym, "ImagingStudy", str(sidecar.get("Session", ""))),
        "meta": {"profile": [codes.PROFILE_IMAGING_STUDY]},
        "status": "available",
        "modality": [dict(codes.MODALITY_MR)],
        "subject": {"reference": patient_ref},
    }
    study_uid = sidecar.get("StudyInstanceUID")
    if study_uid:
        study["identifier"] = [{"system": codes.DICOM_UID, "value": f"urn:oid:{study_uid}"}]
    series_uid = sidecar.get("SeriesInstanceUID")
    if not series_uid:
        notes.append("no Series Instance UID (NIfTI source): no series")
        study["numberOfSeries"] = 0
        return study, notes
    series: dict[str, Any] = {"uid": str(series_uid)}
    extension = mr_extension(sidecar, notes)
    if extension:
        series["extension"] = [extension]
    if sidecar.get("SeriesNumber") is not None:
        series["number"] = int(sidecar["SeriesNumber"])
    series["modality"] = dict(codes.MODALITY_MR)
    if sidecar.get("SeriesDescription"):
        series["description"] = str(sidecar["SeriesDescription"])
    if sidecar.get("NumberOfInstances"):
        series["numberOfInstances"] = int(sidecar["NumberOfInstances"])
    series["bodySite"] = dict(codes.BODY_SITE_BRAIN)
    if scanner_ref:
        series["performer"] = [{"actor": {"reference": scanner_ref}}]
    study["numberOfSeries"] = 1
    if series.get("numberOfInstances"):
        study["numberOfInstances"] = series["numberOfInstances"]
    if instances:
        series["instance"] = instances
        series["numberOfInstances"] = study["numberOfInstances"] = len(instances)
    else:
        notes.append("no de-identified DICOM export: series without instance elements")
    study["series"] = [series]
    return study, notes


def mr_extension_problems(study: dict[str, Any]) -> list[str]:
    """Checks no validator here makes (Medplum ignores extension contents): one MR extension per
    series at most, only known sub-extensions, each single one at most once, UCUM quantities
    with the profile's fixed unit/system/code and no comparator, codes from the MII systems."""
    problems = []
    singles = {"magneticFieldStrength", "echoTime", "repetitionTime", "inversionTime", "flipAngle"}
    for i, series in enumerate(study.get("series", [])):
        mine = [e for e in series.get("extension", []) if e.get("url") == codes.EXT_MR]
        if len(mine) > 1:
            problems.append(f"series[{i}]: {len(mine)} MR extensions (max 1)")
        for ext in mine:
            if any(k.startswith("value") for k in ext):
                problems.append(f"series[{i}]: the MR extension has a value (0..0)")
            seen: dict[str, int] = {}
            for sub in ext.get("extension", []):
                url = sub.get("url")
                seen[url] = seen.get(url, 0) + 1
                if url in codes.MR_UNITS:
                    q = sub.get("valueQuantity") or {}
                    unit, code = codes.MR_UNITS[url]
                    if (q.get("unit"), q.get("system"), q.get("code")) != (unit, codes.UCUM, code):
                        problems.append(
                            f"series[{i}].{url}: unit must be {unit}/{codes.UCUM}/{code}"
                        )
                    if "comparator" in q or not isinstance(q.get("value"), int | float):
                        problems.append(f"series[{i}].{url}: a plain numeric value is required")
                elif url in ("scanningSequence", "scanningSequenceVariant"):
                    system, allowed = (
                        (codes.CS_SCANNING_SEQUENCE, codes.SCANNING_SEQUENCES)
                        if url == "scanningSequence"
                        else (codes.CS_SCANNING_VARIANT, codes.SCANNING_VARIANTS)
                    )
                    for c in sub.get("valueCodeableConcept", {}).get("coding", []):
                        if c.get("system") != system or c.get("code") not in allowed:
                            problems.append(f"series[{i}].{url}: {c} not in {system}")
                else:
                    problems.append(f"series[{i}]: unknown MR sub-extension {url!r}")
            for url, n in seen.items():
                if url in singles and n > 1:
                    problems.append(f"series[{i}].{url}: {n} times (max 1)")
    return problems
