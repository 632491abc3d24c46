"""FHIR R4 export following the MII imaging module (Bildgebung), with validation and upload.

Entry points (what the workflow's script shims call): see ``__all__``.
"""

from cohortflow.lazy import entry_points

__getattr__, __all__ = entry_points(
    __name__,
    {
        "run_genotypes": "cohortflow.fhir.run",
        "run_subject": "cohortflow.fhir.run",
        "run_upload": "cohortflow.fhir.run",
    },
)
