"""``rate_odds``: FedWatch-style odds from ZQ prices; an alert when P(cut at the next meeting)
crosses the threshold; the summary kept for the digest and commands."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from itertools import groupby
from typing import Any

from bot.clock import FakeClock
from bot.model import AlertDraft, History, Observation
from bot.rules import Rule
from tests.test_rule_fomc import make_rule, statement


def run(
    rule: Rule[Any], observations: Sequence[Observation], clock: FakeClock
) -> tuple[dict[str, Any], list[AlertDraft]]:
    """One poll at a time (a poll's quotes in one call, as the engine hands them over); the
    state through JSON, as the store keeps it."""
    state: dict[str, Any] | None = None
    drafts: list[AlertDraft] = []
    for _, group in groupby(observations, key=lambda o: o.time):
        batch = [o for o in group if rule.wants(o)]
        clock.set(max(clock.now(), batch[0].time))
        new, found = rule.evaluate(batch, History(), state, clock)
        drafts.extend(found)
        state = json.loads(json.dumps(new))
    return state or {}, drafts


CONTRACTS = {"2026-09": "ZQU26", "2026-10": "ZQV26", "2026-11": "ZQX26"}
MEETINGS = [
    {"start": "2026-10-27", "decision_day": "2026-10-28", "projections": False},
    {"start": "2026-12-08", "decision_day": "2026-12-09", "projections": True},
]
EFFR = 3.63


def quote(symbol: str, price: float, minute: int) -> Observation:
    moment = datetime(2026, 10, 1, 14, tzinfo=UTC) + timedelta(minutes=minute)
    return Observation(symbol, moment, price, "price")


def october_price(p_cut: float) -> float:
    """The October contract when the market gives a 25 bp cut on the 28th probability p."""
    after = EFFR - 0.25 * p_cut
    return 100 - (27 * EFFR + 4 * after) / 31


def curve(p_cut: float, minute: int) -> list[Observation]:
    return [
        quote("ZQU26", 100 - EFFR, minute),
        quote("ZQV26", october_price(p_cut), minute),
        quote("ZQX26", 100 - (EFFR - 0.25 * p_cut), minute),
    ]


def test_cut_odds_crossing_the_threshold() -> None:
    rule = make_rule(type="rate_odds", contracts=CONTRACTS, calendar="FOMC", threshold="50%")
    clock = FakeClock(datetime(2026, 10, 1, 9, tzinfo=UTC))
    sept = statement(date(2026, 9, 16), 3.5, 3.75, decision="hold", bp=0, meetings=MEETINGS)
    observations = [sept, *curve(0.30, 0), *curve(0.45, 10), *curve(0.72, 20), *curve(0.70, 30)]
    observations += curve(0.40, 40)
    state, drafts = run(rule, observations, clock)
    assert [d.text for d in drafts] == [
        "Cut odds for the FOMC of 2026-10-28 rose to 72% (from 45%): cut 72%, hold 28%",
        "Cut odds for the FOMC of 2026-10-28 fell to 40% (from 70%): cut 40%, hold 60%",
    ]
    assert state["summary"] == "FOMC 2026-10-28: cut 40%, hold 60% (most likely 3.50–3.75%)"
    assert drafts[0].fields["p_cut"] == "72%"


def test_no_alert_before_a_first_value_and_only_up() -> None:
    rule = make_rule(
        type="rate_odds", contracts=CONTRACTS, calendar="FOMC", threshold=0.5, direction="up"
    )
    clock = FakeClock(datetime(2026, 10, 1, 9, tzinfo=UTC))
    sept = statement(date(2026, 9, 16), 3.5, 3.75, decision="hold", bp=0, meetings=MEETINGS)
    # the first computed value is already above: no crossing seen; then down (not wanted)
    _, drafts = run(rule, [sept, *curve(0.8, 0), *curve(0.2, 10)], clock)
    assert drafts == []


def test_odds_summaries_for_commands() -> None:
    """What /status, report and the digest call: the summary from the persisted states."""
    from bot.rules.rate_odds import odds_summaries

    rule = make_rule(type="rate_odds", contracts=CONTRACTS, calendar="FOMC", threshold="50%")
    sept = statement(date(2026, 9, 16), 3.5, 3.75, decision="hold", bp=0, meetings=MEETINGS)
    state, _ = run(rule, [sept, *curve(0.72, 0)], FakeClock(datetime(2026, 10, 1, tzinfo=UTC)))
    assert odds_summaries([rule.params], {"r": {"rule": state}}) == {
        "r": "FOMC 2026-10-28: cut 72%, hold 28% (most likely 3.25–3.50%)"
    }
    assert odds_summaries([rule.params], {}) == {}


def test_front_month_contract() -> None:
    """Yahoo's ZQ=F is the front month: its month is the quote's own."""
    contracts = {"front": "ZQU26", "2026-10": "ZQV26", "2026-11": "ZQX26"}
    rule = make_rule(type="rate_odds", contracts=contracts, calendar="FOMC", threshold="50%")
    sept = statement(date(2026, 9, 16), 3.5, 3.75, decision="hold", bp=0, meetings=MEETINGS)
    september = [
        Observation("ZQU26", datetime(2026, 9, 30, 14, tzinfo=UTC), 100 - EFFR, "price"),
        *curve(0.72, 0)[1:],
    ]
    state, _ = run(rule, [sept, *september], FakeClock(datetime(2026, 9, 30, tzinfo=UTC)))
    assert set(state["prices"]) == {"2026-09", "2026-10", "2026-11"}
    assert state["summary"].startswith("FOMC 2026-10-28: cut 72%")
