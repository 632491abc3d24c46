"""Genotype QC: the decisions on small tables, each step on the demo genotypes (planted
failures caught for the right reason, nothing removed without one), chrX-less data, and the
PLINK-reference oracle on the shared HapMap fileset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_DATA, needs_plink, simulated_demo_genotypes

from cohortflow.errors import ConfigError
from cohortflow.genotype_qc import decide
from cohortflow.genotype_qc.inputs import GenotypeInputError
from cohortflow.genotype_qc.plink import PlinkSession, read_table
from cohortflow.genotype_qc.report import check_account, write_report
from cohortflow.genotype_qc.steps import (
    STEPS,
    InputSettings,
    QCSettings,
    run_step,
    step_dir_name,
    write_clean_fileset,
)

HAPMAP = SHARED_DATA / "genotype" / "plinkqc_hapmap"
EXPECTED = HAPMAP / "expected_plink_outputs"


# ----------------------------------------------------------------------------- decisions
def test_sex_status_covers_every_case():
    table = pd.DataFrame({"PEDSEX": [1, 2, 1, 2, 0, 0], "SNPSEX": [1, 1, 0, 2, 2, 0]})
    assert decide.sex_status(table).tolist() == [
        "ok", "mismatch", "ambiguous", "ok", "not reported", "not reported, ambiguous",
    ]  # fmt: skip


def test_heterozygosity_band_uses_mean_and_sample_sd():
    f = pd.Series([0.0, 0.01, -0.01, 0.02, -0.02, 0.0, 0.01, -0.01, 0.005, -0.5])
    flagged, mean, sd = decide.heterozygosity_outliers(f, 2.0)
    assert mean == pytest.approx(f.mean()) and sd == pytest.approx(f.std(ddof=1))
    assert flagged.tolist() == [False] * 9 + [True]
    assert not decide.heterozygosity_outliers(pd.Series([0.1, 0.2]), 3)[0].any()


def test_relatedness_removes_as_few_as_possible_preferring_worse_call_rate():
    miss = pd.Series({"a": 0.01, "b": 0.02, "c": 0.001, "d": 0.03, "e": 0.0, "f": 0.004, "x": 0.1})
    # A chain a-b-c: removing b alone resolves both pairs, although a and c call better.
    chain = pd.DataFrame({"a": ["a", "b"], "b": ["b", "c"]})
    assert decide.relatedness_removals(chain, miss) == ["b"]
    # A lone pair: the worse call rate goes.
    assert decide.relatedness_removals(pd.DataFrame({"a": ["d"], "b": ["e"]}), miss) == ["d"]
    # A triangle needs two removals: the two worst.
    tri = pd.DataFrame({"a": ["a", "b", "a"], "b": ["b", "c", "c"]})
    assert decide.relatedness_removals(tri, miss) == ["a", "b"]
    # Separate families are solved separately; a star loses its centre only.
    star = pd.DataFrame({"a": ["x"] * 4, "b": ["a", "b", "c", "d"]})
    both = pd.concat([star, pd.DataFrame({"a": ["e"], "b": ["f"]})])
    assert decide.relatedness_removals(both, miss) == ["f", "x"]


def test_relatedness_large_family_falls_back_to_greedy_and_leaves_no_pair():
    n = decide.EXACT_COMPONENT_MAX + 4
    nodes = [f"s{i:02d}" for i in range(n)]
    pairs = pd.DataFrame({"a": nodes[:-1], "b": nodes[1:]})  # a long chain: one component
    removed = set(decide.relatedness_removals(pairs, pd.Series(dtype=float)))
    assert all(a in removed or b in removed for a, b in zip(pairs["a"], pairs["b"], strict=True))
    assert len(removed) <= n // 2 + 1


def test_kinship_degrees_and_pca_outliers():
    assert [decide.kinship_degree(k) for k in (0.5, 0.25, 0.1, 0.05, 0.0)] == [
        "duplicate or MZ twin", "first degree", "second degree", "third degree", "unrelated",
    ]  # fmt: skip
    rng = np.random.default_rng(0)
    pcs = pd.DataFrame(rng.normal(size=(200, 3)), columns=["PC1", "PC2", "PC3"])
    pcs.loc[7, "PC2"] = 40.0
    flagged, which = decide.pca_outliers(pcs, 2, 6.0)
    assert flagged.sum() == 1 and flagged[7] and which[7] == "PC2"
    pcs.loc[9, "PC3"] = 40.0  # PC3 is not among the PCs looked at
    assert decide.pca_outliers(pcs, 2, 6.0)[0].sum() == 1


# ------------------------------------------------------------------------------ the steps
def _run_all(root, inputs, settings=None, steps=STEPS):
    settings = settings or QCSettings()
    records = {}
    for name in steps:
        records[name] = run_step(name, root, settings, PlinkSession(2, 1000), inputs)
    return records


@pytest.fixture(scope="module")
def demo_qc(tmp_path_factory):
    """The demo genotypes through every step, the clean fileset and the report."""
    work = simulated_demo_genotypes(tmp_path_factory, "genotype_qc")
    inputs = InputSettings(
        input=str(work / "demo"), phenotype_file=str(work / "demo.pheno.tsv"),
        covariates=("AGE",),
    )  # fmt: skip
    root = work / "steps"
    records = _run_all(root, inputs)
    write_clean_fileset(root, work / "clean" / "cohort", PlinkSession(2, 1000))
    summary = write_report(root, work / "clean" / "cohort", work / "report")
    truth = pd.read_csv(work / "demo.truth_samples.tsv", sep="\t", dtype=str).fillna("")
    vtruth = pd.read_csv(work / "demo.truth_variants.tsv", sep="\t", dtype=str).fillna("")
    samples = pd.read_csv(work / "report" / "samples.tsv", sep="\t", dtype={"IID": str})
    variants = pd.read_csv(work / "report" / "variants.tsv.gz", sep="\t", dtype={"ID": str})
    return {
        "work": work, "root": root, "records": records, "summary": summary, "truth": truth,
        "vtruth": vtruth, "samples": samples, "variants": variants,
    }  # fmt: skip


EXPECTED_SAMPLE_REASON = {
    "low_call_rate": ("sample_callrate", "sample_missing"),
    "sex_mismatch": ("sex_check", "sex_mismatch"),
    "contaminated": ("heterozygosity", "heterozygosity"),
}
EXPECTED_VARIANT_REASON = {
    "low_call_rate": ("variant_callrate", "variant_missing"),
    "hwe_het_deficit": ("variant_final", "hwe"),
    "hwe_het_excess": ("variant_final", "hwe"),
    "monomorphic": ("variant_final", "maf"),
    "rare": ("variant_final", "maf"),
}


def test_every_planted_sample_failure_is_caught_for_its_reason(demo_qc):
    table = demo_qc["samples"].merge(demo_qc["truth"], on="IID", suffixes=("", "_truth"))
    planted = table[table["planted_failure"] != ""]
    for _, row in planted.iterrows():
        label = row["planted_failure"]
        if label in EXPECTED_SAMPLE_REASON:
            step, reason = EXPECTED_SAMPLE_REASON[label]
            assert (row["removed_at"], row["reasons"]) == (step, reason), row["IID"]
    # Each related pair loses exactly one member, for relatedness, with the pair's kinship.
    for label, degree in (("duplicate", "duplicate or MZ twin"), ("first_degree", "first degree")):
        pair = planted[planted["planted_failure"] == label]
        assert sorted(pair["status"]) == ["kept", "removed"], label
        gone = pair[pair["status"] == "removed"].iloc[0]
        assert gone["reasons"] == "related" and degree in gone["details"]
        assert gone["related_to"] in gone["details"]
        # The one with the better call rate stays.
        kept = pair[pair["status"] == "kept"].iloc[0]
        assert kept["F_MISS"] <= gone["F_MISS"]
    # Sex mismatches are reported in both directions, with genetic sex.
    sex = planted[planted["planted_failure"] == "sex_mismatch"]
    assert set(zip(sex["sex_reported"], sex["sex_genetic"], strict=True)) == {
        ("female", "male"), ("male", "female"),
    }  # fmt: skip


def test_nothing_is_removed_without_a_reason_and_ordinary_samples_stay(demo_qc):
    samples, truth = demo_qc["samples"], demo_qc["truth"]
    removed = samples[samples["status"] == "removed"]
    assert removed["reasons"].notna().all() and removed["details"].notna().all()
    ordinary = set(truth.loc[truth["planted_failure"] == "", "IID"])
    assert not (set(removed["IID"]) & ordinary), "an ordinary sample was removed"
    assert demo_qc["summary"]["samples_kept"] == 240 - 8
    variants = demo_qc["variants"]
    gone = variants[variants["status"] == "removed"]
    assert gone["reasons"].notna().all()
    # Ordinary variants may only go for final missingness (sampling noise near 2 %).
    vt = variants.merge(demo_qc["vtruth"], on="ID", suffixes=("", "_truth"))
    ordinary_gone = vt[(vt["status"] == "removed") & (vt["planted_failure"] == "")]
    assert set(ordinary_gone["reasons"]) <= {"variant_missing"}
    assert (ordinary_gone["F_MISS"] <= 0.05).all()
    # The causal SNPs survive QC.
    assert (vt.loc[vt["causal"] == "True", "status"] == "kept").all()


def test_every_planted_variant_failure_is_caught_for_its_reason(demo_qc):
    vt = demo_qc["variants"].merge(demo_qc["vtruth"], on="ID", suffixes=("", "_truth"))
    planted = vt[vt["planted_failure"] != ""]
    assert len(planted) == 32
    for _, row in planted.iterrows():
        step, reason = EXPECTED_VARIANT_REASON[row["planted_failure"]]
        assert row["removed_at"] == step, row["ID"]
        assert reason in row["reasons"].split(";"), (row["ID"], row["reasons"])


def test_attrition_adds_up_and_the_clean_fileset_matches(demo_qc):
    attrition = pd.read_csv(demo_qc["work"] / "report" / "attrition.tsv", sep="\t")
    assert list(attrition["step"]) == list(STEPS)
    assert (attrition["samples_in"] - attrition["samples_removed"]
            == attrition["samples_out"]).all()  # fmt: skip
    assert (attrition["samples_in"].iloc[1:].to_numpy()
            == attrition["samples_out"].iloc[:-1].to_numpy()).all()  # fmt: skip
    assert (attrition["variants_in"].iloc[1:].to_numpy()
            == attrition["variants_out"].iloc[:-1].to_numpy()).all()  # fmt: skip
    fam = pd.read_csv(demo_qc["work"] / "clean" / "cohort.fam", sep=r"\s+", header=None)
    assert len(fam) == attrition["samples_out"].iloc[-1] == 232
    for plot in ("missingness_heterozygosity", "sex_check", "kinship", "pca", "hwe_qq"):
        png = demo_qc["work"] / "report" / "plots" / f"{plot}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", plot


def test_account_check_refuses_an_unexplained_removal(demo_qc):
    samples, variants = demo_qc["samples"].copy(), demo_qc["variants"]
    prefix = demo_qc["work"] / "clean" / "cohort"
    assert check_account(samples, variants, prefix)["samples_kept"] == 232
    first_removed = samples.index[samples["status"] == "removed"][0]
    samples.loc[first_removed, "reasons"] = np.nan
    with pytest.raises(Exception, match="removed without a recorded reason"):
        check_account(samples, variants, prefix)


def test_pca_separates_the_two_ancestries_and_flags_nobody(demo_qc):
    table = demo_qc["samples"].merge(demo_qc["truth"], on="IID", suffixes=("", "_truth"))
    tested = table.dropna(subset=["PC1"])
    group = (tested["ancestry"] == "POP2").astype(float)
    assert abs(np.corrcoef(tested["PC1"], group)[0, 1]) > 0.95
    assert not tested["pca_outlier"].astype(bool).any()


def test_plink_gets_threads_and_memory_and_every_run_is_recorded(demo_qc):
    runs = demo_qc["records"]["relatedness"]["plink_runs"]
    assert [r["engine"] for r in runs] == ["plink2"]
    log = (demo_qc["root"] / step_dir_name("relatedness") / "plink" / "king.log").read_text()
    assert "--threads 2" in log and "--memory 1000" in log
    assert demo_qc["records"]["sex_check"]["plink_runs"][0]["engine"] == "plink1.9"


@needs_plink
def test_sex_not_checkable_without_chrx(tmp_path):
    from cohortflow.demo.genotypes import simulate_genotypes

    simulate_genotypes(tmp_path / "demo")
    PlinkSession().run(
        "plink2", ["--bfile", str(tmp_path / "demo"), "--not-chr", "X", "--make-bed"],
        tmp_path / "auto",
    )  # fmt: skip
    records = _run_all(
        tmp_path / "steps", InputSettings(input=str(tmp_path / "auto")),
        steps=STEPS[: STEPS.index("sex_check") + 1],
    )  # fmt: skip
    sex = records["sex_check"]
    assert sex["samples_removed"] == 0 and sex["extra"]["n_chrx_variants"] == 0
    table = pd.read_csv(tmp_path / "steps" / step_dir_name("sex_check") / "samples.tsv", sep="\t")
    assert set(table["sex_status"]) == {"not checkable (no chrX variants)"}
    assert sex["samples_out"] == sex["samples_in"]


@needs_plink
def test_bad_input_stops_the_import_and_leaves_nothing(tmp_path):
    from cohortflow.demo.genotypes import simulate_genotypes

    simulate_genotypes(tmp_path / "demo")
    bed = tmp_path / "demo.bed"
    bed.write_bytes(bed.read_bytes()[:-100])
    with pytest.raises(GenotypeInputError, match="truncated"):
        run_step("import", tmp_path / "steps", QCSettings(), PlinkSession(),
                 InputSettings(input=str(tmp_path / "demo")))  # fmt: skip
    assert not (tmp_path / "steps" / step_dir_name("import")).exists()
    assert not any((tmp_path / "steps").glob(".*tmp"))
    with pytest.raises(ConfigError, match=r"genotypes\.input"):
        InputSettings.from_config({"input": None})


# ------------------------------------------------------------------------ the PLINK oracle
@needs_plink
@pytest.mark.shared_data
@pytest.mark.skipif(not EXPECTED.is_dir(), reason="../shared/data absent")
def test_steps_reproduce_the_plink_reference_outputs(tmp_path):
    """The shipped reference covers 180 of the 200 HapMap samples (computed with PLINK 1.9,
    heterozygosity on all SNPs, nothing removed in between). Our import, call-rate, sex-check
    and heterozygosity steps run on those 180 with removals switched off and the
    heterozygosity on all autosomal SNPs; their tables equal the reference: per-sample and
    per-variant missingness, sex-check F, genetic sex and status (the same 7 problems), and
    heterozygosity F."""
    reference = {name: read_table(EXPECTED / f"data.{name}")
                 for name in ("imiss", "lmiss", "sexcheck", "het")}  # fmt: skip
    keep = tmp_path / "keep.txt"
    reference["imiss"][["FID", "IID"]].to_csv(keep, sep=" ", header=False, index=False)
    PlinkSession().run(
        "plink2", ["--bfile", str(HAPMAP / "data"), "--keep", str(keep), "--make-bed"],
        tmp_path / "hapmap180",
    )  # fmt: skip
    settings = QCSettings(
        variant_missing_prefilter=1.0, sample_missing=1.0, sex_remove=(), het_n_sd=1e9,
        het_ld_pruned=False,
    )  # fmt: skip
    root = tmp_path / "steps"
    _run_all(root, InputSettings(input=str(tmp_path / "hapmap180")), settings,
             STEPS[: STEPS.index("heterozygosity") + 1])  # fmt: skip

    def table(step, name="samples.tsv"):
        return pd.read_csv(root / step_dir_name(step) / name, sep="\t", dtype={"IID": str})

    def compare(ours, key, column, ref, ref_column):
        merged = ours.merge(ref, on=key, suffixes=("", "_ref"))
        assert len(merged) == len(ref) == len(ours)
        return merged[column].to_numpy(), merged[ref_column if ref_column != column
                                                  else f"{column}_ref"].to_numpy()  # fmt: skip

    ours, ref = compare(table("sample_callrate"), "IID", "F_MISS", reference["imiss"], "F_MISS")
    assert np.allclose(ours, ref, atol=5e-5, rtol=0)
    variants = table("variant_callrate", "variants.tsv").rename(columns={"ID": "SNP"})
    ours, ref = compare(variants, "SNP", "F_MISS_prefilter", reference["lmiss"], "F_MISS")
    assert np.allclose(ours, ref, atol=5e-5, rtol=0)
    sex = table("sex_check")
    ours, ref = compare(sex, "IID", "sex_F", reference["sexcheck"], "F")
    assert np.allclose(ours, ref, atol=5e-5, rtol=0)
    merged = sex.merge(reference["sexcheck"], on="IID")
    assert (merged["sex_genetic"] == merged["SNPSEX"].map(decide.sex_label)).all()
    assert ((merged["sex_status"] != "ok") == (merged["STATUS"] == "PROBLEM")).all()
    assert (merged["sex_status"] != "ok").sum() == 7
    ours, ref = compare(table("heterozygosity"), "IID", "het_F", reference["het"], "F")
    assert np.allclose(ours, ref, atol=5e-5, rtol=0)


@needs_plink
@pytest.mark.parametrize("kind", ["vcf", "pfile"])
def test_vcf_and_pfile_inputs_import_with_sex_and_phenotype(tmp_path, kind):
    from cohortflow.demo.genotypes import simulate_genotypes

    simulate_genotypes(tmp_path / "demo")
    fam = pd.read_csv(tmp_path / "demo.fam", sep=r"\s+", header=None, dtype=str)
    pheno = pd.read_csv(tmp_path / "demo.pheno.tsv", sep="\t", dtype=str)
    pheno["SEX"] = fam[4].to_numpy()
    pheno.to_csv(tmp_path / "pheno.tsv", sep="\t", index=False)
    base = ["--bfile", str(tmp_path / "demo")]
    if kind == "vcf":
        export = [*base, "--export", "vcf", "bgz", "id-paste=iid"]
        PlinkSession().run("plink2", export, tmp_path / "cohort")
        inputs = InputSettings(
            input=str(tmp_path / "cohort.vcf.gz"),
            phenotype_file=str(tmp_path / "pheno.tsv"),
            sex_column="SEX",
        )
    else:
        PlinkSession().run("plink2", [*base, "--make-pgen"], tmp_path / "cohort")
        inputs = InputSettings(
            input=str(tmp_path / "cohort"), phenotype_file=str(tmp_path / "pheno.tsv")
        )
    records = _run_all(tmp_path / "steps", inputs, steps=STEPS[: STEPS.index("sex_check") + 1])
    assert records["import"]["extra"]["kind"] == kind
    assert records["import"]["extra"]["phenotype_kind"] == "binary"
    assert records["import"]["samples_out"] == 240 and records["import"]["variants_out"] == 7000
    removed = pd.read_csv(
        tmp_path / "steps" / step_dir_name("sex_check") / "removed_samples.tsv", sep="\t"
    )
    assert sorted(removed["IID"]) == ["DEMO0069", "DEMO0113"]
    phenotype = pd.read_csv(
        tmp_path / "steps" / step_dir_name("import") / "phenotype.tsv", sep="\t"
    )
    assert phenotype["PHENO"].notna().all()


def test_step_records_name_no_temporary_folder(demo_qc):
    """PLINK's warnings name files in the step's temporary folder; the records must name the
    step's own folder, or two runs of one step would not write the same bytes."""
    texts = [p.read_text() for p in sorted(Path(demo_qc["root"]).rglob("step.json"))]
    assert texts and any("warning" in t for t in texts)
    assert not [t for t in texts if ".tmp" in t]
