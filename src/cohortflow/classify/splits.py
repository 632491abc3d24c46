"""Train / validation / test splits that know about datasets and protocols.

Strategies (HeteroMRI's settings):

* ``A`` — stratified by dataset: every dataset × label group is split in the same
  proportions, so test data come from the same datasets (and protocols) as training data.
* ``B`` — balanced by protocol: every protocol × label group is split in the same proportions,
  and the training set keeps the same number of subjects of each protocol (the surplus of
  larger protocols is dropped from training, never moved to the test set).
* ``C`` — leave protocols out: ``holdout_protocols`` whole protocols form the test set, the
  others are split into training and validation (stratified by protocol × label). With
  ``shuffles: null`` every combination is used once (leave-one-protocol-out for 1).

Each split is trained ``runs`` times with different seeds. Everything is drawn from
``numpy.random.default_rng`` seeded by (seed, shuffle), so the same config gives the same
splits on any machine.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cohortflow.errors import ConfigError

STRATEGIES = ("A", "B", "C")


@dataclass(frozen=True)
class SplitSettings:
    strategy: str = "C"
    shuffles: int | None = None
    runs: int = 1
    test_fraction: float = 0.2
    val_fraction: float = 0.2
    holdout_protocols: int = 1
    seed: int = 1

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"classify.split.strategy must be one of {STRATEGIES}")
        if self.runs < 1:
            raise ConfigError("classify.split.runs must be at least 1")
        if self.shuffles is not None and self.shuffles < 1:
            raise ConfigError("classify.split.shuffles must be at least 1 (or null)")
        if not 0 < self.val_fraction < 1 or not 0 < self.test_fraction < 1:
            raise ConfigError("classify.split fractions must lie between 0 and 1")

    @classmethod
    def from_config(cls, cfg: dict) -> SplitSettings:
        return cls(
            strategy=str(cfg.get("strategy", "C")),
            shuffles=None if cfg.get("shuffles") is None else int(cfg["shuffles"]),
            runs=int(cfg.get("runs", 1)),
            test_fraction=float(cfg.get("test_fraction", 0.2)),
            val_fraction=float(cfg.get("val_fraction", 0.2)),
            holdout_protocols=int(cfg.get("holdout_protocols", 1)),
            seed=int(cfg.get("seed", 1)),
        )


@dataclass(frozen=True)
class Split:
    index: int
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]
    held_out: tuple[str, ...] = ()  # protocols (strategy C)

    @property
    def name(self) -> str:
        return f"split-{self.index:02d}"


def labelled(table: pd.DataFrame) -> pd.DataFrame:
    """Rows with a yes/no label; columns subject, label (0/1), dataset, protocol."""
    rows = table[table["label"].isin(["yes", "no"])].copy()
    rows["y"] = (rows["label"] == "yes").astype(int)
    return rows.sort_values("subject").reset_index(drop=True)


def _quotas(sizes: list[int], total: int, rng: np.random.Generator) -> list[int]:
    """Spread ``total`` over groups in proportion to their sizes (largest remainder, random
    tie-break), never taking a group's last member."""
    caps = [max(n - 1, 0) for n in sizes]
    total = min(total, sum(caps))
    exact = [total * n / sum(sizes) for n in sizes] if sum(sizes) else [0.0] * len(sizes)
    quota = [min(int(e), c) for e, c in zip(exact, caps, strict=True)]
    order = sorted(range(len(sizes)), key=lambda i: (-(exact[i] - int(exact[i])), rng.random()))
    while sum(quota) < total:
        for i in order:
            if sum(quota) < total and quota[i] < caps[i]:
                quota[i] += 1
    return quota


def stratified_parts(
    subjects: pd.DataFrame, keys: list[str], fractions: list[float], rng: np.random.Generator
) -> list[list[str]]:
    """Split into parts of the given shares of all subjects (last part = the rest), every
    group of ``keys`` contributing in proportion to its size. A part with a positive share
    gets at least one subject."""
    groups = [
        list(rng.permutation(g["subject"].to_numpy())) for _, g in subjects.groupby(keys, sort=True)
    ]
    parts: list[list[str]] = [[] for _ in range(len(fractions) + 1)]
    n = len(subjects)
    for k, fraction in enumerate(fractions):
        want = max(1, round(fraction * n))
        quota = _quotas([len(g) for g in groups], want, rng)
        for group, q in zip(groups, quota, strict=True):
            parts[k].extend(group[:q])
            del group[:q]
    for group in groups:
        parts[-1].extend(group)
    return [sorted(p) for p in parts]


def stratified_with_fallback(
    subjects: pd.DataFrame, keys: list[str], fractions: list[float], rng: np.random.Generator
) -> list[list[str]]:
    """:func:`stratified_parts` on ``keys``; when the groups are too small to give every
    part a subject (each group keeps its last member), on the label alone."""
    parts = stratified_parts(subjects, keys, fractions, rng)
    if all(parts[:-1]) or keys == ["y"]:
        return parts
    return stratified_parts(subjects, ["y"], fractions, rng)


def make_splits(table: pd.DataFrame, settings: SplitSettings) -> list[Split]:
    """All splits for a labelled table (columns subject, label, dataset, protocol)."""
    data = labelled(table)
    if data.empty:
        raise ConfigError("no subject in the sample sheet has a yes/no label to train on")
    if data["y"].nunique() < 2:
        raise ConfigError("training needs subjects of both labels (yes and no) in the sheet")
    splits: list[Split] = []
    if settings.strategy == "C":
        protocols = sorted(data["protocol"].unique())
        k = settings.holdout_protocols
        if not 1 <= k < len(protocols):
            raise ConfigError(
                f"strategy C holds out {k} protocol(s) but the sheet has {len(protocols)} "
                f"protocol(s) ({', '.join(map(repr, protocols))}); at least one must remain "
                "for training"
            )
        combos = list(itertools.combinations(protocols, k))
        if settings.shuffles is not None and settings.shuffles < len(combos):
            rng = np.random.default_rng([settings.seed, 0])
            picks = sorted(rng.choice(len(combos), settings.shuffles, replace=False))
            combos = [combos[i] for i in picks]
        for index, held in enumerate(combos):
            rng = np.random.default_rng([settings.seed, index])
            rest = data[~data["protocol"].isin(held)]
            val, train = stratified_with_fallback(
                rest, ["protocol", "y"], [settings.val_fraction], rng
            )
            test = sorted(data.loc[data["protocol"].isin(held), "subject"])
            splits.append(Split(index, tuple(train), tuple(val), tuple(test), tuple(held)))
    else:
        keys = ["dataset", "y"] if settings.strategy == "A" else ["protocol", "y"]
        for index in range(settings.shuffles or 1):
            rng = np.random.default_rng([settings.seed, index])
            test, val, train = stratified_with_fallback(
                data, keys, [settings.test_fraction, settings.val_fraction], rng
            )
            if settings.strategy == "B":
                train = _balance_protocols(data, train, rng)
            splits.append(Split(index, tuple(train), tuple(val), tuple(test)))
    for split in splits:
        train_labels = data.set_index("subject").loc[list(split.train), "y"]
        if train_labels.nunique() < 2:
            raise ConfigError(
                f"{split.name} of strategy {settings.strategy}"
                + (f" (held-out protocols {', '.join(split.held_out)})" if split.held_out else "")
                + " has training subjects of one label only; the cohort is too small or "
                "unbalanced for this split (classify.split)"
            )
        for role in ("train", "val", "test"):
            if not getattr(split, role):
                raise ConfigError(
                    f"{split.name} of strategy {settings.strategy} has no {role} subjects "
                    f"({len(data)} labelled subjects); adjust classify.split fractions"
                )
    return splits


def _balance_protocols(data: pd.DataFrame, train: list[str], rng: np.random.Generator) -> list[str]:
    rows = data[data["subject"].isin(train)]
    smallest = rows.groupby("protocol").size().min()
    keep: list[str] = []
    for _, group in rows.groupby("protocol", sort=True):
        # keep the label balance of the group while trimming it to the smallest protocol
        order = group.sort_values("subject")
        picked = (
            stratified_parts(order, ["y"], [smallest / len(order)], rng)[0]
            if len(order) > smallest
            else list(order["subject"])
        )
        keep.extend(picked[:smallest])
    return sorted(keep)


def classify_split_names(cohort, cfg: dict) -> list[str]:
    """Split names of a cohort (for the workflow's DAG); validates the split settings."""
    labelled_rows = cohort.labelled_rows
    if len({r.label for r in labelled_rows}) != len(labelled_rows):
        raise ConfigError(
            "classification needs one session per labelled subject; the sample sheet has "
            "several labelled sessions of the same subject"
        )
    return [s.name for s in make_splits(cohort.classify_table(), SplitSettings.from_config(cfg))]
