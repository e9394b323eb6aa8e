"""``healthcheck`` reads the health file ``run`` beats: fresh → 0, stale or missing → 1."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bot.cli import main
from bot.health import age, beat


def test_fresh_stale_and_missing_beats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "health"
    assert main(["healthcheck", "--file", str(path)]) == 1
    assert "has no beat" in capsys.readouterr().out
    beat(path)
    assert main(["healthcheck", "--file", str(path)]) == 0
    beat(path, now=time.time() - 120)
    assert main(["healthcheck", "--file", str(path), "--max-age", "90"]) == 1
    assert "last beat 120 s ago" in capsys.readouterr().out
    assert main(["healthcheck", "--file", str(path), "--max-age", "300"]) == 0


def test_the_file_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("BOT_HEALTH_FILE", raising=False)
    assert main(["healthcheck"]) == 1
    assert "no health file" in capsys.readouterr().out
    monkeypatch.setenv("BOT_HEALTH_FILE", str(tmp_path / "h"))
    beat()
    assert age(tmp_path / "h") is not None
    assert main(["healthcheck"]) == 0


def test_an_unwritable_health_file_never_raises(tmp_path: Path) -> None:
    beat(tmp_path / "missing-dir" / "health")  # logged at DEBUG, nothing else
