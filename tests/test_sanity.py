"""Sanity checks: nothing non-finite, non-positive, stale or unconfirmed-jumping reaches rules."""

from __future__ import annotations

import json
import logging
import math
from datetime import UTC, date, datetime, timedelta

import pytest

from bot.clock import FakeClock
from bot.config import SanityConfig
from bot.errors import SanityError
from bot.model import DailySeries, History, Observation
from bot.sanity import SanityChecker, clean_daily

T0 = datetime(2025, 1, 10, 15, 0, tzinfo=UTC)


def make(clock: FakeClock | None = None, **settings: object) -> SanityChecker:
    config = SanityConfig.model_validate({"max_jump": "10%", "stale_after": "15m", **settings})
    return SanityChecker(config, clock or FakeClock(T0))


def obs(
    value: float, time: datetime | None = None, kind: str = "price", **kw: object
) -> Observation:
    return Observation(symbol="RUT", time=time or T0, value=value, kind=kind, **kw)  # type: ignore[arg-type]


# -- finite and positive -----------------------------------------------------------------------


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 0.0, -5.0])
@pytest.mark.parametrize("kind", ["price", "close"])
def test_non_finite_and_non_positive_prices_are_rejected(value: float, kind: str) -> None:
    checker = make()
    with pytest.raises(SanityError) as caught:
        checker.check(obs(value, kind=kind), market_open=True)
    assert caught.value.symbol == "RUT"
    assert checker.last_good("RUT") is None


def test_rates_may_be_zero_but_not_nan() -> None:
    checker = make()
    zero = Observation("FED", T0, 0.25, kind="rate", fields={"lower": 0.0, "upper": 0.25})
    assert checker.check(zero, market_open=True) is zero
    with pytest.raises(SanityError, match="lower"):
        checker.check(
            Observation("FED", T0, 0.25, kind="rate", fields={"lower": math.nan, "upper": 0.25}),
            market_open=True,
        )
    with pytest.raises(SanityError):
        checker.check(Observation("FED", T0, math.nan, kind="rate"), market_open=True)


def test_rejection_is_logged_with_the_symbol(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.sanity"), pytest.raises(SanityError):
        make().check(obs(-1.0, source="yahoo"), market_open=True)
    assert "RUT" in caplog.text and "not positive" in caplog.text and "yahoo" in caplog.text


# -- jumps -------------------------------------------------------------------------------------

MIN = timedelta(minutes=1)


def poll(checker: SanityChecker, clock: FakeClock, value: float, kind: str = "price") -> float:
    """One poll a minute later than the last: its value if accepted, raises if rejected."""
    clock.advance(MIN)
    return checker.check(obs(value, clock.now(), kind=kind), market_open=True).value


def test_a_jump_is_held_until_agreeing_polls_have_shown_it_for_confirm_after() -> None:
    clock = FakeClock(T0)
    checker = make(clock)
    checker.check(obs(2500.0), market_open=True)
    with pytest.raises(SanityError, match="jump from 2500 to 2800"):
        poll(checker, clock, 2800.0)
    for value in (2805.0, 2790.0, 2801.0, 2799.0):  # 1..4 minutes: agreeing, not long enough
        with pytest.raises(SanityError, match="held until"):
            poll(checker, clock, value)
    assert checker.last_good("RUT") == 2500.0
    assert poll(checker, clock, 2803.0) == 2803.0  # 5 minutes after the first: confirmed
    assert checker.last_good("RUT") == 2803.0
    assert poll(checker, clock, 2810.0) == 2810.0  # and the new level is normal from now on


def test_garbage_repeated_on_two_polls_is_not_a_confirmation() -> None:
    clock = FakeClock(T0)
    checker = make(clock)
    checker.check(obs(2500.0), market_open=True)
    with pytest.raises(SanityError):
        poll(checker, clock, 1e12)
    with pytest.raises(SanityError):  # the second poll repeats it: still held
        poll(checker, clock, 1e12)
    assert poll(checker, clock, 2501.0) == 2501.0  # the real value again: the hold is dropped
    with pytest.raises(SanityError):
        poll(checker, clock, 0.01)
    with pytest.raises(SanityError):
        poll(checker, clock, 0.01)
    assert checker.last_good("RUT") == 2501.0


def test_confirm_after_is_configurable() -> None:
    clock = FakeClock(T0)
    checker = make(clock, confirm_after="1m")
    checker.check(obs(2500.0), market_open=True)
    with pytest.raises(SanityError):
        poll(checker, clock, 2800.0)
    assert poll(checker, clock, 2801.0) == 2801.0


def test_the_hold_counts_clock_time_not_the_quotes_own_times() -> None:
    """A feed stamping its garbage an hour apart does not confirm it in two polls."""
    clock = FakeClock(T0)
    checker = make(clock)
    checker.check(obs(2500.0, T0 - timedelta(hours=2)), market_open=True)
    with pytest.raises(SanityError):
        checker.check(obs(2800.0, T0 - timedelta(hours=1)), market_open=True)
    with pytest.raises(SanityError):
        checker.check(obs(2800.0, T0), market_open=True)


def test_a_value_absurdly_far_from_the_last_close_is_never_accepted() -> None:
    clock = FakeClock(T0)
    checker = make(clock)
    checker.check(
        obs(2500.0, T0 - timedelta(days=1), kind="close", session=date(2025, 1, 9)), False
    )
    for _ in range(30):  # half an hour of polls agreeing on it
        with pytest.raises(SanityError, match="never accepted"):
            poll(checker, clock, 1e12)
    for _ in range(30):
        with pytest.raises(SanityError, match="never accepted"):
            poll(checker, clock, 0.01)
    assert checker.last_good("RUT") == 2500.0
    assert poll(checker, clock, 2490.0) == 2490.0


def test_the_absurd_bound_uses_the_history_it_is_given_and_max_ratio() -> None:
    clock = FakeClock(T0)
    history = DailySeries([date(2025, 1, 8), date(2025, 1, 9)], [2450.0, 2500.0])
    checker = SanityChecker(
        SanityConfig.model_validate({"max_ratio": 2}),
        clock,
        history=lambda: History({"RUT": history}),
    )
    with pytest.raises(SanityError, match=r"2× away from the last good close 2500 of 2025-01-09"):
        checker.check(obs(5001.0), market_open=True)  # even as the first value
    assert checker.check(obs(4999.0), market_open=True).value == 4999.0  # within 2×


def test_max_ratio_must_be_above_one() -> None:
    with pytest.raises(ValueError):
        SanityConfig.model_validate({"max_ratio": 1})


def test_a_one_poll_spike_is_never_accepted() -> None:
    clock = FakeClock(T0)
    checker = make(clock)
    checker.check(obs(2500.0), market_open=True)
    with pytest.raises(SanityError):
        poll(checker, clock, 2900.0)
    assert poll(checker, clock, 2501.0) == 2501.0  # back to normal
    clock.advance(timedelta(minutes=10))
    with pytest.raises(SanityError):  # the old spike does not count as confirmation any more
        poll(checker, clock, 2900.0)


def test_polls_that_disagree_with_each_other_start_the_hold_again() -> None:
    clock = FakeClock(T0)
    checker = make(clock)
    checker.check(obs(2500.0), market_open=True)
    with pytest.raises(SanityError):
        poll(checker, clock, 2800.0)
    clock.advance(timedelta(minutes=10))
    with pytest.raises(SanityError):  # far from 2800: a new hold, not a confirmation
        poll(checker, clock, 3500.0)
    with pytest.raises(SanityError):
        poll(checker, clock, 3490.0)
    clock.advance(timedelta(minutes=5))
    assert poll(checker, clock, 3495.0) == 3495.0


def test_jump_limit_in_points() -> None:
    clock = FakeClock(T0)
    checker = make(clock, max_jump=50)
    checker.check(obs(2500.0), market_open=True)
    assert poll(checker, clock, 2549.0) == 2549.0
    with pytest.raises(SanityError):
        poll(checker, clock, 2600.0)


def test_rate_steps_are_not_jumps() -> None:
    checker = make()
    checker.check(Observation("FED", T0, 0.25, kind="rate"), market_open=False)
    assert checker.check(Observation("FED", T0, 0.5, kind="rate"), market_open=False).value == 0.5


def test_the_first_value_is_trusted() -> None:
    assert make().check(obs(2500.0), market_open=True).value == 2500.0


def test_a_real_one_day_crash_alerts_once_confirmed() -> None:
    """^RUT closed 1,210.13 on 2020-03-13 and 1,037.42 (−14.3 %) on 2020-03-16: prices that
    open 12 % lower are held for five minutes, then accepted, and the rules fire."""
    from bot.engine import Engine
    from tests.test_rule_support import make_config

    friday = date(2020, 3, 13)
    closes = DailySeries([date(2020, 3, 11), date(2020, 3, 12), friday], [1310.0, 1209.0, 1210.13])
    config = make_config(
        {"id": "rut-1100", "type": "cross", "symbol": "RUT", "level": 1100, "direction": "down"}
    )
    engine = Engine.from_config(config)
    history = History({"RUT": closes})
    open_time = datetime(2020, 3, 16, 13, 31, tzinfo=UTC)
    clock = FakeClock(open_time - timedelta(minutes=2))
    checker = SanityChecker(config.sanity, clock, history=lambda: history)
    states: dict[str, dict[str, object]] = {}
    alerts = []
    polls = [1211.0, 1210.0, 1065.0, 1061.0, 1058.0, 1062.0, 1059.0, 1060.0, 1052.0, 1050.0]
    for minute, value in enumerate(polls):
        clock.set(open_time + timedelta(minutes=minute - 2))
        try:
            checked = [checker.check(obs(value, clock.now()), market_open=True)]
        except SanityError:
            checked = []
        result = engine.evaluate(checked, history, states, clock)  # type: ignore[arg-type]
        states.update(result.states)
        alerts.extend(result.alerts)
    assert [(a.rule_id, a.value) for a in alerts] == [("rut-1100", 1060.0)]
    assert alerts[0].time == open_time + timedelta(minutes=5)  # 5 min after the first 1,065
    assert checker.last_good("RUT") == 1050.0


# -- staleness ---------------------------------------------------------------------------------


def test_quote_time_not_advancing_is_stale_after_the_limit_while_open() -> None:
    clock = FakeClock(T0)
    checker = make(clock)
    quote_time = T0 - timedelta(seconds=5)
    checker.check(obs(2500.0, quote_time), market_open=True)
    clock.advance(timedelta(minutes=10))
    assert checker.check(obs(2500.0, quote_time), market_open=True).value == 2500.0  # 10 min
    clock.advance(timedelta(minutes=6))
    with pytest.raises(SanityError, match="stale quote"):
        checker.check(obs(2500.0, quote_time), market_open=True)
    # a fresh quote is accepted again
    assert checker.check(obs(2501.0, clock.now()), market_open=True).value == 2501.0


def test_a_frozen_quote_is_never_stale_while_the_market_is_closed() -> None:
    clock = FakeClock(T0)
    checker = make(clock)
    friday_close = T0
    checker.check(obs(2500.0, friday_close), market_open=False)
    for _ in range(5):  # a whole weekend of polls
        clock.advance(timedelta(hours=12))
        frozen = obs(2500.0, friday_close)
        assert checker.check(frozen, market_open=False) is frozen


def test_staleness_only_counts_time_while_open() -> None:
    clock = FakeClock(T0)
    checker = make(clock)
    checker.check(obs(2500.0, T0), market_open=True)  # last print of the day
    clock.advance(timedelta(minutes=5))
    checker.check(obs(2500.0, T0), market_open=False)  # the close
    clock.advance(timedelta(hours=17))  # overnight, closed
    checker.check(obs(2500.0, T0), market_open=False)
    assert checker.check(obs(2500.0, T0), market_open=True).value == 2500.0  # the open: not stale
    clock.advance(timedelta(minutes=14))
    assert checker.check(obs(2500.0, T0), market_open=True).value == 2500.0
    clock.advance(timedelta(minutes=2))
    with pytest.raises(SanityError, match="stale"):
        checker.check(obs(2500.0, T0), market_open=True)


def test_closes_and_rates_are_not_checked_for_staleness() -> None:
    clock = FakeClock(T0)
    checker = make(clock)
    checker.check(obs(2500.0, T0, kind="close"), market_open=True)
    clock.advance(timedelta(hours=2))
    assert checker.check(obs(2500.0, T0, kind="close"), market_open=True).value == 2500.0
    checker.check(Observation("FED", T0, 4.5, kind="rate"), market_open=True)
    clock.advance(timedelta(hours=2))
    rate = Observation("FED", T0, 4.5, kind="rate")
    assert checker.check(rate, market_open=True) is rate


# -- persistence -------------------------------------------------------------------------------


def test_state_survives_a_restart_as_json() -> None:
    clock = FakeClock(T0)
    checker = make(clock)
    checker.check(obs(2500.0), market_open=True)
    with pytest.raises(SanityError):
        checker.check(obs(2800.0, T0 + timedelta(minutes=1)), market_open=True)

    saved = json.loads(json.dumps(checker.state()))
    restarted = make(clock)
    restarted.load(saved)
    assert restarted.last_good("RUT") == 2500.0
    # the pending jump survived too: a poll near 2800 five minutes after it confirms it
    clock.advance(timedelta(minutes=5))
    assert restarted.check(obs(2801.0, clock.now()), market_open=True).value == 2801.0


def test_loading_garbage_forgets_instead_of_crashing(caplog: pytest.LogCaptureFixture) -> None:
    checker = make()
    checker.load({"symbols": {"RUT": {"value": "abc"}, "SPX": {"time": "2025-01-10T10:00:00"}}})
    assert checker.last_good("RUT") is None
    assert checker.state()["symbols"] == {}
    checker.load({"symbols": 5})
    assert checker.state()["symbols"] == {}
    checker.load(None)
    assert checker.check(obs(2500.0), market_open=True).value == 2500.0


def test_a_state_with_a_future_time_is_forgotten_on_load() -> None:
    clock = FakeClock(T0)
    poisoned = make(FakeClock(datetime(2100, 1, 1, tzinfo=UTC)))
    poisoned.check(obs(2500.0, datetime(2100, 1, 1, tzinfo=UTC)), market_open=True)
    checker = make(clock)
    checker.load(json.loads(json.dumps(poisoned.state())))
    assert checker.last_good("RUT") is None
    assert checker.check(obs(2400.0), market_open=True).value == 2400.0


# -- future timestamps -------------------------------------------------------------------------


@pytest.mark.parametrize("ahead", [timedelta(hours=1), timedelta(days=365 * 75)])
@pytest.mark.parametrize("kind", ["price", "close", "rate"])
def test_observations_dated_in_the_future_are_rejected(ahead: timedelta, kind: str) -> None:
    checker = make()
    with pytest.raises(SanityError, match="in the future"):
        checker.check(obs(2500.0 if kind != "rate" else 4.5, T0 + ahead, kind=kind), True)
    assert checker.last_good("RUT") is None


def test_a_small_clock_skew_is_allowed_and_configurable() -> None:
    assert make().check(obs(2500.0, T0 + timedelta(minutes=4)), market_open=True).value == 2500.0
    with pytest.raises(SanityError, match="in the future"):
        make(max_skew="30s").check(obs(2500.0, T0 + timedelta(minutes=1)), market_open=True)


# -- plausible rates ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fields", "message"),
    [
        (99.0, {"lower": 4.25, "upper": 99.0}, "outside the plausible band"),
        (4.5, {"lower": 4.75, "upper": 4.5}, "lower bound 4.75% is above the upper bound 4.5%"),
        (-2.0, None, "outside the plausible band"),
        (26.0, None, "outside the plausible band"),
    ],
)
def test_implausible_rates_are_rejected(
    value: float, fields: dict[str, float] | None, message: str
) -> None:
    with pytest.raises(SanityError, match=message):
        make().check(Observation("FED", T0, value, kind="rate", fields=fields), False)


def test_the_rate_band_is_configurable_and_checked() -> None:
    checker = make(min_rate=0, max_rate=100)
    assert checker.check(Observation("X", T0, 99.0, kind="rate"), False).value == 99.0
    with pytest.raises(ValueError, match="min_rate"):
        SanityConfig.model_validate({"min_rate": 5, "max_rate": 5})


# -- history rows ------------------------------------------------------------------------------


def _days(n: int) -> list[date]:
    return [date(2025, 1, 1) + timedelta(days=i) for i in range(n)]


def test_history_rows_get_the_same_checks() -> None:
    values = [2400.0 + i for i in range(20)]
    values[5] = 1e12
    values[6] = 1e12  # two garbage rows in a row are still outvoted by their neighbours
    values[12] = 0.01
    values[14] = math.nan
    values[15] = -3.0
    days = _days(20)
    series = DailySeries(days, values)
    now = datetime(2025, 1, 18, 23, 0, tzinfo=UTC)  # rows 18, 19 are dated in the future
    cleaned = clean_daily("RUT", series, now, SanityConfig())
    dropped = set(days) - set(cleaned.dates)
    assert dropped == {days[i] for i in (5, 6, 12, 14, 15, 18, 19)}


def test_history_keeps_a_real_crash() -> None:
    """^RUT 2020-03: 1,210.13 on the 13th, 1,037.42 on the 16th (−14.3 %)."""
    values = [1310.0, 1209.0, 1210.13, 1037.42, 1106.0, 1091.0, 1015.0, 1013.0]
    series = DailySeries(_days(len(values)), values)
    now = datetime(2025, 2, 1, tzinfo=UTC)
    assert clean_daily("RUT", series, now, SanityConfig()).values == values


def test_history_rate_rows_get_the_band_and_order_checks(caplog: pytest.LogCaptureFixture) -> None:
    days = _days(4)
    series = DailySeries(
        days,
        [4.5, 99.0, 4.5, 4.25],
        {"lower": [4.25, 4.25, 4.75, 4.0], "upper": [4.5, 99.0, 4.5, 4.25]},
    )
    with caplog.at_level(logging.WARNING, logger="bot.sanity"):
        cleaned = clean_daily(
            "FED", series, datetime(2025, 2, 1, tzinfo=UTC), SanityConfig(), rates=True
        )
    assert cleaned.dates == [days[0], days[3]]
    assert cleaned.columns["lower"] == [4.25, 4.0]
    assert "FED" in caplog.text and "2025-01-02" in caplog.text and "plausible band" in caplog.text


def test_garbage_twice_cannot_rearm_a_fired_rule() -> None:
    """0.01 on two polls used to re-arm a fired ``cross`` (and 2,510 then fired again)."""
    from bot.engine import Engine
    from tests.test_rule_support import make_config

    engine = Engine.from_config(
        make_config({"id": "c", "type": "cross", "symbol": "RUT", "level": 2500})
    )
    clock = FakeClock(T0)
    checker = make(clock)
    states: dict[str, dict[str, object]] = {}
    fired = 0
    for value in (2490.0, 2510.0, 0.01, 0.01, 2510.0, 2512.0):
        clock.advance(MIN)
        try:
            checked = [checker.check(obs(value, clock.now()), market_open=True)]
        except SanityError:
            checked = []
        result = engine.evaluate(checked, History(), states, clock)  # type: ignore[arg-type]
        states.update(result.states)
        fired += len(result.alerts)
    assert fired == 1
