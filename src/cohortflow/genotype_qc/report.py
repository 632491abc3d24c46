"""The QC's account: per-sample and per-variant tables, attrition, and the QC plots.

Built from the step folders (see :mod:`cohortflow.genotype_qc.steps`) and checked against the
clean fileset: every sample and variant of the input that is not in the clean fileset must
have a recorded reason, or the report refuses to be written.

Tables (tab-separated):

``samples.tsv``
    every input sample: reported sex, phenotype, call rate metrics, ancestry group with its
    probability and reference-PC coordinates, chrX F with genetic sex, status and the group
    whose frequencies gave it, heterozygosity F with its group's centre and SD, relatives and
    the highest kinship, PCs and outlier flag, and
    ``status`` (kept/removed), ``removed_at`` (step), ``reasons`` (codes) and ``details``.
``variants.tsv.gz``
    every input variant: position, alleles, pre-filter and final missingness, MAF, HWE p and
    the same status columns.
``attrition.tsv``
    per step: samples and variants in, removed and out, and the count per reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from cohortflow.errors import CohortflowError
from cohortflow.genotype_qc import decide
from cohortflow.genotype_qc.inputs import with_ext
from cohortflow.genotype_qc.plink import read_bim, read_fam
from cohortflow.genotype_qc.steps import STEPS, read_step_record, step_dir_name
from cohortflow.io.atomic import atomic_output_file, write_json, write_tsv_gz

PLOTS = ("missingness_heterozygosity", "sex_check", "kinship", "pca", "ancestry", "hwe_qq")
GROUP_COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3",
                 "#8c8c8c", "#ccb974", "#64b5cd")  # fmt: skip
STATUS_COLOURS = {"kept": "#4c72b0", "removed": "#c44e52"}


class QCAccountError(CohortflowError):
    """The clean fileset and the recorded removals disagree (a bug, never user data)."""


def _read(path: Path, **kwargs) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"FID": str, "IID": str, "ID": str}, **kwargs)


def _steps(root: Path) -> dict[str, Path]:
    return {name: root / step_dir_name(name) for name in STEPS}


def _collapse(removed: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    if removed.empty:
        return pd.DataFrame(columns=[*keys, "removed_at", "reasons", "details"])
    return (
        removed.groupby(keys, sort=False)
        .agg(
            removed_at=("step", "first"),
            reasons=("reason", lambda r: ";".join(dict.fromkeys(r))),
            details=("detail", " | ".join),
        )
        .reset_index()
    )


def sample_table(root: Path) -> pd.DataFrame:
    steps = _steps(root)
    table = _read(steps["import"] / "samples.tsv")
    for name in STEPS[1:]:
        path = steps[name] / "samples.tsv"
        if path.is_file():
            metrics = _read(path)
            table = table.merge(metrics, on=["FID", "IID"], how="left", suffixes=("", f"_{name}"))
    removed = pd.concat([_read(steps[n] / "removed_samples.tsv") for n in STEPS])
    table = table.merge(_collapse(removed, ["FID", "IID"]), on=["FID", "IID"], how="left")
    table.insert(2, "status", np.where(table["removed_at"].isna(), "kept", "removed"))
    return table


def variant_table(root: Path) -> pd.DataFrame:
    steps = _steps(root)
    table = _read(steps["import"] / "variants.tsv")
    for name in ("variant_callrate", "variant_final"):
        table = table.merge(_read(steps[name] / "variants.tsv"), on="ID", how="left")
    removed = pd.concat([_read(steps[n] / "removed_variants.tsv") for n in STEPS])
    table = table.merge(_collapse(removed, ["ID"]), on="ID", how="left")
    table.insert(1, "status", np.where(table["removed_at"].isna(), "kept", "removed"))
    return table


def attrition_table(root: Path) -> pd.DataFrame:
    rows = []
    for name, folder in _steps(root).items():
        record = read_step_record(root, name)
        reasons = pd.concat([
            _read(folder / "removed_samples.tsv")["reason"],
            _read(folder / "removed_variants.tsv")["reason"],
        ]).value_counts()  # fmt: skip
        rows.append({
            "step": name, "title": record["title"],
            "samples_in": record["samples_in"], "samples_removed": record["samples_removed"],
            "samples_out": record["samples_out"], "variants_in": record["variants_in"],
            "variants_removed": record["variants_removed"],
            "variants_out": record["variants_out"],
            "reasons": "; ".join(f"{k}: {v}" for k, v in sorted(reasons.items())),
        })  # fmt: skip
    return pd.DataFrame(rows)


def check_account(
    samples: pd.DataFrame, variants: pd.DataFrame, clean_prefix: Path
) -> dict[str, int]:
    """Every input sample/variant is either in the clean fileset or removed with a reason."""
    fam = read_fam(with_ext(clean_prefix, ".fam"))
    bim = read_bim(with_ext(clean_prefix, ".bim"))
    kept_s = set(zip(fam["FID"], fam["IID"], strict=True))
    kept_v = set(bim["ID"])
    sample_keys = list(zip(samples["FID"], samples["IID"], strict=True))
    in_clean = np.array([k in kept_s for k in sample_keys])
    problems = []
    if (in_clean != (samples["status"] == "kept").to_numpy()).any():
        problems.append("samples: clean fileset and kept status differ")
    if (samples.loc[~in_clean, "reasons"].isna()).any():
        problems.append("samples removed without a recorded reason")
    v_in = variants["ID"].isin(kept_v).to_numpy()
    if (v_in != (variants["status"] == "kept").to_numpy()).any():
        problems.append("variants: clean fileset and kept status differ")
    if variants.loc[~v_in, "reasons"].isna().any():
        problems.append("variants removed without a recorded reason")
    if len(kept_s) != len(fam) or not kept_s <= set(sample_keys):
        problems.append("clean fileset has samples that are not in the input")
    if problems:
        raise QCAccountError(f"{clean_prefix}: " + "; ".join(problems))
    return {"samples_kept": len(fam), "variants_kept": len(bim)}


# ----------------------------------------------------------------------------------- plots
def _save(fig: plt.Figure, path: Path) -> None:
    with atomic_output_file(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def _by_status(ax, x, y, status, groups=None, **kwargs) -> None:
    """Kept samples blue (or, with several ancestry groups, coloured by group), removed red."""
    status = np.asarray(status)
    several = groups is not None and pd.Series(groups).dropna().nunique() > 1
    if several:
        groups = pd.Series(np.asarray(groups, dtype=object)).fillna("unknown").astype(str)
        for name, colour in _group_colours(groups).items():
            mask = (status == "kept") & (groups == name).to_numpy()
            if mask.any():
                ax.scatter(x[mask], y[mask], s=12, c=colour, alpha=0.8,
                           label=f"kept, {name} ({int(mask.sum())})", **kwargs)  # fmt: skip
    for name, colour in STATUS_COLOURS.items():
        if several and name == "kept":
            continue
        mask = status == name
        if mask.any():
            ax.scatter(x[mask], y[mask], s=12, c=colour, label=f"{name} ({int(mask.sum())})",
                       alpha=0.8, **kwargs)  # fmt: skip


def plot_missingness_heterozygosity(samples: pd.DataFrame, root: Path, path: Path) -> None:
    record = read_step_record(root, "heterozygosity")
    settings, extra = record["settings"], record["extra"]
    tested = samples.dropna(subset=["het_F", "F_MISS"])
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    _by_status(ax, tested["F_MISS"].to_numpy(), tested["het_F"].to_numpy(), tested["status"],
               tested.get("ancestry_group"))  # fmt: skip
    ax.axvline(settings["sample_missing"], ls="--", c="grey", lw=1)
    mean, sd, k = extra["het_mean"], extra["het_sd"], settings["het_n_sd"]
    if np.isfinite(mean) and np.isfinite(sd):
        for bound in (mean - k * sd, mean + k * sd):
            ax.axhline(bound, ls=":", c="grey", lw=1)
    ax.set_xscale("symlog", linthresh=1e-3)
    ax.set_xlim(left=0)  # a share of genotypes: no negative ticks
    ax.set_xlabel("sample missingness (F_MISS, share of genotypes missing)")
    ax.set_ylabel("heterozygosity F (LD-pruned autosomes)")
    n_untested = len(samples) - len(tested)
    bands = "" if np.isfinite(mean) else "; bands per ancestry group, see samples.tsv"
    ax.set_title(
        "Sample missingness vs autosomal heterozygosity F per sample"
        + (
            f"\n({n_untested} removed before the heterozygosity step{bands})"
            if n_untested
            else f"\n({bands.removeprefix('; ')})"
            if bands
            else ""
        ),
        fontsize=9,
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def plot_sex_check(samples: pd.DataFrame, root: Path, path: Path) -> None:
    record = read_step_record(root, "sex_check")
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    if "sex_F" not in samples.columns or samples["sex_F"].isna().all():
        ax.text(0.5, 0.5, "sex not checkable: no chrX variants", ha="center", va="center")
        ax.set_axis_off()
    else:
        tested = samples.dropna(subset=["sex_F"])
        groups = ["female", "male", "unknown"]
        x = tested["sex_reported"].map({g: i for i, g in enumerate(groups)}).to_numpy(float)
        jitter = np.random.default_rng(0).uniform(-0.2, 0.2, len(x))
        problem = ~tested["sex_status"].isin(["ok"]).to_numpy()
        group = tested.get("ancestry_group", pd.Series("cohort", index=tested.index))
        group = group.fillna("unknown").astype(str)
        for name, colour in _group_colours(group).items():
            mask = ~problem & (group == name).to_numpy()
            label = f"ok, {name}" if group.nunique() > 1 else "ok"
            ax.scatter(x[mask] + jitter[mask], tested["sex_F"][mask], s=12, c=colour,
                       label=f"{label} ({int(mask.sum())})")  # fmt: skip
        ax.scatter(x[problem] + jitter[problem], tested["sex_F"][problem], s=30, c="#c44e52",
                   marker="x", label=f"problem ({int(problem.sum())})")  # fmt: skip
        s = record["settings"]
        ax.axhline(s["sex_female_max_f"], ls="--", c="grey", lw=1)
        ax.axhline(s["sex_male_min_f"], ls="--", c="grey", lw=1)
        ax.set_xticks(range(len(groups)), groups)
        ax.set_xlabel("reported sex")
        ax.set_ylabel("chrX inbreeding F")
        ax.legend(fontsize=8)
    ax.set_title("Sex check: chrX inbreeding F by reported sex (plink1.9 --check-sex)", fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def plot_kinship(root: Path, path: Path) -> None:
    folder = root / step_dir_name("relatedness")
    record = read_step_record(root, "relatedness")
    pairs = _read(folder / "kinship_pairs.tsv")
    related = pairs["related"].astype(str).str.lower().eq("true").to_numpy()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    if pairs.empty:
        ax.text(0.5, 0.5, "no pair closer than third degree", ha="center", va="center",
                transform=ax.transAxes)  # fmt: skip
    ax.scatter(pairs["IBS0"][~related], pairs["KINSHIP"][~related], s=12, c="#4c72b0",
               label=f"below threshold ({int((~related).sum())})")  # fmt: skip
    ax.scatter(pairs["IBS0"][related], pairs["KINSHIP"][related], s=18, c="#c44e52",
               label=f"related ({int(related.sum())})")  # fmt: skip
    ax.legend(fontsize=8)
    for bound in (decide.KINSHIP_THIRD, decide.KINSHIP_SECOND, decide.KINSHIP_FIRST,
                  decide.KINSHIP_DUPLICATE):  # fmt: skip
        ax.axhline(bound, ls=":", c="grey", lw=1)
    ax.axhline(record["settings"]["kinship"], ls="--", c="black", lw=1)
    ax.set_xlabel("IBS0 (share of SNPs sharing no allele)")
    ax.set_xlim(left=0)
    ax.set_ylabel("KING kinship")
    ax.set_ylim(min(0.0, ax.get_ylim()[0]), 0.55)
    ax.set_title(
        f"KING-robust kinship of pairs closer than third degree "
        f"({record['extra']['n_pairs']} at or above {record['settings']['kinship']})",
        fontsize=9
    )  # fmt: skip
    fig.tight_layout()
    _save(fig, path)


def _group_colours(groups: pd.Series) -> dict[str, str]:
    names = sorted(groups.dropna().astype(str).unique())
    return {g: GROUP_COLOURS[i % len(GROUP_COLOURS)] for i, g in enumerate(names)}


def plot_pca(samples: pd.DataFrame, path: Path) -> None:
    have = [c for c in ("PC1", "PC2", "PC3", "PC4") if c in samples.columns]
    tested = samples.dropna(subset=have[:1]) if have else samples.iloc[:0]
    panels = [(a, b) for a, b in (("PC1", "PC2"), ("PC3", "PC4")) if a in have and b in have]
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(5 * max(len(panels), 1), 4.5))
    axes = np.atleast_1d(axes)
    outlier = tested.get("pca_outlier", pd.Series(False, index=tested.index))
    outlier = outlier.astype(str).str.lower().eq("true").to_numpy()
    group = tested.get("ancestry_group", pd.Series("cohort", index=tested.index)).astype(str)
    colours = _group_colours(group)
    for ax, (a, b) in zip(axes, panels, strict=False):
        for name, colour in colours.items():
            mask = (group == name).to_numpy() & ~outlier
            ax.scatter(tested[a][mask], tested[b][mask], s=10, c=colour,
                       label=f"{name} ({int(mask.sum())})")  # fmt: skip
        if outlier.any():
            ax.scatter(tested[a][outlier], tested[b][outlier], s=30, c="#c44e52", marker="x",
                       label=f"outliers ({int(outlier.sum())})")  # fmt: skip
        ax.set_xlabel(a)
        ax.set_ylabel(b)
        ax.legend(fontsize=8)
    if not panels:
        axes[0].text(0.5, 0.5, "too few PCs to plot", ha="center", va="center")
    fig.suptitle(
        "Cohort PCA (LD-pruned SNPs, unrelated samples), coloured by ancestry group", fontsize=9
    )
    fig.tight_layout()
    _save(fig, path)


def plot_ancestry(samples: pd.DataFrame, root: Path, path: Path) -> None:
    """The cohort on the reference panel's PCs, coloured by assigned group, over the reference
    samples in grey; without a reference, a note (and the structure warning, if any)."""
    folder = root / step_dir_name("ancestry")
    reference_file = folder / "reference_pcs.tsv"
    pca_record = read_step_record(root, "pca")
    if not reference_file.is_file():
        fig, ax = plt.subplots(figsize=(6, 3))
        text = "no ancestry reference configured:\nevery sample judged in one group (cohort)"
        warning = pca_record["extra"].get("structure_warning")
        if warning:
            text += "\n\nWARNING: the cohort's PCs show structure;\nconfigure "
            text += "genotype_qc.ancestry.reference"
        ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=9)
        ax.set_axis_off()
        ax.set_title("Ancestry: cohort projected on a reference panel", fontsize=9)
        fig.tight_layout()
        _save(fig, path)
        return
    reference = pd.read_csv(reference_file, sep="\t", dtype={"IID": str})
    cohort = samples.dropna(subset=["ancestry_PC1"]) if "ancestry_PC1" in samples else samples[:0]
    panels = [(a, b) for a, b in (("PC1", "PC2"), ("PC3", "PC4")) if b in reference.columns]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.8))
    axes = np.atleast_1d(axes)
    group = cohort["ancestry_group"].astype(str)
    colours = _group_colours(group)
    for ax, (a, b) in zip(axes, panels, strict=True):
        ax.scatter(reference[a], reference[b], s=8, c="#c8c8c8",
                   label=f"reference ({len(reference)})")  # fmt: skip
        for name, centre in reference.groupby("group")[[a, b]].median().iterrows():
            ax.annotate(name, centre.to_numpy(), fontsize=8, color="#606060", ha="center")
        for name, colour in colours.items():
            mask = (group == name).to_numpy()
            ax.scatter(cohort[f"ancestry_{a}"][mask], cohort[f"ancestry_{b}"][mask], s=12,
                       c=colour, label=f"{name} ({int(mask.sum())})")  # fmt: skip
        ax.set_xlabel(f"reference {a}")
        ax.set_ylabel(f"reference {b}")
        ax.legend(fontsize=7)
    fig.suptitle(
        "Ancestry: cohort samples projected on the reference panel's PCs, coloured by assigned "
        "group (reference in grey)",
        fontsize=9,
    )
    fig.tight_layout()
    _save(fig, path)


def plot_hwe_qq(variants: pd.DataFrame, root: Path, path: Path) -> None:
    record = read_step_record(root, "variant_final")
    p = pd.to_numeric(variants["HWE_P"], errors="coerce").dropna().to_numpy()
    p = np.sort(np.clip(p, 1e-300, 1))
    fig, ax = plt.subplots(figsize=(5, 5))
    if len(p):
        expected = -np.log10((np.arange(1, len(p) + 1) - 0.5) / len(p))
        observed = -np.log10(p)
        ax.scatter(expected, observed, s=6, c="#4c72b0")
        top = max(expected.max(), observed.max())
        ax.plot([0, expected.max()], [0, expected.max()], c="grey", lw=1)
        threshold = record["settings"]["hwe_p"]
        ax.axhline(-np.log10(threshold), ls="--", c="#c44e52", lw=1,
                   label=f"p = {threshold:g}")  # fmt: skip
        ax.set_ylim(0, top * 1.05)
        ax.set_xlim(left=0)
        ax.legend(fontsize=8)
    ax.set_xlabel("expected −log10 p")
    ax.set_ylabel("observed −log10 p")
    midp = " mid-p" if record["extra"].get("hwe_midp") else ""
    ax.set_title(
        f"HWE exact test{midp} p-values per variant, observed vs expected\n"
        f"(lowest p over {record['extra']['hwe_in']})",
        fontsize=9,
    )
    fig.tight_layout()
    _save(fig, path)


# ------------------------------------------------------------------------------ the report
def write_report(root: str | Path, clean_prefix: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """Tables, plots and ``summary.json`` for the QC under ``root``; returns the summary."""
    root, clean_prefix, out_dir = Path(root), Path(clean_prefix), Path(out_dir)
    samples = sample_table(root)
    variants = variant_table(root)
    attrition = attrition_table(root)
    kept = check_account(samples, variants, clean_prefix)
    with atomic_output_file(out_dir / "samples.tsv") as tmp:
        samples.to_csv(tmp, sep="\t", index=False, na_rep="NA")
    write_tsv_gz(variants, out_dir / "variants.tsv.gz", index=False, na_rep="NA")
    with atomic_output_file(out_dir / "attrition.tsv") as tmp:
        attrition.to_csv(tmp, sep="\t", index=False)
    plots = out_dir / "plots"
    plot_missingness_heterozygosity(samples, root, plots / "missingness_heterozygosity.png")
    plot_sex_check(samples, root, plots / "sex_check.png")
    plot_kinship(root, plots / "kinship.png")
    plot_pca(samples, plots / "pca.png")
    plot_ancestry(samples, root, plots / "ancestry.png")
    plot_hwe_qq(variants, root, plots / "hwe_qq.png")
    runs, notes = [], {}
    for name in STEPS:
        record = read_step_record(root, name)
        runs += [dict(run, step=name) for run in record["plink_runs"]]
        if record["notes"]:
            notes[name] = record["notes"]
    warnings = [f"{step}: {n}" for step, ns in notes.items() for n in ns if "warning" in n]
    summary = {
        **kept,
        "samples_in": len(samples),
        "variants_in": len(variants),
        "samples_removed_by_reason": samples["reasons"].dropna().value_counts().to_dict(),
        "variants_removed_by_reason": variants["reasons"].dropna().value_counts().to_dict(),
        "plink_runs": runs,
        "plink_seconds": round(sum(r["seconds"] for r in runs), 3),
        "ancestry_groups": read_step_record(root, "ancestry")["extra"]["groups"],
        "notes": notes,
        "warnings": warnings,
    }
    write_json(out_dir / "summary.json", summary)
    return summary
