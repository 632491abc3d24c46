"""Continental ancestry of each sample, from a labelled reference panel, and the groups the QC
judges within.

**Projection.** The cohort's autosomal SNPs are matched to the reference panel's by chromosome
and position; a pair is kept when its alleles agree (in either order) or agree after a strand
flip (A<->T, C<->G), and dropped when they differ or when the SNP is strand-ambiguous (A/T or
C/G, whose strand cannot be told from the alleles) or not a biallelic SNP. The reference's PCs
are computed on the matched SNPs above a MAF (plink2 ``--pca allele-wts``, with the reference
allele counts); reference and cohort are then projected alike with plink2 ``--score`` on those
allele weights and the reference's frequencies (``variance-standardize``, missing genotypes not
imputed), so both sit on the same axes.

**Assignment.** A quadratic discriminant (scikit-learn, one Gaussian per group with a slightly
regularised covariance) is fitted to the projected reference samples and their groups (the
label table's column, optionally mapped to continental groups, e.g. the 1000 Genomes
super-populations). A cohort sample gets the most probable group and its probability; below
``min_probability`` it is ``admixed/unassigned`` (between groups, or from a group the panel
lacks). The class priors are equal, so the panel's group sizes do not pull samples to its
biggest group.

**Without a reference** every sample is in one group, ``cohort``, and the QC judges the cohort
as a whole as before; :func:`structure_warning` tells the report when the cohort's own PCs look
like several groups. With ``ancestry.cohort_groups`` the groups come from the cohort's own PCs
instead (:func:`cohort_clusters`): unlabelled clusters ``cluster1``, ``cluster2``, ... (largest
first), only when the PCs show structure.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cohortflow.genotype_qc.inputs import GenotypeInputError, with_ext
from cohortflow.genotype_qc.plink import PlinkSession, read_bim, read_table

UNASSIGNED = "admixed/unassigned"
NO_REFERENCE_GROUP = "cohort"
COMPLEMENT = str.maketrans("ACGT", "TGCA")
#: 1000 Genomes populations and their continental (super-population) groups.
GROUPS_1000G = {
    **dict.fromkeys(["CEU", "TSI", "FIN", "GBR", "IBS"], "EUR"),
    **dict.fromkeys(["YRI", "LWK", "GWD", "MSL", "ESN", "ASW", "ACB"], "AFR"),
    **dict.fromkeys(["MXL", "PUR", "CLM", "PEL"], "AMR"),
    **dict.fromkeys(["CHB", "JPT", "CHS", "CDX", "KHV"], "EAS"),
    **dict.fromkeys(["GIH", "PJL", "BEB", "STU", "ITU"], "SAS"),
}
AUTOSOMES = {str(c) for c in range(1, 23)}


@dataclass(frozen=True)
class Reference:
    """A labelled reference panel (config ``genotype_qc.ancestry``)."""

    bfile: Path
    labels: Path
    label_column: str = "Population"
    id_column: str = "IID"
    groups: str | dict | None = None  # None: labels are the groups; "1000G": super-populations

    def group_table(self) -> pd.DataFrame:
        """IID and group of every labelled reference sample that is in the panel's .fam."""
        table = pd.read_csv(self.labels, sep="\t", dtype=str, keep_default_na=False)
        if len(table.columns) == 1:
            table = pd.read_csv(self.labels, sep=r"\s+", dtype=str, keep_default_na=False)
        for column in (self.id_column, self.label_column):
            if column not in table.columns:
                raise GenotypeInputError(
                    self.labels, f"no column {column!r} (columns: {', '.join(table.columns)})"
                )
        mapping = GROUPS_1000G if self.groups == "1000G" else self.groups
        labels = table[self.label_column].str.strip()
        group = labels.map(mapping) if isinstance(mapping, dict) else labels
        out = pd.DataFrame({"IID": table[self.id_column].str.strip(), "label": labels,
                            "group": group})  # fmt: skip
        out = out[out["group"].notna() & (out["group"] != "")]
        fam = pd.read_csv(with_ext(self.bfile, ".fam"), sep=r"\s+", header=None, dtype=str)
        out = out[out["IID"].isin(set(fam[1]))].drop_duplicates("IID")
        if out["group"].nunique() < 2:
            raise GenotypeInputError(
                self.labels, "fewer than two labelled groups among the reference panel's samples"
            )
        return out.merge(fam[[0, 1]].rename(columns={0: "FID", 1: "IID"}), on="IID")


def reference_files(section: dict) -> list[str]:
    """The files of a ``genotype_qc.ancestry.reference`` config section (none without one)."""
    if not section.get("bfile"):
        return []
    files = [f"{section['bfile']}{ext}" for ext in (".bed", ".bim", ".fam")]
    return files + ([section["labels"]] if section.get("labels") else [])


def _norm_chrom(chrom: pd.Series) -> pd.Series:
    return chrom.astype(str).str.removeprefix("chr")


def match_variants(
    cohort_bim: pd.DataFrame, reference_bim: pd.DataFrame
) -> tuple[pd.DataFrame, dict]:
    """Cohort and reference SNPs at the same autosomal position with the same alleles (in
    either order, or after a strand flip). Returns the pairs (``ID`` cohort, ``REF_ID``
    reference, ``flip``) and the counts of what was dropped and why."""
    cols = ["CHROM", "ID", "POS", "A1", "A2"]
    a = cohort_bim[cols].assign(CHROM=_norm_chrom(cohort_bim["CHROM"]))
    b = reference_bim[cols].assign(CHROM=_norm_chrom(reference_bim["CHROM"]))
    a, b = a[a["CHROM"].isin(AUTOSOMES)], b[b["CHROM"].isin(AUTOSOMES)]
    a = a[~a.duplicated(["CHROM", "POS"], keep=False)]
    b = b[~b.duplicated(["CHROM", "POS"], keep=False)]
    pairs = a.merge(b, on=["CHROM", "POS"], suffixes=("", "_ref"))
    snp = pairs[["A1", "A2", "A1_ref", "A2_ref"]].apply(
        lambda c: c.str.upper().isin(list("ACGT"))
    ).all(axis=1)  # fmt: skip
    ours = pairs["A1"].str.upper() + pairs["A2"].str.upper()
    theirs = pairs["A1_ref"].str.upper() + pairs["A2_ref"].str.upper()
    ambiguous = snp & ours.isin(["AT", "TA", "CG", "GC"])
    same = snp & ~ambiguous & ((ours == theirs) | (ours == theirs.str[::-1]))
    flipped = ours.str.translate(COMPLEMENT)
    flip = snp & ~ambiguous & ~same & ((flipped == theirs) | (flipped == theirs.str[::-1]))
    keep = same | flip
    counts = {
        "cohort_autosomal_snps": len(a), "reference_autosomal_snps": len(b),
        "same_position": len(pairs), "matched": int(keep.sum()), "strand_flipped": int(flip.sum()),
        "dropped_strand_ambiguous": int(ambiguous.sum()), "dropped_not_snp": int((~snp).sum()),
        "dropped_allele_mismatch": int((snp & ~ambiguous & ~keep).sum()),
    }  # fmt: skip
    out = pairs.loc[keep, ["ID", "ID_ref"]].rename(columns={"ID_ref": "REF_ID"})
    out["flip"] = flip[keep].to_numpy()
    return out.reset_index(drop=True), counts


def _score_args(weights: Path, freq: Path, n_pcs: int) -> list[str]:
    return [
        "--read-freq", str(freq), "--score", str(weights), "2", "5", "header-read",
        "no-mean-imputation", "variance-standardize", "--score-col-nums", f"6-{5 + n_pcs}",
    ]  # fmt: skip


def _read_scores(path: Path, n_pcs: int) -> pd.DataFrame:
    table = read_table(path)
    if "FID" not in table.columns:
        table.insert(0, "FID", table["IID"])
    avg = [c for c in table.columns if c.endswith("_AVG")][:n_pcs]
    out = table[["FID", "IID"]].astype(str).copy()
    for i, column in enumerate(avg, 1):
        out[f"PC{i}"] = pd.to_numeric(table[column])
    return out


def project(
    session: PlinkSession,
    cohort_args: list[str],
    cohort_bim: pd.DataFrame,
    reference: Reference,
    work: Path,
    *,
    n_pcs: int,
    maf: float,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The cohort (read with ``cohort_args``: ``--bfile``, ``--keep``, ...) and the labelled
    reference samples on the reference's first ``n_pcs`` PCs; returns (cohort PCs, reference
    PCs with ``group``, counts)."""
    work.mkdir(parents=True, exist_ok=True)
    pairs, counts = match_variants(cohort_bim, read_bim(with_ext(reference.bfile, ".bim")))
    minimum = max(100, 10 * n_pcs)
    if len(pairs) < minimum:
        raise GenotypeInputError(
            reference.bfile,
            f"only {len(pairs)} cohort SNPs match the reference panel by position and alleles "
            f"(at least {minimum} needed for {n_pcs} PCs; {counts}); same genome build?",
        )
    groups = reference.group_table()
    keep_ref = work / "reference_keep.txt"
    groups[["FID", "IID"]].to_csv(keep_ref, sep="\t", header=False, index=False)
    ref_ids = work / "reference_snps.txt"
    pairs["REF_ID"].to_csv(ref_ids, header=False, index=False)
    ref = ["--bfile", str(reference.bfile), "--keep", str(keep_ref), "--extract", str(ref_ids)]
    pca = work / "reference_pca"
    session.run(
        "plink2", [*ref, "--maf", str(maf), "--freq", "counts", "--pca", str(n_pcs), "allele-wts"],
        pca,
    )  # fmt: skip
    weights = pd.read_csv(f"{pca}.eigenvec.allele", sep="\t", dtype=str)
    freq = pd.read_csv(f"{pca}.acount", sep="\t", dtype=str)
    ref_scores = work / "reference_scores"
    session.run(
        "plink2",
        [*ref, *_score_args(Path(f"{pca}.eigenvec.allele"), Path(f"{pca}.acount"), n_pcs)],
        ref_scores,
    )
    # The same weights and frequencies in the cohort's IDs and strand.
    by_ref = pairs.set_index("REF_ID")
    for table, allele_columns in ((weights, ["A1"]), (freq, ["REF", "ALT"])):
        table.query("ID in @by_ref.index", inplace=True)
        flip = by_ref.loc[table["ID"], "flip"].to_numpy()
        for column in allele_columns:
            table.loc[flip, column] = table.loc[flip, column].str.translate(COMPLEMENT)
        table["ID"] = by_ref.loc[table["ID"], "ID"].to_numpy()
    if "REF" in weights.columns:
        flip = by_ref.set_index("ID").loc[weights["ID"], "flip"].to_numpy()
        for column in ("REF", "ALT"):
            weights.loc[flip, column] = weights.loc[flip, column].str.translate(COMPLEMENT)
    cohort_weights, cohort_freq = work / "cohort_weights.tsv", work / "cohort_freq.acount"
    weights.to_csv(cohort_weights, sep="\t", index=False)
    freq.to_csv(cohort_freq, sep="\t", index=False)
    cohort_snps = work / "cohort_snps.txt"
    weights["ID"].drop_duplicates().to_csv(cohort_snps, header=False, index=False)
    args = list(cohort_args)
    if "--extract" in args:
        args[args.index("--extract") + 1] = str(cohort_snps)
    else:
        args += ["--extract", str(cohort_snps)]
    cohort_scores = work / "cohort_scores"
    session.run("plink2", [*args, *_score_args(cohort_weights, cohort_freq, n_pcs)],
                cohort_scores)  # fmt: skip
    ours = _read_scores(Path(f"{cohort_scores}.sscore"), n_pcs)
    theirs = _read_scores(Path(f"{ref_scores}.sscore"), n_pcs).merge(
        groups[["IID", "label", "group"]], on="IID"
    )
    counts["used_for_pcs"] = int(weights["ID"].nunique())
    return ours, theirs, counts


def assign_groups(
    cohort: pd.DataFrame, reference: pd.DataFrame, min_probability: float, *, reg: float = 0.05
) -> pd.DataFrame:
    """Group and probability of each cohort sample from its PCs (columns ``PC1..``), by a
    quadratic discriminant fitted to the reference samples' PCs and groups (equal priors)."""
    from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis

    pcs = [c for c in reference.columns if c.startswith("PC")]
    names = sorted(reference["group"].unique())
    model = QuadraticDiscriminantAnalysis(priors=np.full(len(names), 1 / len(names)),
                                          reg_param=reg)  # fmt: skip
    scale = reference[pcs].to_numpy().std(axis=0)
    model.fit(reference[pcs].to_numpy() / scale, reference["group"].to_numpy())
    values = cohort[pcs].to_numpy(dtype=float) / scale
    scored = np.isfinite(values).all(axis=1)  # a sample with no called matched SNP has none
    prob = np.zeros((len(values), len(names)))
    if scored.any():
        prob[scored] = model.predict_proba(values[scored])
    best = prob.argmax(axis=1)
    out = cohort[["FID", "IID"]].copy()
    top = np.where(scored, np.asarray(model.classes_)[best], "")
    out["ancestry_probability"] = np.where(scored, prob[np.arange(len(best)), best], np.nan)
    out["ancestry_probability"] = out["ancestry_probability"].round(4)
    out["ancestry_best_match"] = top
    out["ancestry_group"] = np.where(
        scored & (out["ancestry_probability"] >= min_probability), top, UNASSIGNED
    )
    return out


def _structured_pcs(eigenvalues: list[float]) -> int:
    """How many leading PCs stand out: eigenvalues above twice the median of the rest."""
    values = np.asarray(eigenvalues, dtype=float)
    count = 0
    for i in range(len(values) - 2):
        if values[i] > 2 * float(np.median(values[i + 1 :])):
            count = i + 1
        else:
            break
    return count


def cohort_clusters(
    pcs: pd.DataFrame, eigenvalues: list[float], min_probability: float, max_groups: int = 6
) -> tuple[pd.DataFrame, str]:
    """Groups from a cohort's own PCs: a Gaussian mixture (full covariances) on the PCs that
    stand out (eigenvalue above twice the median of the later ones), with the number of
    clusters chosen by BIC (1 to ``max_groups``); one group ``cohort`` when no PC stands out.
    Returns FID, IID, ``ancestry_group``, ``ancestry_probability`` and a note."""
    from sklearn.mixture import GaussianMixture

    out = pcs[["FID", "IID"]].copy()
    k_pcs = _structured_pcs(eigenvalues)
    if k_pcs == 0 or len(pcs) < 20:
        out["ancestry_group"], out["ancestry_probability"] = NO_REFERENCE_GROUP, np.nan
        return out, "cohort PCs show no structure: one group (cohort)"
    x = pcs[[f"PC{i}" for i in range(1, k_pcs + 1)]].to_numpy(dtype=float)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    fits = []
    for k in range(1, min(max_groups, len(x) // 10) + 1):
        model = GaussianMixture(k, covariance_type="full", n_init=3, random_state=0).fit(x)
        fits.append((model.bic(x), k, model))
    _, k, model = min(fits, key=lambda f: (f[0], f[1]))
    prob = model.predict_proba(x)
    label = prob.argmax(axis=1)
    order = np.argsort(-np.bincount(label, minlength=k), kind="stable")
    rename = {int(old): f"cluster{new + 1}" for new, old in enumerate(order)}
    best = prob[np.arange(len(label)), label]
    out["ancestry_group"] = np.where(
        best >= min_probability, [rename[int(c)] for c in label], UNASSIGNED
    )
    out["ancestry_probability"] = best.round(4)
    if k == 1:
        out["ancestry_group"] = NO_REFERENCE_GROUP
    note = (
        f"groups from the cohort's own PCs: {k} cluster(s) by BIC on PC1-PC{k_pcs} (no "
        "reference: clusters are unlabelled, and a continuous cline may be cut in two)"
    )
    return out, note


def structure_warning(pcs: pd.DataFrame, eigenvalues: list[float]) -> str | None:
    """A warning when a cohort judged as one group looks like several: the first PC carries
    much more variance than the next ones (ratio of the first eigenvalue to the mean of the
    next four above 2) and its values are bimodal (a two-component Gaussian mixture on PC1
    fits better by BIC than one component)."""
    if len(eigenvalues) < 3 or "PC1" not in pcs.columns or len(pcs) < 20:
        return None
    ratio = eigenvalues[0] / float(np.mean(eigenvalues[1:5]))
    if ratio < 2:
        return None
    from sklearn.mixture import GaussianMixture

    x = pcs[["PC1"]].to_numpy()
    bic = [GaussianMixture(k, random_state=0).fit(x).bic(x) for k in (1, 2)]
    if bic[1] >= bic[0]:
        return None
    return (
        f"the cohort's PCs show structure (PC1 eigenvalue {ratio:.1f}x the next ones, PC1 "
        "bimodal) but no ancestry reference is configured: every sample was judged against "
        "the whole cohort (genotype_qc.ancestry.reference gives within-group QC)"
    )
