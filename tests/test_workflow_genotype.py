"""The genotype stages through Snakemake: the demo end to end (QC, report, association), and
each bad input of the issue stopping the import with a clear error and no output."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO, fhir_config_yaml, needs_plink, snakemake

pytestmark = needs_plink

TARGETS = (
    "results/genotype_qc/report/summary.json",
    "results/association/summary.json",
    "results/fhir/genotypes",
)


def _config(work: Path, genotypes: str) -> Path:
    shutil.copy(REPO / "tests" / "configs" / "ok_demo_small" / "samples.tsv", work / "samples.tsv")
    config = work / "config.yaml"
    config.write_text(
        "samples: samples.tsv\n"
        "stages: {ingest: false, preprocess: false, wm_clusters: false, classify: false,\n"
        "         deface: false, deface_qa: false, genotype_qc: true, association: true,\n"
        "         fhir: true}\n"
        "demo: {genotypes: true}\npseudonymise: {allow_demo_key: true}\n"
        + fhir_config_yaml()
        + genotypes
    )
    return config


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("COHORTFLOW_PSEUDONYM")}


@pytest.fixture(scope="module")
def genotype_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("genotype_workflow")
    config = _config(
        work,
        "genotypes:\n  input: resources/demo/genotypes/demo\n"
        "  phenotype_file: resources/demo/genotypes/demo.pheno.tsv\n  covariates: [AGE]\n",
    )
    result = snakemake(REPO, work, *TARGETS, "--configfile", str(config), env=_env())
    return work, result


def test_genotype_qc_as_fhir_bundles_on_a_server(genotype_run, fhir_server):
    """Per sample a Patient (pseudonym only) and five Observations, in transactions of at most
    50 entries that the FHIR server accepts; no sample ID of the .fam gets into them."""
    from cohortflow.fhir.upload import UploadSettings, post_bundle
    from cohortflow.privacy.pseudonym import DEMO_KEY, PseudonymKey, subject_label

    work, result = genotype_run
    assert result.returncode == 0, result.stdout + result.stderr
    samples = pd.read_csv(work / "results/genotype_qc/report/samples.tsv", sep="\t", dtype=str)
    paths = sorted((work / "results/fhir/genotypes").glob("*_bundle.json"))
    bundles = [json.loads(p.read_text()) for p in paths]
    assert len(bundles) == -(-len(samples) // 7) and max(len(b["entry"]) for b in bundles) <= 50
    kinds = pd.Series([e["resource"]["resourceType"] for b in bundles for e in b["entry"]])
    assert (kinds == "Patient").sum() == len(samples)
    assert (kinds == "Observation").sum() == 5 * len(samples)
    text = "".join(p.read_text() for p in paths)
    assert not [i for i in set(samples.IID) | set(samples.FID) if i in text]
    for path in paths:
        record = json.loads(path.with_name(path.name.replace("bundle", "validation")).read_text())
        assert record["problems"] == []
    settings = UploadSettings(url=fhir_server, retries=0)
    outcomes = [post_bundle(p.name, b, settings) for p, b in zip(paths, bundles, strict=True)]
    assert [o.error for o in outcomes if o.result != "ok"] == []
    removed = samples[samples.status == "removed"].iloc[0]
    label = subject_label(PseudonymKey(DEMO_KEY, "demo"), removed.IID)
    query = f"{fhir_server}/Patient?identifier=urn:cohortflow:demo:pseudonym|{label}"
    with urllib.request.urlopen(query) as response:
        patient = json.loads(response.read())["entry"][0]["resource"]
    with urllib.request.urlopen(f"{fhir_server}/Observation?subject=Patient/{patient['id']}") as r:
        observations = [e["resource"] for e in json.loads(r.read())["entry"]]
    codes = {o["code"]["coding"][0]["code"]: o for o in observations}
    assert len(codes) == 5
    status = codes["genotype-qc-status"]
    assert status["valueCodeableConcept"]["coding"][0]["code"] == "qc-removed"
    assert removed.reasons in status["note"][0]["text"]


def test_demo_genotypes_qc_and_association_end_to_end(genotype_run):
    work, result = genotype_run
    assert result.returncode == 0, result.stdout + result.stderr
    report = work / "results" / "genotype_qc" / "report"
    samples = pd.read_csv(report / "samples.tsv", sep="\t", dtype={"IID": str})
    truth = pd.read_csv(
        work / "resources/demo/genotypes/demo.truth_samples.tsv", sep="\t", dtype=str
    ).fillna("")
    table = samples.merge(truth, on="IID", suffixes=("", "_truth"))
    planted = {"low_call_rate": "sample_missing", "sex_mismatch": "sex_mismatch",
               "contaminated": "heterozygosity"}  # fmt: skip
    for label, reason in planted.items():
        rows = table[table["planted_failure"] == label]
        assert (rows["reasons"] == reason).all(), label
    for label in ("duplicate", "first_degree"):
        rows = table[table["planted_failure"] == label]
        assert sorted(rows["reasons"].fillna("")) == ["", "related"], label
    assert set(table.loc[table["status"] == "removed", "planted_failure"]) != {""}
    assert not ((table["status"] == "removed") & (table["planted_failure"] == "")).any()
    # Association: the causal SNP with odds ratio 6 is a genome-wide lead variant.
    summary = json.loads((work / "results" / "association" / "summary.json").read_text())
    assert summary["model"] == "logistic" and 0.9 < summary["lambda_gc"] < 1.15
    leads = pd.read_csv(work / "results" / "association" / "lead_variants.tsv", sep="\t")
    assert "7:55613392" in set(leads["ID"])
    with gzip.open(work / "results" / "association" / "results.tsv.gz", "rt") as fh:
        assert sum(1 for _ in fh) - 1 == summary["n_variants"]
    # PLINK got the rule's threads and memory (relatedness: 8 threads asked, 2 cores given).
    log = (work / "results/genotype_qc/steps/6_relatedness/plink/king.log").read_text()
    assert "--threads 2" in log and "--memory 7200" in log
    for name in ("import", "relatedness", "pca"):
        assert (work / "benchmarks" / "genotype_qc" / f"{name}.tsv").is_file()


def _bad_fileset(work: Path, mode: str) -> str:
    """The demo fileset (from the module run) broken one way; returns the genotypes config."""
    from cohortflow.demo.genotypes import simulate_genotypes

    src = work / "src"
    simulate_genotypes(src / "demo")
    prefix = src / "demo"
    pheno = src / "demo.pheno.tsv"
    if mode == "counts":
        bim = prefix.with_suffix(".bim")
        bim.write_text("".join(bim.read_text().splitlines(keepends=True)[:-3]))
    elif mode == "truncated":
        bed = prefix.with_suffix(".bed")
        bed.write_bytes(bed.read_bytes()[: bed.stat().st_size // 2])
    elif mode == "duplicate_ids":
        fam = prefix.with_suffix(".fam")
        lines = fam.read_text().splitlines(keepends=True)
        lines[5] = lines[4]
        fam.write_text("".join(lines))
    elif mode == "no_samples":
        vcf = src / "sites.vcf"
        vcf.write_text(
            "##fileformat=VCFv4.2\n##contig=<ID=1>\n"
            "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n1\t1000\trs1\tA\tC\t.\t.\t.\n"
        )
        return f"genotypes:\n  input: {vcf}\n"
    elif mode == "phenotype":
        lines = pheno.read_text().splitlines(keepends=True)
        lines[3] = lines[3].replace("\t1\t", "\tcase\t", 1).replace("\t2\t", "\tcase\t", 1)
        pheno.write_text("".join(lines))
    return f"genotypes:\n  input: {prefix}\n  phenotype_file: {pheno}\n  covariates: [AGE]\n"


BAD = {
    "counts": ["demo.bed", "longer than expected", ".bim/.fam may belong to another fileset"],
    "truncated": ["demo.bed", "truncated"],
    "duplicate_ids": ["demo.fam", "duplicate sample ID FID=DEMO0005 IID=DEMO0005"],
    "no_samples": ["sites.vcf", "names no samples"],
    "phenotype": ["demo.pheno.tsv", "line 4, column 'PHENO'", "'case' is not numeric"],
}


@pytest.mark.parametrize("mode", sorted(BAD))
def test_bad_genotype_input_fails_clearly_with_no_output(tmp_path, mode):
    config = _config(tmp_path, _bad_fileset(tmp_path, mode))
    result = snakemake(REPO, tmp_path, *TARGETS, "--configfile", str(config), env=_env())
    assert result.returncode != 0
    log = (tmp_path / "logs" / "genotype_qc" / "import.log").read_text()
    for text in BAD[mode]:
        assert text in log, log
    assert "Traceback" not in log
    assert not (tmp_path / "results" / "genotype_qc").exists() or not any(
        p for p in (tmp_path / "results" / "genotype_qc").rglob("*") if p.is_file()
    )
