"""CNN classification of white-matter abnormality (HeteroMRI step D).

Entry points (what the workflow's script shims call): see ``__all__``.
"""

from cohortflow.lazy import entry_points

__getattr__, __all__ = entry_points(
    __name__,
    {
        "classify_job": "cohortflow.classify.jobs",
        "write_dataset": "cohortflow.classify.jobs",
        "collect_predictions": "cohortflow.classify.run",
        "run_cv_split": "cohortflow.classify.run",
        "run_evaluate": "cohortflow.classify.run",
        "run_final": "cohortflow.classify.run",
        "run_permutation": "cohortflow.classify.run",
        "run_predict": "cohortflow.classify.run",
        "SplitSettings": "cohortflow.classify.splits",
    },
)
