"""The command line's own options: ``--version`` and the ``index-alert-bot`` console script."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bot import __version__
from bot.cli import CONSOLE_SCRIPT, main

ROOT = Path(__file__).resolve().parents[1]


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip().endswith(f" {project['version']}")
    assert __version__ == project["version"]  # the two places that name it agree


def test_help_names_the_console_script(capsys: pytest.CaptureFixture[str]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    assert project["scripts"][CONSOLE_SCRIPT] == "bot.cli:main"
    with pytest.raises(SystemExit):
        main(["--help"])
    assert f"`{CONSOLE_SCRIPT}`" in capsys.readouterr().out


def test_python_m_bot_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"python -m bot {__version__}"
