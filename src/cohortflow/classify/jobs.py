"""What every training job reads from Snakemake, gathered once (keeps the scripts thin).

The training jobs (cross-validation splits, permutations, final model) read the labelled
subjects' WM cluster maps through one dataset table (``results/classify/dataset.tsv``,
written by :func:`write_dataset`): subject, label, dataset, protocol, map path and the map's
SHA-256. Besides recording exactly which maps a model saw, it keeps the DAG linear in the
cohort size: a per-subject job that needs the model then depends on a job with three inputs,
not one with every subject's map (Snakemake scans a producer's inputs for each consumer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from cohortflow.classify.inputs import InputSpec, build_spec
from cohortflow.classify.model import Architecture
from cohortflow.classify.splits import SplitSettings
from cohortflow.classify.train import TrainSettings
from cohortflow.io.atomic import atomic_output_file, sha256_file


@dataclass
class ClassifyJob:
    table: pd.DataFrame
    maps: dict[str, str]
    spec: InputSpec
    arch: Architecture
    train: TrainSettings
    split: SplitSettings


def classify_job(snakemake: Any) -> ClassifyJob:
    cfg = snakemake.params.cfg
    maps = read_dataset(snakemake.input.dataset)
    spec = build_spec(
        snakemake.input.wm_reference,
        snakemake.params.space,
        cfg["input"]["resolution_mm"],
        cfg["input"]["shape"],
    )
    return ClassifyJob(
        table=snakemake.params.table,
        maps=maps,
        spec=spec,
        arch=Architecture.from_config(cfg["model"]),
        train=TrainSettings.from_config(cfg["train"]),
        split=SplitSettings.from_config(cfg["split"]),
    )


DATASET_COLUMNS = ["subject", "label", "dataset", "protocol", "wm_map", "sha256"]


def write_dataset(table: pd.DataFrame, maps: dict[str, str], target: str) -> pd.DataFrame:
    """The training set: the rows of ``table`` (subject, label, dataset, protocol) whose
    subject has a map in ``maps``, in table order, with the map's path and SHA-256."""
    missing = sorted(set(maps) - set(table["subject"]))
    if missing:
        raise ValueError(f"WM maps for subjects not in the cohort table: {', '.join(missing)}")
    rows = table[table["subject"].isin(maps)].copy()
    rows["wm_map"] = [str(maps[s]) for s in rows["subject"]]
    rows["sha256"] = [sha256_file(p) for p in rows["wm_map"]]
    rows = rows[DATASET_COLUMNS].reset_index(drop=True)
    with atomic_output_file(target) as tmp:
        rows.to_csv(tmp, sep="\t", index=False)
    return rows


def read_dataset(path: str) -> dict[str, str]:
    """subject -> WM map path, from a table written by :func:`write_dataset`."""
    rows = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    if list(rows.columns) != DATASET_COLUMNS:
        raise ValueError(f"{path}: not a classify dataset table (columns {list(rows.columns)})")
    return dict(zip(rows["subject"], rows["wm_map"], strict=True))
