"""``digest``: a summary once per trading day at/after ``at`` in the exchange's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.engine import Engine
from bot.model import DailySeries, History, Observation
from tests.test_rule_support import CLOCK, business_days, make_config, run_one_by_one, series

NEW_YORK = ZoneInfo("America/New_York")

RUT = series(
    [
        ("2021-11-08", 2442.74),
        ("2024-12-31", 2230.16),
        ("2025-08-29", 2366.42),
        ("2025-09-17", 2421.08),
        ("2025-09-18", 2467.70),
        ("2025-09-19", 2448.77),
    ]
)
FED_DAYS = [date(2024, 12, 18), date(2024, 12, 19), date(2025, 9, 17), date(2025, 9, 18)]
FED = DailySeries(
    FED_DAYS,
    [4.75, 4.50, 4.50, 4.25],
    {"lower": [4.50, 4.25, 4.25, 4.00], "upper": [4.75, 4.50, 4.50, 4.25]},
)
HISTORY = History({"RUT": RUT, "FED": FED})


def tick(day: date, hour: int, minute: int) -> Observation:
    moment = datetime.combine(day, time(hour, minute), NEW_YORK).astimezone(UTC)
    return Observation("*", moment, 0.0, "tick")


def digest_rule(**extra: object):
    params = {"id": "digest", "type": "digest", "symbols": ["RUT", "SPX"], "at": "16:15"}
    params["rate"] = "FED"
    params.update(extra)
    config = make_config(
        params,
        {"id": "rut-2500", "type": "cross", "symbol": "RUT", "level": 2500},
        {"id": "rut-ladder", "type": "cross", "symbol": "RUT", "levels": [2400, 2600]},
    )
    return Engine.from_config(config).rules[0]


def run(observations: list[Observation], state=None):
    rule = digest_rule()
    return rule.evaluate([o for o in observations if rule.wants(o)], HISTORY, state, CLOCK)


def test_summary_content() -> None:
    _, drafts = run([tick(date(2025, 9, 18), 16, 15)])
    assert len(drafts) == 1
    assert drafts[0].key == "2025-09-18"
    assert drafts[0].value == 2467.70
    assert drafts[0].text.splitlines() == [
        "Daily digest 2025-09-18 (16:15 EDT)",
        "Russell 2000 (RUT) 2,467.70 on 2025-09-18: day +1.93%, MTD +4.28%, YTD +10.65%",
        "  record close 2,467.70 (2025-09-18): +0.00%, a record close today",
        "  levels: 2,400: 2.74% below, 2,500: 1.31% above, 2,600: 5.36% above",
        "S&P 500 (SPX): no data yet",
        "Fed funds target range (FED) 4.00–4.25% (since 2025-09-18)",
    ]


def test_days_since_record_and_rate_since() -> None:
    _, drafts = run([tick(date(2025, 9, 17), 16, 30)])
    lines = drafts[0].text.splitlines()
    assert lines[2] == (
        "  record close 2,442.74 (2021-11-08): -0.89%, 1,409 days since (longest stretch)"
    )
    assert lines[-1] == "Fed funds target range (FED) 4.25–4.50% (since 2024-12-19)"


def test_once_per_trading_day_at_or_after_at() -> None:
    day = date(2025, 9, 18)
    observations = [tick(day, 16, 14), tick(day, 16, 15), tick(day, 16, 16), tick(day, 23, 0)]
    state, drafts = run(observations)
    assert [d.time.astimezone(NEW_YORK).time() for d in drafts] == [time(16, 15)]
    _, again = run([tick(day, 16, 20)], state)
    assert again == []
    _, next_day = run([tick(date(2025, 9, 19), 16, 15)], state)
    assert [d.key for d in next_day] == ["2025-09-19"]


def test_not_on_weekends_or_holidays() -> None:
    observations = [tick(date(2025, 9, 20), 16, 30), tick(date(2025, 7, 4), 16, 30)]
    _, drafts = run(observations)
    assert drafts == []


def test_no_look_ahead_before_the_close() -> None:
    """A digest at noon shows the previous close, even though history has the day's row."""
    rule = digest_rule(at="12:00")
    _, drafts = rule.evaluate([tick(date(2025, 9, 18), 12, 0)], HISTORY, None, CLOCK)
    assert "RUT) 2,421.08 on 2025-09-17" in drafts[0].text


def test_scheduled_times_are_trading_days_in_new_york() -> None:
    rule = digest_rule()
    times = rule.scheduled_times(date(2025, 7, 3), date(2025, 7, 8))
    assert [t.astimezone(NEW_YORK).strftime("%a %d %H:%M") for t in times] == [
        "Thu 03 16:15",
        "Mon 07 16:15",
        "Tue 08 16:15",
    ]  # 07-04 holiday, weekend


def test_state_carried_through_json_gives_the_same_digests() -> None:
    rule = digest_rule()
    days = [date(2025, 9, 17), date(2025, 9, 18), date(2025, 9, 19)]
    observations = [tick(d, 16, 15) for d in days]
    _, batch = rule.evaluate(observations, HISTORY, None, CLOCK)
    _, single = run_one_by_one(rule, observations, HISTORY)
    assert [d.text for d in batch] == [d.text for d in single]
    assert len(batch) == 3


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    split=st.integers(0, 40),
    zeros=st.booleans(),
    at=st.sampled_from(["15:30", "16:15"]),
    times=st.lists(st.sampled_from([(16, 15), (16, 45), (23, 30)]), min_size=1),
)
def test_long_batch_fast_path_equals_one_by_one(
    seed: int, split: int, zeros: bool, at: str, times: list[tuple[int, int]]
) -> None:
    """Batches of BATCH_MIN due digests or more take the numpy fast path; its texts, values and
    state must equal the per-tick loop's, also when resuming from a state carried through JSON.
    Covers no data yet, ticks before ``at`` and (``at`` 15:30) before the close, new records,
    levels, a zero close or base (worded by the scalar code) and a moving rate."""
    import json
    import random

    from bot.rules.batch import BATCH_MIN

    rng = random.Random(seed)
    days = business_days(date(2024, 11, 20), 90)
    rut, spx, level = [], [], 2400.0
    for day in days[3:]:
        level = max(0.0, round(level * (1 + rng.gauss(0, 0.02)), 2))
        rut.append((day, 0.0 if zeros and rng.random() < 0.05 else level))
        if rng.random() < 0.9:  # SPX misses a few sessions
            spx.append((day, round(5000 + rng.gauss(0, 50), 2)))
    fed_days = days[::7]
    uppers = [4.5 - 0.25 * (i // 3) for i in range(len(fed_days))]
    history = History(
        {
            "RUT": series(rut),
            "SPX": series(spx),
            "FED": DailySeries(
                fed_days, uppers, {"lower": [u - 0.25 for u in uppers], "upper": uppers}
            ),
        }
    )
    observations = []  # from before the first close
    for i, day in enumerate(days[:-5]):
        observations += [tick(day, 15, 0), tick(day, 15, 45), tick(day, *times[i % len(times)])]
    rule = digest_rule(at=at)
    first_state, first = rule.evaluate(observations[:split], history, None, CLOCK)
    state = json.loads(json.dumps(first_state))
    state_a, batch = rule.evaluate(observations[split:], history, state, CLOCK)
    assert len(batch) >= BATCH_MIN
    state_b, single = run_one_by_one(rule, observations, history)
    assert [(d.key, d.text, d.value, d.fields) for d in first + batch] == [
        (d.key, d.text, d.value, d.fields) for d in single
    ]
    assert json.loads(json.dumps(state_a)) == state_b


def test_fed_range_is_current_after_a_cut_alert_of_the_same_day() -> None:
    """The live poll delivers the cut (FRED row of 2025-09-18) while the daily history still
    ends the day before: the rate_change alert and that evening's digest say the same range."""
    config = make_config(
        {
            "id": "digest",
            "type": "digest",
            "symbols": ["RUT"],
            "rate": "FED",
            "at": "16:15",
        },
        {"id": "fed-rate", "type": "rate_change", "symbol": "FED"},
    )
    engine = Engine.from_config(config)
    day = date(2025, 9, 18)
    history = History({"RUT": RUT, "FED": FED.until(date(2025, 9, 17))})
    cut = Observation(
        "FED",
        datetime.combine(day, time(0), UTC),
        4.25,
        "rate",
        day,
        {"lower": 4.00, "upper": 4.25},
    )
    states: dict = {}
    first = engine.evaluate([tick(date(2025, 9, 17), 16, 15)], history, states, CLOCK)
    states.update(first.states)
    result = engine.evaluate([cut, tick(day, 16, 15)], history, states, CLOCK)
    by_rule = {a.rule_id: a.text for a in result.alerts}
    assert "4.25–4.50% → 4.00–4.25%" in by_rule["fed-rate"]
    assert by_rule["digest"].splitlines()[-1] == (
        "Fed funds target range (FED) 4.00–4.25% (since 2025-09-18)"
    )
    # The next day, with the history caught up, the digest says the same.
    states.update(result.states)
    history.set("FED", FED)
    later = engine.evaluate([tick(date(2025, 9, 19), 16, 15)], history, states, CLOCK)
    assert later.alerts[0].text.splitlines()[-1] == (
        "Fed funds target range (FED) 4.00–4.25% (since 2025-09-18)"
    )


def test_a_digest_waits_for_the_days_closes_instead_of_repeating_yesterdays() -> None:
    rule = digest_rule(symbols=["RUT"])
    day = date(2025, 9, 18)
    late = History({"RUT": RUT.until(date(2025, 9, 17)), "FED": FED})
    state, drafts = rule.evaluate([tick(day, 16, 15)], late, None, CLOCK)
    assert drafts == []  # RUT's session closed at 16:00, its close is not in yet
    _, drafts = rule.evaluate([tick(day, 16, 40)], HISTORY, state, CLOCK)
    assert [d.key for d in drafts] == ["2025-09-18"]
    assert "RUT) 2,467.70 on 2025-09-18:" in drafts[0].text


def test_16_15_digest_marks_rty_previous_day_close() -> None:
    """CME closes at 17:00: at 16:15 RTY=F's latest close is the previous day's, and says so."""
    rty = series([("2025-09-12", 2410.0), ("2025-09-15", 2420.0), ("2025-09-16", 2430.0)])
    history = History({"RUT": RUT, "RTY": rty, "FED": FED})
    rule = digest_rule(symbols=["RUT", "RTY"])
    _, drafts = rule.evaluate(
        [tick(date(2025, 9, 15), 16, 15), tick(date(2025, 9, 16), 16, 15)], history, None, CLOCK
    )
    monday, tuesday = (d.text.splitlines() for d in drafts)
    assert "RTY futures (RTY) 2,410.00 on 2025-09-12 (last close): " in "\n".join(monday)
    assert "RTY futures (RTY) 2,420.00 on 2025-09-15 (yesterday's close): " in "\n".join(tuesday)


def test_a_symbol_whose_data_ended_is_no_longer_listed() -> None:
    spx = series([("2025-09-05", 6481.50), ("2025-09-08", 6495.15)])
    rut = series(sorted([*zip(RUT.dates, RUT.values, strict=True), (date(2025, 9, 15), 2400.0)]))
    history = History({"RUT": rut, "SPX": spx, "FED": FED})
    rule = digest_rule()
    _, drafts = rule.evaluate(
        [tick(date(2025, 9, 15), 16, 15), tick(date(2025, 9, 17), 16, 15)], history, None, CLOCK
    )
    assert "S&P 500 (SPX) 6,495.15 on 2025-09-08 (last close)" in drafts[0].text
    assert "S&P 500" not in drafts[1].text  # 9 days old: its data ended
    assert "Russell 2000 (RUT) 2,421.08 on 2025-09-17:" in drafts[1].text


def test_no_digest_once_every_symbols_data_ended() -> None:
    """A backtest past the last row: no digest of nothing but a rate for months."""
    rule = digest_rule(symbols=["RUT"])
    _, drafts = rule.evaluate([tick(date(2025, 12, 1), 16, 15)], HISTORY, None, CLOCK)
    assert drafts == []


def test_fed_range_follows_a_statement_its_rate_symbol_confirms() -> None:
    """With ``rate_change`` on a statement symbol that FED ``confirm``s (the FOMC statement at
    14:00, FRED's row the next day), the 16:15 digest already shows the statement's range."""
    import pytest

    from bot.config import parse_config
    from bot.rules.rate_change import RateChangeParams

    if "confirm" not in RateChangeParams.model_fields:
        pytest.skip("rate_change has no `confirm` option in this tree")
    text = """
sources: {fred: {type: fred}, yahoo: {type: yahoo}}
symbols:
  RUT: {source: yahoo, ticker: "^RUT", name: Russell 2000, calendar: XNYS}
  FED: {source: fred, series: {lower: DFEDTARL, upper: DFEDTARU}, name: Fed funds target range}
  STMT: {source: fred, series: {lower: DFEDTARL, upper: DFEDTARU}, name: Statement}
rules:
  - {id: fed-rate, type: rate_change, symbol: STMT, confirm: FED}
  - {id: digest, type: digest, symbols: [RUT], rate: FED, at: "16:15"}
"""
    engine = Engine.from_config(parse_config(text, "test.yaml", {}))
    digest = next(rule for rule in engine.rules if rule.id == "digest")
    day = date(2025, 9, 17)
    statement = Observation(
        "STMT",
        datetime(2025, 9, 17, 18, 0, tzinfo=UTC),
        4.25,
        "rate",
        day,
        {"lower": 4.00, "upper": 4.25},
    )
    assert digest.wants(statement)
    history = History({"RUT": RUT, "FED": FED.until(date(2025, 9, 17))})
    _, drafts = digest.evaluate([statement, tick(day, 16, 15)], history, None, CLOCK)
    assert drafts[0].text.splitlines()[-1] == (
        "Fed funds target range (FED) 4.00–4.25% (since 2025-09-17)"
    )
