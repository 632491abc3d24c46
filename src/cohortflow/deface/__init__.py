"""Defacing (NIfTI and de-identified DICOM) and its evaluation (DefaceQA-style).

Entry points (what the workflow's script shims call): see ``__all__``.
"""

_ENTRY_POINTS = {
    "DefaceSettings": "cohortflow.deface.defacer",
    "run_decisions": "cohortflow.deface.run",
    "run_deface": "cohortflow.deface.run",
    "run_evaluate": "cohortflow.deface.run",
    "run_export_dicom": "cohortflow.deface.run",
    "run_import_defaced": "cohortflow.deface.run",
    "run_pairs": "cohortflow.deface.run",
    "run_template": "cohortflow.deface.run",
    "run_train": "cohortflow.deface.run",
}
__all__ = sorted(_ENTRY_POINTS)


def __getattr__(name: str) -> object:
    """Entry points are imported when first used, so that importing one small module of this
    package (as the workflow does when it starts) does not load the heavy ones."""
    if name in _ENTRY_POINTS:
        import importlib

        return getattr(importlib.import_module(_ENTRY_POINTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
