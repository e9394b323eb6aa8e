"""``run --demo``: the shipped rules fire against the simulated market, with no token and no
network."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import pytest

from bot.config import load_config
from bot.demo import run_demo
from bot.model import Alert
from bot.notify.base import DeliveryFailed
from bot.notify.console import ConsoleNotifier

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


# ---------------------------------------------------------------- a closed stdout, signals


def _demo_process(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    """``python -m bot run --demo`` with its scratch directory under ``tmp_path/tmp``."""
    scratch = tmp_path / "tmp"
    scratch.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEGRAM_")}
    env.pop("DATABASE_URL", None)
    env["TMPDIR"] = str(scratch)
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--demo", *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _collect(stream: IO[str]) -> list[str]:
    """Read ``stream`` to its end on a thread; the list fills as lines arrive."""
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(stream), daemon=True).start()
    return lines


def _scratch_left(tmp_path: Path) -> list[str]:
    return [p.name for p in (tmp_path / "tmp").iterdir() if p.name.startswith("bot-demo-")]


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_demo_piped_into_head_stops_quietly(tmp_path: Path) -> None:
    """``run --demo | head -3``: the reader closes the pipe after three lines; the demo ends
    with exit 0, nothing on stderr (no BrokenPipe traceback per alert), its scratch state gone."""
    process = _demo_process(tmp_path)
    try:
        assert process.stdout is not None and process.stderr is not None
        errors = _collect(process.stderr)
        head = [process.stdout.readline() for _ in range(3)]
        process.stdout.close()  # what `head -3` does after its third line
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert head[0].startswith("Demo:") and head[1].startswith("ALERT")
    log = "".join(errors)
    assert "Traceback" not in log and "Broken pipe" not in log
    assert log.strip() == ""
    assert _scratch_left(tmp_path) == []


@pytest.mark.slow
@pytest.mark.timeout(90)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_the_demo_exits_0_and_removes_the_scratch_state(
    tmp_path: Path, signum: signal.Signals
) -> None:
    process = _demo_process(tmp_path)
    try:
        assert process.stdout is not None and process.stderr is not None
        errors = _collect(process.stderr)
        line = process.stdout.readline()
        while line and not line.startswith("ALERT"):  # the demo's loop is running
            line = process.stdout.readline()
        assert _scratch_left(tmp_path), "the demo keeps its state in a scratch directory"
        process.send_signal(signum)
        rest = process.stdout.read()
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert "Demo stopped after" in rest
    assert "Traceback" not in "".join(errors)
    assert _scratch_left(tmp_path) == []


def test_console_notifier_reports_a_closed_stdout_as_a_failed_delivery() -> None:
    """The alert is not printed, so it is not delivered: a DeliveryFailed the sender retries,
    not an unexpected BrokenPipeError with a traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    with os.fdopen(write_end, "w") as stream:
        notifier = ConsoleNotifier(stream=stream)
        alert = Alert(
            id="a:1",
            rule_id="a",
            rule_type="cross",
            symbol="RUT",
            time=datetime(2025, 9, 18, tzinfo=UTC),
            value=1.0,
            text="x",
        )
        with pytest.raises(DeliveryFailed) as failed:
            asyncio.run(notifier.send("console", alert))
        assert not failed.value.permanent
        with contextlib.suppress(OSError):
            stream.close()
