"""De-identify DICOM data sets with the PS3.15 Basic Application Level Confidentiality Profile.

cohortflow writes DICOM (defaced images, for one) and scans every output for PHI. Both rest on
one table, :data:`~cohortflow.privacy.ps3_15.BASIC_PROFILE`: the "Basic Prof." column of DICOM
PS3.15 (2024b) Annex E, Table E.1-1 "Application Level Confidentiality Profile Attributes",
transcribed for its 617 attributes with a fixed tag (data module
:mod:`cohortflow.privacy.ps3_15`). Section E.1.1 defines the action codes:

- ``D`` replace with a non-zero length dummy value consistent with the VR;
- ``Z`` replace with a zero length value (or a dummy);
- ``X`` remove;
- ``K`` keep (a kept sequence still has the profile applied to its items);
- ``C`` clean: replace with values of similar meaning known not to contain identifying data;
- ``U`` replace with a non-zero length UID, consistent within a set of instances;
- ``Z/D``, ``X/Z``, ``X/D``, ``X/Z/D``, ``X/Z/U*``: the first, unless the IOD needs the later
  one (Type 3 versus 2 versus 1; ``U*``: a sequence whose UID references must be replaced).

The table keeps the standard's codes verbatim, compound ones included, so that it can be checked
against the standard line by line. Attributes it does not list are kept (K) by the standard;
cohortflow keeps only those on its acquisition keep-list
(:data:`~cohortflow.privacy.ps3_15.ACQUISITION_KEEP_LIST`: image structure, numbers and coded
acquisition parameters) and removes every other one, so that free text the table does not name
cannot pass. We cannot know the
Type of every attribute in every IOD that reaches us, so :data:`COMPOUND_RESOLUTION` gives each
compound code one fixed, most protective, action:

- ``Z/D`` -> ``Z``: an empty value keeps a Type 2 attribute present and discloses nothing.
  Patient ID (Z/D) is then set to the subject label, which is the D alternative.
- ``X/Z``, ``X/D``, ``X/Z/D`` -> ``X``: removal discloses least. The cost is IOD conformance
  where an attribute is Type 1 or 2: Enhanced MR, for one, loses Device Serial Number and
  Acquisition DateTime and has empty Content Date/Time; pydicom and dcm2niix do not need them.
- ``X/Z/U*`` -> ``U``: the Referenced Image and Source Image sequences are kept and cleaned like
  any kept sequence, and their UIDs are remapped with the same key as the instances they point
  to, so that references between de-identified instances (a defaced image to its source) stay
  valid while no original UID remains.

``C`` is not in the Basic Profile column, only in the Clean Descriptors Option. Without that
option descriptors are removed, as the standard requires. ``keep_descriptions=True`` applies it:
Study Description, Series Description and Protocol Name are *rebuilt* from a controlled
vocabulary (:func:`cohortflow.privacy.descriptors.rebuild_description`: sequence family,
contrast, plane, 2D/3D, contrast agent, parameter numbers; every other token dropped), so no
source text survives; every other attribute the option would clean is removed by the Basic
Profile, which discloses less. The De-identification Method Code Sequence then lists (113105,
DCM, "Clean Descriptors Option").

After de-identification, every text value of the result is scanned (:mod:`cohortflow.privacy.phi`)
for the identifying values of the source, the same scan ingest applies to its NIfTI and
sidecar; a hit is a :class:`~cohortflow.errors.DicomError` naming the attribute, never the value.

Beyond the table, as the standard's notes ask of a de-identifier:

- all private attributes (odd groups) are removed: the Basic Profile's rule; the Retain Safe
  Private Option is not implemented;
- curve groups (50xx) and overlay groups (60xx) are removed whole: the table removes Curve Data,
  Overlay Data and Overlay Comments, and the rest of an overlay plane (labels, descriptions, the
  plane's geometry) is free text or meaningless without its data;
- group length attributes (gggg,0000) are removed: they are retired and go stale once
  attributes are removed;
- defence in depth, anywhere in the data set: a non-empty PN attribute that the table does not
  list is removed, and a non-empty DA or DT attribute that it does not list is emptied
  (Longitudinal Temporal Information Modified is set to REMOVED, so no date may stay);
- D writes fixed dummies (see ``DUMMY_BY_VR``); binary and UR values, and sequences (D or Z),
  are emptied instead, as no dummy item can be made that is both valid and free of information;
- the file meta information is rebuilt, describing cohortflow, and the preamble is zeroed.

Not implemented: the other options of Table E.1-1 (Clean Pixel Data, Clean Recognizable Visual
Features, Clean Graphics, Clean Structured Content, and every Retain option;
callers that do clean pixels or faces add that option's code with ``extra_methods``, and codes of
Retain options are refused), the Encrypted Attributes Sequence (no identity recovery), and any
check of the pixel data: Burned In Annotation is left as it is, since we cannot see text in
pixels, and pixel data are never changed.
"""

from __future__ import annotations

import copy
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue

from cohortflow import __version__
from cohortflow.errors import DicomError
from cohortflow.privacy.descriptors import rebuild_description, rebuild_sequence_name
from cohortflow.privacy.phi import (
    as_text,
    find_phi,
    identifying_attributes,
    name_attributes,
    text_values,
)
from cohortflow.privacy.profile import action_for, attribute_name, kept
from cohortflow.privacy.ps3_15 import (
    BASIC_PROFILE_CODE,
    CID_7050,
    DUMMY_BY_VR,
    REBUILT_SEQUENCE_NAMES,
    RETAIN_OPTION_CODES,
)
from cohortflow.privacy.pseudonym import PseudonymKey, remap_uid

__all__ = ["CLEAN_DESCRIPTORS", "deidentify_dataset", "deidentify_file", "scan_deidentified"]

CLEAN_DESCRIPTORS = ("113105", "DCM", CID_7050["113105"])

#: A stable Implementation Class UID for cohortflow (a 2.25 UID from a name-based UUID, as
#: PS3.5 B.2 allows), and the matching Implementation Version Name (SH: 16 characters at most).
IMPLEMENTATION_CLASS_UID = f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, 'urn:cohortflow').int}"
IMPLEMENTATION_VERSION_NAME = f"COHORTFLOW {__version__}"[:16]


@dataclass(frozen=True)
class _Context:
    key: PseudonymKey
    keep_descriptions: bool


def deidentify_dataset(
    ds: Dataset,
    key: PseudonymKey,
    *,
    subject_label: str,
    extra_methods: Sequence[tuple[str, str, str]] = (),
    keep_descriptions: bool = False,
) -> Dataset:
    """A de-identified deep copy of ``ds`` (which is left as it is); see the module docstring.

    ``subject_label`` (a pseudonym) becomes Patient's Name and Patient ID. ``extra_methods`` are
    (code value, coding scheme designator, code meaning) items for the De-identification Method
    Code Sequence besides 113100 (Basic Profile): e.g. ("113102", "DCM", "Clean Recognizable
    Visual Features Option") from the defacer. DCM codes must be those of CID 7050 with their
    meanings, and no Retain option. ``keep_descriptions`` applies the Clean Descriptors Option
    (descriptors rebuilt from the controlled vocabulary) and records its code.

    The result is scanned for the source's identifying values before it is returned
    (:func:`scan_deidentified`).
    """
    _check_label(subject_label)
    if keep_descriptions:
        extra_methods = (*extra_methods, CLEAN_DESCRIPTORS)
    method_codes = _method_code_items(extra_methods)
    out = copy.deepcopy(ds)
    _apply_profile(out, _Context(key, keep_descriptions))
    out.PatientName = subject_label
    out.PatientID = subject_label
    out.PatientIdentityRemoved = "YES"
    # LO holds 64 characters, so the description is two values (VM 1-n).
    method = [f"cohortflow {__version__}", "PS3.15 Basic Application Level Confidentiality Profile"]
    if keep_descriptions:
        method.append("Descriptions rebuilt from a controlled vocabulary")
    out.DeidentificationMethod = method
    out.DeidentificationMethodCodeSequence = method_codes
    out.LongitudinalTemporalInformationModified = "REMOVED"
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        out.file_meta = _rebuilt_file_meta(out, meta)
    if isinstance(out, FileDataset):
        out.preamble = bytes(128)  # a vendor's preamble may hold anything
    scan_deidentified(ds, out, keep_descriptions=keep_descriptions)
    return out


def scan_deidentified(original: Dataset, out: Dataset, *, keep_descriptions: bool) -> None:
    """Refuse ``out`` if any of its text values holds an identifying value of ``original``.

    The same scan as ingest's NIfTI/sidecar path. The message names the source attribute of the
    value and the attribute it was found in (keywords and tags), never the value.
    """
    attributes = identifying_attributes(original, keep_descriptions=keep_descriptions)
    hits: list[str] = []
    for where, text in _texts(out):
        found = find_phi(text, attributes)
        if found:
            hits.append(f"{name_attributes(found, attributes)} in {where}")
    if hits:
        raise DicomError(
            None,
            "identifying header values would reach the de-identified DICOM: "
            + "; ".join(sorted(set(hits)))
            + "; nothing was written",
        )


def _texts(ds: Dataset) -> list[tuple[str, str]]:
    """(attribute name, text) of every text value in ``ds`` and its sequences, file meta too."""
    found: list[tuple[str, str]] = []
    datasets = [ds, getattr(ds, "file_meta", None) or Dataset()]
    while datasets:
        current = datasets.pop()
        for elem in current:
            if elem.VR == "SQ":
                datasets.extend(elem.value)
            else:
                found.extend((attribute_name(elem), text) for text in text_values(elem))
    return found


def _check_label(label: str) -> None:
    """The label goes into PN and LO values: it must be short, printable and free of delimiters."""
    if not (0 < len(label) <= 64 and label.isascii() and label.isprintable()) or any(
        c in label for c in "\\^="
    ):
        raise ValueError(
            f"subject label {label!r}: need 1-64 printable ASCII characters without \\ ^ ="
        )


def _method_code_items(extra_methods: Sequence[tuple[str, str, str]]) -> list[Dataset]:
    """Code items for De-identification Method Code Sequence: 113100, then the extra ones."""
    items: list[Dataset] = []
    seen: set[tuple[str, str]] = set()
    for value, scheme, meaning in (BASIC_PROFILE_CODE, *extra_methods):
        if scheme == "DCM":
            if value not in CID_7050:
                raise ValueError(f"({value}, DCM, {meaning!r}) is not a code of CID 7050")
            if meaning != CID_7050[value]:
                raise ValueError(
                    f"({value}, DCM): CID 7050 gives the meaning {CID_7050[value]!r}, "
                    f"not {meaning!r}"
                )
            if value in RETAIN_OPTION_CODES:
                raise ValueError(
                    f"({value}, DCM, {meaning!r}): cohortflow does not implement this option; "
                    "it always applies the Basic Profile to what the option would retain"
                )
        if (value, scheme) in seen:
            continue
        seen.add((value, scheme))
        item = Dataset()
        item.CodeValue = value
        item.CodingSchemeDesignator = scheme
        item.CodeMeaning = meaning
        items.append(item)
    return items


def _apply_profile(ds: Dataset, ctx: _Context) -> None:
    """Apply the actions in place, recursing into every sequence that is kept."""
    for tag in list(ds.keys()):
        elem = ds[tag]
        action = action_for(elem, ctx.keep_descriptions)
        if action is None and elem.keyword in REBUILT_SEQUENCE_NAMES:
            elem.value = rebuild_sequence_name(as_text(elem.value))
        elif action == "X" or (action is None and not kept(elem)):
            del ds[tag]
        elif action == "Z":
            elem.value = elem.empty_value
        elif action == "D":
            _replace_with_dummy(elem, ctx.key)
        elif action == "C":
            elem.value = _rebuilt(elem.value)
        elif elem.VR == "SQ":  # K, or U (X/Z/U*): the items' UIDs are remapped by their own rule
            for item in elem.value:
                _apply_profile(item, ctx)
        elif action == "U":
            _remap_uids(elem, ctx.key)


def _replace_with_dummy(elem: DataElement, key: PseudonymKey) -> None:
    if elem.VR == "UI":
        _remap_uids(elem, key)  # a UID dummy must still be a valid, consistent UID
    elif elem.VR in DUMMY_BY_VR:
        elem.value = DUMMY_BY_VR[elem.VR]
    else:
        elem.value = elem.empty_value


def _remap_uids(elem: DataElement, key: PseudonymKey) -> None:
    if elem.is_empty:
        return
    values = elem.value if isinstance(elem.value, MultiValue) else [elem.value]
    remapped = [remap_uid(key, str(uid)) for uid in values]
    elem.value = remapped if len(remapped) > 1 else remapped[0]


def _rebuilt(value: object) -> str:
    """A descriptor rebuilt from the controlled vocabulary (Clean Descriptors Option)."""
    texts = value if isinstance(value, MultiValue) else [value]
    return rebuild_description(*(as_text(v) for v in texts))


def _rebuilt_file_meta(out: Dataset, original: FileMetaDataset) -> FileMetaDataset:
    """File meta that describes cohortflow; of the original's only the transfer syntax is kept
    (the rest, e.g. the source AE title, may identify the site)."""
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    for keyword, source in (
        ("MediaStorageSOPClassUID", "SOPClassUID"),
        ("MediaStorageSOPInstanceUID", "SOPInstanceUID"),  # already remapped
    ):
        if source in out:
            setattr(meta, keyword, out[source].value)
    if "TransferSyntaxUID" in original:
        meta.TransferSyntaxUID = original.TransferSyntaxUID
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    return meta


def deidentify_file(
    src: Path,
    dst: Path,
    key: PseudonymKey,
    *,
    subject_label: str,
    extra_methods: Sequence[tuple[str, str, str]] = (),
    keep_descriptions: bool = False,
) -> None:
    """De-identify one DICOM file into ``dst``, keeping its transfer syntax and pixel data.

    The file appears at ``dst`` whole or not at all (a temporary file in the same folder is
    renamed), so an interrupted run never leaves a half-written file for the next step.
    """
    src, dst = Path(src), Path(dst)
    try:
        ds = pydicom.dcmread(src)
    except (InvalidDicomError, EOFError, OSError) as exc:
        raise DicomError(src, f"cannot read as DICOM ({exc})") from exc
    if "SOPInstanceUID" not in ds or "SOPClassUID" not in ds:
        raise DicomError(src, "no SOP Class UID or SOP Instance UID: not a composite instance")
    out = deidentify_dataset(
        ds,
        key,
        subject_label=subject_label,
        extra_methods=extra_methods,
        keep_descriptions=keep_descriptions,
    )
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex}.tmp")
    try:
        with tmp.open("xb") as fh:
            pydicom.dcmwrite(fh, out, enforce_file_format=True)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
