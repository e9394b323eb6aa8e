"""End to end on loopback fakes of the Fed's site, FRED and Telegram: the statement page appears
at 14:00:00 (fake clock), the alert reaches Telegram within 5 s, once; FRED's next-day row sends
nothing more, and a FRED row contradicting the statement is told to the admin chat."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.app import build_worker
from bot.clock import FakeClock
from bot.config import parse_config
from bot.worker import Worker
from tests.fakes.fed import FedFake, calendar_json, cut_statement, feed_xml, statement_page
from tests.fakes.fred import FredFake, fred_csv
from tests.fakes.telegram import FAKE_TOKEN, FakeTelegram

NY = ZoneInfo("America/New_York")
DAY = date(2025, 12, 10)
TRADERS, OPS = 4242, 777

CONFIG = """\
timezone: America/New_York
telegram:
  token: {token}
  base_url: {telegram}
  chats: {{traders: {traders}, ops: {ops}}}
  admin_chat: ops
state: {{url: "sqlite:///{state}"}}
delivery: {{backoff: 1ms}}
sources:
  fed: {{type: fomc, base_url: {fed}, attempts: 1}}
  fred: {{type: fred, base_url: {fred}, attempts: 1}}
symbols:
  FOMC: {{source: fed, name: FOMC statement, calendar: always, poll: 5m}}
  FED: {{source: fred, series: {{lower: DFEDTARL, upper: DFEDTARU}}, calendar: always, poll: 1h}}
poll: {{every: 60s}}
rules:
  - {{id: fed-rate, type: rate_change, symbol: FOMC, confirm: FED, chats: [traders]}}
"""


def plain(telegram: FakeTelegram, chat: int) -> list[str]:
    """What the chat's people read (the bot sends HTML)."""
    return [m.plain for m in telegram.sent_to(chat)]


def fred_rows(fred: FredFake, until: date, changes: dict[date, tuple[float, float]]) -> None:
    """Daily rows from mid-November through ``until``: 3.75–4.00, then the ``changes``."""
    lower, upper = [], []
    day, current = date(2025, 11, 15), (3.75, 4.0)
    while day <= until:
        current = changes.get(day, current)
        lower.append((day, current[0]))
        upper.append((day, current[1]))
        day += timedelta(days=1)
    fred.series("DFEDTARL", fred_csv("DFEDTARL", lower))
    fred.series("DFEDTARU", fred_csv("DFEDTARU", upper))


def make_worker(
    tmp_path: Path, fed: FedFake, fred: FredFake, telegram: FakeTelegram, clock: FakeClock
) -> Worker:
    text = CONFIG.format(
        token=FAKE_TOKEN,
        telegram=telegram.base_url,
        traders=TRADERS,
        ops=OPS,
        state=tmp_path / "state.sqlite",
        fed=fed.base_url,
        fred=fred.base_url,
    )
    return build_worker(parse_config(text, "config.yaml", {}), clock=clock)


def serve_fed(fed: FedFake) -> None:
    fed.calendar(calendar_json([("2025-12", "9-10"), ("2026-01", "27-28")]))
    october = date(2025, 10, 29)
    fed.feed(
        feed_xml(
            [
                (
                    "Federal Reserve issues FOMC statement",
                    f"{fed.base_url}/newsevents/pressreleases/monetary20251029a.htm",
                    datetime(2025, 10, 29, 14, tzinfo=NY),
                )
            ]
        )
    )
    fed.publish(
        october,
        statement_page(
            october,
            [
                "The Committee decided to lower the target range for the federal funds rate by "
                "1/4 percentage point to 3-3/4 to 4 percent."
            ],
        ),
    )
    fed.not_yet(DAY)


async def poll(worker: Worker) -> None:
    """One cycle, then what the send loop does when the cycle wakes it: drain the outbox."""
    await worker.poll_once()
    await worker.sender.drain()


async def run_decision_day(
    worker: Worker, fed: FedFake, clock: FakeClock, telegram: FakeTelegram
) -> datetime:
    """Poll as the scheduler would (the interval, or sooner when a source asks) from 13:58
    until the alert is delivered; the page goes up at 14:00:00. Returns the delivery time."""
    release = datetime(2025, 12, 10, 14, 0, tzinfo=NY)
    published = False
    while clock.now() < release + timedelta(minutes=2):
        if not published and clock.now() >= release:
            fed.publish(DAY, statement_page(DAY, cut_statement(DAY), release="2:00 p.m. EST"))
            published = True
        await poll(worker)
        if plain(telegram, TRADERS):
            return clock.now()
        now = clock.now()
        hint = worker.next_hint(now)
        step = worker.config.poll.every
        if hint is not None and hint - now < step:
            step = max(hint - now, timedelta(milliseconds=500))
        nxt = now + step
        if not published and nxt > release:
            nxt = max(release, now + timedelta(milliseconds=500))  # the page is up at 14:00:00
        clock.set(nxt)
    raise AssertionError("no alert")


def test_statement_alert_within_seconds_once_and_fred_confirms(
    tmp_path: Path, fed_fake: FedFake, fake_telegram: FakeTelegram
) -> None:
    serve_fed(fed_fake)
    with FredFake() as fred:
        fred_rows(fred, DAY - timedelta(days=1), {})
        clock = FakeClock(datetime(2025, 12, 10, 13, 58, 0, tzinfo=NY))

        async def scenario() -> None:
            worker = make_worker(tmp_path, fed_fake, fred, fake_telegram, clock)
            await worker.start()
            try:
                delivered = await run_decision_day(worker, fed_fake, clock, fake_telegram)
                assert delivered - datetime(2025, 12, 10, 14, 0, tzinfo=NY) <= timedelta(seconds=5)
                texts = plain(fake_telegram, TRADERS)
                assert texts == [
                    "FOMC cuts by 25 bp to 3.50–3.75% (from 3.75–4.00%); vote 9–3 — Miran "
                    "preferred \u221250 bp; Goolsbee, Schmid preferred no change"
                ]
                # more polls the same day: nothing new
                for _ in range(3):
                    clock.advance(timedelta(minutes=5))
                    await poll(worker)
            finally:
                await worker.stop()
            # a restart (same state file): the statement is the same decision, nothing new
            worker = make_worker(tmp_path, fed_fake, fred, fake_telegram, clock)
            await worker.start()
            try:
                for _ in range(2):
                    clock.advance(timedelta(minutes=5))
                    await poll(worker)
                assert plain(fake_telegram, TRADERS) == texts
                # next day FRED publishes the row of the 10th (old range) and of the 11th (new)
                fred_rows(fred, DAY + timedelta(days=1), {DAY + timedelta(days=1): (3.5, 3.75)})
                clock.set(datetime(2025, 12, 11, 10, 0, tzinfo=NY))
                for _ in range(3):
                    await poll(worker)
                    clock.advance(timedelta(hours=1, seconds=1))
                assert plain(fake_telegram, TRADERS) == texts  # FRED's confirmation: nothing
                assert plain(fake_telegram, OPS) == []
            finally:
                await worker.stop()

        asyncio.run(scenario())
    assert fed_fake.statement_requests(DAY) >= 2  # 404 first, then the page


def test_fred_disagreeing_with_the_statement_tells_the_admin_chat(
    tmp_path: Path, fed_fake: FedFake, fake_telegram: FakeTelegram
) -> None:
    serve_fed(fed_fake)
    with FredFake() as fred:
        fred_rows(fred, DAY - timedelta(days=1), {})
        clock = FakeClock(datetime(2025, 12, 10, 13, 58, 0, tzinfo=NY))

        async def scenario() -> None:
            worker = make_worker(tmp_path, fed_fake, fred, fake_telegram, clock)
            await worker.start()
            try:
                await run_decision_day(worker, fed_fake, clock, fake_telegram)
                fred_rows(fred, DAY + timedelta(days=1), {DAY + timedelta(days=1): (3.25, 3.5)})
                clock.set(datetime(2025, 12, 11, 10, 0, tzinfo=NY))
                await poll(worker)
            finally:
                await worker.stop()

        asyncio.run(scenario())
    assert len(plain(fake_telegram, TRADERS)) == 1
    (notice,) = plain(fake_telegram, OPS)
    assert "FRED disagrees with the FOMC statement of 2025-12-10" in notice
    assert "3.50–3.75%" in notice and "3.25–3.50%" in notice


def test_real_scheduler_polls_fast_and_alerts_within_5_seconds() -> None:
    """Real seconds: the real APScheduler loop, woken every 2 s by the source's hint from a
    clock set 2 s before 14:00 New York; the page goes up at 14:00:00."""
    from tests.fomc_latency import measure_latency

    assert measure_latency(lead=2.0) <= 5.0
