"""Entry points of a stage package, imported when first used.

A stage's ``__init__`` names its public entry points (what the workflow's script shims call);
importing them eagerly would load torch or ANTs whenever the workflow imports one small module
of the package at start-up. ``__getattr__`` (PEP 562) imports each on first access.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable


def entry_points(package: str, names: dict[str, str]) -> tuple[Callable[[str], object], list[str]]:
    """``(__getattr__, __all__)`` for ``package``; ``names``: entry point -> its module."""

    def __getattr__(name: str) -> object:  # noqa: N807 (the module attribute hook)
        if name in names:
            return getattr(importlib.import_module(names[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__, sorted(names)
