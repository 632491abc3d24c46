"""Genotype input checks: bad PLINK/VCF/phenotype files give clear errors before PLINK runs."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
from conftest import SHARED_DATA

from cohortflow.genotype_qc.inputs import (
    GenotypeInputError,
    check_bfile,
    check_input,
    check_phenotype_table,
    check_vcf,
    detect_input,
)

REPO = Path(__file__).resolve().parents[1]
HAPMAP = SHARED_DATA / "genotype" / "plinkqc_hapmap" / "data"


def _fileset(tmp_path: Path, samples: int = 5, variants: int = 3) -> Path:
    prefix = tmp_path / "set"
    prefix.with_suffix(".fam").write_text(
        "".join(f"F{i} I{i} 0 0 {1 + i % 2} -9\n" for i in range(samples))
    )
    prefix.with_suffix(".bim").write_text(
        "".join(f"1 rs{j} 0 {100 + j} A G\n" for j in range(variants))
    )
    per_variant = (samples + 3) // 4
    prefix.with_suffix(".bed").write_bytes(
        bytes([0x6C, 0x1B, 0x01]) + b"\xff" * per_variant * variants
    )
    return prefix


def test_a_consistent_fileset_passes(tmp_path):
    found = check_input(_fileset(tmp_path))
    assert (found.kind, found.n_samples, found.n_variants) == ("bfile", 5, 3)
    assert detect_input(tmp_path / "set.bed").kind == "bfile"


def test_truncated_bed_is_refused_with_the_arithmetic(tmp_path):
    prefix = _fileset(tmp_path)
    bed = prefix.with_suffix(".bed")
    bed.write_bytes(bed.read_bytes()[:-1])
    with pytest.raises(
        GenotypeInputError, match=r"set\.bed: truncated: 8 bytes.*3 variants.*5 samples"
    ):
        check_bfile(prefix)


def test_bim_fam_from_another_fileset_is_refused(tmp_path):
    prefix = _fileset(tmp_path)
    with prefix.with_suffix(".bim").open("a") as fh:
        fh.write("1 rs99 0 999 C T\n")
    with pytest.raises(GenotypeInputError, match="4 variants"):
        check_bfile(prefix)
    (tmp_path / "b").mkdir()
    prefix = _fileset(tmp_path / "b")
    with prefix.with_suffix(".fam").open("a") as fh:  # 9 samples: 3 bytes per variant, not 2
        fh.write("".join(f"F{i} I{i} 0 0 1 -9\n" for i in range(5, 9)))
    with pytest.raises(GenotypeInputError, match="9 samples"):
        check_bfile(prefix)


def test_bad_magic_and_duplicate_ids(tmp_path):
    prefix = _fileset(tmp_path)
    bed = prefix.with_suffix(".bed")
    bed.write_bytes(b"\x00\x00\x00" + bed.read_bytes()[3:])
    with pytest.raises(GenotypeInputError, match="not a SNP-major"):
        check_bfile(prefix)
    prefix = _fileset(tmp_path)
    fam = prefix.with_suffix(".fam")
    fam.write_text(fam.read_text() + "F1 I1 0 0 1 -9\n")
    with pytest.raises(
        GenotypeInputError, match=r"duplicate sample ID FID=F1 IID=I1 on lines 2 and 6"
    ):
        check_bfile(prefix)


def test_vcf_without_samples_is_refused(tmp_path):
    sites_only = tmp_path / "sites.vcf.gz"
    with gzip.open(sites_only, "wt") as fh:
        fh.write("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
        fh.write("1\t100\trs1\tA\tG\t.\tPASS\t.\n")
    with pytest.raises(GenotypeInputError, match="names no samples"):
        check_vcf(sites_only)
    good = tmp_path / "good.vcf"
    good.write_text(
        "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2\n"
    )
    assert check_input(good).n_samples == 2


def test_non_numeric_phenotype_is_refused(tmp_path):
    table = tmp_path / "pheno.tsv"
    table.write_text("FID\tIID\tPHENO\tAGE\nF0\tI0\t1\t50\nF1\tI1\tcase\t61\nF2\tI2\tNA\t-9\n")
    with pytest.raises(GenotypeInputError, match=r"line 3, column 'PHENO': 'case' is not numeric"):
        check_phenotype_table(table, ["PHENO"])
    assert check_phenotype_table(table, ["AGE"]) == {"AGE": 2}
    with pytest.raises(GenotypeInputError, match="no column 'BMI'"):
        check_phenotype_table(table, ["BMI"])


def test_demo_genotypes_pass(tmp_path):
    demo = REPO / "resources" / "demo" / "genotypes" / "demo"
    if not demo.with_suffix(".bed").exists():
        pytest.skip("demo genotypes not generated in this checkout")
    found = check_bfile(demo)
    assert found.n_samples > 100 and found.n_variants > 1000
    assert check_phenotype_table(demo.with_suffix(".pheno.tsv"), ["PHENO", "AGE"])["PHENO"] > 0


@pytest.mark.shared_data
@pytest.mark.skipif(not HAPMAP.with_suffix(".bed").exists(), reason="../shared/data absent")
def test_real_hapmap_fileset_passes(tmp_path):
    found = check_bfile(HAPMAP)
    assert (found.n_samples, found.n_variants) == (200, 10_000)
    copy = tmp_path / "data"
    for ext in (".bed", ".bim", ".fam"):
        shutil.copy(HAPMAP.with_suffix(ext), copy.with_suffix(ext))
    with copy.with_suffix(".bed").open("r+b") as fh:
        fh.truncate(1000)
    with pytest.raises(GenotypeInputError, match="truncated: 1000 bytes"):
        check_bfile(copy)
