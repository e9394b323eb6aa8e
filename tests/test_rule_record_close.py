"""``record_close``: new all-time (or N-session) closing highs/lows, seeded from history."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config import ConfigError
from bot.model import History
from tests.test_rule_support import (
    business_days,
    close_at,
    closes,
    make_config,
    make_rule,
    price_at,
    run_batch,
    run_one_by_one,
    series,
)

# ^RUT around its 2021 record and the 2024-11-25 near miss (real closes; a sparse excerpt, so
# "sessions" below counts the rows of this excerpt).
RUT = series(
    [
        ("2021-11-04", 2400.16),
        ("2021-11-05", 2437.08),
        ("2021-11-08", 2442.74),  # the record that stood until 2025-09-18
        ("2021-11-09", 2412.27),
        ("2024-11-22", 2406.67),
        ("2024-11-25", 2442.03),  # intraday above 2,442.74, closed below: no alert
        ("2024-11-26", 2424.63),
        ("2025-09-17", 2421.08),
        ("2025-09-18", 2467.70),  # the first record close since 2021
    ]
)


def test_2024_11_25_intraday_above_record_close_below_no_alert() -> None:
    rule = make_rule(type="record_close", symbol="RUT")
    day = date(2024, 11, 25)
    history = History({"RUT": RUT.until(day)})
    intraday = price_at("RUT", datetime(2024, 11, 25, 15, 0, tzinfo=UTC), 2466.49)
    assert not rule.wants(intraday)  # never on intraday prints
    state, drafts = run_batch(rule, [intraday, close_at("RUT", day, 2442.03)], history)
    assert drafts == []
    assert state["record"] == 2442.74
    assert state["date"] == "2021-11-08"


def test_first_record_close_since_2021_message() -> None:
    rule = make_rule(type="record_close", symbol="RUT")
    day = date(2025, 9, 18)
    _, drafts = run_batch(rule, [close_at("RUT", day, 2467.70)], History({"RUT": RUT}))
    assert len(drafts) == 1
    draft = drafts[0]
    assert draft.key == "high:2025-09-18"
    assert draft.text == (
        "Russell 2000 (RUT) closed at a record high of 2,467.70 on 2025-09-18: previous record "
        "2,442.74 of 2021-11-08, +24.96 points (+1.02%); the first record close since "
        "2021-11-08, ending a 1,410-day stretch (6 sessions) — the longest since 2021"
    )
    assert draft.fields["stretch_rank"] == "1st" and draft.fields["since_year"] == "2021"
    assert draft.fields["previous"] == "2,442.74"
    assert draft.fields["days"] == "1,410"


def test_first_run_is_seeded_from_history() -> None:
    """No state: the record comes from history, a close below it sends nothing."""
    rule = make_rule(type="record_close", symbol="RUT")
    history = History({"RUT": RUT})
    state, drafts = run_batch(rule, [close_at("RUT", date(2025, 9, 17), 2421.08)], history)
    assert drafts == []
    assert (state["record"], state["date"]) == (2442.74, "2021-11-08")


def test_no_history_first_close_only_seeds() -> None:
    rule = make_rule(type="record_close", symbol="RUT")
    state, drafts = run_batch(rule, [close_at("RUT", date(2025, 1, 2), 2000.0)])
    assert drafts == []
    assert state["record"] == 2000.0


def test_same_close_twice_fires_once() -> None:
    rule = make_rule(type="record_close", symbol="RUT")
    history = History({"RUT": RUT})
    observation = close_at("RUT", date(2025, 9, 18), 2467.70)
    state, first = run_batch(rule, [observation], history)
    _, again = run_batch(rule, [observation], history, state)
    assert len(first) == 1 and again == []


def test_missed_closes_are_folded_in_silently() -> None:
    """After downtime the record includes closes the rule never saw."""
    rule = make_rule(type="record_close", symbol="RUT")
    history = History({"RUT": RUT})
    state, _ = run_batch(
        rule,
        [close_at("RUT", date(2021, 11, 4), 2400.16)],
        history.__class__({"RUT": RUT.until(date(2021, 11, 4))}),
    )
    assert state["record"] == 2400.16
    # Back up on 2021-11-09: 11-05 and 11-08 were records nobody judged; 11-09 is not one.
    _, drafts = run_batch(rule, [close_at("RUT", date(2021, 11, 9), 2412.27)], history, state)
    assert drafts == []


def test_record_low() -> None:
    rule = make_rule(type="record_close", symbol="RUT", kind="low")
    data = series([("2025-01-02", 100), ("2025-01-03", 90), ("2025-01-06", 95), ("2025-01-07", 89)])
    _, drafts = run_batch(rule, closes("RUT", data), History({"RUT": data}))
    assert [d.value for d in drafts] == [90, 89]
    assert "record low of 89.00" in drafts[1].text


def test_window_highs_forget_old_records() -> None:
    rule = make_rule(type="record_close", symbol="RUT", window="3d")
    data = series(
        [
            ("2025-01-02", 100),
            ("2025-01-03", 99),
            ("2025-01-06", 98),
            ("2025-01-07", 97),
            ("2025-01-08", 99.5),  # above the previous 3 closes (99, 98, 97): a 3-session high
            ("2025-01-09", 99.4),
        ]
    )
    _, drafts = run_batch(rule, closes("RUT", data), History({"RUT": data}))
    assert [d.key for d in drafts] == ["high:2025-01-08"]
    assert "3-session high of 99.50" in drafts[0].text
    assert "previous 3-session high 99.00 of 2025-01-03" in drafts[0].text


def test_window_must_count_sessions() -> None:
    with pytest.raises(ConfigError, match="expected a number of sessions"):
        make_config({"id": "r", "type": "record_close", "symbol": "RUT", "window": "mtd"})


@settings(max_examples=80, deadline=None)
@given(
    steps=st.lists(st.floats(-3, 3, allow_nan=False), min_size=2, max_size=80),
    window=st.sampled_from([None, "5d", "20d"]),
    kind=st.sampled_from(["high", "low"]),
    warm=st.integers(0, 20),
)
def test_batch_equals_one_by_one_and_brute_force(
    steps: list[float], window: str | None, kind: str, warm: int
) -> None:
    days = business_days(date(2025, 1, 1), len(steps))
    values, level = [], 100.0
    for step in steps:
        level = round(level + step, 2)
        values.append(level)
    data = series(zip(days, values, strict=True))
    params = {"type": "record_close", "symbol": "RUT", "kind": kind}
    if window:
        params["window"] = window
    rule = make_rule(**params)
    history = History({"RUT": data})
    observations = closes("RUT", data)[warm:]
    if not observations:
        return
    state_a, batch = run_batch(rule, observations, history)
    state_b, single = run_one_by_one(rule, observations, history)
    assert [d.text for d in batch] == [d.text for d in single]
    assert state_a == state_b
    # Brute force: a close beyond every earlier close (of the window) — earlier rows from history.
    span = int(window[:-1]) if window else None
    expected = []
    for i in range(warm, len(values)):
        earlier = values[:i] if span is None else values[max(0, i - span) : i]
        if earlier and (values[i] > max(earlier) if kind == "high" else values[i] < min(earlier)):
            expected.append(days[i].isoformat())
    assert [d.key.split(":")[1] for d in batch] == expected


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    kind=st.sampled_from(["high", "low"]),
    split=st.integers(0, 300),
    with_history_before=st.booleans(),
)
def test_long_batch_fast_path_equals_one_by_one(
    seed: int, kind: str, split: int, with_history_before: bool
) -> None:
    """Long batches of an all-time record rule take the numpy fast path (only rows setting a
    record are visited); outcome and state must match the per-observation loop, including
    ties, closes folded from history and a state carried through JSON."""
    import json
    import random

    from bot.rules.batch import BATCH_MIN

    rng = random.Random(seed)
    days = business_days(date(2020, 1, 1), 360)
    level, values = 100.0, []
    for _ in days:
        level = max(1.0, round(level + rng.choice([-2, -1, 0, 0, 1, 2]) * rng.random(), 1))
        values.append(level)
    data = series(zip(days, values, strict=True))
    history = History({"RUT": data})
    rule = make_rule(type="record_close", symbol="RUT", kind=kind)
    observations = closes("RUT", data)[40 if with_history_before else 0 :]
    first_state, first = run_batch(rule, observations[:split], history)
    state = json.loads(json.dumps(first_state)) if split else None
    rest = observations[split:]
    assert len(rest) >= BATCH_MIN
    state_a, batch = run_batch(rule, rest, history, state)
    state_b, single = run_one_by_one(rule, observations, history)
    assert [(d.key, d.text) for d in first + batch] == [(d.key, d.text) for d in single]
    assert state_a == state_b


def test_record_alert_ranks_the_drought_it_ends() -> None:
    """Stretches between record closes: 1,827 days (2000 → 2005), 1 day, then the one the new
    record ends (1,462 days): the 2nd-longest of the history."""
    history = series(
        [
            ("2000-01-03", 100.0),
            ("2003-01-02", 60.0),
            ("2005-01-03", 101.0),
            ("2005-01-04", 102.0),
            ("2007-01-03", 90.0),
        ]
    )
    rule = make_rule(type="record_close", symbol="RUT")
    _, drafts = run_batch(
        rule, [close_at("RUT", date(2009, 1, 5), 103.0)], History({"RUT": history})
    )
    assert len(drafts) == 1
    assert drafts[0].text.endswith(
        "; the first record close since 2005-01-04, ending a 1,462-day stretch (2 sessions) — "
        "the 2nd-longest since 2000"
    )
    assert drafts[0].fields["stretch_rank"] == "2nd"


def test_record_alert_after_a_record_the_session_before_says_how_long_it_stood() -> None:
    history = series([("2025-01-02", 100.0), ("2025-01-03", 101.0)])
    rule = make_rule(type="record_close", symbol="RUT")
    _, drafts = run_batch(
        rule, [close_at("RUT", date(2025, 1, 6), 102.0)], History({"RUT": history})
    )
    assert drafts[0].text.endswith("; it stood 3 days (1 session)")


def test_record_low_alert_is_not_ranked() -> None:
    history = series([("2025-01-02", 100.0), ("2025-01-03", 101.0), ("2025-01-06", 102.0)])
    rule = make_rule(type="record_close", symbol="RUT", kind="low")
    _, drafts = run_batch(
        rule, [close_at("RUT", date(2025, 1, 7), 99.0)], History({"RUT": history})
    )
    assert drafts[0].text.endswith("; it stood 5 days (3 sessions)")
    assert drafts[0].fields["stretch_rank"] == ""
