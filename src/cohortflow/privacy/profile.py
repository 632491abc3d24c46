"""What de-identification does to one attribute: the PS3.15 table's action, our sweep, our
keep-list (data in :mod:`cohortflow.privacy.ps3_15`)."""

from __future__ import annotations

from pydicom.dataelem import DataElement
from pydicom.tag import BaseTag

from cohortflow.privacy.ps3_15 import (
    ACQUISITION_KEEP_TAGS,
    BASIC_PROFILE,
    COMPOUND_RESOLUTION,
    DESCRIPTOR_TAGS,
)


def profile_action(tag: BaseTag, *, keep_descriptions: bool = False) -> str | None:
    """The simple action (D, Z, X, C or U) for an attribute, or None when the table keeps it.

    Compound codes are resolved with :data:`COMPOUND_RESOLUTION`; private, curve, overlay and
    group length attributes are removed (see :mod:`cohortflow.privacy.deidentify`).
    """
    if tag.is_private or tag.element == 0x0000 or _in_repeating_group(tag.group):
        return "X"
    if keep_descriptions and tag in DESCRIPTOR_TAGS:
        return "C"
    code = BASIC_PROFILE.get(tag)
    return None if code is None else COMPOUND_RESOLUTION.get(code, code)


def _in_repeating_group(group: int) -> bool:
    """Curve (50xx) or overlay (60xx) group: even groups 0x5000-0x501E and 0x6000-0x601E."""
    return group % 2 == 0 and (0x5000 <= group <= 0x501E or 0x6000 <= group <= 0x601E)


def sweep_action(elem: DataElement) -> str | None:
    """Defence in depth for attributes the table does not list: names go, dates are emptied."""
    if elem.is_empty:
        return None
    if elem.VR == "PN":
        return "X"
    if elem.VR in ("DA", "DT"):
        return "Z"
    return None


def action_for(elem: DataElement, keep_descriptions: bool) -> str | None:
    """The table's action, else the sweep's; None: not named by either (see :func:`kept`)."""
    return profile_action(elem.tag, keep_descriptions=keep_descriptions) or sweep_action(elem)


def kept(elem: DataElement) -> bool:
    """Whether an attribute that neither the table nor the sweep names is kept: only those on
    the acquisition keep-list are; every other one is removed."""
    return elem.tag in ACQUISITION_KEEP_TAGS


def attribute_name(elem: DataElement) -> str:
    """How refusals name an attribute: keyword and tag, never the value."""
    tag = f"({elem.tag.group:04X},{elem.tag.element:04X})"
    if elem.tag.is_private:
        return f"private attribute {tag}"
    return f"{elem.keyword or 'unknown attribute'} {tag}"
