"""Exchange sessions computed in a short-lived child process, for the live worker.

``pandas_market_calendars`` stays the authority on sessions, but importing it (and pandas)
costs the worker ~55 MB resident and ~0.2 s for a few years of sessions it could read from a
list. So ``run`` calls :func:`use_child_process` right after reading the config: a child

    python -m bot.calendar_child LO_YEAR HI_YEAR NAME [NAME ...]

starts at once, in the background (while the worker builds its sources, opens its store...),
and prints the sessions of those calendars and years as one JSON object::

    {"format": 1, "lo": 2025, "hi": 2027,
     "calendars": {"XNYS": [["2025-01-02", open, close, break_start, break_end], ...]}}

(times in seconds since the epoch, ``null`` for no break). The first schedule load of
:class:`bot.calendars.ExchangeCalendar` waits for it; years outside that span (a worker
running into a new year, a config reload naming another calendar) get a child of their own.

A child that exits non-zero, prints anything else, or gives no answer within
:data:`TIMEOUT` seconds costs one WARNING line: its calendars load in this process instead,
as do all later loads (pandas is imported then anyway), so nothing is lost.
"""

from __future__ import annotations

import atexit
import gc
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.calendars import CALENDARS, ExchangeCalendar, Session, get_calendar, set_session_source

log = logging.getLogger(__name__)

#: Version of the printed format; the parent refuses any other.
FORMAT = 1
#: Seconds from spawn a child may take before it is killed (import and compute: ~0.5 s).
TIMEOUT = 30.0
#: How to run the child, before its arguments (tests point it at a stand-in).
COMMAND: tuple[str, ...] = (sys.executable, "-m", "bot.calendar_child")
# Years loaded around now at start-up: a year back and ahead covers start-up's questions
# (history, the current session, bot.calendars' ±_MARGIN) and a year of running.
_SPAN = timedelta(days=366)


def _seconds(moment: datetime | None) -> float | int | None:
    if moment is None:
        return None
    stamp = moment.timestamp()
    return int(stamp) if stamp.is_integer() else stamp


def encode(lo_year: int, hi_year: int, sessions: dict[str, list[Session]]) -> str:
    """The child's output: ``sessions`` per calendar name, for years ``lo_year`` .. ``hi_year``."""
    calendars = {
        name: [
            [
                s.date.isoformat(),
                _seconds(s.open),
                _seconds(s.close),
                _seconds(s.break_start),
                _seconds(s.break_end),
            ]
            for s in rows
        ]
        for name, rows in sessions.items()
    }
    payload = {"format": FORMAT, "lo": lo_year, "hi": hi_year, "calendars": calendars}
    return json.dumps(payload, separators=(",", ":"))


def _moment(value: Any) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"not a time: {value!r}")
    return datetime.fromtimestamp(value, UTC)


def decode(text: str, names: Sequence[str], lo_year: int, hi_year: int) -> dict[str, list[Session]]:
    """The sessions of ``names`` from a child's output; ValueError when it is not exactly
    an answer to that request (another format, other years, a calendar missing, bad rows)."""
    payload = json.loads(text)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError("not a calendar_child answer (format)")
    if (payload.get("lo"), payload.get("hi")) != (lo_year, hi_year):
        raise ValueError(f"years {payload.get('lo')}..{payload.get('hi')} answered")
    calendars = payload.get("calendars")
    found: dict[str, list[Session]] = {}
    for name in names:
        rows = calendars.get(name) if isinstance(calendars, dict) else None
        if not isinstance(rows, list):
            raise ValueError(f"no sessions for {name}")
        sessions: list[Session] = []
        for row in rows:
            if not isinstance(row, list) or len(row) != 5 or not isinstance(row[0], str):
                raise ValueError(f"{name}: bad session row {row!r:.80}")
            day = date.fromisoformat(row[0])
            b0, b1 = (None if v is None else _moment(v) for v in row[3:])
            session = Session(day, _moment(row[1]), _moment(row[2]), b0, b1)
            if not lo_year <= day.year <= hi_year or not session.open < session.close:
                raise ValueError(f"{name}: bad session {row!r:.80}")
            if sessions and sessions[-1].date >= day:
                raise ValueError(f"{name}: sessions out of order at {day}")
            sessions.append(session)
        found[name] = sessions
    return found


#: What the child's environment keeps of the parent's: what Python and the libraries read
#: (paths, locale, time zone). Nothing else — above all no ``TELEGRAM_BOT_TOKEN`` or
#: ``DATABASE_URL``: it computes calendars only, and a crashing child's last line of stderr goes
#: into the warning.
_CHILD_ENV = ("PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "VIRTUAL_ENV", "SYSTEMROOT")


def _child_environment() -> dict[str, str]:
    return {
        k: v for k, v in os.environ.items() if k in _CHILD_ENV or k.startswith(("PYTHON", "LC_"))
    }


class _Run:
    """One child computing ``names`` for years ``lo`` .. ``hi``."""

    def __init__(self, command: Sequence[str], names: Sequence[str], lo: int, hi: int) -> None:
        self.names, self.lo, self.hi = list(names), lo, hi
        self.started = time.monotonic()
        env = _child_environment()
        # the child imports this very package, wherever the parent found it
        root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [*command, str(lo), str(hi), *names],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )

    def result(self, timeout: float) -> dict[str, list[Session]] | str:
        """The sessions, or what went wrong (the child is killed if it overran)."""
        remaining = max(0.0, self.started + timeout - time.monotonic())
        try:
            out, err = self.proc.communicate(timeout=remaining)
        except subprocess.TimeoutExpired:
            self.kill()
            return f"no answer within {timeout:g} s"
        if self.proc.returncode != 0:
            last = (err.strip().splitlines() or [""])[-1]
            return f"exit status {self.proc.returncode}: {last[:200]}".rstrip(": ")
        lines = out.strip().splitlines()
        try:
            return decode(lines[-1] if lines else "", self.names, self.lo, self.hi)
        except ValueError as exc:  # json.JSONDecodeError is one
            return f"unreadable output ({exc})"

    def kill(self) -> None:
        """Stop the child if it still runs, and reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


class ChildSessions:
    """A :class:`bot.calendars.SessionSource` that runs the library in child processes.

    Results are kept per calendar and year, so a later load of other years asks a child only
    for those. Thread-safe: concurrent loads wait for the same child.
    """

    def __init__(self, command: Sequence[str] = COMMAND, timeout: float = TIMEOUT) -> None:
        self.command = tuple(command)
        self.timeout = timeout
        self._lock = threading.Lock()
        self._years: dict[str, dict[int, list[Session]]] = {}
        self._pending: _Run | None = None
        #: set after a child failed: from then on every load is in-process
        self.failed = False

    def prefetch(self, names: Iterable[str], lo_year: int, hi_year: int) -> None:
        """Start a child for ``names`` × years ``lo_year`` .. ``hi_year`` now; loads wait for it."""
        names = sorted(set(names))
        if not names:
            return
        with self._lock:
            if self._pending is not None:
                self._take(self._pending)
            self._pending = self._spawn(names, lo_year, hi_year)

    def sessions(self, name: str, lo_year: int, hi_year: int) -> list[Session] | None:
        """See :meth:`bot.calendars.SessionSource.sessions`."""
        years = range(lo_year, hi_year + 1)
        with self._lock:
            pending = self._pending
            if (
                pending is not None
                and name in pending.names
                and any(pending.lo <= y <= pending.hi for y in years)
            ):
                self._take(pending)
            known = self._years.get(name, {})
            missing = [y for y in years if y not in known]
            if missing and not self.failed:
                run = self._spawn([name], missing[0], missing[-1])
                if run is not None:
                    self._take(run)
                known = self._years.get(name, {})
            if self.failed and any(y not in known for y in years):
                return None
            return [s for y in years for s in known[y]]

    def keep_only(self, names: Iterable[str]) -> None:
        """Stop the start-up child when none of ``names`` is one of its calendars (a config
        with no exchange calendar): it would only take memory and a core for nothing."""
        with self._lock:
            if self._pending is not None and not set(names) & set(self._pending.names):
                self._pending.kill()
                self._pending = None

    def close(self) -> None:
        """Stop a child nobody waited for (the worker stopped before asking)."""
        with self._lock:
            if self._pending is not None:
                self._pending.kill()
                self._pending = None

    def _spawn(self, names: Sequence[str], lo: int, hi: int) -> _Run | None:
        try:
            return _Run(self.command, names, lo, hi)
        except OSError as exc:
            self._fail(names, f"could not start: {exc}")
            return None

    def _take(self, run: _Run) -> None:
        """Wait for ``run`` and keep its sessions by year (or mark the source failed)."""
        if run is self._pending:
            self._pending = None
        waited = time.monotonic()
        found = run.result(self.timeout)
        log.debug(
            "calendar %s: sessions %d-%d from a child in %.2f s (%.2f s of it waited for)",
            ", ".join(run.names),
            run.lo,
            run.hi,
            time.monotonic() - run.started,
            time.monotonic() - waited,
        )
        if isinstance(found, str):
            self._fail(run.names, found)
            return
        for name, sessions in found.items():
            by_year = self._years.setdefault(name, {})
            for year in range(run.lo, run.hi + 1):
                by_year[year] = []
            for session in sessions:
                by_year[session.date.year].append(session)

    def _fail(self, names: Sequence[str], what: str) -> None:
        self.failed = True
        log.warning(
            "calendar %s: computing sessions in a child process failed (%s); "
            "loading them in this process",
            ", ".join(names),
            what,
        )


def use_child_process(
    names: Iterable[str] | None,
    now: datetime,
    *,
    command: Sequence[str] = COMMAND,
    timeout: float = TIMEOUT,
) -> ChildSessions:
    """From now on, exchange calendars load their sessions from child processes
    (:func:`bot.calendars.set_session_source`); a first child starts at once for the calendars
    ``names`` (others are skipped; ``None``: all of them) and the years around ``now``."""
    source = ChildSessions(command, timeout)
    wanted = CALENDARS if names is None else set(names)
    exchange = [n for n in wanted if isinstance(get_calendar(n), ExchangeCalendar)]
    lo, hi = (now - _SPAN).year, (now + _SPAN).year
    source.prefetch(exchange, lo, hi)
    set_session_source(source)
    atexit.register(source.close)
    return source


def main(argv: Sequence[str] | None = None) -> int:
    """The child: print the sessions of the calendars named in ``argv`` (see the module doc)."""
    # A process this short needs no cyclic GC: its passes over pandas' import are ~10% of
    # the child's time, which the worker may be waiting for.
    gc.disable()
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 3:
        print("usage: python -m bot.calendar_child LO HI NAME [NAME ...]", file=sys.stderr)
        return 2
    lo, hi, names = int(args[0]), int(args[1]), args[2:]
    sessions: dict[str, list[Session]] = {}
    for name in names:
        calendar = get_calendar(name)
        if not isinstance(calendar, ExchangeCalendar):
            print(f"{name}: not an exchange calendar", file=sys.stderr)
            return 2
        sessions[name] = calendar.load_in_process(lo, hi)
    print(encode(lo, hi, sessions))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
