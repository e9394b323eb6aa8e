"""requirements.txt (the deploy lock) pins exactly what the tests run with, and every runtime
dependency pyproject.toml names; .python-version names a Python pyproject allows."""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from pathlib import Path
from types import ModuleType

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]


def lock_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "lock_requirements", ROOT / "scripts" / "lock_requirements.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pinned() -> dict[str, str]:
    """requirements.txt as canonical name → version (every line must be ``name==version``)."""
    tool = lock_tool()
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        specs = list(requirement.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"not an exact pin: {line}"
        pins[tool.canonical(requirement.name)] = specs[0].version
    return pins


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_pyproject_dependency_is_pinned_within_its_range() -> None:
    tool = lock_tool()
    pins = pinned()
    for text in pyproject()["project"]["dependencies"]:
        requirement = Requirement(text)
        name = tool.canonical(requirement.name)
        assert name in pins, f"{name} (pyproject.toml) is not in requirements.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.txt pins {name}=={pins[name]}, outside pyproject's {requirement}"
        )


def test_the_lock_is_what_the_tests_run_with() -> None:
    """Same names, same versions as the runtime closure installed in this environment.
    Regenerate with: python scripts/lock_requirements.py > requirements.txt"""
    assert pinned() == lock_tool().closure()


def test_the_lock_file_is_the_generated_one() -> None:
    assert (ROOT / "requirements.txt").read_text() == lock_tool().render()


def test_python_version_file_is_allowed_by_pyproject_and_is_this_python() -> None:
    wanted = (ROOT / ".python-version").read_text().strip()
    assert SpecifierSet(pyproject()["project"]["requires-python"]).contains(wanted + ".0")
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == wanted
