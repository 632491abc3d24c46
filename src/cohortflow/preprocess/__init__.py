"""MRI preprocessing (HeteroMRI step B): N4, registration to MNI, QC.

Entry points (what the workflow's script shims call): see ``__all__``.
"""

from cohortflow.lazy import entry_points

__getattr__, __all__ = entry_points(
    __name__,
    {
        "cohort_qc_table": "cohortflow.preprocess.run",
        "run_n4": "cohortflow.preprocess.run",
        "run_registration": "cohortflow.preprocess.run",
        "write_registration_mosaic": "cohortflow.preprocess.run",
        "TEMPLATE_FILES": "cohortflow.preprocess.templates",
        "prepare_template": "cohortflow.preprocess.templates",
    },
)
