"""``relative``: one symbol beats / trails another by N percentage points over a window."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.model import History
from tests.test_rule_support import (
    business_days,
    close_at,
    closes,
    make_rule,
    run_batch,
    run_one_by_one,
    series,
)

RUT = series(
    [
        ("2025-08-29", 2000.0),
        ("2025-09-02", 2050.0),
        ("2025-09-03", 2150.0),
        ("2025-09-04", 2160.0),
        ("2025-09-05", 2000.0),
    ]
)
SPX = series(
    [
        ("2025-08-29", 6000.0),
        ("2025-09-02", 6030.0),
        ("2025-09-03", 6060.0),
        ("2025-09-04", 6000.0),
        ("2025-09-05", 6300.0),
    ]
)


def rule(**extra: object):
    params = {"type": "relative", "symbol": "RUT", "versus": "SPX", "window": "mtd"}
    params["threshold"] = 5
    params.update(extra)
    return make_rule(**params)


def all_closes() -> list:
    merged = closes("RUT", RUT) + closes("SPX", SPX)
    return sorted(merged, key=lambda o: (o.time, o.symbol))


def test_beats_by_five_points_mtd_once_per_month() -> None:
    history = History({"RUT": RUT, "SPX": SPX})
    _, drafts = run_batch(rule(), all_closes(), history)
    # 09-03: RUT +7.5%, SPX +1.0% → +6.5 points: fires up. 09-04: +8.0 vs 0.0: same month,
    # quiet. 09-05: RUT 0.0%, SPX +5.0% → -5.0 points: fires down.
    assert [d.key for d in drafts] == ["mtd:2025-09:up", "mtd:2025-09:down"]
    assert drafts[0].text == (
        "Russell 2000 (RUT) beats S&P 500 (SPX) by 6.50 points month-to-date: +7.50% vs +1.00% "
        "at the close of 2025-09-03 (2025-09-03 17:00 EDT)"
    )
    assert drafts[1].text.startswith("Russell 2000 (RUT) trails S&P 500 (SPX) by 5.00 points")
    assert drafts[0].value == 6.5


def test_waits_until_both_closed_the_session() -> None:
    """Live: RUT's close arrives first (SPX's row is not in history yet): nothing; SPX's close
    arrives next poll: judged then, once."""
    day = date(2025, 9, 3)
    partial = History({"RUT": RUT.until(day), "SPX": SPX.until(date(2025, 9, 2))})
    state, drafts = run_batch(rule(), [close_at("RUT", day, 2150.0)], partial)
    assert drafts == []
    full = History({"RUT": RUT.until(day), "SPX": SPX.until(day)})
    state, drafts = run_batch(rule(), [close_at("SPX", day, 6060.0)], full, state)
    assert [d.key for d in drafts] == ["mtd:2025-09:up"]
    _, again = run_batch(rule(), [close_at("RUT", day, 2150.0)], full, state)
    assert again == []


def test_direction_down_only_and_threshold_points() -> None:
    history = History({"RUT": RUT, "SPX": SPX})
    _, drafts = run_batch(rule(direction="down", threshold="4.5pt"), all_closes(), history)
    assert [d.key for d in drafts] == ["mtd:2025-09:down"]


def test_watched_symbols_are_both() -> None:
    assert rule().symbols() == ["RUT", "SPX"]


@settings(max_examples=50, deadline=None)
@given(
    moves=st.lists(
        st.tuples(st.floats(-3, 3, allow_nan=False), st.floats(-3, 3, allow_nan=False)),
        min_size=1,
        max_size=50,
    ),
    window=st.sampled_from(["1d", "5d", "mtd"]),
)
def test_batch_equals_one_by_one(moves: list[tuple[float, float]], window: str) -> None:
    days = business_days(date(2025, 1, 20), len(moves))
    a, b, rows_a, rows_b = 100.0, 100.0, [], []
    for da, db in moves:
        a, b = max(1.0, round(a + da, 2)), max(1.0, round(b + db, 2))
        rows_a.append(a)
        rows_b.append(b)
    history = History(
        {
            "RUT": series(zip(days, rows_a, strict=True)),
            "SPX": series(zip(days, rows_b, strict=True)),
        }
    )
    observations = sorted(
        closes("RUT", history.get("RUT")) + closes("SPX", history.get("SPX")),
        key=lambda o: o.time,
    )
    r = rule(window=window, threshold=3)
    state_a, batch = run_batch(r, observations, history)
    state_b, single = run_one_by_one(r, observations, history)
    assert [d.text for d in batch] == [d.text for d in single]
    assert state_a == state_b


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    window=st.sampled_from(["1d", "5d", "30d", "mtd", "qtd", "ytd"]),
    threshold=st.sampled_from([1, 3, 8]),
    direction=st.sampled_from(["up", "down", "both"]),
    split=st.integers(0, 300),
    versus_first=st.booleans(),
)
def test_long_batch_fast_path_equals_one_by_one(
    seed: int, window: str, threshold: int, direction: str, split: int, versus_first: bool
) -> None:
    """Batches of BATCH_MIN rows or more take the numpy fast path; it must agree with the
    per-observation loop, also when resuming from a state carried through JSON — with sessions
    only one symbol has (holidays of one market), zero bases, and either symbol's close
    arriving first."""
    import json
    import random

    from bot.rules.batch import BATCH_MIN

    rng = random.Random(seed)
    days = business_days(date(2023, 11, 1), 330)
    a, b, rows_a, rows_b = 100.0, 100.0, [], []
    for day in days:
        a = max(1.0, round(a * (1 + rng.gauss(0, 0.02)), 2))
        b = max(1.0, round(b * (1 + rng.gauss(0, 0.015)), 2))
        if rng.random() < 0.95:
            rows_a.append((day, 0.0 if rng.random() < 0.01 else a))
        if rng.random() < 0.95:
            rows_b.append((day, b))
    history = History({"RUT": series(rows_a), "SPX": series(rows_b)})
    order = (lambda o: (o.time, o.symbol != "SPX")) if versus_first else (lambda o: o.time)
    observations = sorted(
        closes("RUT", history.get("RUT")) + closes("SPX", history.get("SPX")), key=order
    )
    r = rule(window=window, threshold=threshold, direction=direction)
    assert len(observations) - split >= BATCH_MIN
    first_state, first = run_batch(r, observations[:split], history)
    state = json.loads(json.dumps(first_state))
    state_a, batch = run_batch(r, observations[split:], history, state)
    state_b, single = run_one_by_one(r, observations, history)
    assert [(d.key, d.text, d.value) for d in first + batch] == [
        (d.key, d.text, d.value) for d in single
    ]
    assert state_a == state_b
