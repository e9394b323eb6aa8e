"""Final daily closes pass the sanity checker in the live worker, like polled quotes do.

The worker runs for real (SQLite store, console notifier); its source is a fake implementing
our own Source interface that serves daily bars from a dict (no network, no library mocked).
"""

from __future__ import annotations

import asyncio
import io
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import ClassVar
from zoneinfo import ZoneInfo

from bot.clock import FakeClock
from bot.config import SourceParams, SymbolConfig, parse_config
from bot.errors import SourceError
from bot.model import DailySeries, Observation
from bot.notify.console import ConsoleNotifier
from bot.notify.sender import Sender
from bot.sources.base import Source
from bot.sources.poller import Poller
from bot.store import open_store
from bot.worker import Worker

NY = ZoneInfo("America/New_York")
FRIDAY, MONDAY = date(2020, 3, 13), date(2020, 3, 16)

CONFIG = """\
timezone: America/New_York
state: {{url: "sqlite:///{state}"}}
sources:
  daily: {{type: yahoo}}
symbols:
  RUT: {{source: daily, ticker: "^RUT", name: Russell 2000, calendar: XNYS}}
rules:
  - {{id: rut-record, type: record_close, symbol: RUT}}
  - {{id: rut-1d, type: change, symbol: RUT, window: 1d, threshold: 10%, direction: down}}
"""


class DailyBars(Source):
    """Serves ``rows`` as daily bars and ``price`` (if any) as the latest quote."""

    type_name: ClassVar[str] = "daily"

    def __init__(self, rows: dict[date, float], price: Observation | None = None) -> None:
        super().__init__("daily", SourceParams(type="yahoo"), FakeClock(datetime.now(NY)))
        self.rows = rows
        self.price = price

    def fetch_latest(self, symbol_id: str, spec: SymbolConfig) -> Observation:
        if self.price is None:
            raise SourceError("no quote", symbol=symbol_id)
        return self.price

    def fetch_daily(
        self, symbol_id: str, spec: SymbolConfig, start: date | None, end: date | None
    ) -> DailySeries:
        days = sorted(
            d for d in self.rows if (start is None or d >= start) and (end is None or d <= end)
        )
        return DailySeries(days, [self.rows[d] for d in days])


def rows_until_friday() -> dict[date, float]:
    """A small fixture shaped like ^RUT in March 2020 (record 1,740 in January)."""
    rows = {date(2020, 1, 16): 1705.22, date(2020, 1, 17): 1740.0}
    for i, value in enumerate([1390.0, 1310.0, 1209.0]):
        rows[date(2020, 3, 10 + i)] = value
    rows[FRIDAY] = 1210.13
    return rows


def run_worker(
    tmp_path: Path, source: DailyBars, times: list[datetime], add: dict[date, float]
) -> list[str]:
    """Start a worker and run a cycle at ``times[0]`` (history up to Friday); then add ``add``
    to the source, stop its quotes, and run one cycle at each later time; the texts of the
    alerts queued."""
    config = parse_config(CONFIG.format(state=tmp_path / "state.sqlite"), "config.yaml", {})
    clock = FakeClock(times[0])
    store = open_store(config.state.url)
    notifier = ConsoleNotifier(io.StringIO())
    worker = Worker(
        config,
        clock=clock,
        store=store,
        poller=Poller({"daily": source}),
        notifier=notifier,
        sender=Sender(config=config, store=store, notifier=notifier, clock=clock),
    )
    texts: list[str] = []

    async def main() -> None:
        await worker.start()
        for index, moment in enumerate(times):
            if index == 1:
                source.rows.update(add)
                source.price = None
            clock.set(moment)
            report = await worker.poll_once()
            texts.extend(a.text for a in report.alerts if a.id in report.new_alert_ids)
        await worker.stop(timedelta(0))

    asyncio.run(main())
    return texts


def after_close(*minutes: int) -> list[datetime]:
    return [datetime(2020, 3, 16, 16, m, tzinfo=NY) for m in minutes]


def test_a_garbage_final_close_fires_no_record(tmp_path: Path) -> None:
    source = DailyBars(rows_until_friday())
    times = [datetime(2020, 3, 16, 12, 0, tzinfo=NY), *after_close(11, 12, 13, 14, 15, 16, 17)]
    assert run_worker(tmp_path, source, times, {MONDAY: 1e12}) == []


def test_a_real_crash_close_alerts_once_confirmed(tmp_path: Path) -> None:
    """−14.3 % on 2020-03-16 (1,210.13 → 1,037.42): beyond max_jump from the last good value,
    so held; the same bar re-fetched five minutes later confirms it and the rule fires."""
    price = Observation("RUT", datetime(2020, 3, 13, 16, 0, tzinfo=NY), 1210.13, "price")
    source = DailyBars(rows_until_friday(), price)
    times = [datetime(2020, 3, 16, 12, 0, tzinfo=NY), *after_close(11, 12, 13, 14, 15, 16, 17)]
    texts = run_worker(tmp_path, source, times, {MONDAY: 1037.42})
    assert len(texts) == 1 and "down 14.27% on the day" in texts[0], texts


def test_history_rows_pass_the_checks_when_loaded_and_from_the_cache() -> None:
    from bot.history import HistoryLoader
    from tests.test_history import FakeSource as FakeDaily
    from tests.test_history import MemoryStore

    rows = rows_until_friday()
    rows[date(2020, 3, 11)] = 1e12  # a garbage bar among real ones
    rows[date(2099, 1, 2)] = 1500.0  # and one dated in the future
    store = MemoryStore()
    store.histories["RUT"] = DailySeries([date(2020, 1, 2)], [0.01])  # cached before checks
    store.values["history:RUT:from"] = "1970-01-01"
    loader = HistoryLoader(store, FakeDaily({"RUT": rows}), symbols={"RUT": RUT_SPEC})
    series = loader.load_symbol("RUT", RUT_SPEC, None, datetime(2020, 3, 16, 12, tzinfo=NY))
    assert 1e12 not in series.values and 0.01 not in series.values
    assert series.dates[-1] == FRIDAY
    assert max(series.values) == 1740.0


RUT_SPEC = SymbolConfig(source=["daily"], ticker="^RUT", calendar="XNYS")
