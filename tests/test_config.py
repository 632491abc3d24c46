"""Config and sample-sheet validation: clear messages naming key/row/column and the rule."""

from __future__ import annotations

import pytest
import yaml

from cohortflow.config import (
    load_schema,
    read_sample_sheet,
    schema_keys_without_docs,
    validate_config,
)
from cohortflow.errors import ConfigError


@pytest.fixture
def schemas(repo):
    return repo / "workflow" / "schemas"


def test_every_key_has_description_and_default(schemas):
    for name in ("config.schema.yaml", "samples.schema.yaml"):
        assert schema_keys_without_docs(load_schema(schemas / name)) == [], name


def test_shipped_config_and_sheet_are_valid(repo, schemas):
    """The ten-minute demo (6 heads) and the full-size one (12), each with its own sheet."""
    for name, n in (("config.yaml", 6), ("demo-full.yaml", 12)):
        config = yaml.safe_load((repo / "config" / name).read_text())
        full = validate_config(config, schemas / "config.schema.yaml")
        assert full["ingest"]["target_role"] == "FLAIR"
        assert full["demo"]["n_subjects"] == n
        sheet = read_sample_sheet(repo / config["samples"], schemas / "samples.schema.yaml")
        assert len(sheet) == n


def test_defaults_fill_an_empty_config(schemas):
    full = validate_config({}, schemas / "config.schema.yaml")
    assert full["ingest"]["on_multiple"] == "error"
    assert full["pseudonymise"]["allow_demo_key"] is False
    assert full["demo"]["n_subjects"] == 12


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"ingest": {"on_multiple": "maybe"}}, ["'ingest.on_multiple'", "'enum'", "maybe"]),
        ({"demo": {"n_subjects": 1}}, ["'demo.n_subjects'", "'minimum'"]),
        ({"ingest": {"target_rol": "FLAIR"}}, ["'ingest'", "target_rol", "'additionalProperties'"]),
        ({"stages": {"ingest": "yes"}}, ["'stages.ingest'", "'type'"]),
    ],
)
def test_invalid_config_names_key_and_rule(schemas, config, expected):
    with pytest.raises(ConfigError) as err:
        validate_config(config, schemas / "config.schema.yaml")
    for text in expected:
        assert text in str(err.value)


def _sheet(tmp_path, text):
    path = tmp_path / "samples.tsv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("subject\tsource\tlabel\nS1\t/x\tmaybe\n", ["row 1", "'label'", "'enum'", "maybe"]),
        ("subject\tsource\nS1\t/x\nS 2\t/y\n", ["row 2", "'subject'", "'pattern'"]),
        ("subject\tsource\nS1\t\n", ["row 1", "'source'", "required"]),
        ("subject\tsource\tlable\nS1\t/x\tyes\n", ["column 'lable'", "additionalProperties"]),
        ("subject\tlabel\nS1\tyes\n", ["required column 'source'"]),
        ("subject\tsession\tsource\nS1\t01\t/x\nS1\t01\t/y\n", ["row 2", "more than once"]),
        ("subject\tsession\tsource\nS1\tses-1\t/x\n", ["'session'", "'pattern'"]),
        ("subject\tsource\n", ["no rows"]),
    ],
)
def test_invalid_sheet_names_row_column_and_rule(tmp_path, schemas, text, expected):
    with pytest.raises(ConfigError) as err:
        read_sample_sheet(_sheet(tmp_path, text), schemas / "samples.schema.yaml")
    for part in expected:
        assert part in str(err.value)


def test_sheet_defaults(tmp_path, schemas):
    sheet = read_sample_sheet(
        _sheet(tmp_path, "subject\tsource\nS1\t/x\n"), schemas / "samples.schema.yaml"
    )
    assert sheet.loc[0, "session"] == "01"
    assert sheet.loc[0, "label"] == ""


def test_missing_sheet(tmp_path, schemas):
    with pytest.raises(ConfigError, match="not found"):
        read_sample_sheet(tmp_path / "nope.tsv", schemas / "samples.schema.yaml")


def test_role_rule_defaults_live_in_the_schema(schemas):
    """The schema is the parameter reference: its defaults are the code's defaults."""
    from dataclasses import asdict

    from cohortflow.ingest.dicom_series import RoleRules

    full = validate_config({}, schemas / "config.schema.yaml")
    assert RoleRules.from_mapping(full["ingest"]["role_rules"]) == RoleRules()
    assert full["ingest"]["role_rules"] == asdict(RoleRules())


def test_bad_role_rule_is_caught_before_the_dag(schemas):
    with pytest.raises(ConfigError, match=r"ingest\.role_rules\.flair_min_ti_ms"):
        validate_config(
            {"ingest": {"role_rules": {"flair_min_ti_ms": -1}}}, schemas / "config.schema.yaml"
        )
