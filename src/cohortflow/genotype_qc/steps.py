"""The genotype QC steps: PLINK computes, this module decides and records.

The input (one or several files, merged) is converted once (plink2) to a PLINK 1 binary
fileset, which both engines read (``plink1.9 --check-sex`` needs it; pseudo-autosomal SNPs are
coded XY for it). The ancestry step gives every sample a group
(:mod:`cohortflow.genotype_qc.ancestry`); the sex check, heterozygosity, PCA outliers and HWE
then judge each sample within its group, and a group too small to be judged alone is never
removed for being small. After the import no step rewrites genotypes: each step reads the
imported fileset through the previous step's ``keep.txt`` (FID IID) and ``extract.txt``
(variant IDs), and writes its own folder:

``keep.txt``, ``extract.txt``
    the samples and variants that go on;
``removed_samples.tsv`` / ``removed_variants.tsv``
    ``FID IID`` / ``ID`` with ``step``, ``reason`` (a short code) and ``detail`` (the value and
    the threshold), one row per removal reason;
``samples.tsv`` / ``variants.tsv``
    the step's metrics for every sample / variant it tested;
``step.json``
    settings, counts in and out, notes, and every PLINK command with engine, version and seconds;
``plink/``
    PLINK's own outputs and logs.

Each folder is written atomically, so a failed step leaves no step folder; it leaves
``{i}_{name}.failed/`` instead, holding ``error.txt`` (the message, with PLINK's error quoted in
full) and the PLINK logs of the failed attempt (removed again when the step next succeeds). A
step that would remove every sample or every variant, or leave the next step too little to work
on, stops with :class:`QCStepError` naming the step and the counts. PLINK's warnings become notes
of the step (``step.json``) and warnings in the job log. The final step writes the clean
fileset. Thresholds and their sources are documented in the config schema
(``workflow/schemas/config.schema.yaml``, section ``genotype_qc``).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cohortflow.errors import ConfigError, InputError
from cohortflow.genotype_qc import decide
from cohortflow.genotype_qc.ancestry import (
    NO_REFERENCE_GROUP,
    UNASSIGNED,
    Reference,
    assign_groups,
    cohort_clusters,
    project,
    structure_warning,
)
from cohortflow.genotype_qc.inputs import (
    MISSING_CODES,
    GenotypeInput,
    GenotypeInputError,
    check_input,
    check_phenotype_table,
    phenotype_kind,
    resolve_inputs,
    with_ext,
)
from cohortflow.genotype_qc.plink import (
    PlinkError,
    PlinkSession,
    read_bim,
    read_fam,
    read_table,
)
from cohortflow.io.atomic import atomic_output_dir, atomic_output_file, write_json

log = logging.getLogger(__name__)

#: The steps in order; the folder of step ``i`` is ``{i}_{name}``.
STEPS = (
    "import",
    "variant_callrate",
    "sample_callrate",
    "ancestry",
    "sex_check",
    "heterozygosity",
    "relatedness",
    "pca",
    "variant_final",
)
TITLES = {
    "import": "input converted (plink2)",
    "variant_callrate": "variant call-rate pre-filter",
    "sample_callrate": "sample call rate",
    "ancestry": "continental ancestry (projection on a labelled reference panel)",
    "sex_check": "sex check (chrX, plink1.9 --check-sex)",
    "heterozygosity": "heterozygosity (LD-pruned autosomal SNPs)",
    "relatedness": "relatedness (KING kinship)",
    "pca": "ancestry PCA",
    "variant_final": "final variant call rate, MAF, HWE",
}
CHRX_CODES = frozenset({"23", "X", "chrX"})
AUTOSOMES = frozenset(str(c) for c in range(1, 23)) | frozenset(f"chr{c}" for c in range(1, 23))
DATA = "data"  # the imported fileset's name inside the import folder


def step_dir_name(name: str) -> str:
    return f"{STEPS.index(name)}_{name}"


class QCStepError(InputError):
    """A step would leave nothing (or too little) for the next one; names step and counts."""


@dataclass(frozen=True)
class InputSettings:
    """Where the genotypes and the phenotype/covariate table are (config section ``genotypes``)."""

    input: str | tuple[str, ...]
    phenotype_file: str | None = None
    phenotype: str = "PHENO"
    covariates: tuple[str, ...] = ()
    sex_column: str | None = None
    build: str | None = None
    #: How plink2 reads VCF/BCF (section ``genotypes.import``; defaults in the schema).
    half_call: str = "haploid"
    multiallelic: str = "drop"
    id_allele_max_len: int = 23
    id_allele_long: str = "truncate"
    sample_ids: str = "iid"
    id_delimiter: str = "_"

    @classmethod
    def from_config(cls, section: dict[str, Any]) -> InputSettings:
        if not section.get("input"):
            raise ConfigError("genotypes.input: no genotype input configured")
        given = section["input"]
        options = section.get("import") or {}
        known = {f.name for f in fields(cls)}
        unknown = set(options) - known
        if unknown:
            raise ConfigError(f"genotypes.import: unknown key {sorted(unknown)[0]!r}")
        return cls(
            input=str(given) if isinstance(given, str) else tuple(str(g) for g in given),
            phenotype_file=section.get("phenotype_file") or None,
            phenotype=str(section.get("phenotype", "PHENO")),
            covariates=tuple(section.get("covariates") or ()),
            sex_column=section.get("sex_column") or None,
            build=section.get("build") or None,
            **options,
        )

    def vcf_args(self) -> list[str]:
        """plink2 options of a VCF/BCF import."""
        args = ["--vcf-half-call", self.half_call]
        if self.sample_ids == "double":
            args.append("--double-id")
        elif self.sample_ids == "delimiter":
            args += ["--id-delim", self.id_delimiter]
        return args


@dataclass(frozen=True)
class QCSettings:
    """Thresholds of the QC (config section ``genotype_qc``); defaults and sources in the schema."""

    variant_missing_prefilter: float = 0.05
    sample_missing: float = 0.03
    sex_female_max_f: float = 0.2
    sex_male_min_f: float = 0.8
    sex_remove: tuple[str, ...] = ("mismatch", "ambiguous")
    sex_min_chrx_snps: int = 150
    het_n_sd: float = 3.0
    het_ld_pruned: bool = True
    prune_window: int = 50
    prune_step: int = 5
    prune_r2: float = 0.2
    prune_maf: float = 0.01
    prune_exclude_ranges: str | None = None
    kinship: float = decide.KINSHIP_SECOND
    king_min_snps: int = 2000
    n_pcs: int = 10
    pca_outlier_pcs: int = 10
    pca_outlier_sd: float = 6.0
    pca_remove_outliers: bool = True
    variant_missing: float = 0.02
    maf: float = 0.01
    hwe_p: float = 1e-6
    hwe_samples: str = "auto"
    hwe_midp: bool = False
    ancestry_reference: str | None = None
    ancestry_labels: str | None = None
    ancestry_label_column: str = "Population"
    ancestry_id_column: str = "IID"
    ancestry_label_groups: Any = None
    ancestry_n_pcs: int = 10
    ancestry_min_probability: float = 0.8
    ancestry_cohort_groups: bool = False
    group_min_size: int = 50

    @classmethod
    def from_config(cls, section: dict[str, Any]) -> QCSettings:
        """Settings from the ``genotype_qc`` config section (keys as in the schema); a key
        that is absent keeps the default."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            node: Any = section
            for key in _CONFIG_PATHS.get(f.name, (f.name,)):
                node = node.get(key) if isinstance(node, dict) else None
            if node is None:
                continue
            default = getattr(cls, f.name)
            if isinstance(default, tuple):
                node = tuple(node)
            elif default is not None:
                node = type(default)(node)
            values[f.name] = node
        return cls(**values)


#: Where each QCSettings field sits in the config section (fields not listed: top level).
_CONFIG_PATHS = {
    "sex_female_max_f": ("sex_check", "female_max_f"),
    "sex_male_min_f": ("sex_check", "male_min_f"),
    "sex_remove": ("sex_check", "remove"),
    "sex_min_chrx_snps": ("sex_check", "min_chrx_snps"),
    "king_min_snps": ("relatedness", "min_snps"),
    "het_n_sd": ("heterozygosity", "n_sd"),
    "het_ld_pruned": ("heterozygosity", "ld_pruned"),
    "prune_window": ("ld_prune", "window"),
    "prune_step": ("ld_prune", "step"),
    "prune_r2": ("ld_prune", "r2"),
    "prune_maf": ("ld_prune", "maf"),
    "prune_exclude_ranges": ("ld_prune", "exclude_ranges"),
    "kinship": ("relatedness", "kinship"),
    "n_pcs": ("pca", "n_pcs"),
    "pca_outlier_pcs": ("pca", "outlier_pcs"),
    "pca_outlier_sd": ("pca", "outlier_sd"),
    "pca_remove_outliers": ("pca", "remove_outliers"),
    "ancestry_reference": ("ancestry", "reference", "bfile"),
    "ancestry_labels": ("ancestry", "reference", "labels"),
    "ancestry_label_column": ("ancestry", "reference", "label_column"),
    "ancestry_id_column": ("ancestry", "reference", "id_column"),
    "ancestry_label_groups": ("ancestry", "reference", "label_groups"),
    "ancestry_n_pcs": ("ancestry", "n_pcs"),
    "ancestry_min_probability": ("ancestry", "min_probability"),
    "ancestry_cohort_groups": ("ancestry", "cohort_groups"),
    "group_min_size": ("ancestry", "min_group_size"),
}


@dataclass
class StepResult:
    """What one step decided; the runner writes it out."""

    removed_samples: list[tuple[str, str, str, str]] = field(default_factory=list)  # FID IID
    removed_variants: list[tuple[str, str, str]] = field(default_factory=list)  # ID reason det.
    sample_metrics: pd.DataFrame | None = None
    variant_metrics: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    #: The import step sets the starting state (every sample and variant of the fileset).
    state: tuple[pd.DataFrame, pd.Series] | None = None


@dataclass
class Context:
    """Everything a step reads: the imported fileset, earlier step folders and the state."""

    root: Path  # folder holding the step folders
    work: Path  # this step's (temporary) folder
    settings: QCSettings
    session: PlinkSession
    keep: pd.DataFrame  # FID, IID (strings)
    extract: pd.Series  # variant IDs

    @property
    def bfile(self) -> Path:
        return self.root / step_dir_name("import") / DATA

    def step(self, name: str) -> Path:
        return self.root / step_dir_name(name)

    def filters(self, previous: Path, variants: Path | None = None) -> list[str]:
        return [
            "--bfile", str(self.bfile), "--keep", str(previous / "keep.txt"),
            "--extract", str(variants or previous / "extract.txt"),
        ]  # fmt: skip

    def plink(self, engine: str, args: list[str], name: str):
        return self.session.run(engine, args, self.work / "plink" / name)

    def bim(self) -> pd.DataFrame:
        return read_bim(with_ext(self.bfile, ".bim"))

    def groups(self) -> pd.Series:
        """Ancestry group of each current sample (aligned with ``keep``), from the ancestry
        step; one group, ``cohort``, before it or without a reference."""
        path = self.step("ancestry") / "samples.tsv"
        if not path.is_file():
            return pd.Series(NO_REFERENCE_GROUP, index=self.keep.index)
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
        group = pd.Series(table["ancestry_group"].to_numpy(), index=_keys(table).to_numpy())
        return pd.Series(group.reindex(_keys(self.keep)).to_numpy(), index=self.keep.index)

    def judged_alone(self, groups: pd.Series) -> dict[str, bool]:
        """Per group: large enough to be judged on its own (at least ``group_min_size``
        samples, or the only group)."""
        counts = groups.value_counts()
        return {g: len(counts) == 1 or n >= self.settings.group_min_size
                for g, n in counts.items()}  # fmt: skip

    def with_keep(self, args: list[str], keep: pd.DataFrame, name: str) -> list[str]:
        """``args`` with ``--keep`` replaced by a file of ``keep``'s samples."""
        path = self.work / "plink" / f"keep_{name}.txt"
        keep[["FID", "IID"]].to_csv(path, sep="\t", header=False, index=False)
        args = list(args)
        args[args.index("--keep") + 1] = str(path)
        return args


def _keys(table: pd.DataFrame) -> pd.Series:
    return table["FID"].astype(str) + " " + table["IID"].astype(str)


def _read_state(folder: Path) -> tuple[pd.DataFrame, pd.Series]:
    keep = pd.read_csv(
        folder / "keep.txt", sep=r"\s+", header=None, names=["FID", "IID"], dtype=str,
        keep_default_na=False,
    )  # fmt: skip
    extract = pd.read_csv(
        folder / "extract.txt", header=None, names=["ID"], dtype=str, keep_default_na=False
    )["ID"]
    return keep, extract


def _write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(f"{line}\n" for line in lines))


# ----------------------------------------------------------------------------------- steps
def _source_args(found: GenotypeInput, inputs: InputSettings) -> list[str]:
    """plink2 options reading one input, with the variant-ID and allele-count handling."""
    source = {"bfile": "--bfile", "pfile": "--pfile", "vcf": "--vcf"}[found.kind]
    if found.kind == "vcf" and found.path.name.endswith(".bcf"):
        source = "--bcf"
    args = [source, str(found.path)]
    if found.kind == "vcf":
        args += inputs.vcf_args()
    if inputs.multiallelic == "drop":
        args += ["--max-alleles", "2"]
    return [
        *args, "--set-missing-var-ids", "@:#:$r:$a",
        "--new-id-max-allele-len", str(inputs.id_allele_max_len), inputs.id_allele_long,
    ]  # fmt: skip


def _loaded_counts(log_path: Path) -> tuple[int, int] | None:
    """(loaded, scanned) variants from a plink2 log ('N out of M variants loaded')."""
    text = log_path.read_text() if log_path.is_file() else ""
    match = re.search(r"(\d+) out of (\d+) variants loaded", text)
    return (int(match[1]), int(match[2])) if match else None


def _import_parts(
    ctx: Context, parts: list[GenotypeInput], inputs: InputSettings, sex_args: list[str]
) -> tuple[list[str], list[str]]:
    """Import each input with plink2 and check they hold the same samples; returns the
    plink2 source options of the merged set and notes (variants dropped per input)."""
    notes = []
    if len(parts) == 1:
        return _source_args(parts[0], inputs), notes
    merge_list = ctx.work / "plink" / "merge_list.txt"
    prefixes, first_fam = [], None
    for i, found in enumerate(parts):
        prefix = ctx.work / "plink" / f"part{i}"
        ctx.session.run("plink2", [*_source_args(found, inputs), *sex_args, "--make-bed"], prefix)
        fam = read_fam(with_ext(prefix, ".fam"))[["FID", "IID"]]
        if first_fam is None:
            first_fam = fam
        elif not fam.equals(first_fam):
            only = set(_keys(fam)) ^ set(_keys(first_fam))
            example = f", e.g. {sorted(only)[0]!r}" if only else " (in another order)"
            raise GenotypeInputError(
                found.path,
                f"holds other samples than {parts[0].path}{example}: per-chromosome inputs "
                "must hold the same samples in the same order",
            )
        prefixes.append(str(prefix))
    _write_lines(merge_list, prefixes)
    merged = ctx.work / "plink" / "merged"
    ctx.session.run("plink2", ["--pmerge-list", str(merge_list), "bfile", "--make-pgen"], merged)
    notes.append(f"{len(parts)} inputs merged ({', '.join(p.path.name for p in parts)})")
    return ["--pfile", str(merged)], notes


def step_import(ctx: Context, inputs: InputSettings) -> StepResult:
    """Check the inputs, convert them once with plink2 (merging several into one), and
    normalise the phenotype table."""
    parts = [check_input(path) for path in resolve_inputs(inputs.input)]
    kinds = {p.kind for p in parts}
    found = parts[0]
    table = None
    if inputs.phenotype_file:
        check_phenotype_table(inputs.phenotype_file, [])  # header, line widths, unique IDs
        table = pd.read_csv(inputs.phenotype_file, sep=r"\s+", dtype=str, keep_default_na=False)
        # The phenotype itself is optional for QC (association checks it when it is on).
        used = [inputs.phenotype] if inputs.phenotype in table.columns else []
        used += [*inputs.covariates, *([inputs.sex_column] if inputs.sex_column else [])]
        check_phenotype_table(inputs.phenotype_file, used)
    elif inputs.covariates or inputs.sex_column:
        raise ConfigError(
            "genotypes.covariates/sex_column: need genotypes.phenotype_file to read them from"
        )
    out = ctx.work / DATA
    if table is not None and inputs.sex_column:
        # Sex for inputs without it (VCF); 1 male, 2 female, anything else unknown.
        sex_file = ctx.work / "plink" / "update_sex.txt"
        sex_file.parent.mkdir(parents=True, exist_ok=True)
        # A VCF has no family IDs: its samples are matched on IID alone.
        ids = ["IID"] if found.kind == "vcf" and inputs.sample_ids == "iid" else ["FID", "IID"]
        sex = table[[*ids, inputs.sex_column]].copy()
        sex[inputs.sex_column] = sex[inputs.sex_column].where(
            sex[inputs.sex_column].isin(["1", "2"]), "0"
        )
        sex.to_csv(sex_file, sep="\t", index=False, header=[f"#{ids[0]}", *ids[1:], "SEX"])
        sex_args = ["--update-sex", str(sex_file)]
    else:
        sex_args = []
    args, import_notes = _import_parts(ctx, parts, inputs, sex_args)
    args += sex_args
    if inputs.build:
        args += ["--split-par", inputs.build]
    ctx.session.run("plink2", [*args, "--make-bed"], out)
    fam = read_fam(with_ext(out, ".fam"))
    bim = _code_par_as_xy(with_ext(out, ".bim"))
    duplicated = bim["ID"][bim["ID"].duplicated()]
    if len(duplicated):
        raise GenotypeInputError(
            found.path,
            f"{len(duplicated)} duplicate variant IDs, e.g. {duplicated.iloc[0]!r}; give each "
            "variant a unique ID (e.g. plink2 --set-all-var-ids @:#:$r:$a) before QC",
        )
    pheno, kind = _phenotype(fam, table, inputs)
    if kind in ("none", "constant"):
        result_note = (
            f"phenotype {inputs.phenotype}: {'no values' if kind == 'none' else 'one value only'}"
            "; QC runs without it (HWE in all samples), association would refuse it"
        )
    else:
        result_note = None
    pheno.to_csv(ctx.work / "phenotype.tsv", sep="\t", index=False, na_rep="NA")
    result = StepResult()
    result.sample_metrics = pd.DataFrame(
        {"FID": fam["FID"], "IID": fam["IID"], "sex_reported": fam["SEX"].astype(int).map(
            decide.sex_label), inputs.phenotype: pheno[inputs.phenotype]}
    )  # fmt: skip
    result.variant_metrics = bim[["CHROM", "ID", "POS", "A1", "A2"]]
    n_x = int(bim["CHROM"].isin(CHRX_CODES).sum())
    if not inputs.build and n_x:
        in_par = _in_par(bim)
        if in_par:
            result.notes.append(
                f"warning: {in_par} chrX SNPs lie in the pseudo-autosomal regions of GRCh37 "
                "and GRCh38 (diploid in males): set genotypes.build so that --split-par moves "
                "them out of chrX, or males look heterozygous on chrX and their F drops"
            )
    result.extra = {
        "input": str(found.path) if len(parts) == 1 else [str(p.path) for p in parts],
        "kind": found.kind if len(kinds) == 1 else sorted(kinds), "phenotype_kind": kind,
        "n_chrx_variants": n_x, "n_par_variants": int((bim["CHROM"] == "XY").sum()),
        "n_samples": len(fam), "n_variants": len(bim),
    }  # fmt: skip
    result.notes += import_notes
    dropped = 0
    for record in ctx.session.runs:
        counts = _loaded_counts(record.log)
        if counts and inputs.multiallelic == "drop" and "--max-alleles" in record.args:
            dropped += counts[1] - counts[0]
    result.extra["n_multiallelic_dropped"] = dropped
    if dropped:
        result.notes.append(
            f"{dropped} multi-allelic variants dropped (genotypes.import.multiallelic: drop)"
        )
    if len(parts) == 1 and found.n_variants is not None and found.n_variants != len(bim):
        result.notes.append(f"plink2 imported {len(bim)} of {found.n_variants} variants")
    if result_note:
        result.notes.append(result_note)
    missing = int(pheno[inputs.phenotype].isna().sum())
    if missing and kind not in ("none",):
        result.notes.append(f"{missing} samples have no {inputs.phenotype} value")
    result.state = (fam[["FID", "IID"]], bim["ID"])
    return result


#: Pseudo-autosomal regions of chrX (last base of PAR1, first of PAR2) in GRCh37 and GRCh38
#: (plink2's --split-par b37/b38 bounds).
PAR_BOUNDS = {"b37": (2_699_520, 154_931_044), "b38": (2_781_479, 155_701_383)}


def _in_par(bim: pd.DataFrame) -> int:
    """chrX SNPs inside the PARs of both GRCh37 and GRCh38 (so whichever build the data is)."""
    pos = pd.to_numeric(bim.loc[bim["CHROM"].isin(CHRX_CODES), "POS"])
    low = min(b[0] for b in PAR_BOUNDS.values())
    high = max(b[1] for b in PAR_BOUNDS.values())
    return int(((pos <= low) | (pos >= high)).sum())


def _code_par_as_xy(bim_path: Path) -> pd.DataFrame:
    """plink2 --split-par names the pseudo-autosomal regions PAR1/PAR2, which plink 1.9
    refuses; code them XY (25), PLINK 1's code for the diploid PAR that both engines read."""
    bim = read_bim(bim_path)
    par = bim["CHROM"].isin(["PAR1", "PAR2"])
    if par.any():
        bim.loc[par, "CHROM"] = "XY"
        bim.to_csv(bim_path, sep="\t", header=False, index=False)
    return bim


def _phenotype(
    fam: pd.DataFrame, table: pd.DataFrame | None, inputs: InputSettings
) -> tuple[pd.DataFrame, str]:
    """FID IID phenotype covariates aligned with the fileset, binary coded 1/2; and its kind."""
    columns = [inputs.phenotype, *inputs.covariates]
    if table is None:
        values = fam[["FID", "IID"]].copy()
        values[inputs.phenotype] = fam["PHENO"].where(~fam["PHENO"].isin(["-9", "0"]), "NA")
    else:
        # Inputs without family IDs (VCF) have FID 0: match those on IID alone.
        on = ["IID"] if (fam["FID"] == "0").all() else ["FID", "IID"]
        present = [c for c in columns if c in table.columns]
        values = fam[["FID", "IID"]].merge(
            table[[*on, *present]].drop_duplicates(on), on=on, how="left"
        )
        for column in columns:
            if column not in present:
                values[column] = "NA"
    out = values[["FID", "IID"]].copy()
    for column in columns:
        raw = values[column].fillna("NA").astype(str)
        out[column] = pd.to_numeric(raw.where(~raw.isin(MISSING_CODES)), errors="coerce")
    if out[inputs.phenotype].notna().sum() == 0:
        return out, "none"
    try:
        kind = phenotype_kind(out[inputs.phenotype].dropna())
    except GenotypeInputError:
        # One value only (e.g. a .fam of all 1s): fine for QC; association checks its own.
        return out, "constant"
    if kind == "binary" and set(out[inputs.phenotype].dropna().unique()) <= {0.0, 1.0}:
        out[inputs.phenotype] = out[inputs.phenotype] + 1
    return out, kind


def step_variant_callrate(ctx: Context, previous: Path) -> StepResult:
    s = ctx.settings
    ctx.plink("plink2", [*ctx.filters(previous), "--missing", "variant-only"], "missing")
    vmiss = read_table(ctx.work / "plink" / "missing.vmiss")
    fail = decide.threshold_failures(vmiss["F_MISS"], s.variant_missing_prefilter)
    result = StepResult(
        variant_metrics=vmiss[["ID", "F_MISS"]].rename(columns={"F_MISS": "F_MISS_prefilter"})
    )
    for vid, value in zip(vmiss["ID"][fail], vmiss["F_MISS"][fail], strict=True):
        result.removed_variants.append(
            (vid, "variant_missing", f"F_MISS {value:.4f} > {s.variant_missing_prefilter}")
        )
    return result


def step_sample_callrate(ctx: Context, previous: Path) -> StepResult:
    s = ctx.settings
    ctx.plink("plink2", [*ctx.filters(previous), "--missing", "sample-only"], "missing")
    smiss = read_table(ctx.work / "plink" / "missing.smiss")
    smiss = _with_fid(smiss)
    fail = decide.threshold_failures(smiss["F_MISS"], s.sample_missing)
    result = StepResult(sample_metrics=smiss[["FID", "IID", "F_MISS"]])
    for fid, iid, value in zip(smiss["FID"][fail], smiss["IID"][fail], smiss["F_MISS"][fail],
                               strict=True):  # fmt: skip
        result.removed_samples.append(
            (fid, iid, "sample_missing", f"F_MISS {value:.4f} > {s.sample_missing}")
        )
    return result


def _with_fid(table: pd.DataFrame) -> pd.DataFrame:
    """PLINK 2 leaves FID out when the input has none; the .fam always has one."""
    table = table.copy()
    if "FID" not in table.columns:
        table.insert(0, "FID", "0")
    table["FID"] = table["FID"].astype(str)
    table["IID"] = table["IID"].astype(str)
    return table


def step_ancestry(ctx: Context, previous: Path) -> StepResult:
    """Project the cohort on the reference panel's PCs and assign continental groups; without
    a reference every sample is in one group (see :mod:`cohortflow.genotype_qc.ancestry`)."""
    s = ctx.settings
    everyone, _ = _read_state(ctx.step("import"))
    if not s.ancestry_reference and s.ancestry_cohort_groups:
        return _cohort_groups(ctx, previous, everyone)
    if not s.ancestry_reference:
        metrics = everyone.assign(ancestry_group=NO_REFERENCE_GROUP, ancestry_probability=np.nan)
        return StepResult(
            sample_metrics=metrics,
            notes=[
                "no ancestry reference configured (genotype_qc.ancestry.reference): every "
                "sample is judged against the whole cohort"
            ],
            extra={"reference": None, "groups": {NO_REFERENCE_GROUP: len(ctx.keep)}},
        )
    if not s.ancestry_labels:
        raise ConfigError("genotype_qc.ancestry.reference.labels: the reference needs labels")
    reference = Reference(
        Path(s.ancestry_reference), Path(s.ancestry_labels), s.ancestry_label_column,
        s.ancestry_id_column, s.ancestry_label_groups,
    )  # fmt: skip
    bim = ctx.bim()
    # Every imported sample is projected, so that the report shows the group of each one
    # (those removed for call rate too); the decisions use the current samples only.
    args = ctx.filters(previous)
    args[args.index("--keep") + 1] = str(ctx.step("import") / "keep.txt")
    ours, theirs, counts = project(
        ctx.session, args, bim[bim["ID"].isin(set(ctx.extract))], reference,
        ctx.work / "plink", n_pcs=s.ancestry_n_pcs, maf=s.prune_maf,
    )  # fmt: skip
    assigned = assign_groups(ours, theirs, s.ancestry_min_probability)
    pcs = ours.rename(columns={c: f"ancestry_{c}" for c in ours.columns if c.startswith("PC")})
    metrics = everyone.merge(assigned, on=["FID", "IID"], how="left").merge(
        pcs, on=["FID", "IID"], how="left"
    )
    metrics["ancestry_group"] = metrics["ancestry_group"].fillna(UNASSIGNED)
    theirs.to_csv(ctx.work / "reference_pcs.tsv", sep="\t", index=False)
    current = metrics[_keys(metrics).isin(set(_keys(ctx.keep)))]
    sizes = current["ancestry_group"].value_counts().sort_index()
    small = [g for g, n in sizes.items() if n < s.group_min_size]
    notes = [
        f"{counts['matched']} SNPs matched to the reference ({counts['strand_flipped']} strand-"
        f"flipped; dropped: {counts['dropped_strand_ambiguous']} A/T or C/G, "
        f"{counts['dropped_allele_mismatch']} with other alleles, {counts['dropped_not_snp']} "
        "not SNPs)",
        "groups: " + ", ".join(f"{g} {n}" for g, n in sizes.items()),
    ]
    if small:
        notes.append(
            f"groups smaller than {s.group_min_size} ({', '.join(small)}): their samples are "
            "judged with the documented small-group rules, never removed for being few"
        )
    return StepResult(
        sample_metrics=metrics, notes=notes,
        extra={"reference": str(reference.bfile), "match": counts,
               "groups": {str(g): int(n) for g, n in sizes.items()}},
    )  # fmt: skip


def _cohort_groups(ctx: Context, previous: Path, everyone: pd.DataFrame) -> StepResult:
    """Groups from the cohort's own PCs (no reference; ``ancestry.cohort_groups``): LD-pruned
    autosomal SNPs, plink2 --pca, then clusters of a Gaussian mixture when the PCs show
    structure (see :func:`cohortflow.genotype_qc.ancestry.cohort_clusters`)."""
    s = ctx.settings
    prune = [
        *ctx.filters(previous), "--autosome", "--maf", str(s.prune_maf),
        "--indep-pairwise", str(s.prune_window), str(s.prune_step), str(s.prune_r2),
    ]  # fmt: skip
    ctx.plink("plink2", prune, "prune")
    pruned = ctx.work / "plink" / "prune.prune.in"
    n = len(ctx.keep)
    n_pcs = max(1, min(s.n_pcs, n - 1))
    approx = ["approx"] if n > 5000 else []
    args = [*ctx.filters(previous, pruned), "--pca", str(n_pcs), *approx]
    ctx.plink("plink2", args, "pca")
    pcs = _with_fid(read_table(ctx.work / "plink" / "pca.eigenvec"))
    values = [float(v) for v in (ctx.work / "plink" / "pca.eigenval").read_text().split()]
    groups, note = cohort_clusters(pcs, values, s.ancestry_min_probability)
    metrics = everyone.merge(groups, on=["FID", "IID"], how="left")
    sizes = groups["ancestry_group"].value_counts().sort_index()
    return StepResult(
        sample_metrics=metrics,
        notes=[note, "groups: " + ", ".join(f"{g} {k}" for g, k in sizes.items())],
        extra={"reference": None, "cohort_groups": True,
               "groups": {str(g): int(k) for g, k in sizes.items()}},
    )  # fmt: skip


#: Fewest samples of a group whose own chrX allele frequencies the sex check uses.
SEX_OWN_FREQ_MIN = 10


def step_sex_check(ctx: Context, previous: Path) -> StepResult:
    s = ctx.settings
    bim = ctx.bim()
    current = bim[bim["ID"].isin(set(ctx.extract))]
    n_x = int(current["CHROM"].isin(CHRX_CODES).sum())
    result = StepResult(extra={"n_chrx_variants": n_x})
    if n_x == 0:
        result.sample_metrics = ctx.keep.assign(sex_status="not checkable (no chrX variants)")
        result.notes.append("no chrX variants: sex not checkable, no sample removed")
        return result
    if n_x < s.sex_min_chrx_snps:
        result.sample_metrics = ctx.keep.assign(sex_status="not checkable (too few chrX SNPs)")
        result.notes.append(
            f"sex check skipped: only {n_x} chrX SNPs, fewer than genotype_qc.sex_check."
            f"min_chrx_snps ({s.sex_min_chrx_snps}); chrX F would be too noisy to call sex, "
            "no sample removed"
        )
        result.extra["skipped"] = True
        return result
    check = ["--check-sex", str(s.sex_female_max_f), str(s.sex_male_min_f)]
    groups = ctx.groups()
    alone = ctx.judged_alone(groups)
    tables = []
    if len(alone) == 1:
        ctx.plink("plink1.9", [*ctx.filters(previous), *check], "sexcheck")
        table = _with_fid(read_table(ctx.work / "plink" / "sexcheck.sexcheck"))
        tables.append(table.assign(sex_freq_from=groups.iloc[0] if len(groups) else ""))
    else:
        # chrX allele frequencies within each group (--keep restricts the samples they come
        # from), from SEX_OWN_FREQ_MIN samples up; groups smaller still use the whole cohort's.
        sizes = groups.value_counts()
        own_freq = {g: n >= SEX_OWN_FREQ_MIN for g, n in sizes.items()}
        for i, (group, own) in enumerate(sorted(own_freq.items())):
            if own:
                args = ctx.with_keep(ctx.filters(previous), ctx.keep[groups == group], f"g{i}")
                ctx.plink("plink1.9", [*args, *check], f"sexcheck_g{i}")
                table = _with_fid(read_table(ctx.work / "plink" / f"sexcheck_g{i}.sexcheck"))
                tables.append(table.assign(sex_freq_from=group))
        pooled_groups = [g for g, own in own_freq.items() if not own]
        if pooled_groups:
            ctx.plink("plink1.9", [*ctx.filters(previous), *check], "sexcheck_pooled")
            table = _with_fid(read_table(ctx.work / "plink" / "sexcheck_pooled.sexcheck"))
            rest = set(_keys(ctx.keep[groups.isin(pooled_groups)]))
            tables.append(table[_keys(table).isin(rest)].assign(sex_freq_from="whole cohort"))
    table = pd.concat(tables, ignore_index=True)
    status = decide.sex_status(table)
    group_of = dict(zip(_keys(ctx.keep), groups, strict=True))
    small = _keys(table).map(lambda k: not alone.get(group_of.get(k), True)).to_numpy(bool)
    result.sample_metrics = pd.DataFrame({
        "FID": table["FID"], "IID": table["IID"], "sex_F": table["F"],
        "sex_genetic": table["SNPSEX"].map(decide.sex_label), "sex_status": status,
        "sex_freq_from": table["sex_freq_from"],
    })  # fmt: skip
    # A small group's frequencies are noisy (or, below SEX_OWN_FREQ_MIN samples, the whole
    # cohort's, shifted from its own), so F between the bounds is reported, not removed; a
    # clear mismatch still is.
    removable = status.isin(s.sex_remove) & ~(small & (status == "ambiguous"))
    n_kept_ambiguous = int((small & (status == "ambiguous")).sum())
    if n_kept_ambiguous:
        result.notes.append(
            f"{n_kept_ambiguous} samples of groups smaller than {s.group_min_size} have chrX F "
            "between the bounds: reported (ambiguous), not removed"
        )
    result.extra["sex_freq_from"] = table["sex_freq_from"].value_counts().to_dict()
    for i in np.flatnonzero(removable):
        row = table.iloc[i]
        reported, genetic = decide.sex_label(row["PEDSEX"]), decide.sex_label(row["SNPSEX"])
        if status.iloc[i] == "mismatch":
            detail = f"reported {reported}, genetically {genetic} (chrX F {row['F']:.3f})"
        else:
            detail = (
                f"reported {reported}, chrX F {row['F']:.3f} between {s.sex_female_max_f} "
                f"and {s.sex_male_min_f}"
            )
        if len(alone) > 1:
            detail += f"; allele frequencies of {row['sex_freq_from']}"
        result.removed_samples.append((row["FID"], row["IID"], f"sex_{status.iloc[i]}", detail))
    return result


def step_heterozygosity(ctx: Context, previous: Path) -> StepResult:
    """LD-prune the autosomal SNPs (kept for relatedness and PCA), then F per sample."""
    s = ctx.settings
    prune = [
        *ctx.filters(previous), "--autosome", "--maf", str(s.prune_maf),
        "--indep-pairwise", str(s.prune_window), str(s.prune_step), str(s.prune_r2),
    ]  # fmt: skip
    if s.prune_exclude_ranges:
        prune += ["--exclude", "range", s.prune_exclude_ranges]
    ctx.plink("plink2", prune, "prune")
    pruned = ctx.work / "pruned.txt"
    (ctx.work / "plink" / "prune.prune.in").replace(pruned)
    n_pruned = sum(1 for _ in pruned.open())
    if n_pruned < 2:
        raise QCStepError(
            ctx.work,
            f"step heterozygosity: LD pruning kept {n_pruned} of {len(ctx.extract)} variants "
            f"(autosomal, MAF >= {s.prune_maf}) for {len(ctx.keep)} samples; heterozygosity, "
            "relatedness and PCA need autosomal SNPs",
        )
    if s.het_ld_pruned:
        args = ctx.filters(previous, pruned)
    else:
        args = [*ctx.filters(previous), "--autosome"]
    ctx.plink("plink2", [*args, "--het"], "het")
    het = _with_fid(read_table(ctx.work / "plink" / "het.het"))
    groups = ctx.groups()
    group_of = dict(zip(_keys(ctx.keep), groups, strict=True))
    het_groups = _keys(het).map(group_of).fillna(NO_REFERENCE_GROUP)
    judged = decide.grouped_heterozygosity(het["F"], het_groups, s.het_n_sd, s.group_min_size)
    fail, centre, sd = judged["outlier"], judged["centre"], judged["sd"]
    single = het_groups.nunique() == 1
    metrics = het[["FID", "IID", "F", "OBS_CT"]].rename(
        columns={"F": "het_F", "OBS_CT": "het_n_variants"}
    )
    metrics["het_group_centre"], metrics["het_group_sd"] = centre.round(5), sd.round(5)
    result = StepResult(
        sample_metrics=metrics,
        extra={
            "n_pruned_variants": n_pruned,
            "het_mean": float(centre.iloc[0]) if single and len(het) else float("nan"),
            "het_sd": float(sd.iloc[0]) if single and len(het) else float("nan"),
            "het_by_group": judged["groups"],
        },
    )
    for i in np.flatnonzero(fail):
        row, mean, band = het.iloc[i], centre.iloc[i], sd.iloc[i]
        side = "below" if row["F"] < mean else "above"
        bound = mean - s.het_n_sd * band if side == "below" else mean + s.het_n_sd * band
        what = "excess heterozygosity" if side == "below" else "heterozygosity deficit"
        where = "" if single else f" of group {het_groups.iloc[i]}"
        basis = judged["groups"][het_groups.iloc[i]]["basis"]
        result.removed_samples.append((
            row["FID"], row["IID"], "heterozygosity",
            f"{what}: F {row['F']:.4f} {side} {basis}{where} {'-' if side == 'below' else '+'} "
            f"{s.het_n_sd:g} SD ({bound:.4f})",
        ))  # fmt: skip
    if not s.het_ld_pruned:
        result.notes.append("heterozygosity on all autosomal variants (ld_pruned: false)")
    return result


KING_COLUMNS = ["FID1", "IID1", "FID2", "IID2", "NSNP", "HETHET", "IBS0", "KINSHIP", "degree"]


def step_relatedness(ctx: Context, previous: Path) -> StepResult:
    s = ctx.settings
    pruned = ctx.step("heterozygosity") / "pruned.txt"
    n_pruned = sum(1 for _ in pruned.open())
    if n_pruned < s.king_min_snps:
        metrics = ctx.keep.assign(n_relatives=np.nan, max_kinship=np.nan, max_kinship_with="")
        pd.DataFrame(columns=[*KING_COLUMNS, "related"]).to_csv(
            ctx.work / "kinship_pairs.tsv", sep="\t", index=False
        )
        return StepResult(
            sample_metrics=metrics,
            extra={"n_pairs": 0, "n_pairs_third_degree": 0, "skipped": True, "n_snps": n_pruned},
            notes=[
                f"relatedness skipped: only {n_pruned} LD-pruned SNPs, fewer than "
                f"genotype_qc.relatedness.min_snps ({s.king_min_snps}); KING on so few SNPs "
                "calls false relatives, no sample removed"
            ],
        )
    # The table reaches down to third degree for the plot; decisions use s.kinship.
    king = [
        *ctx.filters(previous, pruned), "--make-king-table",
        "--king-table-filter", str(min(s.kinship, decide.KINSHIP_THIRD)),
    ]  # fmt: skip
    ctx.plink("plink2", king, "king")
    close = read_table(ctx.work / "plink" / "king.kin0")
    if "FID1" not in close.columns:
        close.insert(0, "FID1", "0")
        close.insert(2, "FID2", "0")
    for column in ("FID1", "IID1", "FID2", "IID2"):
        close[column] = close[column].astype(str)
    close["degree"] = close["KINSHIP"].map(decide.kinship_degree)
    close["related"] = close["KINSHIP"] >= s.kinship
    kin = close[close["related"]].reset_index(drop=True)
    kin["a"] = kin["FID1"] + " " + kin["IID1"]
    kin["b"] = kin["FID2"] + " " + kin["IID2"]
    callrate = pd.read_csv(ctx.step("sample_callrate") / "samples.tsv", sep="\t", dtype=str)
    missingness = pd.Series(
        pd.to_numeric(callrate["F_MISS"]).to_numpy(), index=_keys(callrate).to_numpy()
    )
    removed = set(decide.relatedness_removals(kin, missingness))
    keys = _keys(ctx.keep)
    metrics = ctx.keep.copy()
    metrics["n_relatives"] = 0
    metrics["max_kinship"] = np.nan
    metrics["max_kinship_with"] = ""
    index = {k: i for i, k in enumerate(keys)}
    for _, pair in kin.sort_values("KINSHIP").iterrows():
        for me, other in ((pair["a"], pair["b"]), (pair["b"], pair["a"])):
            i = index[me]
            metrics.iat[i, metrics.columns.get_loc("n_relatives")] += 1
            metrics.iat[i, metrics.columns.get_loc("max_kinship")] = pair["KINSHIP"]
            metrics.iat[i, metrics.columns.get_loc("max_kinship_with")] = other.split(" ", 1)[1]
    result = StepResult(
        sample_metrics=metrics,
        extra={"n_pairs": len(kin), "n_pairs_third_degree": len(close), "n_snps": n_pruned},
    )
    for key in sorted(removed):
        mine = kin[(kin["a"] == key) | (kin["b"] == key)]
        parts = []
        for _, pair in mine.iterrows():
            other = pair["b"] if pair["a"] == key else pair["a"]
            kept = "kept" if other not in removed else "also removed"
            parts.append(
                f"kinship {pair['KINSHIP']:.3f} with {other.split(' ', 1)[1]} ({pair['degree']}; "
                f"{kept}, call rate {1 - missingness.get(other, np.nan):.4f} vs "
                f"{1 - missingness.get(key, np.nan):.4f})"
            )
        fid, iid = key.split(" ", 1)
        result.removed_samples.append((fid, iid, "related", "; ".join(parts)))
    close[[*KING_COLUMNS, "related"]].to_csv(ctx.work / "kinship_pairs.tsv", sep="\t", index=False)
    return result


def step_pca(ctx: Context, previous: Path) -> StepResult:
    s = ctx.settings
    pruned = ctx.step("heterozygosity") / "pruned.txt"
    n = len(ctx.keep)
    n_pruned = sum(1 for _ in pruned.open())
    if n < 3 or n_pruned < 3:
        raise QCStepError(
            ctx.work,
            f"step pca: {n} samples and {n_pruned} LD-pruned SNPs left; PCA needs at least 3 "
            "of each",
        )
    n_pcs = min(s.n_pcs, n - 1, n_pruned - 1)
    # plink2's randomised PCA for large cohorts (its documentation suggests it above ~5000).
    approx = ["approx"] if n > 5000 else []
    args = [*ctx.filters(previous, pruned), "--pca", str(n_pcs), *approx]
    ctx.plink("plink2", args, "pca")
    pcs = _with_fid(read_table(ctx.work / "plink" / "pca.eigenvec"))
    (ctx.work / "plink" / "pca.eigenvec").replace(ctx.work / "eigenvec.tsv")
    (ctx.work / "plink" / "pca.eigenval").replace(ctx.work / "eigenval.txt")
    group_of = dict(zip(_keys(ctx.keep), ctx.groups(), strict=True))
    pca_groups = pd.Series(_keys(pcs).map(group_of).fillna(NO_REFERENCE_GROUP), index=pcs.index)
    alone = ctx.judged_alone(pca_groups)
    flagged = pd.Series(False, index=pcs.index)
    which = pd.Series("", index=pcs.index)
    for group, own in alone.items():
        if own:  # outliers judged within the group; a small group is not judged
            rows = pca_groups == group
            f, w = decide.pca_outliers(pcs[rows], s.pca_outlier_pcs, s.pca_outlier_sd)
            flagged[rows] = np.asarray(f, dtype=bool)
            which[rows] = np.asarray(w, dtype=object)
    metrics = pcs.copy()
    metrics["pca_outlier"] = flagged
    metrics["pca_outlier_on"] = which
    result = StepResult(sample_metrics=metrics, extra={"n_pcs": n_pcs})
    not_judged = [g for g, own in alone.items() if not own]
    if not_judged:
        n = int(pca_groups.isin(not_judged).sum())
        result.notes.append(
            f"{n} samples of groups smaller than {s.group_min_size} "
            f"({', '.join(sorted(not_judged))}) not judged for PCA outliers (a small group "
            "is far from the others by ancestry)"
        )
    if len(alone) == 1 and NO_REFERENCE_GROUP in alone:
        values = [float(v) for v in (ctx.work / "eigenval.txt").read_text().split()]
        warning = structure_warning(pcs, values)
        if warning:
            result.notes.append(f"warning: {warning}")
            result.extra["structure_warning"] = warning
    if s.pca_remove_outliers:
        for i in np.flatnonzero(flagged):
            row = pcs.iloc[i]
            group = pca_groups.iloc[i]
            where = "" if len(alone) == 1 else f" of group {group}"
            result.removed_samples.append((
                row["FID"], row["IID"], "pca_outlier",
                f"more than {s.pca_outlier_sd:g} SD from the mean{where} on {which.iloc[i]}",
            ))  # fmt: skip
    elif flagged.any():
        result.notes.append(f"{int(flagged.sum())} PCA outliers flagged, not removed")
    return result


def step_variant_final(ctx: Context, previous: Path) -> StepResult:
    s = ctx.settings
    base = ctx.filters(previous)
    ctx.plink("plink2", [*base, "--missing", "variant-only"], "missing")
    ctx.plink("plink2", [*base, "--freq"], "freq")
    pheno = pd.read_csv(
        ctx.step("import") / "phenotype.tsv", sep="\t", dtype={"FID": str, "IID": str}
    )
    kind = read_step_record(ctx.root, "import")["extra"]["phenotype_kind"]
    column = next(c for c in pheno.columns if c not in ("FID", "IID"))
    tested = ctx.keep
    what = "samples"
    if s.hwe_samples == "controls" or (s.hwe_samples == "auto" and kind == "binary"):
        if kind != "binary":
            raise ConfigError("genotype_qc.hwe_samples: controls needs a case/control phenotype")
        tested = ctx.keep.merge(pheno[pheno[column] == 1][["FID", "IID"]], on=["FID", "IID"])
        what = "controls"
    groups = ctx.groups()
    group_of = dict(zip(_keys(ctx.keep), groups, strict=True))
    tested_groups = _keys(tested).map(group_of)
    alone = ctx.judged_alone(groups)
    sets = [(g, tested[(tested_groups == g).to_numpy()]) for g, own in sorted(alone.items()) if own]
    notes = []
    if not sets:  # every group small: test them together, and say so
        sets = [("all groups together", tested)]
        notes.append(f"no group has {s.group_min_size} samples: HWE tested on all together")
    hwe_parts, described = [], []
    for i, (group, samples) in enumerate(sets):
        name = "hardy" if len(sets) == 1 else f"hardy_g{i}"
        everyone = len(samples) == len(ctx.keep)
        args = list(base) if everyone else ctx.with_keep(base, samples, name)
        ctx.plink("plink2", [*args, "--hardy", *(["midp"] if s.hwe_midp else [])], name)
        hardy = [read_table(ctx.work / "plink" / f"{name}.hardy")]
        if (ctx.work / "plink" / f"{name}.hardy.x").exists():
            hardy.append(read_table(ctx.work / "plink" / f"{name}.hardy.x"))
        hardy = [h.rename(columns={"MIDP": "P"}) for h in hardy]  # the midp column's name
        part = pd.concat([h[["ID", "P"]] for h in hardy]).assign(group=group)
        hwe_parts.append(part)
        single = len(sets) == 1 and group in (NO_REFERENCE_GROUP, "all groups together")
        label = f"{len(samples)} {what}" if single else f"{group} ({len(samples)} {what})"
        described.append("all samples" if single and everyone else label)
    hwe_in = "; ".join(described)
    every = pd.concat(hwe_parts)
    # A variant fails when it fails in any group tested: keep each variant's lowest p-value.
    worst = every.sort_values("P").drop_duplicates("ID")
    hwe = worst.rename(columns={"P": "HWE_P", "group": "HWE_worst_group"})
    metrics = vmiss_freq(ctx).merge(hwe, on="ID", how="left")
    result = StepResult(
        variant_metrics=metrics, notes=notes,
        extra={"hwe_in": hwe_in, "hwe_midp": s.hwe_midp, "hwe_groups": [g for g, _ in sets]},
    )  # fmt: skip
    tests = (
        ("variant_missing", "F_MISS", s.variant_missing, True, "F_MISS {v:.4f} > {t}"),
        ("maf", "MAF", s.maf, False, "MAF {v:.4f} < {t}"),
        ("hwe", "HWE_P", s.hwe_p, False, "HWE p {v:.3g} < {t:g} in {g}"),
    )
    single = len(sets) == 1
    for reason, col, threshold, above, text in tests:
        fail = decide.threshold_failures(metrics[col], threshold, above=above)
        for vid, value, group in zip(metrics["ID"][fail], metrics[col][fail],
                                     metrics["HWE_worst_group"][fail], strict=True):  # fmt: skip
            where = hwe_in if single else f"group {group}"
            result.removed_variants.append(
                (vid, reason, text.format(v=value, t=threshold, g=where))
            )
    return result


def vmiss_freq(ctx: Context) -> pd.DataFrame:
    """Final missingness and MAF per variant (the step's ``missing`` and ``freq`` runs)."""
    vmiss = read_table(ctx.work / "plink" / "missing.vmiss")[["ID", "F_MISS"]]
    freq = read_table(ctx.work / "plink" / "freq.afreq")
    freq["MAF"] = decide.minor_allele_frequency(freq["ALT_FREQS"])
    return vmiss.merge(freq[["ID", "MAF"]], on="ID", how="left")


def read_step_record(root: str | Path, name: str) -> dict[str, Any]:
    """The ``step.json`` of step ``name`` under ``root``."""
    return json.loads((Path(root) / step_dir_name(name) / "step.json").read_text())


# ------------------------------------------------------------------------------ the runner
def run_step(
    name: str,
    root: str | Path,
    settings: QCSettings,
    session: PlinkSession,
    inputs: InputSettings | None = None,
) -> dict[str, Any]:
    """Run step ``name`` under ``root`` (which holds the earlier step folders); returns its
    record. The folder ``root/{i}_{name}`` appears complete or not at all."""
    root = Path(root)
    target = root / step_dir_name(name)
    failed = root / f"{step_dir_name(name)}.failed"
    index = STEPS.index(name)
    previous = root / step_dir_name(STEPS[index - 1]) if index else None
    first_run = len(session.runs)
    with atomic_output_dir(target) as work:
        (work / "plink").mkdir()
        try:
            if previous is None:
                keep, extract = pd.DataFrame(columns=["FID", "IID"]), pd.Series(dtype=str)
            else:
                keep, extract = _read_state(previous)
            ctx = Context(root, work, settings, session, keep, extract)
            if name == "import":
                if inputs is None:
                    raise ConfigError("the import step needs the genotypes input settings")
                result = step_import(ctx, inputs)
                keep, extract = result.state
            else:
                result = STEP_FUNCTIONS[name](ctx, previous)
            # PLINK names files in the temporary folder; records name the step's own folder,
            # so that two runs of the same step write the same bytes.
            for run in session.runs[first_run:]:
                run.warnings = [
                    w.replace(str(work.resolve()), str(target)).replace(str(work), str(target))
                    for w in run.warnings
                ]
            result.notes += [
                f"{run.engine} warning: {warning}"
                for run in session.runs[first_run:]
                for warning in run.warnings
            ]
            n_in = (len(keep), len(extract))
            record = _write_step(name, work, settings, session, keep, extract, result, n_in, target)
        except (PlinkError, QCStepError) as exc:
            raise _keep_failure(exc, work, failed) from None
    if failed.exists():
        shutil.rmtree(failed)
    for note in record["notes"]:
        warns = note.startswith("warning:") or " warning: " in note
        (log.warning if warns else log.info)("%s: %s", name, note)
    log.info(
        "%s: samples %d -> %d, variants %d -> %d", name, record["samples_in"],
        record["samples_out"], record["variants_in"], record["variants_out"],
    )  # fmt: skip
    return record


def _keep_failure(exc: Exception, work: Path, failed: Path) -> Exception:
    """Move the failed attempt's PLINK logs (and its inputs lists) to ``failed`` beside the
    step folder, write the message there, and return the error naming that folder."""
    if failed.exists():
        shutil.rmtree(failed)
    failed.mkdir(parents=True)
    plink = work / "plink"
    for path in sorted(plink.iterdir()) if plink.is_dir() else []:
        if path.suffix in (".log", ".txt") and path.is_file():
            shutil.copy2(path, failed / path.name)
    message = str(exc).replace(str(plink), str(failed)).replace(str(work), str(failed))
    message += f"\n(the PLINK logs of this attempt are kept in {failed})"
    (failed / "error.txt").write_text(message + "\n")
    if isinstance(exc, QCStepError):
        return QCStepError(exc.path and exc.path.replace(str(work), str(failed)), message)
    return PlinkError(message, failed)


STEP_FUNCTIONS = {
    "variant_callrate": step_variant_callrate,
    "sample_callrate": step_sample_callrate,
    "ancestry": step_ancestry,
    "sex_check": step_sex_check,
    "heterozygosity": step_heterozygosity,
    "relatedness": step_relatedness,
    "pca": step_pca,
    "variant_final": step_variant_final,
}


def _write_step(
    name: str,
    work: Path,
    settings: QCSettings,
    session: PlinkSession,
    keep: pd.DataFrame,
    extract: pd.Series,
    result: StepResult,
    n_in: tuple[int, int],
    target: Path,
) -> dict[str, Any]:
    removed_s = pd.DataFrame(result.removed_samples, columns=["FID", "IID", "reason", "detail"])
    removed_v = pd.DataFrame(result.removed_variants, columns=["ID", "reason", "detail"])
    removed_s.insert(2, "step", name)
    removed_v.insert(1, "step", name)
    gone = set(removed_s["FID"] + " " + removed_s["IID"])
    n_before = (len(keep), len(extract))
    keep = keep[~_keys(keep).isin(gone)]
    extract = extract[~extract.isin(set(removed_v["ID"]))]
    for what, before, after, reasons in (
        ("samples", n_before[0], len(keep), removed_s["reason"]),
        ("variants", n_before[1], len(extract), removed_v["reason"]),
    ):
        if after == 0:
            counts = ", ".join(f"{k} {v}" for k, v in reasons.value_counts().items())
            raise QCStepError(
                work,
                f"step {name} would remove all {before} {what} ({counts or 'no reason'}); "
                "stopped here rather than hand an empty set to the next step: check the input "
                f"and the genotype_qc thresholds of this step",
            )
    keep.to_csv(work / "keep.txt", sep="\t", header=False, index=False)
    _write_lines(work / "extract.txt", extract.tolist())
    removed_s.to_csv(work / "removed_samples.tsv", sep="\t", index=False)
    removed_v.to_csv(work / "removed_variants.tsv", sep="\t", index=False)
    for table, file in ((result.sample_metrics, "samples.tsv"),
                        (result.variant_metrics, "variants.tsv")):  # fmt: skip
        if table is not None:
            table.to_csv(work / file, sep="\t", index=False, na_rep="NA")
    record = {
        "step": name,
        "title": TITLES[name],
        "settings": asdict(settings),
        "samples_in": n_in[0],
        "samples_out": len(keep),
        "variants_in": n_in[1],
        "variants_out": len(extract),
        "samples_removed": int(removed_s[["FID", "IID"]].drop_duplicates().shape[0]),
        "variants_removed": int(removed_v["ID"].nunique()),
        "notes": [note.replace(str(work), str(target)) for note in result.notes],
        "extra": result.extra,
        # Paths inside the step's temporary folder are recorded as their final ones, so the
        # record is the same on every run (and names files a reader can find).
        "plink_runs": [
            run | {"args": [a.replace(str(work), str(target)) for a in run["args"]]}
            for run in (r.as_dict(log=False) for r in session.runs)
        ],
    }
    write_json(work / "step.json", record)
    return record


def write_clean_fileset(root: str | Path, out_prefix: str | Path, session: PlinkSession) -> None:
    """The imported fileset restricted to the samples and variants that passed every step."""
    root, out_prefix = Path(root), Path(out_prefix)
    last = root / step_dir_name(STEPS[-1])
    bfile = root / step_dir_name("import") / DATA
    work = out_prefix.parent / "plink"
    args = [
        "--bfile", str(bfile), "--keep", str(last / "keep.txt"),
        "--extract", str(last / "extract.txt"), "--make-bed",
    ]  # fmt: skip
    session.run("plink2", args, work / out_prefix.name)
    for ext in (".bed", ".bim", ".fam"):
        with atomic_output_file(with_ext(out_prefix, ext)) as tmp:
            (work / f"{out_prefix.name}{ext}").replace(tmp)
