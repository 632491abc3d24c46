"""What every training job reads from Snakemake, gathered once (keeps the scripts thin)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from cohortflow.classify.inputs import InputSpec, build_spec
from cohortflow.classify.model import Architecture
from cohortflow.classify.splits import SplitSettings
from cohortflow.classify.train import TrainSettings


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
    named = {"wm_reference", "evaluation"}
    maps = {k: str(v) for k, v in snakemake.input.items() if k not in named}
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
