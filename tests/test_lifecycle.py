"""Stopping ``run``: SIGTERM/SIGINT during start-up, a closed stdout, and a failing cycle logged
as one line (bot/lifecycle.py, the poll job's error handler)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.app import build_worker
from bot.config import parse_config
from bot.logs import CHATTY_LOGGERS, QUIET_LOGGERS, setup_logging
from bot.scheduler import POLL_JOB, build_scheduler
from tests.fakes.yahoo import YahooFake, chart_response
from tests.procs import BotProcess

ROOT = Path(__file__).resolve().parents[1]

CONFIG = """\
state: {{url: "sqlite:///{state}"}}
sources:
  yahoo: {{type: yahoo, base_url: {yahoo}, attempts: 1}}
symbols:
  RUT: {{source: yahoo, ticker: "^RUT", calendar: always}}
poll: {{every: 1s}}
rules:
  - {{id: rut-2500, type: cross, symbol: RUT, level: 2500}}
"""


def config_text(tmp_path: Path, yahoo: YahooFake) -> str:
    return CONFIG.format(state=tmp_path / "state.sqlite", yahoo=yahoo.base_url)


# ---------------------------------------------------------------- start-up signals, cycle errors


class SilentServer:
    """A loopback TCP server that accepts connections, reads, and never answers: a history
    source that hangs start-up until the request's timeout."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.connected = threading.Event()
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.sock.accept()
                self._conns.append(conn)
                self.connected.set()

    def close(self) -> None:
        for conn in self._conns:
            conn.close()
        self.sock.close()


HANGING_CONFIG = """\
state: {{url: "sqlite:///{state}"}}
sources:
  yahoo: {{type: yahoo, base_url: {url}, timeout: 60s, attempts: 1}}
symbols:
  RUT: {{source: yahoo, ticker: "^RUT", calendar: always}}
rules:
  - {{id: rut-record, type: record_close, symbol: RUT}}
"""


@pytest.mark.slow
@pytest.mark.timeout(90)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_start_up_exits_0_at_once(tmp_path: Path, signum: signal.Signals) -> None:
    """History loading hangs on a source that never answers (60 s timeout): SIGTERM/SIGINT
    during start-up ends the process with 0 within about 2 s, not after the request's timeout."""
    server = SilentServer()
    path = tmp_path / "config.yaml"
    path.write_text(HANGING_CONFIG.format(state=tmp_path / "state.sqlite", url=server.base_url))
    bot = BotProcess(path, token=None).start()
    try:
        assert server.connected.wait(30), "the bot never asked for history"
        assert bot.alive()
        assert bot.process is not None
        sent = time.monotonic()
        bot.process.send_signal(signum)
        code = bot.process.wait(timeout=15)
        elapsed = time.monotonic() - sent
    finally:
        bot.close()
        server.close()
    assert code == 0
    assert elapsed < 3.0, f"took {elapsed:.1f} s to stop"
    log = bot.log()
    assert "stopped during start-up" in log
    assert "Traceback" not in log


def test_a_full_disk_is_one_log_line_per_cycle(tmp_path: Path, yahoo_fake: YahooFake) -> None:
    """sqlite3 "database or disk is full" in a cycle: one ERROR line saying what failed and that
    it retries next cycle; the traceback only at DEBUG."""
    yahoo_fake.chart("^RUT", chart_response(price=2490.0, time=datetime.now(UTC)))
    config = parse_config(config_text(tmp_path, yahoo_fake), "c.yaml", {})
    worker = build_worker(config)
    info_log, debug_log = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    names = [*QUIET_LOGGERS, *CHATTY_LOGGERS]
    levels = {name: logging.getLogger(name).level for name in names}
    factory = logging.getLogRecordFactory()

    async def two_cycles() -> None:
        await worker.start()
        # A real full disk: the database may not grow by a page (SQLITE_FULL), and the free
        # space in its pages is used up.
        conn = worker.store._conn  # type: ignore[attr-defined]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count={pages}")
        with contextlib.suppress(Exception):
            for n in range(10_000):
                worker.store.set_value(f"filler-{n}", "x" * 200)
        scheduler = build_scheduler(worker)
        scheduler.start(paused=True)
        job = scheduler.get_job(POLL_JOB)
        try:
            setup_logging("INFO", stream=info_log)
            await job.func()
            setup_logging("DEBUG", stream=debug_log)
            await job.func()
        finally:
            scheduler.shutdown(wait=False)
            conn.execute("PRAGMA max_page_count=1073741823")
            await worker.stop()

    try:
        asyncio.run(two_cycles())
    finally:
        for handler in list(root.handlers):
            if handler not in saved[1]:
                root.removeHandler(handler)
        root.setLevel(saved[0])
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        logging.setLogRecordFactory(factory)
        logging.captureWarnings(False)
    info, debug = info_log.getvalue(), debug_log.getvalue()
    failures = [line for line in info.splitlines() if "poll cycle failed" in line]
    assert len(failures) == 1, info
    assert "database or disk is full" in failures[0] and "retrying next cycle" in failures[0]
    assert "ERROR" in failures[0]
    assert "Traceback" not in info
    assert "Traceback" in debug


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_run_with_its_stdout_closed_stops_quietly(tmp_path: Path, yahoo_fake: YahooFake) -> None:
    """Console mode (no token) with nobody reading stdout: the first alert finds the pipe closed;
    the worker stops cleanly with 0 (the alert stays queued) instead of a traceback per retry."""
    now = datetime.now(UTC)
    yahoo_fake.chart("^RUT", chart_response(price=2490.0, time=now))  # history, closes
    yahoo_fake.script(  # quotes: the first arms the rule, the second crosses 2,500
        YahooFake.chart_path("^RUT"),
        [
            chart_response(price=2490.0, time=now - timedelta(minutes=2)),
            chart_response(price=2510.0, time=now - timedelta(minutes=1)),
        ],
        query={"range": "1d"},
    )
    path = tmp_path / "config.yaml"
    path.write_text(config_text(tmp_path, yahoo_fake))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEGRAM_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--config", str(path)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()  # the reader is gone before the first alert
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True)
        reader.start()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    reader.join(timeout=5)
    log = "".join(lines)
    assert process.returncode == 0, log
    assert "stopping: <stdout> was closed" in log
    assert "Traceback" not in log
    assert "stopped" in log
