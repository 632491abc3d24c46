"""Genotype QC guards (issue 27): bad lines named by file and line before PLINK runs, PLINK's
errors quoted in full with the failed attempt's logs kept, steps that would leave nothing stop
with the step and counts, SNP-count minimums for the sex check and KING, plink2 warnings in the
step notes, and a QC-only run that needs no usable phenotype."""

from __future__ import annotations

import gzip
import json

import pandas as pd
import pytest
from conftest import needs_plink

from cohortflow.genotype_qc.inputs import (
    GenotypeInputError,
    check_bfile,
    check_phenotype_table,
    check_vcf,
)
from cohortflow.genotype_qc.plink import PlinkError, PlinkSession
from cohortflow.genotype_qc.steps import (
    STEPS,
    InputSettings,
    QCSettings,
    QCStepError,
    run_step,
    step_dir_name,
)


def _fileset(tmp_path, fam_lines, bim_lines):
    prefix = tmp_path / "set"
    (tmp_path / "set.fam").write_text("".join(f"{line}\n" for line in fam_lines))
    (tmp_path / "set.bim").write_text("".join(f"{line}\n" for line in bim_lines))
    per_variant = (len(fam_lines) + 3) // 4
    (tmp_path / "set.bed").write_bytes(bytes([0x6C, 0x1B, 0x01]) + b"\xff" * per_variant * 3)
    return prefix


FAM = ["F1 I1 0 0 1 -9", "F2 I2 0 0 2 -9"]
BIM = ["1 rs1 0 100 A G", "1 rs2 0 200 C T", "1 rs3 0 300 A C"]


@pytest.mark.parametrize(
    ("fam", "bim", "file", "message"),
    [
        (FAM, [*BIM[:1], "1 rs2 0 2OO C T", BIM[2]], "set.bim",
         r"line 2: position '2OO' of variant 'rs2' is not an integer"),
        (FAM, [*BIM[:2], "1 rs3 x 300 A C"], "set.bim", r"line 3: centimorgan position 'x'"),
        (["F1 I1 0 0 1 -9", "F2 I 2 0 0 2 -9"], BIM, "set.fam",
         r"line 2: 7 columns, need 6 \(an ID or allele with a space in it\?\)"),
        (FAM, ["1 rs1 0 100 A G", "1 rs2 0 200 C", BIM[2]], "set.bim", r"line 2: 5 columns"),
        (FAM, [BIM[0], "", "1 rs2 0 200 C T A", BIM[2]], "set.bim", r"line 3: 7 columns"),
    ],
)  # fmt: skip
def test_bad_plink_lines_are_named_by_file_and_line(tmp_path, fam, bim, file, message):
    prefix = _fileset(tmp_path, fam, bim)
    with pytest.raises(GenotypeInputError, match=message) as err:
        check_bfile(prefix)
    assert err.value.path == str(tmp_path / file)


def test_bad_vcf_and_phenotype_lines_are_named(tmp_path):
    vcf = tmp_path / "bad.vcf.gz"
    header = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT"
    with gzip.open(vcf, "wt") as fh:
        fh.write(f"{header}\tS1\tS 2\n1\t100\trs1\tA\tG\t.\t.\t.\tGT\t0/1\t0/0\n")
    with pytest.raises(GenotypeInputError, match=r"line 2, column 11: sample name 'S 2'"):
        check_vcf(vcf)
    with gzip.open(vcf, "wt") as fh:
        fh.write(f"{header}\tS1\tS2\n1\t100\trs1\tA\tG\t.\t.\t.\tGT\t0/1\t0/0\n")
        fh.write("1\t1e5\trs2\tA\tG\t.\t.\t.\tGT\t0/1\t0/0\n1\t300\trs3\tA\tG\t.\t.\t.\tGT\t0/1\n")
    with pytest.raises(GenotypeInputError, match=r"line 4: position '1e5' is not an integer"):
        check_vcf(vcf)
    pheno = tmp_path / "pheno.tsv"
    pheno.write_text("FID IID PHENO\nF1 I1 1\nF2 I 2 2\n")
    with pytest.raises(GenotypeInputError, match=r"pheno.tsv: line 3: 4 columns, the header"):
        check_phenotype_table(pheno, ["PHENO"])


@pytest.fixture
def demo(tmp_path):
    from cohortflow.demo.genotypes import simulate_genotypes

    simulate_genotypes(tmp_path / "demo")
    return tmp_path / "demo"


def _run(root, names, settings=None, inputs=None):
    return {
        name: run_step(name, root, settings or QCSettings(), PlinkSession(2, 1000), inputs)
        for name in names
    }


@needs_plink
def test_plink_failure_is_quoted_in_full_and_its_logs_are_kept(tmp_path, demo):
    root = tmp_path / "steps"
    _run(root, ["import"], inputs=InputSettings(input=str(demo)))
    bed = root / step_dir_name("import") / "data.bed"
    bed.write_bytes(bed.read_bytes()[:-1000])  # damaged after the input check
    with pytest.raises(PlinkError) as err:
        _run(root, ["variant_callrate"])
    failed = root / f"{step_dir_name('variant_callrate')}.failed"
    message = str(err.value)
    assert "Error" in message and str(failed) in message
    assert (failed / "missing.log").is_file() and "--missing" in (
        failed / "missing.log"
    ).read_text()
    assert (failed / "error.txt").read_text().strip() == message
    assert not (root / step_dir_name("variant_callrate")).exists()
    # A later success clears the failure folder.
    _run(root, ["import"], inputs=InputSettings(input=str(demo)))
    _run(root, ["variant_callrate"])
    assert not failed.exists() and (root / step_dir_name("variant_callrate")).is_dir()


@needs_plink
def test_a_step_removing_every_sample_stops_naming_step_and_counts(tmp_path, demo):
    root = tmp_path / "steps"
    _run(root, STEPS[: STEPS.index("variant_callrate") + 1], inputs=InputSettings(input=str(demo)))
    with pytest.raises(QCStepError, match=r"step sample_callrate would remove all 240 samples "
                       r"\(sample_missing 240\)"):  # fmt: skip
        _run(root, ["sample_callrate"], QCSettings(sample_missing=0.0))
    assert not (root / step_dir_name("sample_callrate")).exists()
    assert (root / f"{step_dir_name('sample_callrate')}.failed" / "error.txt").is_file()
    with pytest.raises(QCStepError, match=r"step variant_callrate would remove all 7000 variants"):
        _run(root, ["variant_callrate"], QCSettings(variant_missing_prefilter=-1.0))


@needs_plink
def test_too_few_snps_skip_sex_check_and_king_with_a_note(tmp_path, demo):
    root = tmp_path / "steps"
    settings = QCSettings(sex_min_chrx_snps=5000, king_min_snps=10**6)
    records = _run(
        root, STEPS[: STEPS.index("relatedness") + 1], settings, InputSettings(input=str(demo))
    )
    sex, king = records["sex_check"], records["relatedness"]
    assert sex["samples_removed"] == 0 and sex["extra"]["skipped"]
    assert "sex check skipped: only 1000 chrX SNPs" in sex["notes"][0]
    assert "min_chrx_snps (5000)" in sex["notes"][0]
    table = pd.read_csv(root / step_dir_name("sex_check") / "samples.tsv", sep="\t")
    assert set(table["sex_status"]) == {"not checkable (too few chrX SNPs)"}
    assert king["samples_removed"] == 0 and king["extra"]["skipped"]
    assert "relatedness skipped" in king["notes"][0] and "min_snps (1000000)" in king["notes"][0]
    # The defaults (150 chrX SNPs, 2,000 pruned SNPs) let the demo (1,000 / ~3,000) run both.
    defaults = _run(
        tmp_path / "default",
        STEPS[: STEPS.index("relatedness") + 1],
        None,
        InputSettings(input=str(demo)),
    )
    assert not defaults["sex_check"]["extra"].get("skipped")
    assert defaults["relatedness"]["extra"]["n_snps"] >= QCSettings().king_min_snps


@needs_plink
def test_plink2_warnings_are_step_notes(tmp_path, demo):
    # The demo's chrX has no PAR SNPs, so plink2 warns that --split-par did nothing.
    record = _run(tmp_path / "steps", ["import"], inputs=InputSettings(str(demo), build="b37"))
    notes = record["import"]["notes"]
    assert any(n.startswith("plink2 warning: --split-par had no effect") for n in notes), notes
    saved = json.loads((tmp_path / "steps" / step_dir_name("import") / "step.json").read_text())
    assert saved["notes"] == notes and saved["plink_runs"][0]["warnings"]


@needs_plink
def test_qc_only_run_accepts_a_constant_or_absent_phenotype(tmp_path, demo):
    fam = pd.read_csv(demo.with_suffix(".fam"), sep="\t", header=None, dtype=str)
    fam[5] = "1"  # every sample "control": no phenotype anyone could analyse
    fam.to_csv(demo.with_suffix(".fam"), sep="\t", header=False, index=False)
    records = _run(tmp_path / "steps", STEPS, inputs=InputSettings(input=str(demo)))
    assert records["import"]["extra"]["phenotype_kind"] == "constant"
    assert any("one value only" in n for n in records["import"]["notes"])
    assert records["variant_final"]["extra"]["hwe_in"] == "all samples"
    # A phenotype table without the phenotype column (only used for sex) is fine too.
    table = tmp_path / "sex.tsv"
    table.write_text("FID IID SEX\n" + "".join(f"{a} {b} 1\n" for a, b in fam[[0, 1]].to_numpy()))
    inputs = InputSettings(input=str(demo), phenotype_file=str(table), sex_column="SEX")
    record = _run(tmp_path / "other", ["import"], inputs=inputs)["import"]
    assert record["extra"]["phenotype_kind"] == "none"
    # A table line with a space in an ID is named before PLINK runs, not a parser traceback.
    table.write_text(table.read_text().replace("DEMO0007 DEMO0007 1", "DEMO0007 DEMO 0007 1"))
    with pytest.raises(GenotypeInputError, match=r"sex.tsv: line 8: 4 columns, the header has 3"):
        _run(tmp_path / "third", ["import"], inputs=inputs)


def test_qc_settings_defaults_are_the_schemas():
    """The schema is the one source of the thresholds: QCSettings' defaults must equal it."""
    import dataclasses
    from pathlib import Path

    import yaml

    from cohortflow.genotype_qc.steps import _CONFIG_PATHS

    schema = yaml.safe_load(
        (Path(__file__).parents[1] / "workflow/schemas/config.schema.yaml").read_text()
    )
    section = schema["properties"]["genotype_qc"]
    for field in dataclasses.fields(QCSettings):
        node = section
        for key in _CONFIG_PATHS.get(field.name, (field.name,)):
            node = node["properties"][key]
        default = node["default"]
        expected = tuple(default) if isinstance(default, list) else default
        assert getattr(QCSettings(), field.name) == expected, field.name
