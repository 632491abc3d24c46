"""Ingest: DICOM/NIfTI discovery, series selection, conversion, de-identification.

Entry points (what the workflow's script shims call): see ``__all__``.
"""

_ENTRY_POINTS = {
    "IngestSettings": "cohortflow.ingest.run",
    "export_deidentified_dicom": "cohortflow.ingest.run",
    "ingest_subject": "cohortflow.ingest.run",
    "check_sources": "cohortflow.ingest.sources",
}
__all__ = sorted(_ENTRY_POINTS)


def __getattr__(name: str) -> object:
    """Entry points are imported when first used, so that importing one small module of this
    package (as the workflow does when it starts) does not load the heavy ones."""
    if name in _ENTRY_POINTS:
        import importlib

        return getattr(importlib.import_module(_ENTRY_POINTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
