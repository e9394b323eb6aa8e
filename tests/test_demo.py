"""``run --demo``: the shipped rules fire against the simulated market, with no token and no
network."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.config import load_config
from bot.demo import run_demo

ROOT = Path(__file__).resolve().parents[1]


def test_demo_reaches_the_record_and_2500(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    config = load_config(ROOT / "config.yaml", environ={})
    assert asyncio.run(run_demo(config, days=12, pause=0)) == 0
    alerts = [line for line in capsys.readouterr().out.splitlines() if line.startswith("ALERT")]
    fired = {line.split("]")[0].removeprefix("ALERT [") for line in alerts}
    assert {"rut-record", "rut-2500-close", "rty-2500", "fed-rate", "daily-digest"} <= fired
    assert not (ROOT / "bot-state.sqlite").exists()  # the demo never touches the real store
