"""Atomic outputs: a file or folder appears complete or not at all.

Each writer works in a hidden temporary sibling of the target (same file system) and renames
it into place only when everything succeeded, so an error or a kill never leaves a partial
output that Snakemake or a person could mistake for a result.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_output_file(target: Path | str) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; move it onto ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Keep the full suffix (e.g. ".nii.gz") so writers that infer the format from it work.
    suffix = "".join(target.suffixes)
    # A job killed outright (SIGKILL, node failure) cannot clean up; its leftovers go now.
    for stale in target.parent.glob(f".{glob.escape(target.name)}.*.tmp{glob.escape(suffix)}"):
        stale.unlink(missing_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=f".tmp{suffix}", dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates 0600 files; outputs get the usual permissions under the umask.
        tmp.chmod(0o666 & ~_umask())
        tmp.replace(target)
    except OSError as exc:
        _name_target(exc, target)
        raise
    finally:
        tmp.unlink(missing_ok=True)


def _name_target(exc: OSError, target: Path) -> None:
    """A write that fails (disk full) often names no file: name the output being written."""
    if exc.filename is None:
        exc.filename = str(target)


@contextmanager
def atomic_output_dir(target: Path | str) -> Iterator[Path]:
    """Yield a temporary folder next to ``target``; it replaces ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # A job killed outright (SIGKILL, node failure) cannot clean up; its leftovers go now.
    for stale in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        tmp.chmod(0o777 & ~_umask())
        if target.exists():
            shutil.rmtree(target)
        tmp.replace(target)
    except OSError as exc:
        _name_target(exc, target)
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_json(target: Path | str, data: Any) -> None:
    """Write JSON deterministically (sorted keys, fixed indent, trailing newline), atomically."""
    with atomic_output_file(target) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def write_text(target: Path | str, text: str) -> None:
    with atomic_output_file(target) as tmp:
        tmp.write_text(text)


def sha256_file(path: Path | str, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def write_tsv_gz(table: Any, target: Path | str, **to_csv: Any) -> None:
    """A pandas table as gzipped TSV, atomically, with the same bytes on every run: the gzip
    header carries neither a time stamp nor the (temporary) file name."""
    with (
        atomic_output_file(target) as tmp,
        tmp.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as packed,
        io.TextIOWrapper(packed, encoding="utf-8", newline="") as text,
    ):
        table.to_csv(text, sep="\t", **to_csv)


def concatenate_tables(sources: list[Path | str], target: Path | str) -> int:
    """Concatenate TSV files that share one header line into ``target``, byte for byte (no
    re-parsing, so every value keeps its exact text). Returns the number of data rows."""
    if not sources:
        raise ValueError("no tables to concatenate")
    header, rows = None, []
    for source in sources:
        lines = Path(source).read_text().splitlines(keepends=True)
        if not lines:
            raise ValueError(f"{source}: empty table (no header line)")
        if header is None:
            header = lines[0]
        elif lines[0] != header:
            raise ValueError(f"{source}: header differs from {sources[0]}'s")
        rows += [line if line.endswith("\n") else line + "\n" for line in lines[1:]]
    write_text(target, header + "".join(rows))
    return len(rows)
