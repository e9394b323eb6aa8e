"""``python -m bot schema``: the committed config.schema.json is the generated one, the shipped
config and the README's examples satisfy it, and each rule is checked by its own type's keys."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from bot.cli import main
from bot.commands.schema import SCHEMA_FILE, build_schema, render
from bot.config.env import protect_env_refs
from bot.rules import RULES
from bot.sources import SOURCES
from bot.yaml12 import load_yaml
from tests.test_readme import rule_examples

ROOT = Path(__file__).resolve().parents[1]
FIRST_LINE = f"# yaml-language-server: $schema=./{SCHEMA_FILE}"


def yaml_data(text: str) -> Any:
    """Parse config text as the loader does (YAML 1.2), ``${VAR}`` references unsubstituted
    (editors see them so: the schema accepts a reference wherever a value goes)."""
    protected, refs = protect_env_refs(text)
    data = load_yaml(protected).data

    def restore(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: restore(v) for k, v in value.items()}
        if isinstance(value, list):
            return [restore(v) for v in value]
        if isinstance(value, str):
            for placeholder, ref in refs.items():
                value = value.replace(placeholder, ref)
        return value

    return restore(data)


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((ROOT / SCHEMA_FILE).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def errors(validator: jsonschema.Draft202012Validator, data: Any) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(data)]


def test_committed_schema_is_the_generated_one(capsys: pytest.CaptureFixture[str]) -> None:
    committed = (ROOT / SCHEMA_FILE).read_text()
    assert committed == render(), "run: python -m bot schema > config.schema.json"
    assert main(["schema"]) == 0
    assert capsys.readouterr().out == committed


def test_config_yaml_names_the_schema_on_its_first_line() -> None:
    for path in (ROOT / "config.yaml", ROOT / "bot" / "default_config.yaml"):
        assert path.read_text().splitlines()[0] == FIRST_LINE, path


def test_shipped_config_satisfies_the_schema(validator: jsonschema.Draft202012Validator) -> None:
    data = yaml_data((ROOT / "config.yaml").read_text())
    assert errors(validator, data) == []


def test_every_readme_rule_example_satisfies_the_schema(
    validator: jsonschema.Draft202012Validator,
) -> None:
    head = yaml_data((ROOT / "config.yaml").read_text())
    for kind, block in rule_examples().items():
        data = {**head, "rules": yaml_data(block)}
        assert errors(validator, data) == [], kind


def test_rules_and_sources_are_a_union_discriminated_by_type() -> None:
    schema = build_schema()
    rules = schema["properties"]["rules"]["items"]
    assert set(rules["discriminator"]["mapping"]) == set(RULES.names())
    assert len(rules["oneOf"]) == len(RULES.names())
    sources = schema["properties"]["sources"]["additionalProperties"]
    assert set(sources["discriminator"]["mapping"]) == set(SOURCES.names())


def _shipped_with_rule(rule: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(yaml_data((ROOT / "config.yaml").read_text()))
    data["rules"] = [rule]
    return data


def test_a_rule_is_checked_against_its_own_types_keys(
    validator: jsonschema.Draft202012Validator,
) -> None:
    near = {"id": "n", "type": "near", "symbol": "RUT", "of": "record", "within": "1%"}
    assert errors(validator, _shipped_with_rule(near)) == []
    # `of` belongs to `near`, not to `cross`: a oneOf of loose models would let it through
    cross = {"id": "c", "type": "cross", "symbol": "RUT", "level": 2500, "of": "record"}
    assert errors(validator, _shipped_with_rule(cross))
    typo = {"id": "c", "type": "cross", "symbol": "RUT", "levl": 2500}
    assert errors(validator, _shipped_with_rule(typo))
    unknown = {"id": "u", "type": "crosss", "symbol": "RUT", "level": 2500}
    assert errors(validator, _shipped_with_rule(unknown))


@pytest.mark.parametrize(
    ("section", "key", "good", "bad"),
    [
        ("poll", "every", "5m", "soon"),
        ("sanity", "max_jump", "10%", "lots"),
        ("telegram", "timeout", 15, "15 seconds"),
        ("poll", "concurrency", "${POLL_CONCURRENCY}", "many"),
    ],
)
def test_values_are_described_as_users_write_them(
    validator: jsonschema.Draft202012Validator, section: str, key: str, good: Any, bad: Any
) -> None:
    data = yaml_data((ROOT / "config.yaml").read_text())
    data[section] = {**data.get(section, {}), key: good}
    assert errors(validator, data) == []
    data[section] = {**data[section], key: bad}
    assert errors(validator, data)


def test_top_level_typos_are_flagged_and_x_keys_are_not(
    validator: jsonschema.Draft202012Validator,
) -> None:
    data = yaml_data((ROOT / "config.yaml").read_text())
    assert errors(validator, {**data, "polll": {}})
    assert errors(validator, {**data, "x-anchors": {"a": 1}}) == []
