"""MRI preprocessing (HeteroMRI step B): N4, registration to MNI, QC.

Entry points (what the workflow's script shims call): see ``__all__``.
"""

_ENTRY_POINTS = {
    "cohort_qc_table": "cohortflow.preprocess.run",
    "run_n4": "cohortflow.preprocess.run",
    "run_registration": "cohortflow.preprocess.run",
    "write_registration_mosaic": "cohortflow.preprocess.run",
    "TEMPLATE_FILES": "cohortflow.preprocess.templates",
    "prepare_template": "cohortflow.preprocess.templates",
}
__all__ = sorted(_ENTRY_POINTS)


def __getattr__(name: str) -> object:
    """Entry points are imported when first used, so that importing one small module of this
    package (as the workflow does when it starts) does not load the heavy ones."""
    if name in _ENTRY_POINTS:
        import importlib

        return getattr(importlib.import_module(_ENTRY_POINTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
