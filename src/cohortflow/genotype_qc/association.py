"""Genotype association (GWAS) after QC: PLINK 2 regression, genomic control, clumping, plots.

Method, step by step, with its source:

* **Regression** (``plink2 --glm``; Chang et al. 2015, *GigaScience* 4:7): one additive model
  per variant, phenotype ~ allele dosage + covariates. Case/control phenotypes use logistic
  regression with ``firth-fallback``: Firth's penalised likelihood (Firth 1993, *Biometrika*
  80:27; Heinze & Schemper 2002, *Stat Med* 21:2409) replaces the ordinary fit when that does
  not converge (rare alleles, separation). Quantitative phenotypes use linear regression.
  ``hide-covar`` keeps only the allele's test. Covariates are the top principal components of
  the QC's ancestry PCA (Price et al. 2006, *Nat Genet* 38:904), any configured numeric columns
  of the phenotype table, and sex (``sex`` modifier, every variant) when both sexes are present;
  otherwise PLINK 2's default applies (sex as a covariate on chrX only). All covariates are
  variance-standardised (``--covar-variance-standardize``) so that the multicollinearity check
  does not fail on covariates with a large mean such as age. Each variant row is kept, failed
  fits included (``P`` is NA and ``ERRCODE`` says why, e.g. ``CONST_OMITTED_ALLELE``).
* **Tested allele**: plink2 v2.00a3.5 reports the effect of its ``A1``, the *non-major* allele
  (the minor one, or ALT on a tie), not the ``.bim`` column-5 allele: where the ``.bim`` A1
  (PLINK 2's ALT) is the more frequent allele in the analysed samples, ``A1`` is REF and the
  sign of BETA is flipped relative to the ``.bim`` A1. Compare effects through the ``A1``
  column.
* **Genomic inflation** λ (Devlin & Roeder 1999, *Biometrics* 55:997): the median of the
  1-df chi-square statistics implied by the P-values over the median of that distribution,
  ``qchisq(0.5, 1) = 0.454936``. Values near 1 mean no residual stratification.
* **Significance**: genome-wide ``5e-8`` (Risch & Merikangas 1996, *Science* 273:1516;
  Pe'er et al. 2008, *Genet Epidemiol* 32:381) and suggestive ``1e-5`` (a common convention
  after Lander & Kruglyak 1995, *Nat Genet* 11:241).
* **Clumping** (``plink1.9 --clump``; Purcell et al. 2007, *AJHG* 81:559; PLINK 2 v2.00a3.5
  has no ``--clump``): index variants with P < ``clump_p1``; each absorbs variants within
  ``clump_kb`` with r² > ``clump_r2`` and P < ``clump_p2``. LD is computed on the analysed
  samples of the fileset. One index variant per independent signal ("lead variant").
* **Plots**: Manhattan (chromosomes in alternating colours, chrX as "X", threshold lines, lead
  variants named) and QQ with the pointwise 95 % band of uniform order statistics (the i-th
  smallest of n uniform P-values is Beta(i, n − i + 1)), λ in the title.

Outputs in ``out_dir`` (each written atomically; PLINK's own files and logs in ``plink/``):
``results.tsv.gz`` (one row per variant), ``lead_variants.tsv``, ``manhattan.png``,
``qq.png`` and ``summary.json`` (written last).
"""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy import stats

from cohortflow.errors import ConfigError
from cohortflow.genotype_qc.inputs import (
    GenotypeInputError,
    check_phenotype_table,
    is_missing,
    phenotype_kind,
)
from cohortflow.genotype_qc.plink import PlinkError, PlinkSession, read_fam, read_table
from cohortflow.io.atomic import atomic_output_file, write_json, write_tsv_gz

log = logging.getLogger(__name__)

#: Median of the chi-square distribution with 1 degree of freedom, ``qchisq(0.5, 1)``.
CHISQ1_MEDIAN = float(stats.chi2.ppf(0.5, 1))

#: Columns of ``results.tsv.gz`` in order; ``OR`` and ``FIRTH`` only for case/control traits.
RESULT_COLUMNS = (
    "CHROM", "POS", "ID", "REF", "ALT", "A1", "A1_FREQ", "TEST", "OBS_CT",
    "BETA", "SE", "OR", "STAT", "P", "FIRTH", "ERRCODE",
)  # fmt: skip

#: Non-numeric chromosome names and their PLINK codes (chrX is 23).
_CHROM_CODES = {"X": 23, "Y": 24, "XY": 25, "MT": 26, "M": 26}
_CHROM_LABELS = {23: "X", 24: "Y", 25: "XY", 26: "MT"}

#: Result files of ``plink2 --glm`` (v2.00a3.5 names), by model, first found wins.
_GLM_SUFFIXES = {
    "logistic": (".glm.logistic.hybrid", ".glm.logistic", ".glm.firth"),
    "linear": (".glm.linear",),
}


@dataclass(frozen=True)
class AssociationSettings:
    """Association settings (config section ``association``); see the module doc for sources."""

    phenotype: str = "PHENO"
    covariates: tuple[str, ...] = ()
    n_pcs: int = 4
    sex_covariate: bool = True
    genome_wide_p: float = 5e-8
    suggestive_p: float = 1e-5
    clump_p1: float = 5e-8
    clump_p2: float = 1e-2
    clump_r2: float = 0.1
    clump_kb: int = 250

    def __post_init__(self) -> None:
        """Refuse settings PLINK cannot honour, naming the key."""
        if not self.phenotype or any(c.isspace() for c in self.phenotype):
            raise ConfigError(f"association.phenotype={self.phenotype!r}: need a column name")
        if self.n_pcs < 0:
            raise ConfigError(f"association.n_pcs={self.n_pcs}: must be ≥ 0")
        for name in ("genome_wide_p", "suggestive_p", "clump_p1", "clump_p2", "clump_r2"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise ConfigError(f"association.{name}={value!r}: must lie in (0, 1]")
        if self.clump_p2 < self.clump_p1:
            raise ConfigError("association.clump_p2 must be ≥ clump_p1 (PLINK --clump)")
        if self.clump_kb <= 0:
            raise ConfigError(f"association.clump_kb={self.clump_kb}: must be > 0")
        names = [self.phenotype, *self.covariates]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ConfigError(
                f"association: {duplicated[0]!r} is named twice (phenotype and covariates)"
            )
        reserved = [n for n in names if n.upper() == "SEX" or _is_pc_name(n)]
        if reserved:
            raise ConfigError(
                f"association: {reserved[0]!r} clashes with the covariates added here "
                "(PC1.. from the PCA, SEX from the .fam); rename the column"
            )

    @classmethod
    def from_config(cls, mapping: dict[str, Any] | None) -> AssociationSettings:
        """Settings from a config mapping whose keys are the field names; others are refused."""
        mapping = dict(mapping or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(mapping) - known)
        if unknown:
            raise ConfigError(
                f"association.{unknown[0]}: unknown key (known: {', '.join(sorted(known))})"
            )
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in mapping:
                continue
            raw = mapping[f.name]
            try:
                if f.name == "phenotype":
                    values[f.name] = str(raw)
                elif f.name == "covariates":
                    if isinstance(raw, str):
                        raise TypeError("a list of column names, not a string")
                    values[f.name] = tuple(str(c) for c in (raw or ()))
                elif f.name == "sex_covariate":
                    if not isinstance(raw, bool):
                        raise TypeError("true or false")
                    values[f.name] = raw
                elif f.name in ("n_pcs", "clump_kb"):
                    if isinstance(raw, bool) or int(raw) != float(raw):
                        raise TypeError("an integer")
                    values[f.name] = int(raw)
                else:
                    if isinstance(raw, bool):
                        raise TypeError("a number")
                    values[f.name] = float(raw)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"association.{f.name}={raw!r}: need {exc}") from None
        return cls(**values)


def _is_pc_name(name: str) -> bool:
    return name.upper().startswith("PC") and name[2:].isdigit()


def genomic_inflation(pvalues: Iterable[float] | np.ndarray | pd.Series) -> float:
    """Genomic inflation λ (Devlin & Roeder 1999): median 1-df chi-square of the P-values over
    ``qchisq(0.5, 1)``. P-values outside [0, 1] or missing are left out; NaN when none is left."""
    p = pd.to_numeric(pd.Series(list(pvalues), dtype=object), errors="coerce").to_numpy(float)
    p = p[np.isfinite(p) & (p >= 0) & (p <= 1)]
    if p.size == 0:
        return float("nan")
    chi2 = stats.chi2.isf(p, 1)
    return float(np.median(chi2) / CHISQ1_MEDIAN)


# --- inputs -------------------------------------------------------------------------------


def _numeric(values: Iterable[str]) -> np.ndarray:
    """Table values as floats, missing codes as NaN (the table was checked to be numeric)."""
    return np.array([np.nan if is_missing(v) else float(v) for v in values], dtype=float)


def _read_table_columns(path: Path, columns: list[str], fam: pd.DataFrame) -> pd.DataFrame:
    """``columns`` of a FID/IID table (split as :func:`check_phenotype_table` does), aligned to
    the ``.fam`` rows; samples absent from the table get NaN."""
    with path.open() as fh:
        rows = [line.split() for line in fh if line.strip()]
    header = rows[0]
    index = {(r[0], r[1]): r for r in rows[1:]}
    out = {}
    for column in columns:
        j = header.index(column)
        raw = []
        for fid, iid in zip(fam["FID"], fam["IID"], strict=True):
            row = index.get((fid, iid))
            raw.append(row[j] if row is not None and j < len(row) else "")
        out[column] = _numeric(raw)
    return pd.DataFrame(out, index=fam.index)


def _fam_phenotype(fam: pd.DataFrame) -> np.ndarray:
    """The .fam phenotype in PLINK coding: -9 missing; also 0 when the column is case/control
    coded (all values in {-9, 0, 1, 2}), as PLINK reads it."""
    values = _numeric(fam["PHENO"])
    finite = values[np.isfinite(values)]
    if set(finite.tolist()) <= {0.0, 1.0, 2.0}:
        values[values == 0] = np.nan
    return values


def _read_pcs(eigenvec: Path, n_pcs: int, fam: pd.DataFrame) -> pd.DataFrame:
    """PC1..PC{n_pcs} of a plink2 ``.eigenvec`` aligned to the ``.fam`` rows (NaN when absent).
    Matched on FID and IID, or on IID alone when the file has no FID column."""
    if not eigenvec.is_file():
        raise GenotypeInputError(eigenvec, "eigenvector file not found")
    table = read_table(eigenvec)
    if "IID" not in table.columns:
        raise GenotypeInputError(eigenvec, "no IID column: not a plink2 --pca .eigenvec")
    names = [f"PC{i}" for i in range(1, n_pcs + 1)]
    have = [c for c in table.columns if _is_pc_name(c)]
    missing = [c for c in names if c not in table.columns]
    if missing:
        raise GenotypeInputError(
            eigenvec, f"has {len(have)} PCs, but n_pcs = {n_pcs} are asked for"
        )
    for column in names:
        table[column] = pd.to_numeric(table[column], errors="coerce")
    if "FID" in table.columns:
        keys = list(zip(table["FID"].astype(str), table["IID"].astype(str), strict=True))
        fam_keys = list(zip(fam["FID"], fam["IID"], strict=True))
    else:
        if fam["IID"].duplicated().any():
            raise GenotypeInputError(
                eigenvec, "has no FID column and the fileset's IIDs are not unique"
            )
        keys, fam_keys = list(table["IID"].astype(str)), list(fam["IID"])
    lookup = pd.DataFrame(table[names].to_numpy(float), index=pd.Index(keys), columns=names)
    lookup = lookup[~lookup.index.duplicated(keep="first")]
    aligned = lookup.reindex(pd.Index(fam_keys))
    if not aligned.notna().all(axis=1).any():
        raise GenotypeInputError(
            eigenvec, "no sample of the fileset has all its PCs here (a PCA of other samples?)"
        )
    return pd.DataFrame(aligned.to_numpy(float), index=fam.index, columns=names)


def _write_table(path: Path, table: pd.DataFrame) -> None:
    """A whitespace table for PLINK: ``NA`` for missing, floats in full precision."""
    table.to_csv(path, sep="\t", index=False, na_rep="NA", float_format="%.10g")


# --- PLINK --------------------------------------------------------------------------------


def _glm_output(prefix: Path, phenotype: str, model: str) -> Path:
    for suffix in _GLM_SUFFIXES[model]:
        path = Path(f"{prefix}.{phenotype}{suffix}")
        if path.is_file():
            return path
    written = sorted(p.name for p in prefix.parent.glob(f"{prefix.name}.*"))
    raise PlinkError(
        f"plink2 --glm wrote no {model} results under {prefix} (files: {', '.join(written)})"
    )


def read_glm(path: str | Path, model: str) -> pd.DataFrame:
    """A plink2 ``--glm`` report as the standard results table (:data:`RESULT_COLUMNS`).

    ``BETA`` is the log odds ratio for logistic models (``OR = exp(BETA)``); ``STAT`` is the
    Wald Z (logistic/Firth) or T (linear) statistic; ``FIRTH`` says whether the Firth fit was
    used. Failed fits keep their row with NA statistics and PLINK's ``ERRCODE``."""
    text_columns = {
        "#CHROM": str,
        "CHROM": str,
        "ID": str,
        "REF": str,
        "ALT": str,
        "A1": str,
        "TEST": str,
        "ERRCODE": str,
        "FIRTH?": str,
    }
    raw = pd.read_csv(path, sep="\t", dtype=text_columns, keep_default_na=False, na_values={"NA"})
    raw = raw.rename(columns={"#CHROM": "CHROM", "Z_STAT": "STAT", "T_STAT": "STAT"})
    out = pd.DataFrame(index=raw.index)
    for column in RESULT_COLUMNS:
        if column == "OR":
            if model == "logistic":
                out["OR"] = np.exp(out["BETA"])
        elif column == "FIRTH":
            if model == "logistic" and "FIRTH?" in raw.columns:
                out["FIRTH"] = raw["FIRTH?"].eq("Y")
        elif column in raw.columns:
            if column in ("POS", "OBS_CT"):
                out[column] = pd.to_numeric(raw[column], errors="coerce").astype("Int64")
            elif column in ("A1_FREQ", "BETA", "SE", "STAT", "P"):
                out[column] = pd.to_numeric(raw[column], errors="coerce")
            else:
                out[column] = raw[column].astype(str)
    if "ERRCODE" not in out.columns:
        out["ERRCODE"] = "."
    return out


def _read_clumped(path: Path) -> pd.DataFrame:
    """plink1.9 ``.clumped``: index SNP, TOTAL (variants clumped to it) and SP2 (their IDs)."""
    table = read_table(path)
    clumped = [
        [] if sp2 in ("NONE", "") else [s.rsplit("(", 1)[0] for s in sp2.split(",")]
        for sp2 in table["SP2"].astype(str)
    ]
    return pd.DataFrame(
        {
            "ID": table["SNP"].astype(str),
            "n_clumped": pd.to_numeric(table["TOTAL"]).astype(int),
            "clumped_ids": clumped,
        }
    )


# --- plots --------------------------------------------------------------------------------


def chrom_code(name: str) -> int:
    """PLINK chromosome code of a name: ``"7"`` → 7, ``"X"``/``"chrX"``/``"23"`` → 23; other
    contigs → 99."""
    name = str(name)
    if name.lower().startswith("chr"):
        name = name[3:]
    if name.isdigit():
        return int(name)
    return _CHROM_CODES.get(name.upper(), 99)


def _thin(x: np.ndarray, y: np.ndarray, x_step: float, keep_above: float = 2.0) -> np.ndarray:
    """Indices to draw: every point with y ≥ ``keep_above`` and one per (x, y) grid cell below
    (only for large inputs, so that a plot of millions of variants stays small and quick)."""
    if x.size <= 100_000:
        return np.arange(x.size)
    high = np.flatnonzero(y >= keep_above)
    low = np.flatnonzero(y < keep_above)
    cells = np.stack([np.floor(x[low] / x_step), np.floor(y[low] / 0.01)], axis=1)
    _, first = np.unique(cells, axis=0, return_index=True)
    return np.sort(np.concatenate([high, low[first]]))


def _save(fig: Figure, target: Path) -> None:
    FigureCanvasAgg(fig)
    with atomic_output_file(target) as tmp:
        fig.savefig(tmp, format="png", dpi=150)


#: Narrowest share of the x axis a chromosome gets in the Manhattan plot, so that chromosomes
#: with a short variant span (MT, the XY pseudo-autosomal SNPs, a sparse X) stay readable.
MIN_CHROM_WIDTH = 0.02


def chromosome_layout(
    codes: np.ndarray, names: np.ndarray, pos: np.ndarray
) -> tuple[np.ndarray, list[float], list[str], list[tuple[float, float]]]:
    """x positions of variants on a Manhattan plot whose chromosomes (sorted by code) are as
    wide as their variant span (first to last variant, not 0 to the last position), at least
    :data:`MIN_CHROM_WIDTH` of the total; returns x, tick positions, tick labels and each
    chromosome's (start, end) on the axis."""
    frame = pd.DataFrame({"code": codes, "name": names, "pos": pos})
    groups = frame.groupby(["code", "name"], sort=True).indices
    spans = {key: float(np.ptp(pos[rows])) for key, rows in groups.items()}
    total = sum(spans.values()) or 1.0
    floor = MIN_CHROM_WIDTH * total
    gap = 0.004 * total
    x = np.zeros(len(pos))
    ticks, labels, extents = [], [], []
    offset = 0.0
    for (code, name), rows in groups.items():
        span = spans[(code, name)]
        width = max(span, floor)
        start = float(pos[rows].min())
        if span > 0:
            x[rows] = offset + (pos[rows] - start) * (width / span)
        else:
            x[rows] = offset + width / 2
        ticks.append(offset + width / 2)
        labels.append(str(name) if code == 99 else _CHROM_LABELS.get(code, str(code)))
        extents.append((offset, offset + width))
        offset += width + gap
    return x, ticks, labels, extents


def manhattan_plot(
    results: pd.DataFrame,
    leads: pd.DataFrame,
    target: str | Path,
    settings: AssociationSettings,
    title: str = "",
) -> None:
    """Manhattan plot of ``results`` (CHROM, POS, P) to ``target`` (PNG, written atomically)."""
    valid = results[results["P"].notna()].copy()
    valid["code"] = valid["CHROM"].map(chrom_code)
    valid = valid.sort_values(["code", "CHROM", "POS"], kind="stable").reset_index(drop=True)
    y = -np.log10(np.clip(valid["P"].to_numpy(float), 1e-300, 1))
    pos = valid["POS"].to_numpy(float)
    x, ticks, labels, extents = chromosome_layout(
        valid["code"].to_numpy(), valid["CHROM"].astype(str).to_numpy(), pos
    )
    colour = np.empty(len(valid), dtype=object)
    for i, (start, end) in enumerate(extents):
        colour[(x >= start) & (x <= end)] = ("#1f4e79", "#7fa7cf")[i % 2]
    span = extents[-1][1] if extents else 1.0
    offset = span
    gap = 0.004 * span
    fig = Figure(figsize=(12, 4.5))
    ax = fig.add_subplot()
    keep = _thin(x, y, x_step=max(span, 1.0) / 4000)
    ax.scatter(
        x[keep], y[keep], s=4, c=list(colour[keep]), linewidths=0, rasterized=len(keep) > 50_000
    )
    for name, p_line, colour, style in (
        ("genome-wide", settings.genome_wide_p, "#c0392b", "--"),
        ("suggestive", settings.suggestive_p, "#2980b9", ":"),
    ):
        ax.axhline(
            -math.log10(p_line), color=colour, ls=style, lw=0.8, label=f"{name} (P = {p_line:g})"
        )
    if len(leads):
        row_of = {variant: j for j, variant in reversed(list(enumerate(valid["ID"])))}
        for lead_id in leads.sort_values("P")["ID"].head(30):
            if lead_id in row_of:
                j = row_of[lead_id]
                ax.annotate(
                    lead_id, (x[j], y[j]), xytext=(3, 3), textcoords="offset points", fontsize=7
                )
    ax.set_xticks(ticks)
    ax.set_xticklabels(labels, fontsize=7)
    for tick, label in zip(ax.get_xticklabels(), labels, strict=True):
        if not label.isdigit():  # X, Y, XY, MT and other contigs in bold
            tick.set_fontweight("bold")
    ax.set_xlim(-gap, max(offset, 1.0))
    top = max(float(y.max()) if len(y) else 0.0, -math.log10(settings.genome_wide_p))
    ax.set_ylim(0, top * 1.08 + 0.5)
    ax.set_xlabel("chromosome (each as wide as its variants' span)")
    ax.set_ylabel(r"$-\log_{10}(P)$")
    ax.set_title(
        f"Association p-values along the genome{': ' + title if title else ''} "
        f"({len(valid):,} variants)"
    )
    ax.legend(loc="upper right", fontsize=7, frameon=False)
    fig.tight_layout()
    _save(fig, Path(target))


def qq_plot(pvalues: np.ndarray, lam: float, target: str | Path, title: str = "") -> None:
    """QQ plot of P-values against uniform expectation with a pointwise 95 % band.

    The i-th smallest of n independent uniform P-values is Beta(i, n − i + 1): expected
    ``i / (n + 1)``, band its 2.5 % and 97.5 % quantiles, all on the −log10 scale."""
    p = np.sort(np.clip(np.asarray(pvalues, dtype=float), 1e-300, 1))
    n = p.size
    fig = Figure(figsize=(5.5, 5.5))
    ax = fig.add_subplot()
    if n:
        i = np.arange(1, n + 1)
        expected = -np.log10(i / (n + 1))
        observed = -np.log10(p)
        keep = _thin(expected, observed, x_step=0.005)
        lo = -np.log10(stats.beta.ppf(0.975, i[keep], n - i[keep] + 1))
        hi = -np.log10(stats.beta.ppf(0.025, i[keep], n - i[keep] + 1))
        ax.fill_between(expected[keep], lo, hi, color="#d5d8dc", lw=0, label="95 % band")
        ax.plot([0, expected.max()], [0, expected.max()], color="#c0392b", lw=0.8)
        ax.scatter(
            expected[keep],
            observed[keep],
            s=5,
            color="#1f4e79",
            linewidths=0,
            rasterized=len(keep) > 50_000,
        )
        ax.legend(loc="upper left", fontsize=7, frameon=False)
    lam_text = "NA" if not np.isfinite(lam) else f"{lam:.3f}"
    ax.set_title(
        f"Association p-values, observed vs expected{': ' + title if title else ''}; "
        f"λ = {lam_text} ({n:,} variants)",
        fontsize=9,
    )
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.set_xlabel(r"expected $-\log_{10}(P)$")
    ax.set_ylabel(r"observed $-\log_{10}(P)$")
    fig.tight_layout()
    _save(fig, Path(target))


# --- the stage ----------------------------------------------------------------------------


def _float(value: Any) -> float | None:
    """JSON-safe float (NaN → None)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _lead_record(row: dict[str, Any]) -> dict[str, Any]:
    """A lead-variant row as JSON-safe values."""
    record = {k: (_float(v) if k in ("BETA", "SE", "OR", "P") else v) for k, v in row.items()}
    record["POS"] = int(row["POS"])
    record["n_clumped"] = int(row["n_clumped"])
    record["clumped_ids"] = list(row["clumped_ids"])
    return record


def run_association(
    bfile: str | Path,
    eigenvec: str | Path | None,
    phenotype_table: str | Path | None,
    settings: AssociationSettings,
    out_dir: str | Path,
    threads: int = 1,
    memory_mb: int = 2000,
) -> dict[str, Any]:
    """Association of one phenotype with every variant of the (QC-clean) PLINK 1 fileset.

    ``bfile`` is the fileset prefix; ``eigenvec`` a plink2 ``--pca`` file (its PC1..PC{n_pcs}
    are covariates; None only with ``n_pcs = 0``); ``phenotype_table`` a ``FID IID ...`` table
    holding the phenotype and covariate columns, or None for the ``.fam`` phenotype (PLINK
    coding). Inputs are checked before PLINK runs. Writes the files listed in the module doc
    into ``out_dir`` and returns the summary that ``summary.json`` holds.
    """
    bfile = Path(bfile)
    bfile = bfile.with_suffix("") if bfile.suffix in (".bed", ".bim", ".fam") else bfile
    out_dir = Path(out_dir)
    for ext in (".bed", ".bim", ".fam"):
        if not Path(f"{bfile}{ext}").is_file():
            raise GenotypeInputError(f"{bfile}{ext}", f"missing {ext} file of the PLINK 1 fileset")
    fam = read_fam(f"{bfile}.fam")
    fam_path = Path(f"{bfile}.fam")

    # Phenotype and covariates, all checked before any PLINK run.
    if phenotype_table is not None:
        table_path = Path(phenotype_table)
        if not table_path.is_file():
            raise GenotypeInputError(table_path, "phenotype table not found")
        check_phenotype_table(table_path, [settings.phenotype, *settings.covariates])
        columns = _read_table_columns(table_path, [settings.phenotype, *settings.covariates], fam)
        pheno = columns[settings.phenotype].to_numpy(float)
        extra = columns[list(settings.covariates)]
        source: Path = table_path
    else:
        if settings.covariates:
            raise GenotypeInputError(
                fam_path,
                f"covariate(s) {', '.join(settings.covariates)} named, but no phenotype table "
                "was given (the .fam holds no covariates)",
            )
        pheno = _fam_phenotype(fam)
        extra = pd.DataFrame(index=fam.index)
        source = fam_path
    if not np.isfinite(pheno).any():
        raise GenotypeInputError(
            source,
            f"no sample of the fileset {bfile} has a {settings.phenotype!r} value "
            "(are the FID/IID the fileset's?)",
        )
    try:
        kind = phenotype_kind(pheno)
    except GenotypeInputError as exc:
        raise GenotypeInputError(source, f"column {settings.phenotype!r}: {exc.reason}") from None
    if settings.n_pcs > 0:
        if eigenvec is None:
            raise ConfigError(
                f"association.n_pcs = {settings.n_pcs}, but no eigenvec file was given "
                "(set n_pcs: 0 to run without principal components)"
            )
        pcs = _read_pcs(Path(eigenvec), settings.n_pcs, fam)
    else:
        pcs = pd.DataFrame(index=fam.index)
    model = "logistic" if kind == "binary" else "linear"

    # PLINK-ready phenotype coding.
    coded = pheno.copy()
    offset = 0.0
    finite = coded[np.isfinite(coded)]
    if kind == "binary" and set(finite.tolist()) <= {0.0, 1.0}:
        coded = coded + 1  # 0/1 → PLINK's 1 control / 2 case
    elif kind == "quantitative" and set(finite.tolist()) <= {0.0, 1.0, 2.0}:
        # plink2 reads a column of only 0/1/2 as case/control (0 missing); a shift changes
        # the intercept only, not BETA, SE or P of the allele.
        offset = 1.0
        coded = coded + offset
    has_pheno = np.isfinite(coded)
    sexes = set(fam.loc[has_pheno, "SEX"]) & {"1", "2"}
    use_sex = settings.sex_covariate and sexes == {"1", "2"}
    covariates = pd.concat([pcs, extra], axis=1)

    # PLINK runs, intermediates in out_dir/plink (cleared so that no stale output is read).
    work = out_dir / "plink"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    ids = fam[["FID", "IID"]]
    pheno_file = work / "phenotype.tsv"
    pheno_out = ids.assign(**{settings.phenotype: coded})
    if kind == "binary":
        pheno_out[settings.phenotype] = pheno_out[settings.phenotype].astype("Int64")
    _write_table(pheno_file, pheno_out)
    session = PlinkSession(threads=threads, memory_mb=memory_mb)
    modifiers = ["hide-covar", "pheno-ids"]
    if model == "logistic":
        modifiers.insert(0, "firth-fallback")
    if use_sex:
        modifiers.append("sex")
    cols = "chrom,pos,ref,alt,a1freq," + ("firth," if model == "logistic" else "")
    cols += "test,nobs,beta,se,tz,p,err"
    args = ["--bfile", str(bfile), "--pheno", str(pheno_file), "--pheno-name", settings.phenotype]
    if covariates.shape[1]:
        covar_file = work / "covariates.tsv"
        _write_table(covar_file, pd.concat([ids, covariates], axis=1))
        args += ["--covar", str(covar_file), "--covar-variance-standardize"]
    else:
        modifiers.append("allow-no-covars")
    args += ["--glm", *modifiers, f"cols={cols}"]
    log.info("association: plink2 --glm (%s) on %s", model, bfile)
    session.run("plink2", args, work / "glm")
    glm_path = _glm_output(work / "glm", settings.phenotype, model)
    results = read_glm(glm_path, model)

    # Analysed samples: those plink2 used (phenotype and all covariates present).
    used = read_table(Path(f"{glm_path}.id"))
    used_iids = set(used["IID"].astype(str))
    if "FID" in used.columns:
        used_keys = set(zip(used["FID"].astype(str), used["IID"].astype(str), strict=True))
        analysed = np.array(
            [(f, i) in used_keys for f, i in zip(fam["FID"], fam["IID"], strict=True)]
        )
    else:
        analysed = fam["IID"].isin(used_iids).to_numpy()

    valid_p = results["P"].notna().to_numpy()
    lam = genomic_inflation(results.loc[valid_p, "P"])

    # Clumping (plink1.9): LD from the analysed samples; IDs must be unique and not ".".
    clump_in = results.loc[valid_p, ["ID", "P"]]
    bad_ids = clump_in["ID"].eq(".") | clump_in["ID"].duplicated(keep=False)
    clump_in = clump_in[~bad_ids]
    leads = pd.DataFrame(columns=["ID", "n_clumped", "clumped_ids"])
    clump_note = None
    if (clump_in["P"] < settings.clump_p1).any():
        clump_file = work / "clump_input.tsv"
        clump_in.to_csv(clump_file, sep="\t", index=False, float_format="%.6g")
        keep_file = work / "analysed_samples.txt"
        fam.loc[analysed, ["FID", "IID"]].to_csv(keep_file, sep="\t", index=False, header=False)
        session.run(
            "plink1.9",
            ["--bfile", str(bfile), "--keep", str(keep_file), "--clump", str(clump_file),
             "--clump-snp-field", "ID", "--clump-field", "P",
             "--clump-p1", f"{settings.clump_p1:g}", "--clump-p2", f"{settings.clump_p2:g}",
             "--clump-r2", f"{settings.clump_r2:g}", "--clump-kb", str(settings.clump_kb)],
            work / "clump",
        )  # fmt: skip
        clumped = work / "clump.clumped"
        if clumped.is_file():
            leads = _read_clumped(clumped)
        else:  # plink1.9 warns "No significant --clump results" and writes nothing
            clump_note = "plink1.9 --clump found no significant results"
    else:
        clump_note = f"no variant with P < clump_p1 = {settings.clump_p1:g}; clumping skipped"
    effect_cols = ["CHROM", "POS", "ID", "A1", "BETA", "SE"]
    effect_cols += ["OR"] if model == "logistic" else []
    effect_cols += ["P"]
    lead_table = (
        results.loc[valid_p, effect_cols]
        .merge(leads, on="ID", how="inner")
        .sort_values("P", kind="stable")
    )
    lead_table = lead_table[[*effect_cols, "n_clumped", "clumped_ids"]].reset_index(drop=True)

    # Outputs, each atomic; summary.json last.
    write_tsv_gz(results, out_dir / "results.tsv.gz", index=False, na_rep="NA", float_format="%.6g")
    with atomic_output_file(out_dir / "lead_variants.tsv") as tmp:
        lead_table.assign(clumped_ids=lead_table["clumped_ids"].map(",".join)).to_csv(
            tmp, sep="\t", index=False, na_rep="NA", float_format="%.6g"
        )
    title = f"{settings.phenotype} ({model})"
    manhattan_plot(results, lead_table, out_dir / "manhattan.png", settings, title)
    qq_plot(results.loc[valid_p, "P"].to_numpy(float), lam, out_dir / "qq.png", title)

    analysed_values = pheno[analysed]
    samples = {
        "n_fileset": len(fam),
        "n_with_phenotype": int(has_pheno.sum()),
        "n_analysed": int(analysed.sum()),
    }
    if model == "logistic":
        cases = analysed_values == (2.0 if set(finite.tolist()) <= {1.0, 2.0} else 1.0)
        samples["n_cases"] = int(cases.sum())
        samples["n_controls"] = int((~cases).sum())
    else:
        samples["phenotype_mean"] = _float(np.mean(analysed_values))
        samples["phenotype_sd"] = _float(np.std(analysed_values, ddof=1))
    p = results["P"]
    summary: dict[str, Any] = {
        "model": model,
        "method": (
            "plink2 --glm firth-fallback: logistic regression, Firth regression where it "
            "does not converge"
            if model == "logistic"
            else "plink2 --glm: linear regression"
        ),
        "phenotype": settings.phenotype,
        "phenotype_source": str(source),
        "phenotype_kind": kind,
        "phenotype_offset": offset,
        **samples,
        "covariates": [*pcs.columns, *extra.columns, *(["SEX"] if use_sex else [])],
        "sex_covariate": "all variants" if use_sex else "chrX only (plink2 default)",
        "tested_allele": "A1 of plink2 --glm: the non-major allele (BETA/OR are per A1 copy)",
        "lambda_gc": _float(lam),
        "n_variants": len(results),
        "n_variants_tested": int(valid_p.sum()),
        "n_firth": int(results["FIRTH"].sum()) if "FIRTH" in results.columns else None,
        "n_failed": int((~valid_p).sum()),
        "n_genome_wide": int((p < settings.genome_wide_p).sum()),
        "n_suggestive": int((p < settings.suggestive_p).sum()),
        "n_excluded_from_clumping": int(bad_ids.sum()),
        "clump_note": clump_note,
        "leads": [_lead_record(row) for row in lead_table.to_dict("records")],
        "settings": {
            k: list(v) if isinstance(v, tuple) else v for k, v in asdict(settings).items()
        },
        "plink_runs": [r.as_dict() for r in session.runs],
        "files": {
            "results": "results.tsv.gz",
            "lead_variants": "lead_variants.tsv",
            "manhattan": "manhattan.png",
            "qq": "qq.png",
            "glm": str(glm_path),
        },
    }
    write_json(out_dir / "summary.json", summary)
    return summary
