"""Ingest: DICOM/NIfTI discovery, series selection, conversion, de-identification.

Entry points (what the workflow's script shims call): see ``__all__``.
"""

from cohortflow.lazy import entry_points

__getattr__, __all__ = entry_points(
    __name__,
    {
        "IngestSettings": "cohortflow.ingest.run",
        "export_deidentified_dicom": "cohortflow.ingest.run",
        "ingest_subject": "cohortflow.ingest.run",
        "check_sources": "cohortflow.ingest.sources",
    },
)
