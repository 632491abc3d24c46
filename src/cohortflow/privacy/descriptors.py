"""Series descriptions rebuilt from a controlled vocabulary: an allow-list, not a deny-list.

Sites type anything into Series Description, Protocol Name, Study Description or a sequence
name: a surname, a transliterated name (Mueller for Müller), the site's own subject code, a date
in any notation. None of that can be recognised reliably, so no source text is ever copied.
Instead a description is *rebuilt*: the source text is cut into tokens, and only tokens that are
terms of :data:`VOCABULARY` (contrast, sequence family, 2D/3D, plane, contrast agent, image
part), or numbers with a unit of an acquisition parameter (``1mm``, ``2.5mm``, ``3T``,
``32ch``), are kept, each written in its canonical spelling. Every other token is dropped; the
result holds nothing that is not ours.

``t1_mprage_sag_p2_iso_Mueller`` becomes ``T1 MPRAGE SAG ISO``; ``AX FLAIR post Gd 12.03.1961``
becomes ``AX FLAIR POST-CONTRAST``.
"""

from __future__ import annotations

import re

#: Canonical term -> the spellings (case-insensitive, whole tokens) that map to it.
_TERMS: dict[str, tuple[str, ...]] = {
    # contrast / weighting
    "FLAIR": ("flair", "darkfluid", "tirm", "t2flair", "t1flair"),
    "T1": ("t1",),
    "T1W": ("t1w",),
    "T2": ("t2",),
    "T2W": ("t2w",),
    "PD": ("pd", "pdw"),
    "T2STAR": ("t2star", "t2s", "t2*"),
    "DIR": ("dir",),
    "STIR": ("stir",),
    "PSIR": ("psir",),
    "IR": ("ir", "tir"),
    "DWI": ("dwi", "diff", "diffusion"),
    "DTI": ("dti",),
    "ADC": ("adc",),
    "SWI": ("swi", "swan"),
    "TOF": ("tof",),
    "ASL": ("asl", "pcasl", "pasl"),
    "BOLD": ("bold", "fmri"),
    # sequence families (vendor names included)
    "MPRAGE": ("mprage", "mp2rage", "mpr"),
    "SPACE": ("space", "spc"),
    "CUBE": ("cube",),
    "VISTA": ("vista",),
    "BRAVO": ("bravo",),
    "TSE": ("tse",),
    "FSE": ("fse",),
    "SE": ("se",),
    "GRE": ("gre", "fl", "fl3d", "fl2d"),
    "SPGR": ("spgr", "fspgr", "irfspgr"),
    "FFE": ("ffe",),
    "TFE": ("tfe",),
    "TFL": ("tfl",),
    "FLASH": ("flash",),
    "VIBE": ("vibe",),
    "EPI": ("epi", "ep"),
    "HASTE": ("haste",),
    "BLADE": ("blade", "propeller"),
    "FIESTA": ("fiesta",),
    "CISS": ("ciss",),
    "DESS": ("dess",),
    "MEDIC": ("medic",),
    "SPIR": ("spir",),
    "SPAIR": ("spair",),
    "FATSAT": ("fs", "fatsat"),
    # acquisition geometry
    "2D": ("2d",),
    "3D": ("3d",),
    "ISO": ("iso", "isotropic"),
    "SAG": ("sag", "sagittal"),
    "COR": ("cor", "coronal"),
    "AX": ("ax", "axial", "tra", "transversal", "transverse"),
    "OBL": ("obl", "oblique"),
    # contrast agent
    "POST-CONTRAST": ("post", "gd", "gad", "ce", "km", "contrast", "c+"),
    "PRE-CONTRAST": ("pre", "nativ", "native", "c-"),
    # image part / processing
    "MAG": ("mag", "magnitude"),
    "PHASE": ("pha", "phase"),
    "ND": ("nd",),
    "NORM": ("norm",),
    "MOCO": ("moco",),
    "MIP": ("mip",),
    "LOCALIZER": ("localizer", "localiser", "scout", "survey", "aahead", "aascout"),
    "BRAIN": ("brain", "head", "neuro", "cranial", "kopf", "schaedel"),
}

#: Spelling (case-folded) -> canonical term.
VOCABULARY: dict[str, str] = {
    spelling: term for term, spellings in _TERMS.items() for spelling in spellings
}
#: Numbers with the unit of an acquisition parameter: voxel/slice size, field strength, coil
#: channels, times. A bare number is dropped: it may be a date or an ID.
_PARAMETER = re.compile(
    r"^(?P<value>\d{1,3}(?:\.\d{1,2})?)(?P<unit>mm|t|ch|ms)$"
    r"|^(?P<size>\d{1,3}(?:\.\d{1,2})?(?:x\d{1,3}(?:\.\d{1,2})?){1,2})(?P<sunit>mm)$"
)
_TOKEN = re.compile(r"[A-Za-z0-9.*+\-]+")
_UNITS = {"mm": "mm", "t": "T", "ch": "ch", "ms": "ms"}


def _tokens(text: str) -> list[str]:
    """Candidate tokens: runs of letters/digits (and . * + - inside them), also split at _."""
    found = []
    for raw in _TOKEN.findall(text.replace("_", " ")):
        raw = raw.strip(".-")
        if not raw:
            continue
        found.append(raw)
        if "-" in raw:  # "dark-fluid", "MP-RAGE": the joined form, then the parts
            found[-1] = raw.replace("-", "")
            if found[-1].casefold() not in VOCABULARY:
                found[-1:] = [part for part in raw.split("-") if part]
    return found


def _canonical(token: str) -> str | None:
    folded = token.casefold()
    if folded in VOCABULARY:
        return VOCABULARY[folded]
    match = _PARAMETER.match(folded)
    if match is None:
        return None
    if match["size"]:
        return f"{match['size']}mm"
    return f"{match['value']}{_UNITS[match['unit']]}"


def rebuild_description(*texts: object) -> str:
    """The controlled-vocabulary description of one or more source texts ("" if none is left).

    Terms keep their first-seen order and appear once.
    """
    terms: list[str] = []
    for text in texts:
        for token in _tokens(str(text or "")):
            term = _canonical(token)
            if term is not None and term not in terms:
                terms.append(term)
    return " ".join(terms)


_CODE_PART = re.compile(r"\d[dD]|[A-Za-z]+")
_PREFIXES = sorted((s for s in VOCABULARY if len(s) >= 2 and s.isalpha()), key=len, reverse=True)


def rebuild_sequence_name(text: object) -> str:
    """A vendor sequence code (``*tfl3d1_16ns``, ``*spcir_278ns``, ``T1_TFE``) as vocabulary
    terms (``TFL 3D``, ``SPACE``, ``T1 TFE``): the letters of each part are matched as a whole,
    else by their longest vocabulary prefix; digits are dropped except a 2D/3D."""
    terms: list[str] = []
    for part in _CODE_PART.findall(str(text or "")):
        folded = part.casefold()
        term = VOCABULARY.get(folded) or next(
            (VOCABULARY[p] for p in _PREFIXES if folded.startswith(p)), None
        )
        if term is not None and term not in terms:
            terms.append(term)
    return " ".join(terms)


def is_vocabulary_text(text: str) -> bool:
    """Whether ``text`` consists only of vocabulary terms and parameter numbers (so it can
    identify no one, and the PHI scanner need not look for it)."""
    tokens = _tokens(text)
    return bool(tokens) and all(_canonical(token) is not None for token in tokens)
