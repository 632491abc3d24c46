"""The demo genotype set: .bed format, determinism, truth tables, and the planted failures as the
real PLINK QC commands see them (each caught for its own reason, nothing else caught)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2

from cohortflow.demo.genotypes import (
    CHRX,
    GenotypeDemoSpec,
    _bed_bytes,
    simulate_genotypes,
)
from cohortflow.errors import ConfigError

SPEC = GenotypeDemoSpec()
SUFFIXES = ("bed", "bim", "fam", "pheno.tsv", "truth_samples.tsv", "truth_variants.tsv")
# Standard QC thresholds the planted failures must cross and everything else must respect.
SAMPLE_MISSING_MAX = 0.03
VARIANT_MISSING_MAX = 0.05
HWE_P_MIN = 1e-6
MAF_MIN = 0.01
KING_UNRELATED_MAX = 0.0884
KING_FIRST_DEGREE = (0.177, 0.354)
GENOME_WIDE = 5e-8


@dataclass
class Demo:
    prefix: Path
    samples: pd.DataFrame
    variants: pd.DataFrame
    bim: pd.DataFrame

    def samples_with(self, label: str) -> set[str]:
        return set(self.samples.IID[self.samples.planted_failure.str.contains(label)])

    def variants_with(self, label: str) -> set[str]:
        return set(self.variants.ID[self.variants.planted_failure.str.contains(label)])

    @property
    def planted_samples(self) -> set[str]:
        return set(self.samples.IID[self.samples.planted_failure != ""])


def read_bed(prefix: Path, n_samples: int, n_variants: int) -> np.ndarray:
    """A1 dosages (samples, variants), -1 for missing, decoded bit by bit from the format
    description (independently of the writer's lookup tables)."""
    raw = Path(f"{prefix}.bed").read_bytes()
    assert raw[:3] == bytes([0x6C, 0x1B, 0x01]), "not a SNP-major PLINK 1 .bed"
    per_variant = (n_samples + 3) // 4
    assert len(raw) == 3 + per_variant * n_variants
    body = np.frombuffer(raw, dtype=np.uint8, offset=3).reshape(n_variants, per_variant)
    dosage_of_code = np.array([2, -1, 1, 0], dtype=np.int8)  # 00 hom A1, 01 missing, 10 het
    out = np.empty((n_samples, n_variants), dtype=np.int8)
    for i in range(n_samples):
        out[i] = dosage_of_code[(body[:, i // 4] >> (2 * (i % 4))) & 0b11]
    return out


def _load(prefix: Path) -> Demo:
    def tsv(suffix: str) -> pd.DataFrame:
        return pd.read_csv(f"{prefix}.{suffix}", sep="\t", keep_default_na=False)

    bim = pd.read_csv(
        f"{prefix}.bim", sep="\t", header=None, names=["chrom", "ID", "cm", "pos", "a1", "a2"]
    )
    return Demo(prefix, tsv("truth_samples.tsv"), tsv("truth_variants.tsv"), bim)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    prefix = tmp_path_factory.mktemp("genodemo") / "demo"
    returned = simulate_genotypes(prefix, SPEC)
    loaded = _load(prefix)
    pd.testing.assert_frame_equal(returned, loaded.samples)
    return loaded


# ---------------------------------------------------------------- format and determinism


def test_bed_encoding_matches_the_plink_spec() -> None:
    # Sample order 0..4 has A1 dosages 2, 1, 0, missing | 2: codes 00, 10, 11, 01 (low bits
    # first) = 0b01_11_10_00, then 00 and zero padding.
    geno = np.array([[2], [1], [0], [3], [2]], dtype=np.int8)
    assert _bed_bytes(geno) == bytes([0x6C, 0x1B, 0x01, 0b01_11_10_00, 0b00])


def test_bed_round_trip(demo: Demo) -> None:
    n, m = len(demo.samples), len(demo.bim)
    geno = read_bed(demo.prefix, n, m)
    coded = np.where(geno < 0, 3, geno).astype(np.int8)
    assert _bed_bytes(coded) == Path(f"{demo.prefix}.bed").read_bytes()
    assert 0.002 < (geno < 0).mean() < 0.01
    assert set(np.unique(geno)) == {-1, 0, 1, 2}


def test_bed_agrees_with_plink2_export(demo: Demo, plink2: str, tmp_path: Path) -> None:
    _run([plink2, "--bfile", str(demo.prefix), "--export", "A", "--out", str(tmp_path / "x")])
    raw = pd.read_csv(tmp_path / "x.raw", sep=r"\s+")
    assert list(raw.IID) == list(demo.samples.IID)
    ours = read_bed(demo.prefix, len(demo.samples), len(demo.bim)).astype(float)
    ours[ours < 0] = np.nan
    columns = raw.columns[6:]
    assert len(columns) == len(demo.bim)
    for j, (column, a1) in enumerate(zip(columns, demo.bim.a1, strict=True)):
        counted = column.rsplit("_", 1)[1]
        expected = ours[:, j] if counted == a1 else 2 - ours[:, j]
        np.testing.assert_array_equal(raw[column].to_numpy(), expected, err_msg=column)


def test_same_spec_gives_byte_identical_files(demo: Demo, tmp_path: Path) -> None:
    simulate_genotypes(tmp_path / "again", SPEC)
    for suffix in SUFFIXES:
        again = (tmp_path / f"again.{suffix}").read_bytes()
        assert again == Path(f"{demo.prefix}.{suffix}").read_bytes(), suffix
    assert not list(tmp_path.glob(".*.tmp")), "temporary files left behind"


def test_another_seed_gives_other_genotypes(demo: Demo, tmp_path: Path) -> None:
    simulate_genotypes(tmp_path / "other", GenotypeDemoSpec(seed=SPEC.seed + 1))
    other = (tmp_path / "other.bed").read_bytes()
    assert other != Path(f"{demo.prefix}.bed").read_bytes()


@pytest.mark.parametrize(
    "change",
    [
        {"fst": 0.0},
        {"n_low_call_samples": -1},
        {"n_samples": 20},
        {"ancestral_freq_range": (0.3, 0.2)},
        {"n_autosomal_snps": 100},
    ],
)
def test_impossible_specs_are_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="GenotypeDemoSpec"):
        GenotypeDemoSpec(**change)


# ---------------------------------------------------------------- truth tables and map


def test_variant_map(demo: Demo) -> None:
    bim = demo.bim
    assert bim.ID.is_unique
    assert (bim.chrom == CHRX).sum() == SPEC.n_chrx_snps
    assert (bim.chrom < CHRX).sum() == SPEC.n_autosomal_snps
    assert set(bim.chrom) == set(range(1, 24))
    for _, chrom in bim.groupby("chrom"):
        assert chrom.pos.is_monotonic_increasing and chrom.pos.is_unique
    x = bim[bim.chrom == CHRX]
    assert x.pos.min() > 2_699_520 and x.pos.max() < 154_931_044, "chrX SNP in a PAR"
    pairs = {frozenset(p) for p in zip(bim.a1, bim.a2, strict=True)}
    assert pairs <= {frozenset(p) for p in ("AC", "AG", "TC", "TG")}
    assert list(demo.variants.ID) == list(bim.ID)


def test_sample_truth(demo: Demo) -> None:
    truth = demo.samples
    assert len(truth) == SPEC.n_samples and truth.IID.is_unique
    counts = {
        label: len(demo.samples_with(label))
        for label in ("low_call_rate", "sex_mismatch", "duplicate", "first_degree", "contaminated")
    }
    assert counts == {
        "low_call_rate": 3,
        "sex_mismatch": 2,
        "duplicate": 2,
        "first_degree": 2,
        "contaminated": 1,
    }
    assert not truth.planted_failure.str.contains(";").any(), "planted roles overlap"
    mismatched = truth[truth.sex_true != truth.sex_reported]
    assert set(mismatched.IID) == demo.samples_with("sex_mismatch")
    assert sorted(mismatched.sex_reported) == ["female", "male"]
    for a, b in zip(truth.IID, truth.related_to, strict=True):
        if b:
            assert truth.set_index("IID").loc[b, "related_to"] == a
    assert abs((truth.sex_true == "male").mean() - 0.5) < 0.05
    assert abs((truth.ancestry == "POP1").mean() - SPEC.group_fraction) < 0.02

    fam = pd.read_csv(f"{demo.prefix}.fam", sep="\t", header=None)
    assert list(fam[1]) == list(truth.IID)
    assert list(fam[4].map({1: "male", 2: "female"})) == list(truth.sex_reported)
    pheno = pd.read_csv(f"{demo.prefix}.pheno.tsv", sep="\t")
    assert list(pheno.columns) == ["FID", "IID", "PHENO", "AGE"]
    assert list(pheno.PHENO) == list(fam[5])
    assert 0.4 < (pheno.PHENO == 2).mean() < 0.6


def test_variant_truth(demo: Demo) -> None:
    variants = demo.variants
    counts = variants.planted_failure[variants.planted_failure != ""].value_counts().to_dict()
    assert counts == {
        "low_call_rate": SPEC.n_low_call_variants,
        "hwe_het_deficit": SPEC.n_hwe_deficit_variants,
        "hwe_het_excess": SPEC.n_hwe_excess_variants,
        "monomorphic": SPEC.n_monomorphic_variants,
        "rare": SPEC.n_rare_variants,
    }
    causal = variants[variants.causal]
    assert sorted(causal.effect) == sorted(SPEC.causal_odds_ratios)
    assert (causal.planted_failure == "").all()
    assert (variants.effect[~variants.causal] == 1.0).all()
    planted = variants[variants.planted_failure != ""]
    assert (demo.bim.set_index("ID").loc[planted.ID, "chrom"] < CHRX).all()


# ---------------------------------------------------------------- PLINK QC on the demo


@pytest.fixture(scope="module")
def plink2() -> str:
    exe = shutil.which("plink2")
    if exe is None:
        pytest.skip("plink2 is not installed (Debian package plink2)")
    return exe


@pytest.fixture(scope="module")
def plink19() -> str:
    exe = shutil.which("plink1.9")
    if exe is None:
        pytest.skip("plink1.9 is not installed (Debian package plink1.9)")
    return exe


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"


def _table(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path, sep=r"\s+")
    return table.rename(columns=lambda c: c.lstrip("#"))


@pytest.fixture(scope="module")
def qc(demo: Demo, plink2: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run the PLINK 2 QC commands once; return the folder with their outputs."""
    out = tmp_path_factory.mktemp("qc")
    bfile = ["--bfile", str(demo.prefix)]
    truth = demo.samples
    controls = pd.read_csv(f"{demo.prefix}.pheno.tsv", sep="\t").query("PHENO == 1")
    controls[["FID", "IID"]].to_csv(out / "controls.txt", sep="\t", index=False, header=False)
    for group in ("POP1", "POP2"):
        keep = truth.loc[truth.ancestry == group, ["FID", "IID"]]
        keep.to_csv(out / f"{group}.txt", sep="\t", index=False, header=False)

    def plink(*args: str) -> None:
        _run([plink2, *bfile, *args])

    plink("--missing", "--out", str(out / "miss"))
    plink("--autosome", "--indep-pairwise", "50", "5", "0.2", "--out", str(out / "prune"))
    pruned = str(out / "prune.prune.in")
    plink("--extract", pruned, "--het", "--out", str(out / "het"))
    plink("--make-king-table", "--out", str(out / "king"))
    plink("--hardy", "--out", str(out / "hardy_all"))
    for subset in ("controls", "POP1", "POP2"):
        plink(
            "--keep", str(out / f"{subset}.txt"), "--hardy", "--out", str(out / f"hardy_{subset}")
        )
    plink("--freq", "--out", str(out / "freq"))
    plink("--extract", pruned, "--pca", "10", "--out", str(out / "pca"))
    plink(
        "--pheno",
        f"{demo.prefix}.pheno.tsv",
        "--pheno-name",
        "PHENO",
        "--covar",
        str(out / "pca.eigenvec"),
        "--covar-name",
        "PC1-PC10",
        "--glm",
        "sex",
        "hide-covar",
        "--out",
        str(out / "assoc"),
    )
    return out


def test_plink_missingness(demo: Demo, qc: Path) -> None:
    smiss = _table(qc / "miss.smiss").set_index("IID").F_MISS
    failing = set(smiss.index[smiss > SAMPLE_MISSING_MAX])
    assert failing == demo.samples_with("low_call_rate")
    assert smiss[list(failing)].min() > 0.08
    vmiss = _table(qc / "miss.vmiss").set_index("ID").F_MISS
    failing = set(vmiss.index[vmiss > VARIANT_MISSING_MAX])
    assert failing == demo.variants_with("low_call_rate")
    assert vmiss[list(failing)].min() > 0.08


def test_plink19_check_sex(demo: Demo, plink19: str, tmp_path: Path) -> None:
    _run([plink19, "--bfile", str(demo.prefix), "--check-sex", "--out", str(tmp_path / "sex")])
    sex = _table(tmp_path / "sex.sexcheck").set_index("IID")
    assert set(sex.index[sex.STATUS != "OK"]) == demo.samples_with("sex_mismatch")
    genetic = demo.samples.set_index("IID").sex_true.map({"male": 1, "female": 2})
    assert (genetic[sex.index] == sex.SNPSEX).all()
    assert (sex.F[genetic == 1] > 0.8).all()
    assert (sex.F[genetic == 2] < 0.2).all()


def test_ld_pruning_removes_a_noticeable_share(qc: Path) -> None:
    kept = len((qc / "prune.prune.in").read_text().split())
    removed = len((qc / "prune.prune.out").read_text().split())
    assert kept + removed == SPEC.n_autosomal_snps
    assert 0.15 < removed / (kept + removed) < 0.6


def test_plink_heterozygosity(demo: Demo, qc: Path) -> None:
    het = _table(qc / "het.het").set_index("IID").F
    z = (het - het.mean()) / het.std()
    assert set(het.index[z < -3]) == demo.samples_with("contaminated")
    assert (z.abs() > 3).sum() == 1
    assert het[list(demo.samples_with("contaminated"))].max() < -0.3


def test_plink_king_relatedness(demo: Demo, qc: Path) -> None:
    king = _table(qc / "king.kin0")
    pair_kinship = {
        frozenset(p): k for *p, k in king[["IID1", "IID2", "KINSHIP"]].itertuples(index=False)
    }
    truth = demo.samples.set_index("IID")
    for label, (low, high) in (
        ("duplicate", (0.354, 0.5)),
        ("first_degree", KING_FIRST_DEGREE),
    ):
        a, b = sorted(demo.samples_with(label))
        assert truth.loc[a, "related_to"] == b
        assert low < pair_kinship[frozenset((a, b))] <= high, label
    planted_pairs = {frozenset(demo.samples_with(x)) for x in ("duplicate", "first_degree")}
    contaminated = demo.samples_with("contaminated")
    related = king[king.KINSHIP > KING_UNRELATED_MAX]
    for a, b in zip(related.IID1, related.IID2, strict=True):
        # Contamination inflates KING-robust kinship with everyone of the same ancestry (noted
        # in the truth table); every other related pair must be planted.
        assert frozenset((a, b)) in planted_pairs or {a, b} & contaminated, (a, b)


def test_plink_hardy_weinberg(demo: Demo, qc: Path) -> None:
    planted = demo.variants_with("hwe_het")
    for subset in ("all", "controls", "POP1", "POP2"):
        p = _table(qc / f"hardy_{subset}.hardy").set_index("ID").P
        assert set(p.index[p < HWE_P_MIN]) == planted, subset
        p_x = _table(qc / f"hardy_{subset}.hardy.x").P
        assert (p_x >= HWE_P_MIN).all(), subset
    all_samples = _table(qc / "hardy_all.hardy").set_index("ID")
    deficit = all_samples.loc[list(demo.variants_with("hwe_het_deficit"))]
    assert (deficit["O(HET_A1)"] < 0.5 * deficit["E(HET_A1)"]).all()
    excess = all_samples.loc[list(demo.variants_with("hwe_het_excess"))]
    assert (excess["O(HET_A1)"] > 1.3 * excess["E(HET_A1)"]).all()


def test_plink_allele_frequencies(demo: Demo, qc: Path) -> None:
    freq = _table(qc / "freq.afreq").set_index("ID").ALT_FREQS
    maf = np.minimum(freq, 1 - freq)
    rare = demo.variants_with("monomorphic") | demo.variants_with("rare")
    assert set(maf.index[maf < MAF_MIN]) == rare
    assert (maf[list(demo.variants_with("monomorphic"))] == 0).all()


def test_plink_pca_separates_ancestry(demo: Demo, qc: Path) -> None:
    pcs = _table(qc / "pca.eigenvec").set_index("IID")
    ancestry = demo.samples.set_index("IID").ancestry[pcs.index]
    pop1, pop2 = pcs.PC1[ancestry == "POP1"], pcs.PC1[ancestry == "POP2"]
    gap = max(pop2.min() - pop1.max(), pop1.min() - pop2.max())
    assert gap > 0.5 * pcs.PC1.std(), "PC1 does not separate the two groups"


def test_plink_glm_finds_a_causal_snp(demo: Demo, qc: Path) -> None:
    assoc = _table(qc / "assoc.PHENO.glm.logistic.hybrid")
    assoc = assoc[(assoc.TEST == "ADD") & assoc.P.notna()].set_index("ID")
    chisq = chi2.isf(assoc.P, 1)
    assert 0.9 < np.median(chisq) / chi2.ppf(0.5, 1) < 1.15, "genomic inflation"
    causal = demo.variants[demo.variants.causal].set_index("ID")
    hits = assoc[assoc.P < GENOME_WIDE]
    assert set(hits.index) & set(causal.index), "no causal SNP at p < 5e-8"
    bim = demo.bim.set_index("ID")
    causal_map = bim.loc[causal.index]
    for snp, hit in hits.iterrows():
        near = causal.index[
            (causal_map.chrom == bim.loc[snp, "chrom"])
            & ((causal_map.pos - bim.loc[snp, "pos"]).abs() < 1_000_000)
        ]
        assert len(near) == 1, f"{snp} is significant but not near a causal SNP"
        if snp in causal.index:
            # The risk allele is the .bim A1; --glm reports the minor allele as its A1.
            risk_up = hit.OR > 1 if bim.loc[snp, "a1"] == hit.A1 else hit.OR < 1
            assert risk_up, f"{snp}: the effect has the wrong sign"
