"""Genotype QC and association (PLINK 2 and 1.9 as engines).

Entry points (what the workflow's script shims call): see ``__all__``.
"""

from cohortflow.lazy import entry_points

__getattr__, __all__ = entry_points(
    __name__,
    {
        "run_association_job": "cohortflow.genotype_qc.run",
        "run_clean": "cohortflow.genotype_qc.run",
        "run_qc_step": "cohortflow.genotype_qc.run",
        "run_report": "cohortflow.genotype_qc.run",
    },
)
