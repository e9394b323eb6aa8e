"""Every rule's numpy fast path (:mod:`bot.rules.batch`) gives what its plain loop gives.

A rule type needs only its per-observation loop; a fast path is an optional addition for long
batches. This file proves each one, for every rule type at once: long random batches are
evaluated twice, once as usual (fast paths taken) and once inside :func:`loops_only` (every rule
runs its loop), directly and through the backtest (the engine's shared batches and caches), and
the alerts and states must be identical. A rule type that adds a fast path gets a line in
:data:`EXAMPLES` (a test below fails until it has one), and is then covered here. The
per-rule files add batch-versus-one-by-one properties (the loop against the live loop).
"""

from __future__ import annotations

import json
import random
import re
from contextlib import nullcontext
from datetime import date
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.backtest import replay
from bot.engine import Engine
from bot.model import DailySeries, History
from bot.rules import RULES
from bot.rules.batch import BATCH_MIN, fast_path, loops_only, rows_to_visit
from tests.test_rule_support import CLOCK, business_days, closes, make_config, series

#: Parameter sets per rule type (``id``/``type`` added below), chosen to reach every branch of
#: the fast paths: ladders and re-arms, session and calendar windows, highs/lows, the digest.
EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "cross": [
        {"symbol": "RUT", "levels": [95, 100, 105]},
        {"symbol": "RUT", "level": 100, "rearm": "1%", "direction": "up"},
        {"symbol": "RUT", "level": 98, "rearm": 2, "direction": "down"},
    ],
    "change": [
        {"symbol": "RUT", "window": "1d", "threshold": "2%"},
        {"symbol": "RUT", "window": "5d", "threshold": "4%", "direction": "down"},
        {"symbol": "RUT", "window": "mtd", "threshold": 5},
        {"symbol": "RUT", "window": "ytd", "threshold": "8%"},
    ],
    "record_close": [
        {"symbol": "RUT"},
        {"symbol": "RUT", "kind": "low"},
        {"symbol": "RUT", "window": "20d"},
    ],
    "relative": [
        {"symbol": "RUT", "versus": "SPX", "window": "mtd", "threshold": 3},
        {"symbol": "RUT", "versus": "SPX", "window": "5d", "threshold": 2, "direction": "up"},
    ],
    "digest": [{"symbols": ["RUT", "SPX"], "at": "16:15", "rate": "FED"}],
    "near": [
        {"symbol": "RUT", "level": 110, "within": "1%"},
        {"symbol": "RUT", "level": 100, "within": 2, "rearm": "3%"},
        {"symbol": "RUT", "of": "record", "within": "1%"},
        {"symbol": "RUT", "of": "record", "within": "3%", "rearm": 1, "on": "close"},
    ],
    "rate_change": [{"symbol": "FED"}],
}


def all_rules() -> list[dict[str, Any]]:
    """Every example as a rule entry with a unique id."""
    return [
        {"id": f"{kind}-{n}", "type": kind, **params}
        for kind, examples in EXAMPLES.items()
        for n, params in enumerate(examples)
    ]


def random_history(seed: int, rows: int) -> History:
    """Random walks for RUT and SPX (SPX missing a few sessions) and a stepping Fed range."""
    rng = random.Random(seed)
    days = business_days(date(2022, 11, 1), rows)
    rut, spx, level, other = [], [], 100.0, 4000.0
    for day in days:
        level = max(1.0, round(level * (1 + rng.gauss(0, 0.015)), 2))
        other = max(1.0, round(other * (1 + rng.gauss(0, 0.01)), 2))
        rut.append((day, level))
        if rng.random() < 0.95:
            spx.append((day, other))
    fed_days = days[::9]
    uppers = [5.0 - 0.25 * (i // 4) for i in range(len(fed_days))]
    fed = DailySeries(fed_days, uppers, {"lower": [u - 0.25 for u in uppers], "upper": uppers})
    return History({"RUT": series(rut), "SPX": series(spx), "FED": fed})


def test_every_rule_type_with_a_fast_path_has_examples() -> None:
    """A rule type whose module reaches a fast path must be listed in EXAMPLES (so it is
    tested here); rule types with only a loop need not be."""
    import inspect
    import sys

    with_fast_path = {
        name
        for name in RULES.names()
        if re.search(
            r"\b(fast_path|rows_to_visit)\(",
            inspect.getsource(sys.modules[RULES.get(name).__module__]),
        )
    }
    assert {"cross", "near", "change", "record_close", "relative", "digest"} <= with_fast_path
    assert with_fast_path <= set(EXAMPLES)
    assert set(EXAMPLES) <= set(RULES.names())


def test_the_door_to_the_fast_paths() -> None:
    """Short batches and :func:`loops_only` run the loop; the fast path may decline."""
    assert fast_path(BATCH_MIN - 1, lambda: "fast") is None
    assert fast_path(BATCH_MIN, lambda: "fast") == "fast"
    assert fast_path(BATCH_MIN, lambda: None) is None
    with loops_only():
        assert fast_path(10 * BATCH_MIN, lambda: "fast") is None
        assert list(rows_to_visit(20, lambda: [3, 7], start=1)) == list(range(1, 20))
    assert list(rows_to_visit(20, lambda: [3, 7], start=1)) == [3, 7]
    assert list(rows_to_visit(20, lambda: None)) == list(range(20))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 100_000), rows=st.integers(BATCH_MIN + 5, 160))
def test_each_rule_fast_path_equals_its_loop(seed: int, rows: int) -> None:
    """Each rule alone, one long batch of closes: same alerts and state with and without the
    fast path, from no state and from the state of an earlier batch carried through JSON."""
    history = random_history(seed, rows)
    config = make_config(*all_rules())
    engine = Engine.from_config(config)
    merged = sorted(
        closes("RUT", history.get("RUT")) + closes("SPX", history.get("SPX")),
        key=lambda o: (o.time, o.symbol),
    )
    split = rows // 4
    for rule in engine.rules:
        wanted = [o for o in merged if rule.wants(o)]
        results = []
        for fast in (True, False):
            with nullcontext() if fast else loops_only():
                state, first = rule.evaluate(wanted[:split], history, None, CLOCK)
                state = json.loads(json.dumps(state))
                state, rest = rule.evaluate(wanted[split:], history, state, CLOCK)
            drafts = [(d.key, d.text, d.time, d.value, d.fields) for d in first + rest]
            results.append((json.loads(json.dumps(state)), drafts))
        assert results[0] == results[1], rule.id


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 100_000))
def test_backtest_with_fast_paths_equals_loops_only(seed: int) -> None:
    """The whole backtest (engine, shared batches, ticks for the digest, warm-up) gives the
    same alerts with and without fast paths."""
    history = random_history(seed, 260)
    config = make_config(*all_rules())
    start = history.get("RUT").dates[60]
    fast = replay(config, history, start)
    with loops_only():
        loop = replay(config, history, start)
    assert [(a.id, a.text, a.time, a.value) for a in fast] == [
        (a.id, a.text, a.time, a.value) for a in loop
    ]
    assert any(a.rule_type == "digest" for a in fast)
