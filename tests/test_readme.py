"""The README's examples stay true: every rule example validates against the shipped config."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.config import parse_config
from bot.rules import RULES

ROOT = Path(__file__).resolve().parents[1]


def rule_examples() -> dict[str, str]:
    """``type`` → the YAML of its example under '## Rules' in README.md."""
    readme = (ROOT / "README.md").read_text()
    rules_section = readme.split("## Rules", 1)[1].split("\n## ", 1)[0]
    examples = {}
    for block in re.findall(r"```yaml\n(.*?)```", rules_section, flags=re.S):
        if block.lstrip().startswith("- id:"):
            examples[yaml.safe_load(block)[0]["type"]] = block
    return examples


def test_every_rule_type_has_a_readme_example() -> None:
    assert set(rule_examples()) == set(RULES.names())


def test_every_readme_rule_example_is_valid_config() -> None:
    shipped = (ROOT / "config.yaml").read_text()
    head = shipped.split("\nrules:\n", 1)[0]
    # symbols an example needs beyond the shipped ones: a ```yaml block starting "symbols:"
    readme = (ROOT / "README.md").read_text()
    rules_section = readme.split("## Rules", 1)[1].split("\n## ", 1)[0]
    for block in re.findall(r"```yaml\n(symbols:[^\n]*\n.*?)```", rules_section, flags=re.S):
        head = head.replace("\nsymbols:\n", "\nsymbols:\n" + block.split("\n", 1)[1], 1)
    for kind, block in rule_examples().items():
        text = head + "\nrules:\n" + block
        config = parse_config(text, f"README example of {kind}", {})
        assert [r.type for r in config.rules] == [kind]


def _fields(text: str) -> set[str]:
    return set(re.findall(r"`([a-z_]+)`", text))


def test_readme_lists_every_template_field() -> None:
    """Each rule type's 'Template fields:' sentence names exactly the fields it provides,
    and the options table names the fields every rule has."""
    from bot.config import RuleParams

    readme = (ROOT / "README.md").read_text()
    rules_section = readme.split("## Rules", 1)[1].split("\n## ", 1)[0]
    common_row = next(
        line for line in rules_section.splitlines() if line.startswith("| `template`")
    )
    common = common_row.split("Fields every rule has:", 1)[1].split(";", 1)[0]
    assert _fields(common) == set(RuleParams.common_template_fields)
    for kind in RULES.names():
        part = rules_section.split(f"### `{kind}`", 1)[1].split("\n### ", 1)[0]
        listed = part.split("Template fields:", 1)[1].split(".\n", 1)[0].split(". ", 1)[0]
        assert _fields(listed) == set(RULES.get(kind).template_fields), kind


def test_config_reference_anchor_example_is_valid_config() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Config reference", 1)[1].split("\n### ", 1)[0]
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", section, flags=re.S) if "<<:" in b]
    head = (ROOT / "config.yaml").read_text().split("\nrules:\n", 1)[0]
    config = parse_config(head + "\n" + block, "README anchor example", {})
    levels = {r.id: r.model_dump() for r in config.rules}
    assert levels["rut-2600"]["direction"] == "both" and levels["rut-2500"]["on"] == "close"
