"""CNN classification of white-matter abnormality (HeteroMRI step D).

Entry points (what the workflow's script shims call): see ``__all__``.
"""

_ENTRY_POINTS = {
    "classify_job": "cohortflow.classify.jobs",
    "write_dataset": "cohortflow.classify.jobs",
    "collect_predictions": "cohortflow.classify.run",
    "run_cv_split": "cohortflow.classify.run",
    "run_evaluate": "cohortflow.classify.run",
    "run_final": "cohortflow.classify.run",
    "run_permutation": "cohortflow.classify.run",
    "run_predict": "cohortflow.classify.run",
    "SplitSettings": "cohortflow.classify.splits",
}
__all__ = sorted(_ENTRY_POINTS)


def __getattr__(name: str) -> object:
    """Entry points are imported when first used, so that importing one small module of this
    package (as the workflow does when it starts) does not load the heavy ones."""
    if name in _ENTRY_POINTS:
        import importlib

        return getattr(importlib.import_module(_ENTRY_POINTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
