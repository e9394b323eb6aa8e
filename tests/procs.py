"""Helpers for tests that run the bot as real processes (``python -m bot run``) and kill them.

A plain module (pytest only auto-loads ``conftest.py``)::

    bot = BotProcess(config_path).start()
    bot.wait_for("worker .* started")       # a line on its stderr (regex), with a timeout
    bot.kill()                              # SIGKILL, reaped
    assert bot.terminate() == 0             # SIGTERM: a clean stop exits 0

plus :class:`SendGate`, which watches the fake Telegram server: how many requests are being
answered right now, and a way to hold one request at the server until the test has killed the
process that sent it.

Nothing here waits for the wall clock to pass: every wait is for an event (a log line, a request
reaching a fake server, a state in the store), polled every 20 ms, and its timeout only bounds
how long a broken bot can hang the test. The one exception is :meth:`SendGate.wait_idle`'s short
quiet period, explained there.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.fakes.telegram import FAKE_TOKEN, FakeTelegram

ROOT = Path(__file__).resolve().parents[1]


def bot_env(token: str | None = FAKE_TOKEN) -> dict[str, str]:
    """The test process's environment with only the fake Telegram token set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEGRAM_")}
    if token:
        env["TELEGRAM_BOT_TOKEN"] = token
    return env


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` every 20 ms until it holds; fail the test after ``timeout`` seconds.

    Waiting for *another process* to reach a state (not for the wall clock to pass): the timeout
    only bounds how long a broken bot can hang the test.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


class BotProcess:
    """``python -m bot run --config CONFIG [args]`` with its stderr collected line by line."""

    def __init__(self, config: Path, *args: str, token: str | None = FAKE_TOKEN) -> None:
        self.config = config
        self.args = args
        self.token = token
        self.process: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str] = queue.Queue()
        self._seen: list[str] = []
        self._reader: threading.Thread | None = None

    def start(self) -> BotProcess:
        """Spawn the process (returns at once; use :meth:`wait_for` to see it get going)."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--config", str(self.config), *self.args],
            cwd=ROOT,
            env=bot_env(self.token),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        stream = self.process.stderr
        assert stream is not None
        self._reader = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._reader.start()
        return self

    def _read(self, stream: Any) -> None:
        for line in stream:
            self._lines.put(line)

    @property
    def pid(self) -> int:
        assert self.process is not None, "start() first"
        return self.process.pid

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.process is not None and self.process.poll() is None

    def lines(self) -> list[str]:
        """Every stderr line received so far."""
        while True:
            try:
                self._seen.append(self._lines.get_nowait())
            except queue.Empty:
                return list(self._seen)

    def log(self) -> str:
        """Stderr so far as one text (after the process ended: all of it)."""
        if self._reader is not None and not self.alive():
            self._reader.join(timeout=5)
        return "".join(self.lines())

    def wait_for(self, pattern: str, timeout: float = 30.0, since: int = 0) -> re.Match[str]:
        """The first stderr line matching ``pattern`` (a regex), waiting up to ``timeout`` s.

        ``since``: skip the first ``since`` lines (``len(bot.lines())`` taken earlier), to wait
        for a line logged *after* some moment rather than any time since the start."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        checked = since
        while True:
            lines = self.lines()
            for line in lines[checked:]:
                match = regex.search(line)
                if match:
                    return match
            checked = len(lines)
            if not self.alive() and self._lines.empty():
                raise AssertionError(
                    f"bot exited ({self.process and self.process.returncode}) before logging "
                    f"{pattern!r}:\n{self.log()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no line matching {pattern!r} in {timeout:g} s:\n{self.log()}"
                )
            time.sleep(0.02)

    def worker_id(self, timeout: float = 30.0) -> str:
        """The id the worker gave itself (each process gets a new one), once it has started."""
        return self.wait_for(r"worker (\S+) started", timeout).group(1)

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed; reaped before returning."""
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait for the exit code (the bot stops cleanly with 0)."""
        assert self.process is not None
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def close(self) -> None:
        """Make sure the process is gone (test teardown)."""
        if self.alive():
            self.kill()


class SendGate:
    """Watches a :class:`FakeTelegram`: counts requests being answered, and can hold one at the
    server (before it is answered) so the test can kill the sender mid-send.

    ``hold_calls``: 1-based numbers of the sendMessage requests to hold. A held request waits in
    the server until :meth:`release`; after that Telegram accepts it as usual (the chat gets the
    message) even though the process that sent it is dead and never hears the answer — the
    worst moment to crash: delivered, but not recorded as delivered. (Script a failure on the
    fake before releasing to have the held send refused instead.)

    ``hold_get_me``: hold the next ``getMe`` — the notifier's start, the last step of a bot
    process's start-up — to kill a process that has opened its store but not polled yet.
    :meth:`wait_held` then returns ``"getMe"``.
    """

    def __init__(
        self, fake: FakeTelegram, hold_calls: set[int] | None = None, hold_get_me: bool = False
    ) -> None:
        self.fake = fake
        self.hold_calls = set(hold_calls or ())
        self.hold_get_me = hold_get_me
        self.received = 0  # sendMessage requests that reached the server
        self.in_flight = 0  # requests (any method) received and not answered yet
        self.held: queue.Queue[str] = queue.Queue()  # texts of requests now held
        self.held_chat: str | None = None  # chat_id of the request held last (as sent)
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._handle = fake.handle
        fake.handle = self._wrapped  # type: ignore[method-assign]  # the handler calls this

    def _wrapped(self, path: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        send = path.endswith("/sendMessage")
        if path.lower().endswith("/getupdates"):
            # a long poll for commands (the cockpit) waits by design: not a request in flight
            return self._handle(path, params)
        with self._lock:
            self.in_flight += 1
            if send:
                self.received += 1
                hold = self.received in self.hold_calls
            else:
                hold = self.hold_get_me and path.lower().endswith("/getme")
                self.hold_get_me = self.hold_get_me and not hold  # the next one only
        try:
            if hold:
                self._release.clear()
                if send:
                    self.held_chat = str(params.get("chat_id"))
                self.held.put(str(params.get("text")) if send else "getMe")
                self._release.wait(timeout=30)
            return self._handle(path, params)
        finally:
            with self._lock:
                self.in_flight -= 1

    def wait_held(self, timeout: float = 30.0) -> str:
        """The text of the next held request, once it is being held."""
        try:
            return self.held.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no request was held within {timeout:g} s") from None

    def release(self) -> None:
        """Let the held request be answered."""
        self._release.set()

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Until no request is being answered (a dead sender's last request included), stably
        for 0.2 s.

        The quiet period is the one real-time wait here, and deliberate: bytes a killed process
        wrote just before dying can still be on their way into the server, and no event tells
        the test they are not. The crash tests kill at points where no request but the held one
        can be in flight, so this only guards against a kill point that is not what it claims."""
        stable_since: float | None = None
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            if self.in_flight == 0:
                stable_since = stable_since or now
                if now - stable_since >= 0.2:
                    return
            else:
                stable_since = None
            if now > deadline:
                raise AssertionError(f"fake Telegram still answering after {timeout:g} s")
            time.sleep(0.02)
