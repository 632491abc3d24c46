"""The PHI scanner: which header values must never reach an output, and whether they do.

:func:`identifying_attributes` lists the search terms of a DICOM data set (value -> the
attribute it came from, by keyword and tag, so that a refusal can name the attribute and never
the value); :func:`find_phi` looks for them in a text or a file's bytes, in the spellings people
and programs write them in. Ingest scans its NIfTI header and sidecar with it, and the DICOM
export every de-identified data set.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import UID

from cohortflow.privacy.descriptors import is_vocabulary_text
from cohortflow.privacy.profile import action_for, attribute_name, kept
from cohortflow.privacy.ps3_15 import DUMMY_BY_VR

# Values we write ourselves: never reported as identifying, or every output would match.
_PLACEHOLDERS = frozenset(str(value).casefold() for value in DUMMY_BY_VR.values())

# this (a sex "M", a name "Li", a study ID "3") matches by chance in any output ...
MIN_PHI_CHARS = 4
# ... and so does an all-digit value shorter than this (a device serial number "67060"), while
# dates (8 digits) and record numbers are kept.
MIN_PHI_DIGITS = 6
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_TEXT_VRS = frozenset(
    ("AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT")
)


@dataclass
class _Harvest:
    # value -> attribute name ("PatientName (0010,0010)")
    identifying: dict[str, str] = field(default_factory=dict)  # named by the table, swept
    contextual: dict[str, str] = field(default_factory=dict)  # private, unlisted, in removed SQ
    kept: list[str] = field(default_factory=list)  # left unchanged in the de-identified copy


def identifying_values(ds: Dataset, *, keep_descriptions: bool = False) -> set[str]:
    """The search terms of :func:`identifying_attributes`, without their attribute names."""
    return set(identifying_attributes(ds, keep_descriptions=keep_descriptions))


def identifying_attributes(ds: Dataset, *, keep_descriptions: bool = False) -> dict[str, str]:
    """Strings of ``ds`` that must not appear in any output: the PHI scanner's search terms.

    These are the values (each value of a multi-valued attribute; of a name also the family,
    given and middle names; of a DT also its date) of every attribute that de-identification
    replaces, empties or removes: those the table lists with D, Z, X, U or C, the PN, DA and DT
    attributes swept as defence in depth, and the file meta's SOP Instance UID. Private
    attributes, attributes that the acquisition keep-list does not hold (removed on export), and
    unlisted attributes inside a removed sequence count too, except where the
    de-identified copy keeps the same text elsewhere (a private "Prisma" beside a kept
    Manufacturer's Model Name "Prisma_fit"): the scan could never tell those apart.

    Left out, as they would match by chance: values shorter than MIN_PHI_CHARS; all-digit values
    shorter than MIN_PHI_DIGITS; other numbers, and every numeric VR (Patient's Weight "70");
    code strings (CS: terms of a fixed list such as "NONE" or "UNKNOWN", found in any text);
    standard DICOM UIDs (1.2.840.10008.*), which are public constants; our own dummy values.
    texts made only of the controlled vocabulary of :mod:`cohortflow.privacy.descriptors`
    ("FLAIR", "T1 MPRAGE"), which identify no one and which outputs write on purpose.
    With ``keep_descriptions``, the descriptors are rebuilt, not removed, and so not counted.
    Each value maps to the (first) attribute it was found in.
    """
    harvest = _Harvest()
    _harvest(ds, harvest, removed=False, keep_descriptions=keep_descriptions)
    meta = getattr(ds, "file_meta", None)
    if meta is not None:  # rebuilt on de-identification: nothing of it is kept
        _harvest(meta, harvest, removed=True, keep_descriptions=keep_descriptions)
    kept = "\x00".join(harvest.kept).casefold()
    contextual = {
        value: name for value, name in harvest.contextual.items() if value.casefold() not in kept
    }
    return {**contextual, **harvest.identifying}


def _harvest(ds: Dataset, harvest: _Harvest, *, removed: bool, keep_descriptions: bool) -> None:
    for elem in ds:
        # Inside a removed sequence nothing is cleaned: a descriptor there is removed too.
        action = action_for(elem, keep_descriptions and not removed)
        if elem.VR == "SQ":
            gone = removed or action in ("X", "Z", "D") or (action is None and not kept(elem))
            for item in elem.value:
                _harvest(item, harvest, removed=gone, keep_descriptions=keep_descriptions)
        elif elem.tag.is_private or (action is None and (removed or not kept(elem))):
            _add(harvest.contextual, elem)
        elif action is None:
            harvest.kept.extend(text_values(elem))
        elif action != "C":  # a rebuilt descriptor holds vocabulary terms only: it is kept
            _add(harvest.identifying, elem)


def _add(found: dict[str, str], elem: DataElement) -> None:
    name = attribute_name(elem)
    for value in _searchable_values(elem):
        found.setdefault(value, name)


def as_text(value: object) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def text_values(elem: DataElement) -> list[str]:
    """The text values of an attribute (a private UN value if it is printable text)."""
    if elem.is_empty:
        return []
    if elem.VR in _TEXT_VRS:
        values = elem.value if isinstance(elem.value, MultiValue) else [elem.value]
        texts = [as_text(v) for v in values]
    elif elem.VR == "UN" and isinstance(elem.value, bytes):
        text = elem.value.decode("latin-1").strip("\x00 ")
        if not (text.isascii() and text.isprintable()):
            return []  # binary (a CSA header, say): not something a text scan can match
        texts = text.split("\\")
    else:
        return []
    return [t.strip("\x00 ") for t in texts if t.strip("\x00 ")]


def _searchable_values(elem: DataElement) -> set[str]:
    found: set[str] = set()
    for text in text_values(elem):
        found.add(text.rstrip("^=") if elem.VR == "PN" else text)
        if elem.VR == "PN":
            for group in text.split("="):
                found.update(group.split("^")[:3])  # family, given, middle name
        elif elem.VR == "DT":
            found.add(text[:8])
    return {value.strip() for value in found if _is_searchable(value.strip(), elem.VR)}


def _is_searchable(value: str, vr: str) -> bool:
    if vr == "CS" or len(value) < MIN_PHI_CHARS or value.casefold() in _PLACEHOLDERS:
        return False
    if is_vocabulary_text(value):
        return False
    if value.isdigit():
        return len(value) >= MIN_PHI_DIGITS
    if vr == "UI":
        return UID(value).is_private
    return vr in ("DA", "DT", "TM") or not _NUMBER.fullmatch(value)


def name_attributes(values: Iterable[str], attributes: dict[str, str]) -> str:
    """The attributes (keyword and tag) that found values came from, for a refusal message."""
    names = sorted({attributes.get(value, "an identifying header value") for value in values})
    return ", ".join(names)


def find_phi(text_or_bytes: str | bytes, phi_values: Iterable[str]) -> list[str]:
    """Which of ``phi_values`` occur in the text (or the raw bytes of a file), ignoring case.

    A name ("Family^Given^Middle") is also looked for as "Given Family", "Family Given",
    "Family, Given", "Family^Given" and "Given Middle Family"; a date (YYYYMMDD) also as
    YYYY-MM-DD, the form of JSON sidecars. Bytes are read as Latin-1 and as UTF-8, the
    encodings of DICOM's usual character sets and of text outputs.
    """
    if isinstance(text_or_bytes, bytes):
        haystacks = [
            text_or_bytes.decode("latin-1").casefold(),
            text_or_bytes.decode("utf-8", errors="replace").casefold(),
        ]
    else:
        haystacks = [text_or_bytes.casefold()]
    return [
        value
        for value in dict.fromkeys(phi_values)
        if any(variant in haystack for variant in _variants(value) for haystack in haystacks)
    ]


def _variants(value: str) -> set[str]:
    """The forms (case-folded) in which a value may be written: see :func:`find_phi`."""
    value = value.strip()
    variants = {value}
    if "^" in value:
        for group in value.split("="):
            family, given, middle = ([part.strip() for part in group.split("^")] + ["", ""])[:3]
            if family and given:
                variants.update((f"{given} {family}", f"{family} {given}", f"{family}, {given}"))
                variants.add(f"{family}^{given}")
                if middle:
                    variants.add(f"{given} {middle} {family}")
    if len(value) == 8 and value.isdigit():
        with contextlib.suppress(ValueError):  # eight digits, but maybe no date
            variants.add(datetime.strptime(value, "%Y%m%d").date().isoformat())
    return {variant.casefold() for variant in variants if variant}
