"""The tree stays easy to find one's way in: long modules say why, README's map is current."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: "Modules under ~400 lines where reasonable": past this, the docstring says why (``Length``).
MAX_LINES = 420


def test_long_modules_say_why_in_their_docstring() -> None:
    """Every ``bot/`` module over :data:`MAX_LINES` lines states a reason (``Length …``)."""
    unexplained = []
    for path in sorted((ROOT / "bot").rglob("*.py")):
        text = path.read_text("utf-8")
        if text.count("\n") <= MAX_LINES:
            continue
        doc = ast.get_docstring(ast.parse(text)) or ""
        if "Length" not in doc:
            unexplained.append(f"{path.relative_to(ROOT)} ({text.count(chr(10))} lines)")
    assert not unexplained, "long modules without a reason in their docstring: " + ", ".join(
        unexplained
    )


def test_readme_architecture_names_only_real_paths() -> None:
    """Every ``bot/…`` or ``tests/…`` path README's Architecture section names exists."""
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme.split("\n## Architecture\n", 1)[1].split("\n## ", 1)[0]
    paths = set(re.findall(r"`((?:bot|tests)/[^`<>\s]*)`", section))
    assert {"bot/config/", "bot/commands/", "bot/backtest.py"} <= paths
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, f"README's Architecture names paths that do not exist: {missing}"
