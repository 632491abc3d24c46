"""Running PLINK (1.9 and 2) from the package: one place for threads, memory, logs and errors.

Every call gets ``--threads`` and ``--memory`` (MiB) from the rule's ``threads`` and ``mem_mb``,
writes under an output prefix, and is recorded (engine, version, arguments, seconds) so that the
QC report can list every command as it was run. A failing PLINK run raises
:class:`PlinkError` quoting PLINK's whole error message (from its first ``Error`` line to the
end of its output, or the whole output when there is no such line) and the log's path.
PLINK's ``Warning:`` lines (a warning may span several lines, up to the next blank line or the
next message) are kept on the run, so that each step can show them in its notes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pandas as pd

from cohortflow.errors import CohortflowError

ENGINES = {"plink1.9": ("plink1.9", "plink"), "plink2": ("plink2",)}


class PlinkError(CohortflowError):
    """PLINK refused the input or failed; the message quotes PLINK's error in full."""

    def __init__(self, message: str, log: Path | None = None) -> None:
        super().__init__(message)
        self.log = log


def _messages(text: str, prefix: str) -> list[str]:
    """PLINK's messages starting with ``prefix`` (``Warning``/``Error``); PLINK wraps them at
    80 columns, so the lines that follow belong to the message until one ends a sentence."""
    found: list[str] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith(prefix):
            if current:
                found.append(" ".join(current))
            current = [line[len(prefix) :].lstrip(": ").strip()]
        elif current is not None and line.strip():
            current.append(line.strip())
        else:
            if current:
                found.append(" ".join(current))
            current = None
        if current and re.search(r"[.!)]$", current[-1]):
            found.append(" ".join(current))
            current = None
    if current:
        found.append(" ".join(current))
    return found


def error_text(output: str) -> str:
    """PLINK's error as it printed it: from the first ``Error`` line to the end of the output
    (the whole output when no line starts with ``Error``)."""
    lines = output.strip().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Error")), 0)
    return "\n".join(lines[start:]).strip() or "no output"


@cache
def executable(engine: str) -> str:
    for name in ENGINES[engine]:
        found = shutil.which(name)
        if found:
            return found
    raise PlinkError(
        f"{engine} not found on PATH (Debian: apt-get install {engine}; conda: envs/plink.yaml)"
    )


@cache
def version(engine: str) -> str:
    out = subprocess.run(
        [executable(engine), "--version"], capture_output=True, text=True, check=False
    )
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else "unknown"


@dataclass
class PlinkRun:
    engine: str
    version: str
    args: list[str]
    seconds: float
    log: Path
    warnings: list[str] = field(default_factory=list)

    def as_dict(self, *, log: bool = True) -> dict:
        """The run as recorded in step.json / summary.json (the log path as a string)."""
        record = {"engine": self.engine, "version": self.version, "args": self.args,
                  "seconds": self.seconds, "warnings": self.warnings}  # fmt: skip
        return record | ({"log": str(self.log)} if log else {})


@dataclass
class PlinkSession:
    """The PLINK runs of one job, with the resources the rule granted."""

    threads: int = 1
    memory_mb: int = 2000
    runs: list[PlinkRun] = field(default_factory=list)

    def run(self, engine: str, args: list[str], out: str | Path) -> PlinkRun:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        command = [
            executable(engine), *args, "--threads", str(self.threads),
            "--memory", str(self.memory_mb), "--out", str(out),
        ]  # fmt: skip
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        log = out.with_name(out.name + ".log")
        output = result.stdout + "\n" + result.stderr
        if result.returncode != 0:
            quoted = "\n".join(f"    {line}" for line in error_text(output).splitlines())
            raise PlinkError(
                f"{engine} {' '.join(args)} failed (exit {result.returncode}); log: {log}; "
                f"PLINK said:\n{quoted}",
                log,
            )
        record = PlinkRun(
            engine, version(engine), [*args], round(seconds, 3), log,
            warnings=_messages(output, "Warning"),
        )  # fmt: skip
        self.runs.append(record)
        return record


def read_table(path: str | Path) -> pd.DataFrame:
    """A PLINK whitespace-aligned report (e.g. .imiss, .het, .sexcheck) with typed columns;
    FID/IID/SNP stay strings."""
    table = pd.read_csv(path, sep=r"\s+", dtype=str, keep_default_na=False)
    table.columns = [c.lstrip("#") for c in table.columns]
    for column in table.columns:
        if column in ("FID", "IID", "SNP", "ID", "STATUS", "MISS_PHENO", "A1", "A2", "REF", "ALT"):
            continue
        converted = pd.to_numeric(table[column], errors="coerce")
        if converted.notna().sum() == (table[column] != "").sum():
            table[column] = converted
    return table


def read_fam(path: str | Path) -> pd.DataFrame:
    """A PLINK 1 ``.fam`` with every column as text."""
    return pd.read_csv(
        path, sep=r"\s+", header=None, dtype=str,
        names=["FID", "IID", "PAT", "MAT", "SEX", "PHENO"], keep_default_na=False,
    )  # fmt: skip


def read_bim(path: str | Path) -> pd.DataFrame:
    """A PLINK 1 ``.bim`` with every column as text."""
    return pd.read_csv(
        path, sep=r"\s+", header=None, dtype=str,
        names=["CHROM", "ID", "CM", "POS", "A1", "A2"], keep_default_na=False,
    )  # fmt: skip
