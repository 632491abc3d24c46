"""Checks on genotype inputs before PLINK sees them, so that bad files fail with a clear reason.

PLINK 1 binary (``.bed``/``.bim``/``.fam``): the ``.bed`` must start with the SNP-major magic
bytes ``6c 1b 01`` and hold exactly ``3 + n_variants * ceil(n_samples / 4)`` bytes (each
variant's genotypes are packed four samples per byte), where ``n_variants`` and ``n_samples``
are the line counts of ``.bim`` and ``.fam``. A mismatch means a truncated file or ``.bim`` /
``.fam`` from another data set. Sample IDs (FID, IID) must be unique.

VCF/BCF: the header must name at least one sample (a sites-only VCF cannot be QC'd).

Phenotype/covariate table: whitespace- or tab-separated with a header starting ``FID IID``;
every value of a used column must be numeric or a missing code (``NA``, ``-9``, empty).
"""

from __future__ import annotations

import gzip
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cohortflow.errors import InputError

BED_MAGIC = bytes([0x6C, 0x1B, 0x01])
MISSING_CODES = frozenset({"", "NA", "na", "NaN", "nan", "-9", "."})


class GenotypeInputError(InputError):
    """A genotype file set that PLINK must not be run on."""


@dataclass(frozen=True)
class GenotypeInput:
    kind: str  # "bfile", "pfile" or "vcf"
    path: Path  # prefix for bfile/pfile, the file for vcf
    n_samples: int | None = None
    n_variants: int | None = None


def with_ext(prefix: str | Path, ext: str) -> Path:
    """``prefix`` + ``ext`` (``Path.with_suffix`` would cut a prefix such as ``data.clean``)."""
    return Path(f"{prefix}{ext}")


def _lines(path: Path) -> list[list[str]]:
    with path.open() as fh:
        return [line.split() for line in fh if line.strip()]


def detect_input(path: str | Path) -> GenotypeInput:
    """What ``path`` is: a .bed/.pgen fileset prefix (with or without extension) or a VCF/BCF."""
    path = Path(path)
    name = path.name
    if name.endswith((".vcf", ".vcf.gz", ".bcf")):
        if not path.is_file():
            raise GenotypeInputError(path, "file not found")
        return GenotypeInput("vcf", path)
    prefix = path.with_suffix("") if path.suffix in (".bed", ".bim", ".fam", ".pgen") else path
    if with_ext(prefix, ".bed").exists() or with_ext(prefix, ".bim").exists():
        return GenotypeInput("bfile", prefix)
    if with_ext(prefix, ".pgen").exists():
        return GenotypeInput("pfile", prefix)
    raise GenotypeInputError(
        path, "no PLINK 1 (.bed/.bim/.fam), PLINK 2 (.pgen/.pvar/.psam) or VCF/BCF input here"
    )


def _check_unique_samples(path: Path, ids: list[tuple[str, str]], first_line: int) -> None:
    counts = Counter(ids)
    duplicated = [pair for pair, n in counts.items() if n > 1]
    if duplicated:
        fid, iid = duplicated[0]
        lines = [i + first_line for i, pair in enumerate(ids) if pair == (fid, iid)]
        raise GenotypeInputError(
            path,
            f"duplicate sample ID FID={fid} IID={iid} on lines {lines[0]} and {lines[1]}"
            + (f" (and {len(duplicated) - 1} more duplicated IDs)" if len(duplicated) > 1 else ""),
        )


def check_bfile(prefix: str | Path) -> GenotypeInput:
    """Check a PLINK 1 binary fileset; returns it with its sample and variant counts."""
    prefix = Path(prefix)
    files = {ext: with_ext(prefix, ext) for ext in (".bed", ".bim", ".fam")}
    for ext, path in files.items():
        if not path.is_file():
            raise GenotypeInputError(path, f"missing {ext} file of the PLINK 1 fileset")
    fam = _lines(files[".fam"])
    bad = next((i for i, row in enumerate(fam, 1) if len(row) != 6), None)
    if bad is not None:
        raise GenotypeInputError(files[".fam"], f"line {bad}: {len(fam[bad - 1])} columns, need 6")
    bim = _lines(files[".bim"])
    bad = next((i for i, row in enumerate(bim, 1) if len(row) != 6), None)
    if bad is not None:
        raise GenotypeInputError(files[".bim"], f"line {bad}: {len(bim[bad - 1])} columns, need 6")
    if not fam:
        raise GenotypeInputError(files[".fam"], "no samples")
    if not bim:
        raise GenotypeInputError(files[".bim"], "no variants")
    _check_unique_samples(files[".fam"], [(row[0], row[1]) for row in fam], 1)
    bed = files[".bed"]
    with bed.open("rb") as fh:
        magic = fh.read(3)
    if magic != BED_MAGIC:
        raise GenotypeInputError(
            bed,
            f"not a SNP-major PLINK 1 .bed (first bytes {magic.hex(' ')}, expected 6c 1b 01)",
        )
    per_variant = (len(fam) + 3) // 4
    expected = 3 + len(bim) * per_variant
    size = bed.stat().st_size
    if size != expected:
        what = "truncated" if size < expected else "longer than expected"
        raise GenotypeInputError(
            bed,
            f"{what}: {size} bytes, but {len(bim)} variants (.bim) x {len(fam)} samples (.fam) "
            f"need 3 + {len(bim)} x {per_variant} = {expected}; the .bim/.fam may belong to "
            "another fileset",
        )
    return GenotypeInput("bfile", prefix, n_samples=len(fam), n_variants=len(bim))


def check_vcf(path: str | Path) -> GenotypeInput:
    """A VCF must name samples; BCF headers are left to plink2 (binary)."""
    path = Path(path)
    if path.name.endswith(".bcf"):
        return GenotypeInput("vcf", path)
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt") as fh:
            for number, line in enumerate(fh, 1):
                if line.startswith("##"):
                    continue
                if not line.startswith("#CHROM"):
                    raise GenotypeInputError(path, f"line {number}: no #CHROM header line")
                columns = line.rstrip("\n").split("\t")
                samples = columns[9:]
                if not samples:
                    raise GenotypeInputError(
                        path, "the VCF names no samples (a sites-only VCF cannot be genotype-QC'd)"
                    )
                ids = [("0", s) for s in samples]
                _check_unique_samples(path, ids, 10)
                return GenotypeInput("vcf", path, n_samples=len(samples))
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise GenotypeInputError(path, f"cannot read ({type(exc).__name__}: {exc})") from None
    raise GenotypeInputError(path, "no #CHROM header line: not a VCF")


def check_input(path: str | Path) -> GenotypeInput:
    found = detect_input(path)
    if found.kind == "bfile":
        return check_bfile(found.path)
    if found.kind == "vcf":
        return check_vcf(found.path)
    psam = with_ext(found.path, ".psam")
    if psam.is_file():
        rows = _lines(psam)
        header = rows[0] if rows and rows[0][0].startswith("#") else None
        body = rows[1:] if header else rows
        if not body:
            raise GenotypeInputError(psam, "no samples")
        iid = header.index("IID") if header and "IID" in header else 0
        fid = header.index("#FID") if header and "#FID" in header else None
        ids = [(row[fid] if fid is not None else "0", row[iid]) for row in body]
        _check_unique_samples(psam, ids, 2 if header else 1)
    return found


def check_phenotype_table(path: str | Path, columns: list[str]) -> dict[str, int]:
    """Check that ``columns`` of a FID/IID table are numeric; returns non-missing counts."""
    path = Path(path)
    rows = _lines(path)
    if not rows or rows[0][:2] != ["FID", "IID"]:
        raise GenotypeInputError(path, "the header must start with FID IID")
    header = rows[0]
    missing = [c for c in columns if c not in header]
    if missing:
        raise GenotypeInputError(path, f"no column {missing[0]!r} (columns: {', '.join(header)})")
    counts = {}
    for column in columns:
        j = header.index(column)
        n = 0
        for number, row in enumerate(rows[1:], 2):
            value = row[j] if j < len(row) else ""
            if value in MISSING_CODES:
                continue
            try:
                float(value)
            except ValueError:
                raise GenotypeInputError(
                    path,
                    f"line {number}, column {column!r}: {value!r} is not numeric "
                    f"(missing values: NA, -9 or empty)",
                ) from None
            n += 1
        counts[column] = n
    _check_unique_samples(path, [(r[0], r[1]) for r in rows[1:]], 2)
    return counts


def is_missing(value: Any) -> bool:
    """A missing phenotype/covariate value: None, NaN, -9 or one of :data:`MISSING_CODES`."""
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip() in MISSING_CODES
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    return math.isnan(number) or number == -9


def phenotype_kind(values: Iterable[Any]) -> str:
    """``"binary"`` or ``"quantitative"`` for a phenotype's values.

    Missing values (``NA``, ``-9``, empty, NaN, None) are left out. The phenotype is binary when
    the rest are all in {1, 2} (PLINK coding: 1 control, 2 case) or all in {0, 1} (0 control,
    1 case), quantitative otherwise. Fewer than two distinct values cannot be analysed and
    raise :class:`GenotypeInputError`.
    """
    distinct: set[float] = set()
    for value in values:
        if is_missing(value):
            continue
        try:
            distinct.add(float(value))
        except (TypeError, ValueError):
            raise GenotypeInputError(None, f"phenotype value {value!r} is not numeric") from None
    if len(distinct) < 2:
        shown = ", ".join(f"{v:g}" for v in sorted(distinct)) or "none"
        raise GenotypeInputError(
            None,
            f"the phenotype has {len(distinct)} distinct non-missing value(s) ({shown}); "
            "association needs at least two",
        )
    if distinct <= {1.0, 2.0} or distinct <= {0.0, 1.0}:
        return "binary"
    return "quantitative"
