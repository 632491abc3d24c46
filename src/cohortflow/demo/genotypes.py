"""Built-in demo genotype set: simulated SNP-array genotypes with planted QC failures.

The genotype-QC stage (PLINK: call rates, sex check, heterozygosity, KING relatedness, PCA,
HWE, MAF, association) needs data on which every check has something to find and whose right
answer is known. Real cohorts cannot be shipped, so :func:`simulate_genotypes` draws a small
cohort with NumPy alone (no coalescent simulator), writes it as PLINK 1 binary files and
writes the ground truth beside it.

Model, and why each piece is there:

* **Two ancestry groups** (``POP1``/``POP2``): per-SNP group frequencies follow the
  Balding–Nichols model around an ancestral frequency, so ancestry PCA has a real signal.
  Array content is ascertained to be common, so group frequencies are redrawn until they lie in
  ``[min_group_freq, 1 - min_group_freq]``; that keeps every ordinary SNP above a 1 % MAF filter.
  ``fst`` is kept moderate because HWE tested on both groups pooled is biased by the Wahlund
  effect (a deficit of heterozygotes that grows with Fst); at the default every ordinary SNP
  keeps a pooled HWE p-value above 1e-6 (the tests check it with ``plink2 --hardy``).
* **Linkage disequilibrium**: autosomal SNPs sit in short blocks (a few SNPs within tens of kb).
  Within a block each haplotype carries a latent Gaussian AR(1) chain and an allele is the
  latent value thresholded at the group frequency (a Gaussian copula): marginal frequencies are
  exact, haplotypes are independent (so genotypes are in HWE within each group) and nearby SNPs
  are correlated, so ``--indep-pairwise 50 5 0.2`` removes a noticeable share. chrX SNPs are
  unlinked because ``--check-sex`` assumes linkage equilibrium.
* **chrX**: only non-PAR positions (hg19). Males are hemizygous (called homozygous, with a tiny
  heterozygous error rate), females diploid.
* **Phenotype**: logistic model on a few causal autosomal SNPs (odds ratios per A1 allele) and
  age; the intercept is set so that about ``case_fraction`` are cases. Causal SNPs are chosen
  with nearly equal frequencies in the two groups, so ancestry is not a confounder. With 240
  samples only a large effect reaches p < 5e-8, so the first odds ratio is larger than common
  variants usually have (APOE e4 in Alzheimer's disease comes closest, ~3–4 per allele): at
  n = 240 an odds ratio of 6 at A1 frequency ≥ 0.35 reaches p < 5e-8 with ~95 % power, 4
  with ~60 %. The others are modest.
* **Alleles** are A/C/G/T without strand-ambiguous A/T or C/G pairs, as array QC often drops
  those. A1 (``.bim`` column 5, the allele counted, ALT for PLINK 2) is the allele with the
  lower ancestral frequency, so usually but not always the minor one (PLINK 2 ``--glm``
  reports the minor allele as its A1, so compare effects through that column).

Planted failures (each labelled in the truth tables):

* samples: low call rate; reported sex contradicting genetic sex (both directions); duplicate
  pair (same person under two IDs, ~0.1 % discordant calls); first-degree pair (parent and
  offspring, the offspring built from the parent's recombined haplotypes and an unreleased
  partner's); contaminated sample (a 50/50 mixture with an unreleased same-ancestry female:
  het wherever the two genotypes differ). Contamination also inflates KING-robust kinship
  between that sample and most others of its group (0.09–0.14 at the default; a known
  artefact, noted in the truth table), so QC should drop heterozygosity outliers before it
  judges relatedness.
* variants: low call rate; HWE failures from a broken cluster (most heterozygotes called
  homozygous, or most common homozygotes called heterozygous, as for a paralogous probe);
  monomorphic and very rare (one or two carrier haplotypes) SNPs.

Planted roles never overlap, and the genotypes of non-planted samples and variants pass the
usual thresholds (sample missingness ≤ 3 %, variant missingness ≤ 5 %, HWE p ≥ 1e-6 pooled,
in controls and within each group, MAF ≥ 1 %, heterozygosity F within mean ± 3 SD of all
samples, KING kinship ≤ 0.0884 except with the contaminated sample). Heterozygosity F of
ordinary samples is sampling noise, so with 240 of them the most extreme sits near 3 SD of the
ordinary samples alone: the single-pass rule over all samples flags only the contaminated one,
but a rule recomputed without it would also flag an ordinary sample or two.
"""

from __future__ import annotations

import glob
import io
import os
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit, ndtri

from cohortflow.errors import ConfigError

#: hg19 chromosome lengths (bp), chromosomes 1..22 then X (coded 23 in the ``.bim``).
CHROM_LENGTHS: dict[int, int] = {
    1: 249_250_621,
    2: 243_199_373,
    3: 198_022_430,
    4: 191_154_276,
    5: 180_915_260,
    6: 171_115_067,
    7: 159_138_663,
    8: 146_364_022,
    9: 141_213_431,
    10: 135_534_747,
    11: 135_006_516,
    12: 133_851_895,
    13: 115_169_878,
    14: 107_349_540,
    15: 102_531_392,
    16: 90_354_753,
    17: 81_195_210,
    18: 78_077_248,
    19: 59_128_983,
    20: 63_025_520,
    21: 48_129_895,
    22: 51_304_566,
    23: 155_270_560,
}
CHRX = 23
#: First and last non-PAR base of chrX in hg19 (PAR1 ends at 2,699,520; PAR2 starts at
#: 154,931,044), so ``--split-x hg19`` moves nothing and chrX is entirely hemizygous in males.
CHRX_NONPAR = (2_699_521, 154_931_043)
#: Allele pairs that are not strand-ambiguous (no A/T, no C/G).
ALLELE_PAIRS = (("A", "C"), ("A", "G"), ("T", "C"), ("T", "G"), ("C", "A"), ("G", "A"))
#: Longest LD block (SNPs); bounds the block span so blocks never overlap.
MAX_BLOCK_SNPS = 12
#: Largest gap (bp) between neighbouring SNPs of one block.
MAX_BLOCK_STEP_BP = 25_000
#: Recombination rate used for transmission (crossovers per bp, i.e. 1 cM/Mb).
CROSSOVERS_PER_BP = 1e-8
GROUPS = ("POP1", "POP2")
MISSING = 3  # dosage code for a missing call in the internal genotype matrix
#: SNPs per block when drawing haplotypes (bounds the float64 working memory).
CHUNK_SNPS = 2048
#: .bed 2-bit code for an A1 dosage of 0, 1, 2 and for missing (index MISSING).
BED_CODES = np.array([0b11, 0b10, 0b00, 0b01], dtype=np.uint8)
BED_MAGIC = bytes([0x6C, 0x1B, 0x01])


@dataclass(frozen=True)
class GenotypeDemoSpec:
    """What to simulate; the defaults give the built-in demo."""

    #: Samples written to the ``.fam`` (planted failures included).
    n_samples: int = 240
    #: Autosomal SNPs, spread over chromosomes 1..22 in proportion to their length.
    n_autosomal_snps: int = 6000
    #: chrX SNPs (non-PAR, chromosome code 23); enough that female chrX F stays well below the
    #: 0.2 of ``--check-sex`` despite sampling noise.
    n_chrx_snps: int = 1000
    #: Fixation index between the two groups (Balding–Nichols); see the module doc for the
    #: pooled-HWE trade-off.
    fst: float = 0.03
    #: Share of samples in ``POP1`` (the rest are ``POP2``).
    group_fraction: float = 0.6
    #: Ancestral A1 frequency is uniform on this range.
    ancestral_freq_range: tuple[float, float] = (0.05, 0.5)
    #: Ascertainment: group A1 frequencies are redrawn until within [this, 1 - this].
    min_group_freq: float = 0.05
    #: Mean LD block length in SNPs (geometric distribution, at most ``MAX_BLOCK_SNPS``).
    mean_block_snps: float = 2.0
    #: Latent correlation between neighbouring SNPs of a block, uniform on this range.
    block_rho_range: tuple[float, float] = (0.85, 0.99)
    #: Background per-genotype missingness: each sample's rate is uniform on this range
    #: (scaled per variant by a Gamma(8)/8 factor, mean 1).
    missing_rate_range: tuple[float, float] = (0.002, 0.005)
    #: Rate at which a male chrX call is wrongly heterozygous.
    male_x_het_error: float = 0.001
    #: Samples with a low call rate.
    n_low_call_samples: int = 3
    #: Share of a low-call sample's calls that are missing, uniform on this range.
    low_call_sample_missing: tuple[float, float] = (0.08, 0.15)
    #: Samples reported female but genetically male.
    n_reported_female_genetic_male: int = 1
    #: Samples reported male but genetically female.
    n_reported_male_genetic_female: int = 1
    #: Pairs of one person enrolled under two IDs.
    n_duplicate_pairs: int = 1
    #: Share of autosomal calls that differ between the two IDs of a duplicate.
    duplicate_discordance: float = 0.001
    #: Parent–offspring pairs.
    n_first_degree_pairs: int = 1
    #: Samples contaminated 50/50 with DNA of an unreleased same-ancestry female.
    n_contaminated: int = 1
    #: Variants with a low call rate.
    n_low_call_variants: int = 15
    #: Share of a low-call variant's calls that are missing, uniform on this range.
    low_call_variant_missing: tuple[float, float] = (0.08, 0.20)
    #: Variants whose heterozygous cluster is mostly called homozygous (A1 frequency ≥ 0.3).
    n_hwe_deficit_variants: int = 5
    #: Share of their heterozygous calls that become homozygous.
    hwe_het_loss: float = 0.9
    #: Variants whose A2 homozygotes are mostly called heterozygous (A1 frequency 0.1–0.3).
    n_hwe_excess_variants: int = 5
    #: Share of their A2-homozygous calls that become heterozygous.
    hwe_hom_to_het: float = 0.95
    #: Monomorphic autosomal variants.
    n_monomorphic_variants: int = 3
    #: Very rare autosomal variants: A1 on one or two haplotypes, so at most 4 copies in the
    #: data (an offspring or duplicate may carry one on): MAF < 1 % above 200 samples.
    n_rare_variants: int = 4
    #: Odds ratio per A1 allele of each causal SNP (the first large enough to be found).
    causal_odds_ratios: tuple[float, ...] = (6.0, 2.5, 2.0, 1.5)
    #: Log odds ratio of disease per year of age.
    age_log_odds_per_year: float = 0.02
    #: Mean age at sampling (years; ages are normal, rounded and clipped to ``age_range``).
    age_mean: float = 64.0
    #: SD of age at sampling (years).
    age_sd: float = 8.0
    #: Youngest and oldest age; an offspring is 40–54 and its parent 22–35 years older.
    age_range: tuple[int, int] = (40, 90)
    #: Expected share of cases.
    case_fraction: float = 0.5
    #: Seed of the one random generator everything is drawn from.
    seed: int = 20251123

    def __post_init__(self) -> None:
        """Refuse specs the simulation cannot honour, naming the field."""
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.startswith("n_") and (not isinstance(value, int) or value < 0):
                raise ConfigError(f"GenotypeDemoSpec.{f.name}={value!r}: must be an integer ≥ 0")
        for name in ("fst", "group_fraction", "case_fraction", "duplicate_discordance"):
            if not 0 < getattr(self, name) < 1:
                raise ConfigError(f"GenotypeDemoSpec.{name}: must lie strictly between 0 and 1")
        for name in ("hwe_het_loss", "hwe_hom_to_het", "male_x_het_error"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"GenotypeDemoSpec.{name}: must lie between 0 and 1")
        lo, hi = self.ancestral_freq_range
        if not (0 < self.min_group_freq <= lo < hi <= 0.5):
            raise ConfigError(
                "GenotypeDemoSpec.ancestral_freq_range/min_group_freq: need "
                "0 < min_group_freq <= low < high <= 0.5"
            )
        if self.mean_block_snps < 1:
            raise ConfigError("GenotypeDemoSpec.mean_block_snps: must be ≥ 1")
        n_roles = (
            self.n_low_call_samples
            + self.n_reported_female_genetic_male
            + self.n_reported_male_genetic_female
            + 2 * self.n_duplicate_pairs
            + 2 * self.n_first_degree_pairs
            + self.n_contaminated
        )
        if n_roles > self.n_samples // 4:
            raise ConfigError(
                f"GenotypeDemoSpec: {n_roles} planted sample roles for {self.n_samples} samples; "
                "keep them under a quarter so that QC statistics describe ordinary samples"
            )
        n_variant_roles = (
            self.n_low_call_variants
            + self.n_hwe_deficit_variants
            + self.n_hwe_excess_variants
            + self.n_monomorphic_variants
            + self.n_rare_variants
            + len(self.causal_odds_ratios)
        )
        if n_variant_roles > self.n_autosomal_snps // 10:
            raise ConfigError(
                f"GenotypeDemoSpec: {n_variant_roles} planted/causal variants for "
                f"{self.n_autosomal_snps} autosomal SNPs; keep them under a tenth"
            )


@dataclass
class _Variants:
    """Variant map and per-group A1 frequencies."""

    chrom: np.ndarray  # int, 1..23
    pos: np.ndarray  # int
    ids: list[str]
    a1: list[str]
    a2: list[str]
    rho: np.ndarray  # latent correlation with the previous SNP (0 at block starts)
    freq: np.ndarray  # (2, m): A1 frequency in POP1, POP2


@dataclass
class _Samples:
    """Ancestry, sex and planted roles of the released samples (row indices; roles distinct).

    ``extra_*`` describe unreleased people who only lend haplotypes: first one partner per
    parent–offspring pair, then one contributor per contaminated sample."""

    group: np.ndarray  # 0 POP1, 1 POP2
    sex_true: np.ndarray  # 1 male, 2 female
    sex_reported: np.ndarray
    low_call: list[int]
    female_as_male: list[int]  # genetically female, reported male
    male_as_female: list[int]  # genetically male, reported female
    dup_pairs: list[tuple[int, int]]  # (source, copy)
    kin_pairs: list[tuple[int, int]]  # (parent, child)
    contaminated: list[int]
    extra_group: np.ndarray
    extra_sex: np.ndarray


@dataclass
class _VariantRoles:
    """Columns of the planted variant failures and of the causal SNPs."""

    causal: list[int]
    rare: list[int]
    monomorphic: list[int]
    hwe_deficit: list[int]
    hwe_excess: list[int]
    low_call: list[int]


def simulate_genotypes(
    out_prefix: Path, spec: GenotypeDemoSpec = GenotypeDemoSpec()
) -> pd.DataFrame:
    """Simulate the demo cohort and write it under ``out_prefix``; return the sample truth.

    Files (each written atomically, byte-identical for the same spec):

    * ``{out_prefix}.bed/.bim/.fam``: PLINK 1 binary, SNP-major. The ``.fam`` carries the
      *reported* sex and the phenotype (1 control, 2 case); FID = IID, no parents recorded.
    * ``{out_prefix}.pheno.tsv``: ``FID IID PHENO AGE`` (PHENO as in the ``.fam``).
    * ``{out_prefix}.truth_samples.tsv``: ``FID IID ancestry sex_true sex_reported
      planted_failure related_to notes``; failures are ``;``-separated labels from
      ``low_call_rate``, ``sex_mismatch``, ``duplicate``, ``first_degree``, ``contaminated``
      (both members of a pair carry the label and name each other in ``related_to``).
    * ``{out_prefix}.truth_variants.tsv``: ``ID planted_failure causal effect`` with labels
      ``low_call_rate``, ``hwe_het_deficit``, ``hwe_het_excess``, ``monomorphic``, ``rare``;
      ``effect`` is the odds ratio per A1 allele (1 for non-causal SNPs).
    """
    out_prefix = Path(out_prefix)
    rng = np.random.default_rng(spec.seed)
    variants = _variant_map(spec, rng)
    samples = _assign_samples(spec, rng)
    geno, rare = _true_genotypes(spec, variants, samples, rng)
    causal = _pick_causal(spec, variants, rare, rng)
    age, pheno = _age_and_phenotype(spec, geno, causal, samples, rng)
    roles = _plant_calling_artefacts(spec, variants, geno, causal, rare, rng)
    missing_low = _plant_missingness(spec, geno, samples.low_call, roles.low_call, rng)

    iids = [f"DEMO{i + 1:04d}" for i in range(spec.n_samples)]
    truth = _sample_truth(spec, samples, iids, missing_low)
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(Path(f"{out_prefix}.bed"), _bed_bytes(geno))
    bim = pd.DataFrame(
        {
            "chrom": variants.chrom,
            "id": variants.ids,
            "cm": 0,
            "pos": variants.pos,
            "a1": variants.a1,
            "a2": variants.a2,
        }
    )
    _write_atomic(Path(f"{out_prefix}.bim"), _tsv_bytes(bim, header=False))
    fam = pd.DataFrame(
        {"FID": iids, "IID": iids, "PAT": 0, "MAT": 0, "SEX": samples.sex_reported, "PHENO": pheno}
    )
    _write_atomic(Path(f"{out_prefix}.fam"), _tsv_bytes(fam, header=False))
    pheno_table = pd.DataFrame({"FID": iids, "IID": iids, "PHENO": pheno, "AGE": age})
    _write_atomic(Path(f"{out_prefix}.pheno.tsv"), _tsv_bytes(pheno_table))
    _write_atomic(Path(f"{out_prefix}.truth_samples.tsv"), _tsv_bytes(truth))
    variant_truth = _variant_truth(spec, variants, roles)
    _write_atomic(Path(f"{out_prefix}.truth_variants.tsv"), _tsv_bytes(variant_truth))
    return truth


def _assign_samples(spec: GenotypeDemoSpec, rng: np.random.Generator) -> _Samples:
    """Exact group and sex proportions; planted roles on distinct, randomly chosen samples."""
    n = spec.n_samples
    group = np.ones(n, dtype=np.int8)
    group[rng.permutation(n)[: round(n * spec.group_fraction)]] = 0
    sex_true = np.where(rng.permutation(n) < n // 2, 1, 2).astype(np.int8)
    order = iter(rng.permutation(n).tolist())
    low_call = [next(order) for _ in range(spec.n_low_call_samples)]
    female_as_male = [next(order) for _ in range(spec.n_reported_male_genetic_female)]
    male_as_female = [next(order) for _ in range(spec.n_reported_female_genetic_male)]
    dup_pairs = [(next(order), next(order)) for _ in range(spec.n_duplicate_pairs)]
    kin_pairs = [(next(order), next(order)) for _ in range(spec.n_first_degree_pairs)]
    contaminated = [next(order) for _ in range(spec.n_contaminated)]
    sex_true[female_as_male] = 2
    sex_true[male_as_female] = 1
    # A contaminated male would show chrX hets and fail the sex check too; keep it female.
    sex_true[contaminated] = 2
    for source, copy in dup_pairs:
        group[copy], sex_true[copy] = group[source], sex_true[source]
    for parent, child in kin_pairs:
        group[child] = group[parent]
    sex_reported = sex_true.copy()
    sex_reported[female_as_male] = 1
    sex_reported[male_as_female] = 2
    return _Samples(
        group=group,
        sex_true=sex_true,
        sex_reported=sex_reported,
        low_call=low_call,
        female_as_male=female_as_male,
        male_as_female=male_as_female,
        dup_pairs=dup_pairs,
        kin_pairs=kin_pairs,
        contaminated=contaminated,
        extra_group=np.array(
            [group[p] for p, _ in kin_pairs] + [group[c] for c in contaminated], dtype=np.int8
        ),
        extra_sex=np.array([3 - sex_true[p] for p, _ in kin_pairs] + [2] * len(contaminated)),
    )


def _true_genotypes(
    spec: GenotypeDemoSpec, variants: _Variants, samples: _Samples, rng: np.random.Generator
) -> tuple[np.ndarray, list[int]]:
    """A1 dosages (samples, SNPs) of the released samples before any calling artefact except
    the male chrX het errors, with offspring, duplicates and contamination built in; and the
    columns of the planted rare SNPs. Sets the offspring's sex in ``samples``."""
    n = spec.n_samples
    auto = np.flatnonzero(variants.chrom != CHRX)
    xcols = np.flatnonzero(variants.chrom == CHRX)
    haps = _haplotypes(variants, np.concatenate([samples.group, samples.extra_group]), rng)
    rare = _plant_rare(spec, variants, haps, samples, rng)
    sex = np.concatenate([samples.sex_true, samples.extra_sex]).astype(np.int8)
    for k, (parent, child) in enumerate(samples.kin_pairs):
        partner = n + k
        mother, father = (parent, partner) if sex[parent] == 2 else (partner, parent)
        haps[child, 0] = _transmit(haps[mother], variants, is_male=False, rng=rng)
        haps[child, 1] = _transmit(haps[father], variants, is_male=True, rng=rng)
        sex[child] = samples.sex_true[child] = samples.sex_reported[child] = rng.choice([1, 2])
    geno = _dosages(haps, sex, xcols)

    for source, copy in samples.dup_pairs:
        geno[copy] = geno[source]
        flip = auto[rng.random(auto.size) < spec.duplicate_discordance]
        geno[copy, flip] = (geno[copy, flip] + rng.integers(1, 3, flip.size)) % 3
    for k, sample in enumerate(samples.contaminated):
        # Mixed DNA: a call is het wherever the two people's genotypes differ.
        other = geno[n + len(samples.kin_pairs) + k]
        geno[sample] = np.where(geno[sample] == other, geno[sample], 1)
    geno = geno[:n]
    males = np.flatnonzero(samples.sex_true == 1)
    errors = rng.random((males.size, xcols.size)) < spec.male_x_het_error
    geno[np.ix_(males, xcols)] = np.where(errors, 1, geno[np.ix_(males, xcols)])
    return geno, rare


def _age_and_phenotype(
    spec: GenotypeDemoSpec,
    geno: np.ndarray,
    causal: list[int],
    samples: _Samples,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Ages (an offspring a generation younger than its parent; a duplicate the same person)
    and case/control status from the true genotypes."""
    age = np.clip(np.rint(rng.normal(spec.age_mean, spec.age_sd, spec.n_samples)), *spec.age_range)
    for parent, child in samples.kin_pairs:
        age[child] = rng.integers(spec.age_range[0], spec.age_range[0] + 15)
        age[parent] = min(age[child] + rng.integers(22, 36), spec.age_range[1])
    pheno = _phenotype(spec, geno, causal, age, rng)
    for source, copy in samples.dup_pairs:
        age[copy], pheno[copy] = age[source], pheno[source]
    return age.astype(int), pheno


def _plant_calling_artefacts(
    spec: GenotypeDemoSpec,
    variants: _Variants,
    geno: np.ndarray,
    causal: list[int],
    rare: list[int],
    rng: np.random.Generator,
) -> _VariantRoles:
    """Break the genotype clusters of the HWE-failure SNPs in ``geno`` and choose the
    low-call SNPs, all among autosomal SNPs with no other role."""
    auto = np.flatnonzero(variants.chrom != CHRX)
    monomorphic = np.flatnonzero(variants.freq.max(axis=0) == 0).tolist()
    taken = set(causal) | set(rare) | set(monomorphic)
    free = [int(j) for j in rng.permutation(auto) if int(j) not in taken]
    # These need frequencies at which the distortion is unmistakable within each group: many
    # heterozygotes to lose, or many A2 homozygotes to turn heterozygous.
    low, high = variants.freq.min(axis=0), variants.freq.max(axis=0)
    hwe_deficit = [j for j in free if low[j] >= 0.3][: spec.n_hwe_deficit_variants]
    hwe_excess = [j for j in free if low[j] >= 0.1 and high[j] <= 0.3]
    hwe_excess = hwe_excess[: spec.n_hwe_excess_variants]
    taken |= set(hwe_deficit) | set(hwe_excess)
    low_call = [j for j in free if j not in taken][: spec.n_low_call_variants]
    n = geno.shape[0]
    for j in hwe_deficit:  # the het cluster merges into the homozygous ones
        col = geno[:, j]
        lose = (col == 1) & (rng.random(n) < spec.hwe_het_loss)
        col[lose] = 2 * rng.integers(0, 2, int(lose.sum()))
    for j in hwe_excess:  # a paralogous probe: A2 homozygotes look heterozygous
        col = geno[:, j]
        col[(col == 0) & (rng.random(n) < spec.hwe_hom_to_het)] = 1
    return _VariantRoles(
        causal=causal,
        rare=rare,
        monomorphic=monomorphic,
        hwe_deficit=hwe_deficit,
        hwe_excess=hwe_excess,
        low_call=low_call,
    )


def _plant_missingness(
    spec: GenotypeDemoSpec,
    geno: np.ndarray,
    low_call_samples: list[int],
    low_call_variants: list[int],
    rng: np.random.Generator,
) -> np.ndarray:
    """Set calls missing in ``geno``; return the planted rates of the low-call samples.

    Background missingness is random; on top, exactly the planted share of each low-call
    sample's (variant's) calls is missing, so that they clear the filters however the dice
    fall."""
    n, m = geno.shape
    sample_rate = rng.uniform(*spec.missing_rate_range, n)
    variant_factor = rng.gamma(8.0, 1 / 8, m)
    # Background missingness in blocks of samples (the same draws as in one piece).
    rows = max(1, (1 << 23) // m)
    for i0 in range(0, n, rows):
        i1 = min(n, i0 + rows)
        block = rng.random((i1 - i0, m)) < sample_rate[i0:i1, None] * variant_factor[None, :]
        geno[i0:i1][block] = MISSING
    missing_low = rng.uniform(*spec.low_call_sample_missing, len(low_call_samples))
    for i, share in zip(low_call_samples, missing_low, strict=True):
        geno[i, rng.choice(m, round(share * m), replace=False)] = MISSING
    variant_missing = rng.uniform(*spec.low_call_variant_missing, len(low_call_variants))
    for j, share in zip(low_call_variants, variant_missing, strict=True):
        geno[rng.choice(n, round(share * n), replace=False), j] = MISSING
    return missing_low


def _sample_truth(
    spec: GenotypeDemoSpec, samples: _Samples, iids: list[str], missing_low: np.ndarray
) -> pd.DataFrame:
    """One row per sample: what a QC stage should find, and why."""
    n = len(iids)
    failures: list[list[str]] = [[] for _ in range(n)]
    related_to = [""] * n
    notes = [""] * n
    for i, rate in zip(samples.low_call, missing_low, strict=True):
        failures[i].append("low_call_rate")
        notes[i] = f"planted missing rate {rate:.3f}"
    for i in samples.female_as_male:
        failures[i].append("sex_mismatch")
        notes[i] = "reported male, genetically female"
    for i in samples.male_as_female:
        failures[i].append("sex_mismatch")
        notes[i] = "reported female, genetically male"
    for source, copy in samples.dup_pairs:
        failures[source].append("duplicate")
        failures[copy].append("duplicate")
        related_to[source], related_to[copy] = iids[copy], iids[source]
        notes[source] = "same person as related_to (expected KING kinship ~0.5)"
        notes[copy] = (
            f"re-enrolled copy of related_to with ~{spec.duplicate_discordance:.1%} "
            "discordant calls (expected KING kinship ~0.5)"
        )
    for parent, child in samples.kin_pairs:
        failures[parent].append("first_degree")
        failures[child].append("first_degree")
        related_to[parent], related_to[child] = iids[child], iids[parent]
        notes[parent] = "parent of related_to (expected KING kinship ~0.25, IBS0 ~0)"
        notes[child] = "offspring of related_to (expected KING kinship ~0.25, IBS0 ~0)"
    for i in samples.contaminated:
        failures[i].append("contaminated")
        notes[i] = (
            "50/50 mixture with an unreleased same-ancestry female: het F strongly negative; "
            "KING kinship with many same-ancestry samples is inflated (artefact)"
        )
    return pd.DataFrame(
        {
            "FID": iids,
            "IID": iids,
            "ancestry": [GROUPS[g] for g in samples.group],
            "sex_true": [_sex_name(s) for s in samples.sex_true],
            "sex_reported": [_sex_name(s) for s in samples.sex_reported],
            "planted_failure": [";".join(f) for f in failures],
            "related_to": related_to,
            "notes": notes,
        }
    )


def _variant_truth(
    spec: GenotypeDemoSpec, variants: _Variants, roles: _VariantRoles
) -> pd.DataFrame:
    """One row per variant: planted failures, and the causal SNPs with their odds ratios."""
    failures: list[list[str]] = [[] for _ in variants.ids]
    for label, cols in (
        ("low_call_rate", roles.low_call),
        ("hwe_het_deficit", roles.hwe_deficit),
        ("hwe_het_excess", roles.hwe_excess),
        ("monomorphic", roles.monomorphic),
        ("rare", roles.rare),
    ):
        for j in cols:
            failures[j].append(label)
    causal = np.zeros(len(variants.ids), dtype=bool)
    causal[roles.causal] = True
    effect = np.ones(len(variants.ids))
    effect[roles.causal] = spec.causal_odds_ratios
    return pd.DataFrame(
        {
            "ID": variants.ids,
            "planted_failure": [";".join(f) for f in failures],
            "causal": causal,
            "effect": effect,
        }
    )


def _sex_name(code: int) -> str:
    """PLINK sex code (1 male, 2 female) as written in the truth table."""
    return "male" if code == 1 else "female"


def _variant_map(spec: GenotypeDemoSpec, rng: np.random.Generator) -> _Variants:
    """Positions in LD blocks, IDs, alleles and group frequencies for all SNPs."""
    lengths = np.array([CHROM_LENGTHS[c] for c in range(1, 23)], dtype=float)
    # Largest-remainder apportionment of the autosomal SNPs by chromosome length.
    quota = spec.n_autosomal_snps * lengths / lengths.sum()
    counts = np.floor(quota).astype(int)
    counts[np.argsort(counts - quota)[: spec.n_autosomal_snps - counts.sum()]] += 1
    chrom_parts, pos_parts, rho_parts = [], [], []
    for c, count in zip(range(1, 23), counts, strict=True):
        pos, rho = _blocks(count, 1, CHROM_LENGTHS[c], spec, rng, linked=True)
        chrom_parts.append(np.full(count, c))
        pos_parts.append(pos)
        rho_parts.append(rho)
    pos, rho = _blocks(spec.n_chrx_snps, *CHRX_NONPAR, spec, rng, linked=False)
    chrom_parts.append(np.full(spec.n_chrx_snps, CHRX))
    pos_parts.append(pos)
    rho_parts.append(rho)
    chrom = np.concatenate(chrom_parts)
    positions = np.concatenate(pos_parts)
    m = chrom.size

    p0 = rng.uniform(*spec.ancestral_freq_range, m)
    freq = np.empty((2, m))
    shape = (1 - spec.fst) / spec.fst
    todo = np.ones((2, m), dtype=bool)
    while todo.any():  # ascertainment: redraw group frequencies outside the common range
        g, j = np.nonzero(todo)
        freq[g, j] = rng.beta(p0[j] * shape, (1 - p0[j]) * shape)
        todo = (freq < spec.min_group_freq) | (freq > 1 - spec.min_group_freq)
    auto = np.flatnonzero(chrom != CHRX)
    mono = rng.choice(auto, spec.n_monomorphic_variants, replace=False)
    freq[:, mono] = 0.0

    pairs = rng.integers(0, len(ALLELE_PAIRS), m)
    labels = ["X" if c == CHRX else str(c) for c in chrom]
    return _Variants(
        chrom=chrom,
        pos=positions,
        ids=[f"{lab}:{p}" for lab, p in zip(labels, positions, strict=True)],
        a1=[ALLELE_PAIRS[k][0] for k in pairs],
        a2=[ALLELE_PAIRS[k][1] for k in pairs],
        rho=np.concatenate(rho_parts),
        freq=freq,
    )


def _blocks(
    count: int,
    start: int,
    end: int,
    spec: GenotypeDemoSpec,
    rng: np.random.Generator,
    *,
    linked: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique positions in [start, end] grouped in LD blocks, and each SNP's latent
    correlation with its predecessor (0 at a block start; all 0 when not ``linked``).

    The region is cut into one equal segment per block and each block starts in the first half
    of its segment, its SNPs at most ``MAX_BLOCK_STEP_BP`` apart, so blocks never overlap."""
    if count == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    if linked:
        sizes = np.minimum(rng.geometric(1 / spec.mean_block_snps, count), MAX_BLOCK_SNPS)
        sizes = sizes[: np.searchsorted(np.cumsum(sizes), count) + 1]
        sizes[-1] -= sizes.sum() - count
    else:
        sizes = np.ones(count, dtype=int)
    n_blocks = sizes.size
    segment = (end - start) / max(n_blocks, 1)
    step_hi = min(MAX_BLOCK_STEP_BP, int(segment / (2 * MAX_BLOCK_SNPS)))
    if step_hi < 2:
        raise ConfigError(f"GenotypeDemoSpec: {count} SNPs do not fit in {end - start} bp")
    block_start = start + np.floor(
        np.arange(n_blocks) * segment + rng.uniform(0, segment / 2, n_blocks)
    ).astype(np.int64)
    firsts = np.cumsum(sizes) - sizes  # index of each block's first SNP
    steps = rng.integers(1, step_hi, count)
    steps[firsts] = 0
    walked = np.cumsum(steps)
    pos = np.repeat(block_start, sizes) + walked - np.repeat(walked[firsts], sizes)
    rho = rng.uniform(*spec.block_rho_range, count)
    rho[firsts] = 0.0
    return pos, rho


def _haplotypes(variants: _Variants, group: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Two haplotypes (A1 = 1) per person, shape (people, 2, SNPs), Gaussian-copula LD.

    Built in blocks of :data:`CHUNK_SNPS` SNPs (the draws are the same as in one piece), so
    that only the int8 result spans every haplotype × SNP: a biobank-sized cohort fits in
    memory."""
    n_haps = 2 * group.size
    hap_group = np.repeat(group, 2)
    m = variants.rho.size
    keep = np.sqrt(1 - variants.rho**2)
    out = np.empty((n_haps, m), dtype=np.int8)
    previous = None
    for j0 in range(0, m, CHUNK_SNPS):
        j1 = min(m, j0 + CHUNK_SNPS)
        noise = rng.standard_normal((j1 - j0, n_haps))
        latent = np.empty_like(noise)
        for k in range(j1 - j0):
            if previous is None and k == 0:
                latent[0] = noise[0]
            else:
                before = latent[k - 1] if k else previous
                latent[k] = variants.rho[j0 + k] * before + keep[j0 + k] * noise[k]
        previous = latent[-1].copy()
        with np.errstate(divide="ignore"):  # frequency 0 gives threshold -inf: never A1
            threshold = ndtri(variants.freq[:, j0:j1])[hap_group]
        out[:, j0:j1] = threshold > latent.T  # A1 below the threshold
    return out.reshape(group.size, 2, m)


def _plant_rare(
    spec: GenotypeDemoSpec,
    variants: _Variants,
    haps: np.ndarray,
    samples: _Samples,
    rng: np.random.Generator,
) -> list[int]:
    """Make ``n_rare_variants`` autosomal SNPs carry A1 on one or two haplotypes only.

    Carriers are released samples whose haplotypes are not replaced later (no duplicate copy,
    no offspring), so at most four A1 copies reach the data (MAF < 1 % for 240 samples)."""
    replaced = {copy for _, copy in samples.dup_pairs} | {child for _, child in samples.kin_pairs}
    carriers_pool = np.array([i for i in range(samples.group.size) if i not in replaced])
    candidates = np.flatnonzero((variants.chrom != CHRX) & (variants.freq.max(axis=0) > 0))
    cols = np.sort(rng.choice(candidates, spec.n_rare_variants, replace=False))
    for j in cols:
        haps[:, :, j] = 0
        carriers = rng.choice(carriers_pool, rng.integers(1, 3), replace=False)
        haps[carriers, 0, j] = 1
    return cols.tolist()


def _transmit(
    parent: np.ndarray, variants: _Variants, *, is_male: bool, rng: np.random.Generator
) -> np.ndarray:
    """One gamete from a parent's two haplotypes: crossovers at 1 cM/Mb; a father passes his
    single chrX unchanged (haplotype 0 is the one a male's chrX calls come from)."""
    gamete = np.empty(parent.shape[1], dtype=parent.dtype)
    for c, length in CHROM_LENGTHS.items():
        cols = np.flatnonzero(variants.chrom == c)
        if c == CHRX and is_male:
            gamete[cols] = parent[0, cols]
            continue
        crossovers = rng.uniform(0, length, rng.poisson(length * CROSSOVERS_PER_BP))
        strand = (np.searchsorted(np.sort(crossovers), variants.pos[cols]) + rng.integers(2)) % 2
        gamete[cols] = parent[strand, cols]
    return gamete


def _dosages(haps: np.ndarray, sex: np.ndarray, xcols: np.ndarray) -> np.ndarray:
    """A1 dosages (people, SNPs); males carry one chrX, called homozygous."""
    geno = haps[:, 0] + haps[:, 1]  # int8 throughout
    males = np.flatnonzero(sex == 1)
    geno[np.ix_(males, xcols)] = 2 * haps[np.ix_(males, [0], xcols)][:, 0, :]
    return geno


def _pick_causal(
    spec: GenotypeDemoSpec, variants: _Variants, rare: list[int], rng: np.random.Generator
) -> list[int]:
    """Causal SNPs: A1 frequency ≥ 0.35 in both groups (power) and nearly equal there (so
    ancestry does not confound the association), one per chromosome."""
    auto = np.flatnonzero(variants.chrom != CHRX)
    freq = variants.freq[:, auto]
    ok = (freq.min(axis=0) >= 0.35) & (np.abs(freq[0] - freq[1]) < 0.03)
    candidates = [int(j) for j in rng.permutation(auto[ok]) if j not in rare]
    chosen: list[int] = []
    for j in candidates:
        if len(chosen) == len(spec.causal_odds_ratios):
            break
        if variants.chrom[j] not in {variants.chrom[k] for k in chosen}:
            chosen.append(j)
    if len(chosen) < len(spec.causal_odds_ratios):
        raise ConfigError("GenotypeDemoSpec.causal_odds_ratios: not enough suitable SNPs")
    return chosen


def _phenotype(
    spec: GenotypeDemoSpec,
    geno: np.ndarray,
    causal: list[int],
    age: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Case (2) / control (1) from a logistic model whose intercept gives ``case_fraction``."""
    dose = geno[:, causal].astype(float)
    score = (dose - dose.mean(axis=0)) @ np.log(spec.causal_odds_ratios)
    score += spec.age_log_odds_per_year * (age - age.mean())
    intercept = brentq(lambda b: expit(b + score).mean() - spec.case_fraction, -20, 20)
    return np.where(rng.random(age.size) < expit(intercept + score), 2, 1)


def _bed_bytes(geno: np.ndarray) -> bytes:
    """PLINK 1 .bed, SNP-major: magic, then per SNP the samples' 2-bit codes, 4 per byte, the
    first sample in the lowest bits, the last byte padded with zeros."""
    n, m = geno.shape
    padded = np.zeros((m, -(-n // 4) * 4), dtype=np.uint8)
    padded[:, :n] = BED_CODES[geno.T]
    quads = padded.reshape(m, -1, 4)
    packed = quads[..., 0] | quads[..., 1] << 2 | quads[..., 2] << 4 | quads[..., 3] << 6
    return BED_MAGIC + packed.astype(np.uint8).tobytes()


def _tsv_bytes(table: pd.DataFrame, *, header: bool = True) -> bytes:
    buffer = io.StringIO()
    table.to_csv(buffer, sep="\t", index=False, header=header, lineterminator="\n")
    return buffer.getvalue().encode()


def _write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder and rename it, so that a reader (or a
    Snakemake rule interrupted mid-write) never sees a half-written file."""
    # A run killed outright (SIGKILL) cannot clean up: its leftovers go before a new write.
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        stale.unlink(missing_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        tmp.chmod(0o644)  # mkstemp makes it 0600; the outputs are ordinary shared files
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
