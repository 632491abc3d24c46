"""Job entry points of the genotype rules (one per rule; the Snakemake scripts call these).

PLINK gets the rule's ``threads`` and 90 % of its ``mem_mb`` (``--memory``), leaving the rest
for the job's own Python process.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from cohortflow.genotype_qc.plink import PlinkSession
from cohortflow.genotype_qc.steps import (
    InputSettings,
    QCSettings,
    run_step,
    step_dir_name,
    write_clean_fileset,
)

log = logging.getLogger(__name__)


def plink_session(threads: int, mem_mb: int) -> PlinkSession:
    return PlinkSession(threads=max(1, int(threads)), memory_mb=max(256, int(mem_mb * 0.9)))


def _prefix(bed: str | Path) -> Path:
    return Path(str(bed).removesuffix(".bed"))


def run_qc_step(
    name: str,
    step_dir: str | Path,
    genotypes: dict[str, Any],
    qc: dict[str, Any],
    threads: int,
    mem_mb: int,
) -> dict[str, Any]:
    """Run one QC step; ``step_dir`` is its output folder (its parent holds the earlier ones)."""
    step_dir = Path(step_dir)
    inputs = InputSettings.from_config(genotypes) if name == "import" else None
    return run_step(
        name, step_dir.parent, QCSettings.from_config(qc), plink_session(threads, mem_mb), inputs
    )


def run_clean(steps_root: str | Path, bed: str | Path, threads: int, mem_mb: int) -> None:
    prefix = _prefix(bed)
    write_clean_fileset(steps_root, prefix, plink_session(threads, mem_mb))
    log.info("clean fileset: %s.{bed,bim,fam}", prefix)


def run_report(steps_root: str | Path, bed: str | Path, out_dir: str | Path) -> dict[str, Any]:
    from cohortflow.genotype_qc.report import write_report

    summary = write_report(steps_root, _prefix(bed), out_dir)
    log.info(
        "QC kept %d of %d samples and %d of %d variants",
        summary["samples_kept"], summary["samples_in"],
        summary["variants_kept"], summary["variants_in"],
    )  # fmt: skip
    return summary


def run_association_job(
    bed: str | Path,
    steps_root: str | Path,
    genotypes: dict[str, Any],
    settings: dict[str, Any],
    out_dir: str | Path,
    threads: int,
    mem_mb: int,
) -> dict[str, Any]:
    """Association on the clean fileset with the QC's PCs and its normalised phenotype table
    (the phenotype coded 1/2 and aligned with the fileset's IDs by the import step)."""
    from cohortflow.genotype_qc.association import AssociationSettings, run_association

    steps_root = Path(steps_root)
    merged = {
        **settings,
        "phenotype": genotypes["phenotype"],
        "covariates": tuple(genotypes.get("covariates") or ()),
    }
    session = plink_session(threads, mem_mb)
    return run_association(
        _prefix(bed),
        steps_root / step_dir_name("pca") / "eigenvec.tsv",
        steps_root / step_dir_name("import") / "phenotype.tsv",
        AssociationSettings.from_config(merged),
        out_dir,
        threads=session.threads,
        memory_mb=session.memory_mb,
    )
