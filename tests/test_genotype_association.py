"""The association stage: phenotype kind, genomic inflation, input checks before PLINK, and the
whole stage on the simulated demo cohort (plink2 --glm, plink1.9 --clump, plots, summary)."""

from __future__ import annotations

import gzip
import itertools
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import needs_plink
from scipy import stats

from cohortflow.demo.genotypes import simulate_genotypes
from cohortflow.errors import ConfigError
from cohortflow.genotype_qc.association import (
    CHISQ1_MEDIAN,
    AssociationSettings,
    chrom_code,
    genomic_inflation,
    phenotype_kind,
    run_association,
)
from cohortflow.genotype_qc.inputs import GenotypeInputError
from cohortflow.genotype_qc.plink import PlinkSession

CAUSAL_OR6 = "7:55613392"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EXPECTED_COLUMNS = [
    "CHROM", "POS", "ID", "REF", "ALT", "A1", "A1_FREQ", "TEST", "OBS_CT",
    "BETA", "SE", "OR", "STAT", "P", "FIRTH", "ERRCODE",
]  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The simulated demo cohort (prefix of demo.bed/.bim/.fam and the tables beside it)."""
    prefix = tmp_path_factory.mktemp("assoc") / "demo"
    simulate_genotypes(prefix)
    return prefix


@pytest.fixture(scope="module")
def eigenvec(demo):
    if not shutil.which("plink2"):
        pytest.skip("plink2 not installed")
    out = demo.parent / "pca"
    PlinkSession(threads=2, memory_mb=1000).run("plink2", ["--bfile", str(demo), "--pca", "4"], out)
    return out.with_name("pca.eigenvec")


@pytest.fixture(scope="module")
def binary_run(demo, eigenvec):
    out = demo.parent / "binary"
    settings = AssociationSettings(covariates=("AGE",))
    summary = run_association(
        demo, eigenvec, f"{demo}.pheno.tsv", settings, out, threads=2, memory_mb=1000
    )
    return out, summary


def _results(out):
    return pd.read_csv(out / "results.tsv.gz", sep="\t", dtype={"CHROM": str, "ID": str})


# --- pure functions --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ([1, 2, 2, 1], "binary"),
        (["1", "2", "NA", "-9", ""], "binary"),
        ([0, 1, 1, np.nan], "binary"),
        ([0.0, 1.0, -9], "binary"),
        ([1, 2, 3], "quantitative"),
        ([0, 1, 2], "quantitative"),
        ([0, 2], "quantitative"),
        ([61.5, 70, 58], "quantitative"),
    ],
)
def test_phenotype_kind(values, kind):
    assert phenotype_kind(values) == kind


@pytest.mark.parametrize("values", [[], [1, 1, 1], ["NA", "-9", np.nan, 2, None]])
def test_phenotype_kind_needs_two_values(values):
    with pytest.raises(GenotypeInputError, match="at least two"):
        phenotype_kind(values)


def test_genomic_inflation_uniform_is_one():
    p = np.random.default_rng(7).uniform(size=200_000)
    assert genomic_inflation(p) == pytest.approx(1.0, abs=0.02)
    assert pytest.approx(0.454936, abs=1e-6) == CHISQ1_MEDIAN


def test_genomic_inflation_known_set():
    """Chi-square statistics 1, 2, 3 (median 2) give λ = 2 / 0.454936; missing and
    out-of-range P-values are left out."""
    p = [*stats.chi2.sf([1.0, 2.0, 3.0], 1), np.nan, 1.5, -0.1]
    assert genomic_inflation(p) == pytest.approx(2 / 0.454936, rel=1e-5)
    assert np.isnan(genomic_inflation([np.nan]))


def test_chrom_codes():
    assert [chrom_code(c) for c in ("1", "chr7", "23", "X", "chrX", "MT", "scaffold")] == [
        1, 7, 23, 23, 23, 26, 99,
    ]  # fmt: skip


def test_settings_from_config():
    s = AssociationSettings.from_config({"covariates": ["AGE"], "n_pcs": 2, "clump_r2": "0.2"})
    assert s.covariates == ("AGE",) and s.n_pcs == 2 and s.clump_r2 == 0.2
    assert AssociationSettings.from_config({}) == AssociationSettings()
    with pytest.raises(ConfigError, match=r"association\.clump_window"):
        AssociationSettings.from_config({"clump_window": 250})
    with pytest.raises(ConfigError, match="n_pcs"):
        AssociationSettings.from_config({"n_pcs": 2.5})
    with pytest.raises(ConfigError, match="genome_wide_p"):
        AssociationSettings.from_config({"genome_wide_p": 0})
    with pytest.raises(ConfigError, match="PC1"):
        AssociationSettings(covariates=("PC1",))


# --- input checks before PLINK ---------------------------------------------------------------


def test_non_numeric_phenotype_fails_before_plink(demo, tmp_path):
    table = pd.read_csv(f"{demo}.pheno.tsv", sep="\t", dtype=str)
    table.loc[5, "PHENO"] = "case"
    path = tmp_path / "pheno.tsv"
    table.to_csv(path, sep="\t", index=False)
    out = tmp_path / "out"
    with pytest.raises(GenotypeInputError, match=r"line 7, column 'PHENO': 'case' is not numeric"):
        run_association(demo, None, path, AssociationSettings(n_pcs=0), out)
    assert not (out / "results.tsv.gz").exists()
    assert not out.exists()


def test_absent_covariate_fails(demo, tmp_path):
    settings = AssociationSettings(n_pcs=0, covariates=("BMI",))
    with pytest.raises(GenotypeInputError, match="no column 'BMI'"):
        run_association(demo, None, f"{demo}.pheno.tsv", settings, tmp_path / "out")
    with pytest.raises(GenotypeInputError, match="no phenotype table"):
        run_association(demo, None, None, settings, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_constant_phenotype_fails(demo, tmp_path):
    table = pd.read_csv(f"{demo}.pheno.tsv", sep="\t", dtype=str)
    table["PHENO"] = "2"
    path = tmp_path / "pheno.tsv"
    table.to_csv(path, sep="\t", index=False)
    with pytest.raises(GenotypeInputError, match="1 distinct non-missing"):
        run_association(demo, None, path, AssociationSettings(n_pcs=0), tmp_path / "out")


@needs_plink
def test_too_few_pcs_fails(demo, eigenvec, tmp_path):
    with pytest.raises(GenotypeInputError, match="has 4 PCs, but n_pcs = 10"):
        run_association(
            demo, eigenvec, f"{demo}.pheno.tsv", AssociationSettings(n_pcs=10), tmp_path / "o"
        )
    with pytest.raises(ConfigError, match="no eigenvec"):
        run_association(demo, None, f"{demo}.pheno.tsv", AssociationSettings(), tmp_path / "o")


# --- the stage on the demo cohort -------------------------------------------------------------


@needs_plink
def test_binary_run_summary(binary_run):
    out, summary = binary_run
    assert summary["model"] == "logistic"
    assert summary["n_analysed"] == 240 == summary["n_with_phenotype"]
    assert summary["n_cases"] + summary["n_controls"] == 240
    assert summary["covariates"] == ["PC1", "PC2", "PC3", "PC4", "AGE", "SEX"]
    assert 0.9 <= summary["lambda_gc"] <= 1.15
    assert [r["engine"] for r in summary["plink_runs"]] == ["plink2", "plink1.9"]
    assert all(isinstance(r["log"], str) and r["version"] for r in summary["plink_runs"])
    assert json.loads((out / "summary.json").read_text()) == summary
    for name in ("manhattan.png", "qq.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporaries


@needs_plink
def test_binary_run_results_table(demo, binary_run):
    """One row per variant of the fileset (no QC here, so the planted failures are in it: the
    monomorphic SNPs fail with CONST_OMITTED_ALLELE), standard columns, gzip TSV."""
    out, summary = binary_run
    with gzip.open(out / "results.tsv.gz", "rt") as fh:
        assert fh.readline().rstrip("\n").split("\t") == EXPECTED_COLUMNS
    results = _results(out)
    bim = pd.read_csv(f"{demo}.bim", sep="\t", header=None, dtype=str)
    assert list(results["ID"]) == list(bim[1])
    assert set(results["TEST"]) == {"ADD"}
    assert summary["n_variants"] == len(results)
    assert summary["n_variants_tested"] == results["P"].notna().sum()
    truth = pd.read_csv(f"{demo}.truth_variants.tsv", sep="\t", dtype=str, keep_default_na=False)
    monomorphic = set(truth.loc[truth["planted_failure"] == "monomorphic", "ID"])
    failed = results[results["P"].isna()]
    assert monomorphic <= set(failed["ID"])
    assert (failed["ERRCODE"] != ".").all()
    valid = results[results["P"].notna()]
    assert np.allclose(valid["OR"], np.exp(valid["BETA"]), rtol=1e-5)
    assert set(results["CHROM"]) == {*(str(c) for c in range(1, 23)), "X"}


@needs_plink
def test_binary_run_finds_the_causal_snp(demo, binary_run):
    """The OR-6 SNP reaches P < 1e-6 and, when genome-wide significant, is a lead variant.

    Tested allele: plink2 a3.5 reports the non-major allele as A1, so A1 is the .bim's A1
    (plink2's ALT) only where that allele is the less frequent; elsewhere A1 is REF and BETA
    has the opposite sign to the effect of the .bim A1."""
    out, summary = binary_run
    results = _results(out).set_index("ID")
    row = results.loc[CAUSAL_OR6]
    assert row["P"] < 1e-6
    leads = pd.read_csv(out / "lead_variants.tsv", sep="\t", dtype={"ID": str, "CHROM": str})
    if row["P"] < 5e-8:
        assert CAUSAL_OR6 in set(leads["ID"])
        assert CAUSAL_OR6 in {lead["ID"] for lead in summary["leads"]}
    assert len(leads) == len(summary["leads"])
    assert (leads["P"] < 5e-8).all()
    assert {"CHROM", "POS", "ID", "A1", "BETA", "SE", "OR", "P", "n_clumped"} <= set(leads)
    # A1 against the .bim: ALT is the .bim column-5 allele; A1 is the non-major allele.
    bim = pd.read_csv(f"{demo}.bim", sep="\t", header=None, dtype=str).set_index(1)
    valid = results[results["P"].notna()]
    assert (valid["ALT"] == bim.loc[valid.index, 4]).all()
    assert ((valid["A1"] == valid["ALT"]) | (valid["A1"] == valid["REF"])).all()
    # (On chrX, --glm's A1_FREQ counts male hemizygous calls as two copies while "major" is
    # decided on allele frequencies, so a chrX A1_FREQ can exceed 0.5 a little.)
    autosomal = valid[valid["CHROM"] != "X"]
    assert (autosomal["A1_FREQ"] <= 0.5 + 1e-9).all()
    assert (valid["A1"] != valid["ALT"]).any()  # so A1 is not always the .bim A1
    bim_a1_or = row["OR"] if row["A1"] == bim.loc[CAUSAL_OR6, 4] else 1 / row["OR"]
    assert bim_a1_or > 2  # the planted effect (OR 6 per .bim A1) points the right way


@needs_plink
def test_fam_phenotype_without_significant_clumps(demo, eigenvec, binary_run, tmp_path):
    """The .fam phenotype gives the same analysis as the table's PHENO column; with a clump
    threshold nothing reaches, the lead table is empty but has its header."""
    settings = AssociationSettings(covariates=(), n_pcs=4, clump_p1=1e-30, clump_p2=1e-2)
    summary = run_association(demo, eigenvec, None, settings, tmp_path, threads=2)
    assert summary["model"] == "logistic"
    assert summary["phenotype_source"].endswith("demo.fam")
    assert summary["leads"] == []
    assert "clump" in summary["clump_note"]
    leads = pd.read_csv(tmp_path / "lead_variants.tsv", sep="\t")
    assert leads.empty
    assert list(leads.columns) == [
        "CHROM", "POS", "ID", "A1", "BETA", "SE", "OR", "P", "n_clumped", "clumped_ids",
    ]  # fmt: skip
    assert [r["engine"] for r in summary["plink_runs"]] == ["plink2"]
    assert summary["n_genome_wide"] >= 1  # significant, just not at the clump threshold
    assert _results(tmp_path)["P"].notna().sum() == binary_run[1]["n_variants_tested"]


@needs_plink
def test_quantitative_phenotype_is_linear(demo, eigenvec, tmp_path):
    settings = AssociationSettings(phenotype="AGE", n_pcs=2, sex_covariate=False)
    summary = run_association(demo, eigenvec, f"{demo}.pheno.tsv", settings, tmp_path)
    assert summary["model"] == "linear"
    assert summary["files"]["glm"].endswith(".AGE.glm.linear")
    assert summary["covariates"] == ["PC1", "PC2"]
    assert summary["sex_covariate"].startswith("chrX only")
    assert summary["n_analysed"] == 240
    age = pd.read_csv(f"{demo}.pheno.tsv", sep="\t")["AGE"]
    assert summary["phenotype_mean"] == pytest.approx(age.mean())
    assert summary["phenotype_sd"] == pytest.approx(age.std())
    results = _results(tmp_path)
    assert "OR" not in results.columns and "FIRTH" not in results.columns
    assert len(results) == summary["n_variants"] == 7000
    assert 0.8 <= summary["lambda_gc"] <= 1.25
    assert (tmp_path / "qq.png").read_bytes()[:8] == PNG_MAGIC


@needs_plink
def test_missing_phenotypes_and_01_coding(demo, eigenvec, tmp_path):
    """0/1 coding is recoded to PLINK's 1/2; samples missing from the table or with a missing
    phenotype are left out of the count analysed."""
    table = pd.read_csv(f"{demo}.pheno.tsv", sep="\t", dtype=str)
    table["PHENO"] = (table["PHENO"].astype(int) - 1).astype(str)
    table.loc[:9, "PHENO"] = "NA"
    table = table.iloc[:-5]
    path = tmp_path / "pheno.tsv"
    table.to_csv(path, sep="\t", index=False)
    settings = AssociationSettings(n_pcs=2)
    summary = run_association(demo, eigenvec, path, settings, tmp_path / "out")
    assert summary["model"] == "logistic"
    assert summary["n_with_phenotype"] == summary["n_analysed"] == 240 - 10 - 5
    expected_cases = (table["PHENO"] == "1").sum()
    assert summary["n_cases"] == expected_cases
    coded = pd.read_csv(tmp_path / "out" / "plink" / "phenotype.tsv", sep="\t")
    assert set(coded["PHENO"].dropna()) == {1, 2}


def test_manhattan_chromosomes_are_as_wide_as_their_variant_span(tmp_path):
    """Widths follow the span of each chromosome's variants (not 0 to its last position), and
    short ones (MT, the XY pseudo-autosomal SNPs) keep a readable minimum width."""
    from cohortflow.genotype_qc.association import MIN_CHROM_WIDTH, chromosome_layout

    names = np.array(["1"] * 3 + ["2"] * 3 + ["X"] * 2 + ["XY"] * 2 + ["MT"] * 2)
    pos = np.array([100e6, 150e6, 200e6, 1e6, 2e6, 51e6, 60e6, 100e6, 1e6, 2e6, 100, 16000],
                   dtype=float)  # fmt: skip
    codes = np.array([chrom_code(n) for n in names])
    x, ticks, labels, extents = chromosome_layout(codes, names, pos)
    assert labels == ["1", "2", "X", "XY", "MT"]
    widths = [end - start for start, end in extents]
    total = sum(np.ptp(pos[names == n]) for n in ("1", "2", "X", "XY", "MT"))
    assert widths[0] == pytest.approx(100e6) and widths[1] == pytest.approx(50e6)
    assert widths[2] == pytest.approx(40e6)
    assert widths[3] == pytest.approx(MIN_CHROM_WIDTH * total)  # 1 Mb span: the minimum
    assert widths[4] == pytest.approx(MIN_CHROM_WIDTH * total)  # MT: 16 kb
    for (start, end), name in zip(extents, labels, strict=True):
        inside = x[names == name]
        assert start <= inside.min() and inside.max() <= end
    assert all(a[1] < b[0] for a, b in itertools.pairwise(extents))
    assert ticks == pytest.approx([(a + b) / 2 for a, b in extents])
