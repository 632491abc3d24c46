"""Checks on genotype inputs before PLINK sees them, so that bad files fail with a clear reason.

PLINK 1 binary (``.bed``/``.bim``/``.fam``): the ``.bed`` must start with the SNP-major magic
bytes ``6c 1b 01`` and hold exactly ``3 + n_variants * ceil(n_samples / 4)`` bytes (each
variant's genotypes are packed four samples per byte), where ``n_variants`` and ``n_samples``
are the line counts of ``.bim`` and ``.fam``. A mismatch means a truncated file or ``.bim`` /
``.fam`` from another data set. Sample IDs (FID, IID) must be unique.

Every line of ``.bim`` and ``.fam`` is checked before PLINK runs, and a bad one is named by file
and line: six whitespace-separated columns (an ID with a space in it shows up as an extra
column), an integer base-pair position and a numeric centimorgan position in the ``.bim``,
non-empty alleles. PLINK itself would read ``12a`` as a position or cut an ID at its space.

VCF/BCF: the header must name at least one sample (a sites-only VCF cannot be QC'd) and sample
names must not contain spaces (PLINK's ``.fam`` is whitespace-separated). The first
:data:`VCF_LINES_CHECKED` data lines are checked for their column count and an integer
position; later lines are left to plink2, whose error (with its line number) is quoted in full.

Phenotype/covariate table: whitespace- or tab-separated with a header starting ``FID IID``;
every value of a used column must be numeric or a missing code (``NA``, ``-9``, empty).
"""

from __future__ import annotations

import gzip
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cohortflow.errors import InputError

BED_MAGIC = bytes([0x6C, 0x1B, 0x01])
MISSING_CODES = frozenset({"", "NA", "na", "NaN", "nan", "-9", "."})
#: Data lines of a text VCF checked in Python before plink2 reads the file.
VCF_LINES_CHECKED = 1000
_INTEGER = re.compile(r"^-?[0-9]+$")


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


def _columns_problem(row: list[str], n: int) -> str | None:
    if len(row) == n:
        return None
    hint = " (an ID or allele with a space in it?)" if len(row) > n else ""
    return f"{len(row)} columns, need {n}{hint}"


def _fam_problem(row: list[str]) -> str | None:
    return _columns_problem(row, 6)


def _bim_problem(row: list[str]) -> str | None:
    problem = _columns_problem(row, 6)
    if problem:
        return problem
    if not _INTEGER.match(row[3]):
        return f"position {row[3]!r} of variant {row[1]!r} is not an integer"
    try:
        float(row[2])
    except ValueError:
        return f"centimorgan position {row[2]!r} of variant {row[1]!r} is not a number"
    return None


def _checked_lines(path: Path, problem) -> list[list[str]]:
    """The whitespace-split non-blank lines of ``path``; the first bad one raises, naming its
    line number."""
    rows = []
    with path.open() as fh:
        for number, line in enumerate(fh, 1):
            row = line.split()
            if not row:
                continue
            reason = problem(row)
            if reason:
                raise GenotypeInputError(path, f"line {number}: {reason}")
            rows.append(row)
    return rows


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
    fam = _checked_lines(files[".fam"], _fam_problem)
    bim = _checked_lines(files[".bim"], _bim_problem)
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
                for j, sample in enumerate(samples, 10):
                    if not sample.strip() or sample != sample.strip() or " " in sample:
                        raise GenotypeInputError(
                            path,
                            f"line {number}, column {j}: sample name {sample!r} is empty or "
                            "contains spaces (PLINK's sample IDs cannot)",
                        )
                ids = [("0", s) for s in samples]
                _check_unique_samples(path, ids, 10)
                _check_vcf_records(path, fh, number, len(columns))
                return GenotypeInput("vcf", path, n_samples=len(samples))
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise GenotypeInputError(path, f"cannot read ({type(exc).__name__}: {exc})") from None
    raise GenotypeInputError(path, "no #CHROM header line: not a VCF")


def _check_vcf_records(path: Path, fh, header_line: int, n_columns: int) -> None:
    for number, line in enumerate(fh, header_line + 1):
        if number > header_line + VCF_LINES_CHECKED:
            return
        columns = line.rstrip("\n").split("\t")
        if len(columns) != n_columns:
            raise GenotypeInputError(
                path, f"line {number}: {len(columns)} tab-separated columns, the header has "
                f"{n_columns}",
            )  # fmt: skip
        if not _INTEGER.match(columns[1]):
            raise GenotypeInputError(
                path, f"line {number}: position {columns[1]!r} is not an integer"
            )


def resolve_inputs(spec: str | Path | list | tuple) -> list[Path]:
    """The genotype inputs named by ``genotypes.input``: one path, a list of paths, or a glob
    pattern (``*``, ``?``, ``[``; e.g. ``cohort.chr*.vcf.gz``), sorted by name with the
    numbers in it compared as numbers (chr2 before chr10). A pattern matching nothing, or the
    same file twice, is an error."""
    items = [spec] if isinstance(spec, (str, Path)) else list(spec)
    if not items:
        raise GenotypeInputError(None, "genotypes.input: an empty list")
    paths: list[Path] = []
    for item in items:
        text = str(item)
        if any(c in text for c in "*?["):
            found = sorted(Path(text).parent.glob(Path(text).name), key=_natural)
            if not found:
                raise GenotypeInputError(text, "the pattern matches no file")
            paths += found
        else:
            paths.append(Path(text))
    seen = [p for p, n in Counter(paths).items() if n > 1]
    if seen:
        raise GenotypeInputError(seen[0], "named twice in genotypes.input")
    return paths


def _natural(path: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def input_files(spec: str | Path | list | tuple) -> list[str]:
    """Every file the inputs consist of (for Snakemake's input list): VCF/BCF files as named,
    PLINK filesets as their three files."""
    files = []
    for path in resolve_inputs(spec):
        name = str(path)
        if name.endswith((".vcf", ".vcf.gz", ".bcf")):
            files.append(name)
            continue
        prefix = name.removesuffix(".bed").removesuffix(".pgen")
        pgen = name.endswith(".pgen") or Path(f"{prefix}.pgen").exists()
        exts = (".pgen", ".pvar", ".psam") if pgen else (".bed", ".bim", ".fam")
        files += [f"{prefix}{ext}" for ext in exts]
    return files


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
        width = len(header) if header else len(body[0])
        offset = 2 if header else 1
        for number, row in enumerate(body, offset):
            if len(row) != width:
                raise GenotypeInputError(
                    psam, f"line {number}: {len(row)} columns, need {width} (an ID with a space?)"
                )
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
    for number, row in enumerate(rows[1:], 2):
        if len(row) > len(header):
            raise GenotypeInputError(
                path, f"line {number}: {len(row)} columns, the header has {len(header)} "
                "(a value or ID with a space in it?)",
            )  # fmt: skip
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
