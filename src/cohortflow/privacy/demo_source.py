"""The public demo key may pseudonymise the generated demo's own files, and nothing else.

Its pseudonyms protect nothing (anyone can recompute them), so a real folder that reaches the
demo tree through a link, or real files copied into it, must never be processed with it. Two
checks, both on resolved paths:

* when the workflow starts (:func:`check_demo_rows`): every source must resolve, links
  followed, to ``<working folder>/resources/demo/mri/<demo subject>/raw``;
* inside the job, before a byte is read (:func:`verify_demo_source`): the source holds no link
  and exactly the files of the manifest the demo generator wrote beside it
  (``truth/source.sha256``), with equal SHA-256 checksums.
"""

from __future__ import annotations

import os
from pathlib import Path

from cohortflow.errors import ConfigError
from cohortflow.io.atomic import sha256_file

SOURCE_MANIFEST = "source.sha256"
DEMO_MRI = Path("resources") / "demo" / "mri"
_REFUSED = (
    "the public demo pseudonymisation key may only be used for the generated demo's own files"
)
_HOW = (
    "; set COHORTFLOW_PSEUDONYM_KEY or COHORTFLOW_PSEUDONYM_KEY_FILE "
    "(config key pseudonymise.allow_demo_key)"
)


def write_source_manifest(raw: Path, manifest: Path) -> None:
    """``sha256  relative/path`` of every file under ``raw`` (the demo generator's record)."""
    lines = [
        f"{sha256_file(path)}  {path.relative_to(raw).as_posix()}\n"
        for path in sorted(p for p in raw.rglob("*") if p.is_file())
    ]
    manifest.write_text("".join(lines))


def check_demo_rows(rows: list[tuple[int, str, str | None]], workdir: Path) -> None:
    """(sheet row, source, demo subject or None) of every row: refuse any whose source is not in
    the demo tree of this working folder, or reaches it through a link."""
    real_workdir = Path(os.path.realpath(workdir))
    for number, source, demo_subject in rows:
        if demo_subject is None:
            raise ConfigError(
                f"{_REFUSED}, but sample sheet row {number} has a source outside "
                f"resources/demo/mri{_HOW}"
            )
        expected = real_workdir / os.path.normpath(source)
        if Path(os.path.realpath(Path(workdir) / source)) != expected:
            raise ConfigError(
                f"{_REFUSED}, but sample sheet row {number} has a source reached through a "
                f"link{_HOW}"
            )


#: The empty file Snakemake puts into every directory output when its job ends.
SNAKEMAKE_MARKER = ".snakemake_timestamp"


def verify_demo_source(source: Path) -> None:
    """Refuse a demo source (``resources/demo/mri/<id>/raw[/...]``, relative to the working
    folder) that is reached through a link, or whose raw folder holds a link or any file not in
    the demo's manifest, or a file whose checksum differs from it (ConfigError naming the file
    relative to the raw folder)."""
    parts = Path(os.path.normpath(source)).parts
    if len(parts) < 5 or Path(*parts[:3]) != DEMO_MRI or parts[4] != "raw":
        raise ConfigError(f"{_REFUSED}: the source is outside resources/demo/mri{_HOW}")
    workdir = Path(os.path.realpath(Path.cwd()))
    raw = Path(*parts[:5])
    if Path(os.path.realpath(source)) != workdir.joinpath(*parts):
        raise ConfigError(f"{_REFUSED}: the source is reached through a link{_HOW}")
    manifest = workdir / raw.parent / "truth" / SOURCE_MANIFEST
    try:
        expected = dict(
            reversed(line.split("  ", 1)) for line in manifest.read_text().splitlines() if line
        )
    except OSError:
        raise ConfigError(
            f"{_REFUSED}: no demo manifest (truth/{SOURCE_MANIFEST}) beside the source; "
            f"regenerate the demo{_HOW}"
        ) from None
    found: dict[str, Path] = {}
    for path in sorted((workdir / raw).rglob("*")):
        rel = path.relative_to(workdir / raw).as_posix()
        if path.is_symlink():
            raise ConfigError(f"{_REFUSED}: <demo raw>/{rel} is a link{_HOW}")
        if rel == SNAKEMAKE_MARKER and path.is_file() and path.stat().st_size == 0:
            continue  # Snakemake's empty marker of a directory output (the raw folder)
        if path.is_file():
            found[rel] = path
    extra = sorted(set(found) - set(expected))
    missing = sorted(set(expected) - set(found))
    if extra or missing:
        what = (
            f"<demo raw>/{extra[0]} is not a demo file"
            if extra
            else f"<demo raw>/{missing[0]} is missing"
        )
        raise ConfigError(f"{_REFUSED}: {what}{_HOW}")
    for rel, path in found.items():
        if sha256_file(path) != expected[rel]:
            raise ConfigError(f"{_REFUSED}: <demo raw>/{rel} differs from the demo's file{_HOW}")
