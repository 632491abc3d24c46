"""Defacing (NIfTI and de-identified DICOM) and its evaluation (DefaceQA-style).

Entry points (what the workflow's script shims call): see ``__all__``.
"""

from cohortflow.lazy import entry_points

__getattr__, __all__ = entry_points(
    __name__,
    {
        "DefaceSettings": "cohortflow.deface.defacer",
        "run_decisions": "cohortflow.deface.run",
        "run_deface": "cohortflow.deface.run",
        "run_evaluate": "cohortflow.deface.run",
        "run_export_dicom": "cohortflow.deface.run",
        "run_import_defaced": "cohortflow.deface.run",
        "run_pairs": "cohortflow.deface.run",
        "run_template": "cohortflow.deface.run",
        "run_train": "cohortflow.deface.run",
    },
)
