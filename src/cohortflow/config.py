"""Config and sample-sheet validation against the JSON schemas in ``workflow/schemas``.

Runs before the DAG is built. Every problem is reported at once, each naming the config key
(or the sheet's row and column), the offending value, and the schema rule it breaks, e.g.

    config key 'ingest.on_multiple': 'maybe' is not one of ['error', 'largest', 'last']
    (schema rule 'enum')

After our own check passes, ``snakemake.utils.validate`` runs on the same schema, so the
workflow is validated exactly as Snakemake documents it, and fills in the defaults.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import yaml

from cohortflow.errors import ConfigError

SCHEMA_DIR_NAME = "workflow/schemas"


def load_schema(path: Path | str) -> dict:
    with Path(path).open() as fh:
        return yaml.safe_load(fh)


def _key(path: Any) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _describe(error: jsonschema.ValidationError) -> str:
    rule = error.validator
    if rule == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        return f"{error.message} (schema rule 'additionalProperties'; known keys: {allowed})"
    return f"{error.message} (schema rule '{rule}')"


def apply_defaults(schema: dict, instance: dict) -> dict:
    """Fill in each missing key's schema default, recursively into objects."""
    for key, sub in schema.get("properties", {}).items():
        if key not in instance and "default" in sub and sub["default"] is not None:
            instance[key] = copy.deepcopy(sub["default"])
        if sub.get("type") == "object" and isinstance(instance.get(key), dict):
            apply_defaults(sub, instance[key])
    return instance


def validate_config(config: dict, schema_path: Path | str) -> dict:
    """Validate ``config`` and return it with defaults filled in (the input is not changed)."""
    schema = load_schema(schema_path)
    config = apply_defaults(schema, copy.deepcopy(dict(config)))
    validator = jsonschema.Draft202012Validator(schema)
    problems = [
        f"config key '{_key(e.absolute_path)}': {_describe(e)}"
        for e in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.path)))
    ]
    if problems:
        raise ConfigError(
            f"invalid config (checked against {schema_path}):\n  " + "\n  ".join(problems)
        )
    _snakemake_validate(config, schema_path)
    return config


def _snakemake_validate(data: Any, schema_path: Path | str) -> None:
    from snakemake.utils import validate

    try:
        validate(data, str(schema_path), set_default=True)
    except Exception as exc:  # our check passed, so this is a disagreement worth showing
        raise ConfigError(f"snakemake.utils.validate against {schema_path}: {exc}") from exc


def read_sample_sheet(path: Path | str, schema_path: Path | str) -> pd.DataFrame:
    """Read the TSV sheet with explicit string dtypes, validate each row, fill defaults."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"sample sheet {path}: a folder, not a TSV file (config key 'samples')")
    if not path.is_file():
        raise ConfigError(f"sample sheet {path}: file not found (config key 'samples')")
    schema = load_schema(schema_path)
    try:
        if path.stat().st_size == 0:
            raise ConfigError(
                f"sample sheet {path}: the file is empty (0 bytes); it needs a header line "
                "(subject, session, source, ...) and one row per subject"
            )
        sheet = pd.read_csv(
            path, sep="\t", dtype=str, keep_default_na=False, comment=None, skip_blank_lines=True
        )
    except pd.errors.EmptyDataError:
        raise ConfigError(
            f"sample sheet {path}: no header line (the file holds only blank lines)"
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ConfigError(f"sample sheet {path}: not a readable TSV file ({exc})") from exc
    except OSError as exc:
        raise ConfigError(
            f"sample sheet {path}: cannot be read ({exc.strerror or exc}; config key 'samples')"
        ) from None
    sheet.columns = [c.strip() for c in sheet.columns]
    problems = []
    known = set(schema["properties"])
    for column in sheet.columns:
        if column not in known:
            problems.append(
                f"column '{column}' is not a sample-sheet column (schema rule "
                f"'additionalProperties'; known columns: {sorted(known)})"
            )
    for column in schema.get("required", []):
        if column not in sheet.columns:
            problems.append(f"required column '{column}' is missing (schema rule 'required')")
    if sheet.empty:
        problems.append("the sheet has no rows")
    if problems:
        raise ConfigError(f"sample sheet {path}:\n  " + "\n  ".join(problems))

    for column, sub in schema["properties"].items():
        if column not in sheet.columns and sub.get("default") is not None:
            sheet[column] = sub["default"]
    row_schema = {k: v for k, v in schema.items() if k != "additionalProperties"}
    validator = jsonschema.Draft202012Validator(row_schema)
    for row_number, record in enumerate(sheet.to_dict(orient="records"), start=1):
        # An empty cell means "not given": the column's default applies.
        clean = {k: v.strip() for k, v in record.items()}
        for column, sub in schema["properties"].items():
            if clean.get(column, "") == "" and sub.get("default") is not None:
                clean[column] = sub["default"]
        for column in schema.get("required", []):
            if clean.get(column, "") == "":
                problems.append(
                    f"row {row_number} (line {row_number + 1}), column '{column}': empty, but "
                    "the column is required (schema rule 'required')"
                )
        for error in validator.iter_errors({k: v for k, v in clean.items() if v != ""}):
            column = _key(error.absolute_path)
            who = f"subject '{clean.get('subject', '')}', " if clean.get("subject") else ""
            problems.append(
                f"row {row_number} (line {row_number + 1}, {who}column '{column}'): "
                f"{_describe(error)}"
            )
        for column, value in clean.items():
            sheet.at[row_number - 1, column] = value
    duplicated = sheet.duplicated(subset=["subject", "session"], keep=False)
    for row_number in (sheet.index[duplicated] + 1).tolist():
        problems.append(
            f"row {row_number} (line {row_number + 1}): subject "
            f"'{sheet.at[row_number - 1, 'subject']}' session "
            f"'{sheet.at[row_number - 1, 'session']}' appears more than once "
            "(each subject/session pair must be unique)"
        )
    if problems:
        raise ConfigError(
            f"sample sheet {path} (checked against {schema_path}):\n  " + "\n  ".join(problems)
        )
    _snakemake_validate(sheet, schema_path)
    return sheet


def schema_keys_without_docs(schema: dict, prefix: str = "") -> list[str]:
    """Keys lacking a ``description`` or a ``default`` (a test keeps this list empty)."""
    missing = []
    for key, sub in schema.get("properties", {}).items():
        name = f"{prefix}{key}"
        if "description" not in sub or "default" not in sub:
            missing.append(name)
        if sub.get("type") == "object":
            missing.extend(schema_keys_without_docs(sub, prefix=f"{name}."))
    return missing


# --------------------------------------------------------------------------- cohort inputs
#: Config keys that name a cohort's data. A user's own config (``--configfile``) takes them from
#: itself only, never from the demo config (config/config.yaml) it is merged over.
INPUT_KEYS: tuple[tuple[str, ...], ...] = (
    ("samples",),
    ("demo",),
    ("genotypes", "input"),
    ("genotypes", "phenotype_file"),
    ("genotypes", "phenotype"),
    ("genotypes", "covariates"),
)
IMAGING_STAGES = ("ingest", "preprocess", "wm_clusters", "classify", "deface", "deface_qa")
GENOTYPE_STAGES = ("genotype_qc", "association")


def drop_inherited_inputs(config: dict, user_config: dict | None) -> list[str]:
    """Remove (in place) each input key of :data:`INPUT_KEYS` that ``user_config`` (what the
    command line gave: config files and --config) does not set; returns the dropped keys.

    ``None``: no config file on the command line, so the demo config is the run's config.
    """
    if user_config is None:
        return []
    dropped = []
    for path in INPUT_KEYS:
        given, merged = user_config, config
        for part in path[:-1]:
            given = given.get(part, {}) if isinstance(given, dict) else {}
            merged = merged.get(part, {}) if isinstance(merged, dict) else {}
        if isinstance(merged, dict) and path[-1] in merged and path[-1] not in given:
            del merged[path[-1]]
            dropped.append(".".join(path))
    return dropped


def empty_sample_sheet() -> pd.DataFrame:
    """The cohort of a run without imaging: no rows."""
    return pd.DataFrame(columns=["subject", "session", "source"], dtype=str)


def needs_sample_sheet(config: dict) -> bool:
    return any(config["stages"][stage] for stage in IMAGING_STAGES)


def needs_pseudonym_key(config: dict) -> bool:
    """Imaging pseudonymises subjects; the FHIR genotype bundles pseudonymise sample IDs."""
    stages = config["stages"]
    return needs_sample_sheet(config) or (stages["fhir"] and stages["genotype_qc"])


def check_stage_inputs(config: dict) -> None:
    """A stage that is on needs its inputs: a ConfigError naming the key and the stage."""
    stages = config["stages"]
    imaging = [s for s in IMAGING_STAGES if stages[s]]
    if imaging and not config.get("samples"):
        raise ConfigError(
            f"stages.{imaging[0]} is on but no sample sheet is named: set config key 'samples' "
            f"(a TSV, see workflow/schemas/samples.schema.yaml), or switch the imaging stages "
            f"off ({', '.join(f'stages.{s}: false' for s in imaging)})"
        )
    genotype = [s for s in GENOTYPE_STAGES if stages[s]]
    if genotype and not config["genotypes"].get("input"):
        raise ConfigError(
            f"stages.{genotype[0]} is on but no genotypes are named: set config key "
            f"'genotypes.input' (a PLINK fileset prefix or VCF/BCF), or switch the genotype "
            f"stages off ({', '.join(f'stages.{s}: false' for s in genotype)})"
        )


def describe_inputs(config: dict, n_rows: int) -> str:
    """One line for the start of a run: which cohort inputs it uses."""
    parts = []
    if needs_sample_sheet(config):
        parts.append(f"sample sheet {config['samples']} ({n_rows} rows)")
    if any(config["stages"][s] for s in GENOTYPE_STAGES):
        genotypes = config["genotypes"]
        parts.append(f"genotypes {genotypes['input']}")
        if genotypes.get("phenotype_file"):
            parts.append(f"phenotypes {genotypes['phenotype_file']}")
    if config["demo"]["genotypes"] or any("resources/demo" in part for part in parts):
        parts.append("the built-in demo cohort (generated)")
    return "cohort inputs: " + ("; ".join(parts) if parts else "none (no stage needs one)")
