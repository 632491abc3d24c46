"""Real-cohort VCF inputs (issue 27 point 1): per-chromosome VCFs named by a pattern and merged,
male chrX half-calls, a multi-allelic site, an allele longer than plink2's ID limit, FID_IID
sample names, and PAR SNPs with ``genotypes.build`` through every step and both engines.

The fixture is the demo cohort exported by plink2 as three gzip-compressed text VCFs and edited
the way real callers write them: male chrX calls as half-calls (``0/.``), the first 30 chrX SNPs
moved into PAR1 (diploid in males), unnamed variants, one tri-allelic site and one 30-base
deletion without an ID."""

from __future__ import annotations

import gzip

import pandas as pd
import pytest
from conftest import needs_plink, simulated_demo_genotypes

from cohortflow.genotype_qc.inputs import GenotypeInputError, input_files, resolve_inputs
from cohortflow.genotype_qc.plink import PlinkSession, read_bim
from cohortflow.genotype_qc.report import write_report
from cohortflow.genotype_qc.steps import (
    STEPS,
    InputSettings,
    QCSettings,
    run_step,
    step_dir_name,
    write_clean_fileset,
)

N_PAR = 30


def _export(demo, chroms, path, session):
    prefix = path.parent / path.name.removesuffix(".vcf.gz")
    session.run(
        "plink2", ["--bfile", str(demo), "--chr", *chroms, "--export", "vcf", "id-paste=iid"],
        prefix,
    )  # fmt: skip
    return prefix.with_name(prefix.name + ".vcf").read_text().splitlines()


def _write(path, lines):
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def vcfs(tmp_path_factory):
    work = simulated_demo_genotypes(tmp_path_factory, "vcf_inputs")
    session = PlinkSession(2, 1000)
    fam = pd.read_csv(work / "demo.fam", sep="\t", header=None, dtype=str)
    males = set(fam.loc[fam[4] == "1", 1])

    def rename(line):  # sample names FAM_IID, split again by sample_ids: delimiter
        if line.startswith("#CHROM"):
            head, names = line.split("\t")[:9], line.split("\t")[9:]
            return "\t".join([*head, *(f"F{n[-4:]}_{n}" for n in names)])
        return line

    vcf = work / "vcf"
    vcf.mkdir()
    lines = [rename(x) for x in _export(work / "demo", ["1"], work / "c1.vcf.gz", session)]
    last = int(lines[-1].split("\t")[1])
    n = len(fam)
    lines.append("\t".join(["1", str(last + 10), ".", "A", "G,T", ".", ".", ".", "GT",
                            *(["0/2"] * n)]))  # fmt: skip
    lines.append("\t".join(["1", str(last + 20), ".", "A" * 30, "A", ".", ".", ".", "GT",
                            *(["0/1"] * n)]))  # fmt: skip
    _write(vcf / "cohort.chr1.vcf.gz", lines)
    autosomes = [str(c) for c in range(2, 23)]
    lines = [rename(x) for x in _export(work / "demo", autosomes, work / "c2.vcf.gz", session)]
    _write(vcf / "cohort.chr2.vcf.gz", lines)
    lines = _export(work / "demo", ["X"], work / "cx.vcf.gz", session)
    header = [x for x in lines if x.startswith("#")]
    names = header[-1].split("\t")[9:]
    male_col = [name in males for name in names]
    records = []
    for i, line in enumerate(x for x in lines if not x.startswith("#")):
        cols = line.split("\t")
        calls = cols[9:]
        if i < N_PAR:  # PAR1: diploid in males
            cols[1] = str(100_000 + 50_000 * i)
            pairs = zip(calls, male_col, strict=True)
            calls = [f"{c}/{c}" if m and "/" not in c else c for c, m in pairs]
        else:  # outside the PAR: male calls written as half-calls, as many callers do
            calls = [f"{c}/." if m and "/" not in c and c != "." else c
                     for c, m in zip(calls, male_col, strict=True)]  # fmt: skip
        cols[2] = "."  # unnamed: IDs come from --set-missing-var-ids
        records.append("\t".join([*cols[:9], *calls]))
    _write(vcf / "cohort.chrX.vcf.gz", [*(rename(h) for h in header), *records])
    pheno = pd.read_csv(work / "demo.pheno.tsv", sep="\t", dtype=str)
    pheno["FID"] = "F" + pheno["IID"].str[-4:]
    pheno["SEX"] = fam[4].to_numpy()
    pheno.to_csv(work / "pheno.tsv", sep="\t", index=False)
    return work


def _inputs(work, **kwargs):
    return InputSettings(
        input=str(work / "vcf" / "cohort.chr*.vcf.gz"), phenotype_file=str(work / "pheno.tsv"),
        sex_column="SEX", sample_ids="delimiter", build="b37", **kwargs,
    )  # fmt: skip


def test_a_pattern_names_the_files_in_natural_order(tmp_path):
    for name in ("c.chr10.vcf.gz", "c.chr2.vcf.gz", "c.chrX.vcf.gz", "c.chr1.vcf.gz"):
        (tmp_path / name).write_text("")
    found = [p.name for p in resolve_inputs(str(tmp_path / "c.chr*.vcf.gz"))]
    assert found == ["c.chr1.vcf.gz", "c.chr2.vcf.gz", "c.chr10.vcf.gz", "c.chrX.vcf.gz"]
    assert input_files([str(tmp_path / "c.chr1.vcf.gz"), str(tmp_path / "set")])[1:] == [
        f"{tmp_path}/set{ext}" for ext in (".bed", ".bim", ".fam")
    ]
    with pytest.raises(GenotypeInputError, match="matches no file"):
        resolve_inputs(str(tmp_path / "none*.vcf.gz"))


@needs_plink
def test_per_chromosome_vcfs_import_with_half_calls_multiallelics_and_long_alleles(vcfs, tmp_path):
    record = run_step("import", tmp_path / "steps", QCSettings(), PlinkSession(2, 1000),
                      _inputs(vcfs))  # fmt: skip
    extra = record["extra"]
    assert len(extra["input"]) == 3 and extra["kind"] == "vcf"
    # 7,000 demo SNPs plus the long-allele deletion; the tri-allelic site dropped and counted.
    assert record["samples_out"] == 240 and record["variants_out"] == 7001
    assert extra["n_multiallelic_dropped"] == 1
    assert any("1 multi-allelic variants dropped" in n for n in record["notes"])
    assert any(n.startswith("3 inputs merged") for n in record["notes"])
    # plink2's warnings (here: the truncated allele in the new ID) are notes of the step.
    assert any(n.startswith("plink2 warning:") and "truncated" in n for n in record["notes"])
    bim = read_bim(tmp_path / "steps" / step_dir_name("import") / "data.bim")
    long_id = bim.loc[bim["A2"].str.len() == 30, "ID"].item()
    assert long_id.endswith(":" + "A" * 23 + ":A") or long_id.endswith(":A:" + "A" * 23)
    assert extra["n_par_variants"] == N_PAR and (bim["CHROM"] == "XY").sum() == N_PAR
    assert extra["n_chrx_variants"] == 1000 - N_PAR
    fam = pd.read_csv(tmp_path / "steps" / step_dir_name("import") / "data.fam", sep=r"\s+",
                      header=None, dtype=str)  # fmt: skip
    assert fam[0].str.startswith("F").all() and fam[1].str.startswith("DEMO").all()
    assert set(fam[4]) == {"1", "2"}  # sex from the phenotype table, matched on FID and IID
    # Without build, the PAR SNPs stay on chrX: a warning note says so (the step goes on).
    no_build = InputSettings(**{**_inputs(vcfs).__dict__, "build": None})
    record = run_step("import", tmp_path / "nobuild", QCSettings(), PlinkSession(2, 1000),
                      no_build)  # fmt: skip
    assert any(n.startswith(f"warning: {N_PAR} chrX SNPs lie in the pseudo-autosomal")
               for n in record["notes"]), record["notes"]  # fmt: skip
    # With half_call: error, plink2 refuses the male chrX half-calls, quoted in full.
    with pytest.raises(Exception, match=r"(?s)half-call"):
        run_step("import", tmp_path / "strict", QCSettings(), PlinkSession(2, 1000),
                 _inputs(vcfs, half_call="error"))  # fmt: skip


@needs_plink
def test_build_with_par_snps_runs_every_step_and_the_report(vcfs, tmp_path):
    root = tmp_path / "steps"
    records = {
        name: run_step(name, root, QCSettings(), PlinkSession(2, 1000), _inputs(vcfs))
        for name in STEPS
    }
    # plink 1.9's sex check reads the XY-coded PAR: the planted mismatches and nobody else.
    removed = pd.read_csv(root / step_dir_name("sex_check") / "removed_samples.tsv", sep="\t")
    assert sorted(removed["IID"]) == ["DEMO0069", "DEMO0113"]
    assert records["sex_check"]["plink_runs"][0]["engine"] == "plink1.9"
    write_clean_fileset(root, tmp_path / "clean" / "cohort", PlinkSession(2, 1000))
    bim = read_bim(tmp_path / "clean" / "cohort.bim")
    assert (bim["CHROM"] == "XY").sum() > 0
    summary = write_report(root, tmp_path / "clean" / "cohort", tmp_path / "report")
    assert summary["samples_kept"] == 240 - 8


def test_import_settings_from_the_config_become_plink2_options():
    from cohortflow.errors import ConfigError

    section = {
        "input": ["a.vcf.gz", "b.vcf.gz"], "phenotype_file": None, "phenotype": "PHENO",
        "covariates": [], "sex_column": None, "build": "b38",
        "import": {"half_call": "missing", "multiallelic": "error", "id_allele_max_len": 40,
                   "id_allele_long": "missing", "sample_ids": "double", "id_delimiter": "_"},
    }  # fmt: skip
    inputs = InputSettings.from_config(section)
    assert inputs.input == ("a.vcf.gz", "b.vcf.gz") and inputs.build == "b38"
    assert inputs.vcf_args() == ["--vcf-half-call", "missing", "--double-id"]
    delimited = InputSettings.from_config(
        {**section, "import": {"sample_ids": "delimiter", "id_delimiter": "-"}}
    )
    assert delimited.vcf_args() == ["--vcf-half-call", "haploid", "--id-delim", "-"]
    with pytest.raises(ConfigError, match=r"genotypes\.import: unknown key 'bogus'"):
        InputSettings.from_config({**section, "import": {"bogus": 1}})
