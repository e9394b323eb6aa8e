"""Hot reload (issue 11): a changed config.yaml takes effect between cycles, or is refused."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import build_worker
from bot.clock import FakeClock
from bot.config import ConfigError, load_config
from bot.notify.sender import ADMIN_RULE_ID
from bot.worker import Worker
from tests.fakes.yahoo import YahooFake, chart_response

T0 = datetime(2024, 11, 25, 15, 0, tzinfo=UTC)

CONFIG = """\
timezone: America/New_York
state: {{url: "sqlite:///{state}"}}
sources:
  yahoo: {{type: yahoo, base_url: {yahoo}, attempts: 1}}
symbols:
  RUT: {{source: yahoo, ticker: "^RUT", name: Russell 2000, calendar: always}}
poll: {{every: 5m}}
rules:
{rules}
"""

KEPT = "  - {id: rut-2500, type: cross, symbol: RUT, level: 2500}\n"
REMOVED = "  - {id: rut-2495, type: cross, symbol: RUT, level: 2495}\n"
ADDED = "  - {id: rut-2400, type: cross, symbol: RUT, level: 2400}\n"


def write(path: Path, text: str, *, tick: int) -> None:
    """Write ``text`` with a distinct mtime (``tick`` seconds after T0), as an editor would."""
    path.write_text(text, encoding="utf-8")
    stamp = T0.timestamp() + tick
    os.utime(path, (stamp, stamp))


def serve(yahoo: YahooFake, prices: list[float]) -> None:
    replies = [
        chart_response(price=p, time=T0 + timedelta(minutes=5 * i)) for i, p in enumerate(prices)
    ]
    yahoo.script(yahoo.chart_path("^RUT"), replies, query={"range": "1d"})
    yahoo.chart("^RUT", chart_response(price=1.0))  # daily bars: none


def run(path: Path, clock: FakeClock, scenario: Callable[[Worker], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        worker = build_worker(load_config(path), clock=clock)
        await worker.start()
        try:
            return await scenario(worker)
        finally:
            await worker.stop()

    return asyncio.run(main())


def admin_rows(worker: Worker, kind: str) -> list[str]:
    return [
        row.alert.text
        for row in worker.store.outbox()
        if row.alert.rule_id == ADMIN_RULE_ID and f":{kind}:" in row.alert.id
    ]


def test_reload_keeps_state_of_unchanged_rules(tmp_path: Path, yahoo_fake: YahooFake) -> None:
    """2490, then the file changes (one rule added, one removed), then 2505: the kept rule
    still remembers 2490 and fires its crossing; the removed one (which would have fired too)
    stays silent; the added one starts fresh (its first value only seeds it)."""
    path = tmp_path / "config.yaml"
    fmt = {"state": tmp_path / "s.sqlite", "yahoo": yahoo_fake.base_url}
    write(path, CONFIG.format(rules=KEPT + REMOVED, **fmt), tick=0)
    serve(yahoo_fake, [2490.0, 2505.0])
    clock = FakeClock(T0)

    async def scenario(worker: Worker) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
        await worker.poll_once()
        before = dict(worker.states)
        write(path, CONFIG.format(rules=KEPT + ADDED, **fmt), tick=60)
        clock.advance(timedelta(minutes=5))
        report = await worker.poll_once()
        return before, dict(worker.states), [a.rule_id for a in report.alerts]

    before, after, fired = run(path, clock, scenario)
    assert fired == ["rut-2500"]  # compared with 2490 from before the reload: a crossing
    assert "rut-2400" in after  # the new rule is evaluated (seeded, silent)
    assert after["rut-2495"] == before["rut-2495"]  # the removed rule was not evaluated


def test_reload_applies_to_the_engine_and_sources(tmp_path: Path, yahoo_fake: YahooFake) -> None:
    path = tmp_path / "config.yaml"
    fmt = {"state": tmp_path / "s.sqlite", "yahoo": yahoo_fake.base_url}
    write(path, CONFIG.format(rules=KEPT, **fmt), tick=0)
    serve(yahoo_fake, [2490.0])
    clock = FakeClock(T0)

    async def scenario(worker: Worker) -> tuple[list[str], list[str], bool]:
        await worker.poll_once()
        poller = worker.poller
        text = CONFIG.format(rules=KEPT + ADDED, **fmt)
        text = text.replace("calendar: always}", "calendar: always}\n  BTC: {source: yahoo}")
        write(path, text, tick=60)
        await worker.reload_config()  # what SIGHUP does: no cycle needed
        return (
            [r.id for r in worker.engine.rules],
            sorted(worker.config.symbols),
            worker.poller is poller,
        )

    rules, symbols, same_poller = run(path, clock, scenario)
    assert rules == ["rut-2500", "rut-2400"]
    assert symbols == ["BTC", "RUT"]
    assert not same_poller  # symbols changed: the sources were rebuilt


def test_invalid_reload_keeps_old_config_and_tells_admin_once(
    tmp_path: Path, yahoo_fake: YahooFake, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "config.yaml"
    fmt = {"state": tmp_path / "s.sqlite", "yahoo": yahoo_fake.base_url}
    good = CONFIG.format(rules=KEPT, **fmt)
    broken = good.replace("level: 2500", "level: high")
    write(path, good, tick=0)
    serve(yahoo_fake, [2490.0, 2495.0, 2497.0, 2505.0])
    clock = FakeClock(T0)
    write(tmp_path / "broken.yaml", broken, tick=0)
    with pytest.raises(ConfigError) as problems:
        load_config(tmp_path / "broken.yaml")
    as_check_prints = str(problems.value).replace("broken.yaml", "config.yaml")

    async def scenario(worker: Worker) -> tuple[list[str], list[str], list[str]]:
        await worker.poll_once()
        write(path, broken, tick=60)
        for tick in (120, 180):  # more cycles, the file touched again, a SIGHUP
            clock.advance(timedelta(minutes=5))
            await worker.poll_once()
            os.utime(path, (T0.timestamp() + tick,) * 2)
        await worker.reload_config()
        notices = admin_rows(worker, "config-invalid")
        clock.advance(timedelta(minutes=5))
        report = await worker.poll_once()  # the old config still runs: 2505 crosses 2500
        return notices, [a.rule_id for a in report.alerts], [r.id for r in worker.engine.rules]

    with caplog.at_level(logging.INFO):
        notices, fired, rules = run(path, clock, scenario)
    assert len(notices) == 1, notices
    assert "NOT applied" in notices[0]
    assert as_check_prints.splitlines()[0] in notices[0]
    assert fired == ["rut-2500"] and rules == ["rut-2500"]
    assert sum("is invalid" in r.getMessage() for r in caplog.records) == 1


def test_a_second_broken_version_is_reported_too(tmp_path: Path, yahoo_fake: YahooFake) -> None:
    path = tmp_path / "config.yaml"
    fmt = {"state": tmp_path / "s.sqlite", "yahoo": yahoo_fake.base_url}
    good = CONFIG.format(rules=KEPT, **fmt)
    write(path, good, tick=0)
    serve(yahoo_fake, [2490.0])
    clock = FakeClock(T0)

    async def scenario(worker: Worker) -> list[str]:
        await worker.poll_once()
        write(path, good.replace("level: 2500", "level: high"), tick=60)
        await worker.poll_once()
        write(path, good.replace("type: cross", "type: crosss"), tick=120)
        await worker.poll_once()
        return admin_rows(worker, "config-invalid")

    notices = run(path, clock, scenario)
    assert len(notices) == 2
    assert "crosss" in notices[1]


def test_a_changed_state_url_needs_a_restart_and_is_not_applied(
    tmp_path: Path, yahoo_fake: YahooFake, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "config.yaml"
    fmt = {"state": tmp_path / "s.sqlite", "yahoo": yahoo_fake.base_url}
    write(path, CONFIG.format(rules=KEPT, **fmt), tick=0)
    serve(yahoo_fake, [2490.0])
    clock = FakeClock(T0)
    moved = CONFIG.format(rules=KEPT + ADDED, state=tmp_path / "other.sqlite", yahoo=fmt["yahoo"])

    async def scenario(worker: Worker) -> tuple[list[str], list[str]]:
        await worker.poll_once()
        write(path, moved, tick=60)
        await worker.poll_once()
        return [r.id for r in worker.engine.rules], admin_rows(worker, "config-restart")

    with caplog.at_level(logging.WARNING):
        rules, notices = run(path, clock, scenario)
    assert rules == ["rut-2500"]  # not half-applied: the added rule waits for the restart too
    assert len(notices) == 1 and "state.url" in notices[0]
    assert any("needs a restart" in r.getMessage() for r in caplog.records)


@pytest.mark.timeout(60)
def test_sighup_reloads_the_running_bot(tmp_path: Path, yahoo_fake: YahooFake) -> None:
    """``run``'s loop: SIGHUP makes the bot read config.yaml at once (no cycle to wait for)."""
    import signal

    from bot.scheduler import run_forever

    path = tmp_path / "config.yaml"
    fmt = {"state": tmp_path / "s.sqlite", "yahoo": yahoo_fake.base_url}
    write(path, CONFIG.format(rules=KEPT, **fmt), tick=0)
    serve(yahoo_fake, [2490.0])
    clock = FakeClock(T0)

    async def main() -> list[str]:
        worker = build_worker(load_config(path), clock=clock)
        stop = asyncio.Event()
        running = asyncio.create_task(run_forever(worker, stop))
        while not worker.states:  # the first cycle ran: the handlers are installed
            await asyncio.sleep(0.02)
        write(path, CONFIG.format(rules=KEPT + ADDED, **fmt), tick=60)
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(250):  # a few seconds at most: the reload is immediate
            if len(worker.engine.rules) > 1:
                break
            await asyncio.sleep(0.02)
        stop.set()
        await running
        return [r.id for r in worker.engine.rules]

    # ignored unless the bot handles it: a bot that does not must fail this test, not kill it
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        assert asyncio.run(main()) == ["rut-2500", "rut-2400"]
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_reload_keeps_loaded_history_unless_its_symbol_changed(
    tmp_path: Path, yahoo_fake: YahooFake
) -> None:
    """A record rule's history stays loaded across a reload that leaves its symbol alone (no
    refetch, no waiting); a changed symbol definition has its history loaded again."""
    from datetime import date

    record = "  - {id: rut-record, type: record_close, symbol: RUT}\n"
    path = tmp_path / "config.yaml"
    fmt = {"state": tmp_path / "s.sqlite", "yahoo": yahoo_fake.base_url}
    write(path, CONFIG.format(rules=record, **fmt), tick=0)
    yahoo_fake.script(
        yahoo_fake.chart_path("^RUT"),
        [chart_response(price=2490.0, time=T0)],
        query={"range": "1d"},
    )
    bars = [(date(2024, 11, d), 2400.0 + d) for d in (18, 19, 20, 21, 22)]
    yahoo_fake.chart("^RUT", chart_response(price=2427.0, bars=bars))
    clock = FakeClock(T0)

    def daily_requests() -> int:
        return sum("period1" in r.query for r in yahoo_fake.chart_requests("^RUT"))

    async def scenario(worker: Worker) -> list[Any]:
        await worker.poll_once()
        seen = [daily_requests()]
        write(path, CONFIG.format(rules=record + ADDED, **fmt), tick=60)
        await worker.reload_config()
        seen += [worker.unseeded_rules(), sorted(worker.history_keeper.loaded)]
        changed = CONFIG.format(rules=record + ADDED, **fmt).replace("Russell 2000", "Russell")
        write(path, changed, tick=120)
        await worker.reload_config()
        seen.append(worker.unseeded_rules())
        await worker.load_history(timedelta(seconds=10))
        seen += [worker.unseeded_rules(), daily_requests() - seen[0]]
        return seen

    before, unseeded, loaded, after_change, reloaded, refetched = run(path, clock, scenario)
    assert before >= 1
    assert unseeded == [] and loaded == ["RUT"]  # unchanged symbol: still seeded
    assert after_change == ["rut-record"]  # its symbol changed: waits for the new history
    assert reloaded == [] and refetched >= 1


def test_a_reloaded_poll_interval_reschedules_the_poll_job(
    tmp_path: Path, yahoo_fake: YahooFake
) -> None:
    from bot.scheduler import POLL_JOB, _follow_reload, build_scheduler

    path = tmp_path / "config.yaml"
    fmt = {"state": tmp_path / "s.sqlite", "yahoo": yahoo_fake.base_url}
    write(path, CONFIG.format(rules=KEPT, **fmt), tick=0)
    serve(yahoo_fake, [2490.0])

    async def main() -> list[timedelta]:
        worker = build_worker(load_config(path), clock=FakeClock(T0))
        await worker.start()
        scheduler = build_scheduler(worker)
        scheduler.start(paused=True)
        try:
            write(path, CONFIG.format(rules=KEPT, **fmt).replace("every: 5m", "every: 2m"), tick=9)
            await worker.reload_config()
            _follow_reload(scheduler, worker)
            job = scheduler.get_job(POLL_JOB)
            return [worker.config.poll.every, job.trigger.interval]
        finally:
            scheduler.shutdown(wait=False)
            await worker.stop()

    assert asyncio.run(main()) == [timedelta(minutes=2)] * 2


def _collected_by_gc(obj: object) -> bool:
    """Whether the cyclic GC still scans ``obj`` (frozen objects are in no generation)."""
    return any(o is obj for o in gc.get_objects())


def test_a_reloaded_config_is_frozen_like_the_one_started_with(
    tmp_path: Path, yahoo_fake: YahooFake
) -> None:
    """Start-up freezes the config, rules and engine it built, so collections do not re-scan
    them on every cycle (bot.lifecycle.freeze_long_lived); the ones a reload builds are frozen
    too, or a SIGHUP would bring the collection pauses back."""
    path = tmp_path / "config.yaml"
    fmt = {"state": tmp_path / "s.sqlite", "yahoo": yahoo_fake.base_url}
    write(path, CONFIG.format(rules=KEPT, **fmt), tick=0)
    serve(yahoo_fake, [2490.0])

    async def scenario(worker: Worker) -> tuple[bool, bool]:
        await worker.poll_once()
        write(path, CONFIG.format(rules=KEPT + ADDED, **fmt), tick=60)
        await worker.reload_config()
        return _collected_by_gc(worker.engine), _collected_by_gc(worker.config)

    try:
        engine_scanned, config_scanned = run(path, FakeClock(T0), scenario)
    finally:
        gc.unfreeze()  # the test process goes on collecting as before
    assert not engine_scanned and not config_scanned
