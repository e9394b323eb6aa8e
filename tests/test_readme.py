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
    for kind, block in rule_examples().items():
        text = head + "\nrules:\n" + block
        config = parse_config(text, f"README example of {kind}", {})
        assert [r.type for r in config.rules] == [kind]
