"""What every output's sidecar records about how it was made: software versions and the
SHA-256 of its inputs."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

from cohortflow import __version__
from cohortflow.io.atomic import sha256_file


def software_versions(*names: str) -> dict[str, str]:
    found = {"cohortflow": __version__}
    for name in names:
        found[name] = version(name)
    return found


def input_checksums(paths: dict[str, Path | str]) -> dict[str, dict[str, str]]:
    return {k: {"path": str(v), "sha256": sha256_file(v)} for k, v in paths.items()}
