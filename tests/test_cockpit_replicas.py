"""Two replicas on PostgreSQL: exactly one polls ``getUpdates`` at a time (the store lease),
the other takes over once the holder's lease ran out, and no command is answered twice — not
even one Telegram delivers again because the dead holder never confirmed it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.cockpit.app import Cockpit
from bot.notify.telegram import TelegramNotifier
from bot.worker import Worker
from tests.cockpit_support import PRIVATE, T0, make_config, new_worker, wait_for
from tests.conftest_store import pg_schema, pg_url_or_skip
from tests.fakes.telegram import FakeTelegram

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(90)]


@pytest.fixture
def pg_state() -> Iterator[str]:
    url = pg_url_or_skip()
    with pg_schema(url) as schema:
        yield f"{url}{'&' if '?' in url else '?'}schema={schema}"


def _cockpit(worker: Worker) -> Cockpit:
    notifier = worker.notifier
    assert isinstance(notifier, TelegramNotifier)
    notifier.rate_limits = None
    return Cockpit(worker, notifier.bot, poll_timeout=1)


def test_two_replicas_answer_each_command_once_and_take_over(
    tmp_path: Path, fake_telegram: FakeTelegram, pg_state: str
) -> None:
    config = make_config(tmp_path, fake_telegram, state=pg_state)
    clock = FakeClock(T0)  # both replicas read the same clock: lease times are inputs
    worker_a, worker_b = new_worker(config, clock, "a"), new_worker(config, clock, "b")
    lease = config.telegram.poll_lease

    async def scenario() -> None:
        a, b = _cockpit(worker_a), _cockpit(worker_b)
        await a.start(every=0)
        await b.start(every=0)
        try:
            assert (a.polling, b.polling) == (True, False)
            for _ in range(3):  # renewals keep the turn where it is
                clock.advance(lease / 4)
                assert await a.tick() and not await b.tick()
            for n in range(5):
                fake_telegram.message(PRIVATE, "/help" if n % 2 else "/start")
            last = dict(fake_telegram.updates[-1])  # (still queued: nothing confirmed it yet)
            await wait_for(lambda: len(fake_telegram.sent_to(PRIVATE)) == 5)
            # a dies: stops polling without releasing its lease (no renewals from now on)
            await a.stop(release=False)
            assert not await b.tick(), "took over while a's lease was still running"
            clock.advance(lease + timedelta(seconds=1))
            assert await b.tick(), "did not take over once the lease ran out"
            # Telegram delivers again an update a handled but never confirmed
            fake_telegram.redeliver(last)
            fake_telegram.message(PRIVATE, "/rules")
            await wait_for(lambda: len(fake_telegram.sent_to(PRIVATE)) == 6)
            await asyncio.sleep(0.5)  # a second answer to anything would show by now
        finally:
            await a.stop()
            await b.stop()
            for worker in (worker_a, worker_b):
                await worker.notifier.stop()
                worker.store.close()

    asyncio.run(scenario())
    texts = [m.text for m in fake_telegram.sent_to(PRIVATE)]
    assert len(texts) == 6, texts
    assert sum("I watch" in t for t in texts) == 3 and sum("/mute" in t for t in texts) == 2
    assert "rut-2500 (cross)" in texts[-1]
