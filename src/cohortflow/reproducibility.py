"""Comparing two runs: which outputs are byte-identical, and why the others are not.

A reproducibility reviewer reruns the pipeline and asks whether every table, image and bundle
came out the same. Most outputs do, to the byte (fixed seeds, single-threaded registration,
gzip without time stamps, content-derived ids). The few that cannot are listed here with the
reason, and compared after that content is set aside:

* JSON keys and TSV columns that time the machine rather than describe the result
  (``*seconds``/``*Seconds``: wall and CPU time of a step) — every sidecar and QC record that
  carries them, and the CNN's per-epoch training history;
* ``recorded`` (FHIR Provenance.recorded, the moment the bundle was made) — fixed by setting
  ``SOURCE_DATE_EPOCH`` (reproducible-builds.org), then the bundles are byte-identical;
* the run record's ``this_run`` block (time, host, user) in results/provenance/run.json;
* logs (``*.log``: PLINK writes its start time, host and working directory into its own);
* results/provenance/ (the run record and its checksum list, which hash the files above).

``compare_runs`` then parses JSON (numbers compared with ``rtol``), and gzipped or plain TSV as
tables (numbers compared with ``rtol``); everything else must be byte-identical.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cohortflow.io.atomic import sha256_file

#: JSON keys (and TSV column names) whose values are measurements of the machine or the
#: moment, with the reason.
VOLATILE_KEYS: dict[str, str] = {
    r".*[Ss]econds": "wall/CPU time of a step: measures the machine, not the result",
    r"recorded": "FHIR Provenance.recorded: when the bundle was made (fixed by SOURCE_DATE_EPOCH)",
    r"this_run": "run record: time, host and user of this run",
}
_VOLATILE = [(re.compile(f"^(?:{k})$"), why) for k, why in VOLATILE_KEYS.items()]

#: Files that are not compared at all, with the reason.
VOLATILE_FILES: dict[str, str] = {
    "*.log": "tool logs carry start time, host and working directory",
    "results/provenance/*": "the run record: time and host of the run, and the checksums of "
    "every output, including those with timings (each output is compared on its own)",
}

#: The output folders a run comparison covers (Snakemake's own .snakemake/ is not an output).
OUTPUT_DIRS = ("results", "resources")


def checksums(root: str | Path, dirs: tuple[str, ...] = OUTPUT_DIRS) -> dict[str, str]:
    """SHA-256 of every file under ``root/dirs``, by path relative to ``root``."""
    root = Path(root)
    found = {}
    for name in dirs:
        for path in sorted((root / name).rglob("*")):
            if path.is_file() and not path.is_symlink():
                found[path.relative_to(root).as_posix()] = sha256_file(path)
    return found


def volatile_reason(key: str) -> str | None:
    for pattern, why in _VOLATILE:
        if pattern.match(key):
            return why
    return None


def _strip(value: Any, reasons: set[str]) -> Any:
    if isinstance(value, dict):
        kept = {}
        for key, item in value.items():
            why = volatile_reason(str(key))
            if why:
                reasons.add(f"{key}: {why}")
            else:
                kept[key] = _strip(item, reasons)
        return kept
    if isinstance(value, list):
        return [_strip(item, reasons) for item in value]
    return value


def _close(a: Any, b: Any, rtol: float, where: str) -> str | None:
    """None when ``a`` and ``b`` agree (numbers within ``rtol``), else where they first differ."""
    if isinstance(a, bool) or isinstance(b, bool):
        return None if a == b else f"{where}: {a!r} != {b!r}"
    if isinstance(a, int | float) and isinstance(b, int | float):
        if math.isnan(a) and math.isnan(b):
            return None
        return None if math.isclose(a, b, rel_tol=rtol, abs_tol=rtol) else f"{where}: {a} != {b}"
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return f"{where}: keys differ ({sorted(set(a) ^ set(b))})"
        for key in a:
            if problem := _close(a[key], b[key], rtol, f"{where}.{key}"):
                return problem
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{where}: {len(a)} != {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if problem := _close(x, y, rtol, f"{where}[{i}]"):
                return problem
        return None
    return None if a == b else f"{where}: {a!r} != {b!r}"


def _table(path: Path) -> list[list[Any]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt") as handle:
        rows = [line.rstrip("\n").split("\t") for line in handle]

    def cell(text: str) -> Any:
        try:
            return float(text)
        except ValueError:
            return text

    return [[cell(c) for c in row] for row in rows]


def _strip_columns(rows: list[list[Any]], reasons: set[str]) -> list[list[Any]]:
    """The table without its volatile columns (by header name); their reasons go to
    ``reasons``."""
    if not rows:
        return rows
    drop = set()
    for i, name in enumerate(rows[0]):
        why = volatile_reason(str(name))
        if why:
            drop.add(i)
            reasons.add(f"column {name}: {why}")
    return [[c for i, c in enumerate(row) if i not in drop] for row in rows]


@dataclass
class Comparison:
    identical: list[str] = field(default_factory=list)
    #: path -> the volatile content set aside before the rest compared equal
    equal_without_volatile: dict[str, list[str]] = field(default_factory=dict)
    #: path -> tables/JSON equal within rtol though not byte-identical
    numerically_equal: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    different: dict[str, str] = field(default_factory=dict)
    only_in_a: list[str] = field(default_factory=list)
    only_in_b: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.different or self.only_in_a or self.only_in_b)

    def summary(self) -> str:
        lines = [
            f"byte-identical: {len(self.identical)} files",
            f"equal once volatile content is set aside: {len(self.equal_without_volatile)}",
            f"numerically equal (rtol) but not byte-identical: {len(self.numerically_equal)}",
            f"not compared: {len(self.skipped)}",
            f"different: {len(self.different)}",
            f"only in the first run: {len(self.only_in_a)}; only in the second: "
            f"{len(self.only_in_b)}",
        ]
        for path, why in sorted(self.equal_without_volatile.items()):
            lines.append(f"  ~ {path}: {'; '.join(why)}")
        lines += [f"  ≈ {path}" for path in self.numerically_equal]
        lines += [f"  ✗ {path}: {why}" for path, why in sorted(self.different.items())]
        lines += [f"  < {path}" for path in self.only_in_a]
        lines += [f"  > {path}" for path in self.only_in_b]
        return "\n".join(lines)


def compare_runs(
    a: str | Path, b: str | Path, dirs: tuple[str, ...] = OUTPUT_DIRS, rtol: float = 1e-9
) -> Comparison:
    """Compare the outputs of two runs (their working directories) file by file."""
    a, b = Path(a), Path(b)
    sums_a, sums_b = checksums(a, dirs), checksums(b, dirs)
    result = Comparison(
        only_in_a=sorted(set(sums_a) - set(sums_b)), only_in_b=sorted(set(sums_b) - set(sums_a))
    )
    for rel in sorted(set(sums_a) & set(sums_b)):
        if sums_a[rel] == sums_b[rel]:
            result.identical.append(rel)
            continue
        skip = next((why for pat, why in VOLATILE_FILES.items() if Path(rel).match(pat)), None)
        if skip:
            result.skipped[rel] = skip
            continue
        fa, fb = a / rel, b / rel
        if rel.endswith(".json"):
            reasons: set[str] = set()
            ja = _strip(json.loads(fa.read_text()), reasons)
            jb = _strip(json.loads(fb.read_text()), reasons)
            if ja == jb:
                result.equal_without_volatile[rel] = sorted(reasons)
            elif (problem := _close(ja, jb, rtol, "$")) is None:
                result.numerically_equal.append(rel)
            else:
                result.different[rel] = problem
        elif rel.endswith((".tsv", ".tsv.gz")):
            reasons = set()
            ta, tb = _strip_columns(_table(fa), reasons), _strip_columns(_table(fb), reasons)
            problem = _close(ta, tb, rtol, "row")
            if problem is not None:
                result.different[rel] = problem
            elif reasons and ta == tb:
                result.equal_without_volatile[rel] = sorted(reasons)
            else:
                result.numerically_equal.append(rel)
        else:
            result.different[rel] = "bytes differ"
    return result
