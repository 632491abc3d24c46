"""Decisions of the genotype QC, as pure functions of PLINK's reports (testable without PLINK).

PLINK computes the metrics; these functions turn them into removals, each with the reason a
reviewer reads in the per-sample or per-variant table:

* :func:`threshold_failures`: one metric above (or below) a threshold (call rates, MAF, HWE).
* :func:`sex_status`: ``plink1.9 --check-sex`` output → ``ok``, ``mismatch`` (genetic sex
  differs from the reported one), ``ambiguous`` (F between the female and male thresholds) or
  ``not reported`` (reported sex unknown, genetic sex given).
* :func:`heterozygosity_outliers`: F further than ``k`` SD from the mean of the samples tested
  (Anderson et al. 2010, Nat Protoc 5:1564).
* :func:`relatedness_removals`: the fewest samples whose removal leaves no pair above the
  kinship threshold (a minimum vertex cover of the relatedness graph, exact per connected
  component up to :data:`EXACT_COMPONENT_MAX` samples, greedy beyond), preferring to remove the
  sample with the worse call rate.
* :func:`pca_outliers`: samples further than ``k`` SD from the mean on any of the first PCs
  (EIGENSOFT's outlier rule, Price et al. 2006, single pass).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import numpy as np
import pandas as pd

#: Largest connected component of the relatedness graph solved exactly (2^n subsets at worst,
#: but the search stops at the smallest cover, which is small for family structures).
EXACT_COMPONENT_MAX = 16

#: KING kinship bounds of the degrees of relationship (Manichaikul et al. 2010, Bioinformatics
#: 26:2867): 2^-1.5, 2^-2.5, 2^-3.5.
KINSHIP_DUPLICATE = 0.354
KINSHIP_FIRST = 0.177
KINSHIP_SECOND = 0.0884
KINSHIP_THIRD = 0.0442


def threshold_failures(values: pd.Series, threshold: float, *, above: bool = True) -> pd.Series:
    """Boolean mask: ``values > threshold`` (or ``< threshold``); NaN never fails."""
    values = pd.to_numeric(values, errors="coerce")
    return (values > threshold) if above else (values < threshold)


def sex_status(sexcheck: pd.DataFrame) -> pd.Series:
    """Status per row of a ``.sexcheck`` table (columns PEDSEX, SNPSEX; codes 1 male, 2 female)."""
    ped = sexcheck["PEDSEX"].astype(int)
    snp = sexcheck["SNPSEX"].astype(int)
    status = pd.Series("ok", index=sexcheck.index, dtype=object)
    status[(ped == 0) & (snp != 0)] = "not reported"
    status[(ped == 0) & (snp == 0)] = "not reported, ambiguous"
    status[(ped != 0) & (snp == 0)] = "ambiguous"
    status[(ped != 0) & (snp != 0) & (ped != snp)] = "mismatch"
    return status


def sex_label(code: int) -> str:
    return {1: "male", 2: "female"}.get(int(code), "unknown")


def heterozygosity_outliers(f: pd.Series, n_sd: float) -> tuple[pd.Series, float, float]:
    """Samples with F outside mean ± ``n_sd`` SD (SD with n − 1); returns the mask, mean, SD.

    With fewer than three samples no SD exists and nothing is flagged."""
    f = pd.to_numeric(f, errors="coerce")
    valid = f.dropna()
    if len(valid) < 3:
        return pd.Series(False, index=f.index), float("nan"), float("nan")
    mean, sd = float(valid.mean()), float(valid.std(ddof=1))
    return (f - mean).abs() > n_sd * sd, mean, sd


def grouped_heterozygosity(f: pd.Series, groups: pd.Series, n_sd: float, min_size: int) -> dict:
    """Heterozygosity outliers judged within ancestry groups (F shifts with ancestry, so a
    pooled band would remove a small group for its ancestry).

    A group of at least ``min_size`` samples (or the only group) is judged as
    :func:`heterozygosity_outliers` judges a cohort: its own mean ± ``n_sd`` SD. A smaller group
    is centred on its own median (robust to the outlier it may hold) with the SD pooled over the
    large groups (their within-group spread; without a large group, the spread of all samples
    around their group medians): it is never judged against another group's centre. Returns
    ``outlier`` (mask), ``centre`` and ``sd`` per sample, and ``groups`` (per group: n, centre,
    sd, basis)."""
    f = pd.to_numeric(f, errors="coerce").reset_index(drop=True)
    groups = pd.Series(np.asarray(groups), dtype=object)
    counts = groups.value_counts()
    large = [g for g, n in counts.items() if len(counts) == 1 or n >= min_size]
    residuals = []
    for g in large:
        values = f[groups == g].dropna()
        if len(values) >= 3:
            residuals.append(values - values.mean())
    if residuals:
        both = pd.concat(residuals)
        pooled_sd = float(np.sqrt((both**2).sum() / max(len(both) - len(residuals), 1)))
    else:
        around = f - f.groupby(groups).transform("median")
        pooled_sd = float(around.dropna().std(ddof=1)) if around.notna().sum() > 2 else np.nan
    centre = pd.Series(np.nan, index=f.index)
    sd = pd.Series(np.nan, index=f.index)
    summary = {}
    for g, n in counts.items():
        rows = (groups == g).to_numpy()
        values = f[rows].dropna()
        if g in large:
            if len(values) < 3:
                c, d = np.nan, np.nan
            else:
                c, d = float(values.mean()), float(values.std(ddof=1))
            basis = "mean"
        else:
            c, d, basis = float(values.median()) if len(values) else np.nan, pooled_sd, "median"
        centre[rows], sd[rows] = c, d
        summary[str(g)] = {"n": int(n), "centre": c, "sd": d, "basis": basis}
    outlier = ((f - centre).abs() > n_sd * sd).fillna(False)
    return {"outlier": outlier, "centre": centre, "sd": sd, "groups": summary}


def kinship_degree(kinship: float) -> str:
    """Relationship implied by a KING kinship coefficient."""
    if kinship >= KINSHIP_DUPLICATE:
        return "duplicate or MZ twin"
    if kinship >= KINSHIP_FIRST:
        return "first degree"
    if kinship >= KINSHIP_SECOND:
        return "second degree"
    if kinship >= KINSHIP_THIRD:
        return "third degree"
    return "unrelated"


def _components(edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        parent[find(a)] = find(b)
    groups: dict[str, list[str]] = {}
    for node in parent:
        groups.setdefault(find(node), []).append(node)
    return [sorted(group) for group in groups.values()]


def relatedness_removals(pairs: pd.DataFrame, missingness: pd.Series) -> list[str]:
    """The samples to remove so that no related pair is left, as few as possible.

    ``pairs`` has columns ``a`` and ``b`` (sample keys) for every pair at or above the kinship
    threshold; ``missingness`` maps sample key → F_MISS (higher is worse; absent counts as 0).
    Among covers of the smallest size the one removing the highest summed missingness wins, then
    the one removing the keys that sort first, so the result is deterministic.
    """
    edges = [(str(a), str(b)) for a, b in zip(pairs["a"], pairs["b"], strict=True) if a != b]
    removed: list[str] = []

    def badness(node: str) -> float:
        value = missingness.get(node, 0.0)
        return 0.0 if pd.isna(value) else float(value)

    for component in _components(edges):
        nodes = set(component)
        local = [(a, b) for a, b in edges if a in nodes]
        if len(component) <= EXACT_COMPONENT_MAX:
            removed.extend(_exact_cover(component, local, badness))
        else:
            removed.extend(_greedy_cover(local, badness))
    return sorted(removed)


def _exact_cover(nodes: list[str], edges: list[tuple[str, str]], badness) -> list[str]:
    for size in range(1, len(nodes)):
        best: tuple[float, tuple[str, ...]] | None = None
        for subset in itertools.combinations(nodes, size):
            chosen = set(subset)
            if all(a in chosen or b in chosen for a, b in edges):
                key = (-sum(badness(n) for n in subset), subset)
                if best is None or key < best:
                    best = key
        if best is not None:
            return list(best[1])
    return nodes[:-1]  # unreachable for a connected component, kept for safety


def _greedy_cover(edges: list[tuple[str, str]], badness) -> list[str]:
    remaining = set(edges)
    removed = []
    while remaining:
        degree: dict[str, int] = {}
        for a, b in remaining:
            degree[a] = degree.get(a, 0) + 1
            degree[b] = degree.get(b, 0) + 1
        node = min(degree, key=lambda n: (-degree[n], -badness(n), n))
        removed.append(node)
        remaining = {(a, b) for a, b in remaining if node not in (a, b)}
    return removed


def pca_outliers(pcs: pd.DataFrame, n_pcs: int, n_sd: float) -> tuple[pd.Series, pd.Series]:
    """Samples further than ``n_sd`` SD from the mean on any of the first ``n_pcs`` PCs.

    Returns the mask and, per sample, the PCs on which it is an outlier (e.g. ``"PC1;PC3"``)."""
    columns = [f"PC{i}" for i in range(1, n_pcs + 1) if f"PC{i}" in pcs.columns]
    values = pcs[columns].to_numpy(dtype=float)
    if len(values) < 3:
        return pd.Series(False, index=pcs.index), pd.Series("", index=pcs.index)
    z = np.abs(values - values.mean(axis=0)) / values.std(axis=0, ddof=1)
    flagged = z > n_sd
    which = [";".join(c for c, f in zip(columns, row, strict=True) if f) for row in flagged]
    return pd.Series(flagged.any(axis=1), index=pcs.index), pd.Series(which, index=pcs.index)


def minor_allele_frequency(alt_freq: pd.Series) -> pd.Series:
    freq = pd.to_numeric(alt_freq, errors="coerce")
    return np.minimum(freq, 1 - freq)
