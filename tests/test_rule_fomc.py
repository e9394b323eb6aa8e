"""``fomc_reminder`` and ``rate_change`` fed by FOMC statements (pure rule tests)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from bot.clock import FakeClock
from bot.config import parse_config
from bot.engine import Engine
from bot.model import AlertDraft, DailySeries, History, Observation
from bot.rules import Rule

NY = ZoneInfo("America/New_York")


def make_rule(**params: Any) -> Rule[Any]:
    params.setdefault("id", "r")
    text = yaml.safe_dump(
        {
            "timezone": "America/New_York",
            "telegram": {"chats": {"traders": 1, "ops": 2}, "admin_chat": "ops"},
            "sources": {
                "fed": {"type": "fomc"},
                "fred": {"type": "fred"},
                "yahoo": {"type": "yahoo"},
            },
            "symbols": {
                "FOMC": {"source": "fed"},
                "FED": {"source": "fred", "series": {"lower": "DFEDTARL", "upper": "DFEDTARU"}},
                **{
                    name: {"source": "yahoo", "ticker": f"{name}.CBT", "calendar": "CME"}
                    for name in ("ZQU26", "ZQV26", "ZQX26", "ZQZ26", "ZQF27")
                },
            },
            "rules": [params],
        }
    )
    return Engine.from_config(parse_config(text, "config.yaml", {"X": "1"})).rules[0]


def run(
    rule: Rule[Any],
    observations: Sequence[Observation],
    clock: FakeClock,
    history: History | None = None,
    state: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], list[AlertDraft]]:
    """One observation per call, the state through JSON (as the store keeps it)."""
    drafts: list[AlertDraft] = []
    current = state
    for observation in observations:
        if not rule.wants(observation):
            continue
        clock.set(max(clock.now(), observation.time))
        new, found = rule.evaluate([observation], history or History(), current, clock)
        drafts.extend(found)
        current = json.loads(json.dumps(new))
    return dict(current or {}), drafts


def tick(moment: datetime) -> Observation:
    return Observation("*", moment.astimezone(UTC), 0.0, "tick")


def statement(
    day: date,
    lower: float,
    upper: float,
    *,
    decision: str,
    bp: int | None,
    meetings: Sequence[Mapping[str, Any]] = (),
    dissents: Sequence[Mapping[str, Any]] = (),
    votes: tuple[int, int] | None = None,
) -> Observation:
    detail = {
        "date": day.isoformat(),
        "decision": decision,
        "bp": bp,
        "lower": lower,
        "upper": upper,
        "dissents": list(dissents),
        "votes_for": votes[0] if votes else None,
        "votes_against": votes[1] if votes else None,
        "meetings": list(meetings),
    }
    return Observation(
        "FOMC",
        datetime.combine(day, time(14), NY).astimezone(UTC),
        upper,
        "rate",
        day,
        {"lower": lower, "upper": upper},
        source="fed",
        detail=detail,
    )


def fred(day: date, lower: float, upper: float) -> Observation:
    return Observation(
        "FED",
        datetime.combine(day, time(0), UTC),
        upper,
        "rate",
        day,
        {"lower": lower, "upper": upper},
    )


MEETINGS = [
    {"start": "2026-03-17", "decision_day": "2026-03-18", "projections": True},
    {"start": "2026-04-28", "decision_day": "2026-04-29", "projections": False},
]


def test_reminder_on_the_morning_of_decision_days_once() -> None:
    rule = make_rule(type="fomc_reminder", symbol="FOMC")
    clock = FakeClock(datetime(2026, 1, 29, 9, tzinfo=NY))
    jan = statement(date(2026, 1, 28), 3.5, 3.75, decision="hold", bp=0, meetings=MEETINGS)
    morning = datetime(2026, 3, 18, 8, 0, tzinfo=NY)
    ticks = [tick(morning + timedelta(minutes=15 * i)) for i in range(8)]  # 8:00 … 9:45
    later = [
        tick(datetime(2026, 4, 29, 8, 31, tzinfo=NY)),
        tick(datetime(2026, 4, 29, 9, tzinfo=NY)),
    ]
    late_start = [tick(datetime(2026, 4, 30, 15, tzinfo=NY))]  # not a decision day
    state, drafts = run(rule, [jan, *ticks, *later, *late_start], clock)
    assert [(d.key, d.text) for d in drafts] == [
        ("2026-03-18", "FOMC decision today at 14:00 ET (projections meeting)"),
        ("2026-04-29", "FOMC decision today at 14:00 ET"),
    ]
    assert drafts[0].time == datetime(2026, 3, 18, 8, 30, tzinfo=NY)
    assert state["reminded"] == "2026-04-29"


def test_no_reminder_after_the_release() -> None:
    rule = make_rule(type="fomc_reminder", symbol="FOMC")
    clock = FakeClock(datetime(2026, 1, 29, 9, tzinfo=NY))
    jan = statement(date(2026, 1, 28), 3.5, 3.75, decision="hold", bp=0, meetings=MEETINGS)
    _, drafts = run(rule, [jan, tick(datetime(2026, 3, 18, 14, 5, tzinfo=NY))], clock)
    assert drafts == []


def fred_history(rows: Sequence[tuple[date, float, float]]) -> History:
    return History(
        {
            "FED": DailySeries(
                [d for d, _, _ in rows],
                [u for _, _, u in rows],
                {"lower": [lo for _, lo, _ in rows], "upper": [u for _, _, u in rows]},
            )
        }
    )


DAY = date(2025, 12, 10)
BEFORE = fred_history([(DAY - timedelta(days=i), 3.75, 4.0) for i in range(10, 0, -1)])


def test_statement_then_fred_is_one_alert() -> None:
    rule = make_rule(type="rate_change", symbol="FOMC", confirm="FED")
    clock = FakeClock(datetime(2025, 12, 9, tzinfo=NY))
    dissents = [
        {"name": "Stephen I. Miran", "preferred": "-50 bp"},
        {"name": "Austan D. Goolsbee", "preferred": "no change"},
        {"name": "Jeffrey R. Schmid", "preferred": "no change"},
    ]
    obs = [
        fred(DAY - timedelta(days=1), 3.75, 4.0),
        statement(DAY, 3.5, 3.75, decision="cut", bp=-25, dissents=dissents, votes=(9, 3)),
        fred(DAY, 3.75, 4.0),  # FRED's row of the decision day: the old range
        fred(DAY + timedelta(days=1), 3.5, 3.75),  # effective next day
        fred(DAY + timedelta(days=2), 3.5, 3.75),
    ]
    state, drafts = run(rule, obs, clock, BEFORE)
    assert [d.text for d in drafts] == [
        "FOMC cuts by 25 bp to 3.50–3.75% (from 3.75–4.00%); vote 9–3 — Miran preferred "
        "\u221250 bp; Goolsbee, Schmid preferred no change"
    ]
    assert drafts[0].key == "2025-12-10" and not drafts[0].to_admin
    assert drafts[0].fields["dissents"].startswith("Miran preferred")
    assert "announced" not in state  # confirmed


def test_fred_alone_still_reports_a_change() -> None:
    """The fomc source was down at the decision: FRED's row is the (backfill) alert."""
    rule = make_rule(type="rate_change", symbol="FOMC", confirm="FED")
    clock = FakeClock(datetime(2025, 12, 9, tzinfo=NY))
    _, drafts = run(
        rule, [fred(DAY, 3.75, 4.0), fred(DAY + timedelta(days=1), 3.5, 3.75)], clock, BEFORE
    )
    assert [d.text for d in drafts] == [
        "Fed cuts by 25 bp: 3.75–4.00% → 3.50–3.75% (effective 2025-12-11)"
    ]


def test_fred_disagreeing_goes_to_the_admin() -> None:
    rule = make_rule(type="rate_change", symbol="FOMC", confirm="FED")
    clock = FakeClock(datetime(2025, 12, 9, tzinfo=NY))
    obs = [
        statement(DAY, 3.5, 3.75, decision="cut", bp=-25),
        fred(DAY + timedelta(days=1), 3.75, 4.0),  # FRED says nothing changed
        fred(DAY + timedelta(days=2), 3.75, 4.0),
    ]
    _, drafts = run(rule, obs, clock, BEFORE)
    assert len(drafts) == 2
    assert drafts[1].to_admin and drafts[1].key == "2025-12-10:fred-disagrees"
    assert "FRED disagrees" in drafts[1].text and "3.75–4.00%" in drafts[1].text


def test_holds_and_stale_statements() -> None:
    clock = FakeClock(datetime(2026, 1, 28, 13, tzinfo=NY))
    hold = statement(date(2026, 1, 28), 3.5, 3.75, decision="hold", bp=0, votes=(10, 2))
    quiet = make_rule(type="rate_change", symbol="FOMC", confirm="FED")
    assert run(quiet, [hold], clock, fred_history([(date(2026, 1, 27), 3.5, 3.75)]))[1] == []
    loud = make_rule(type="rate_change", symbol="FOMC", confirm="FED", holds=True)
    _, drafts = run(loud, [hold], FakeClock(datetime(2026, 1, 28, 13, tzinfo=NY)))
    assert [d.text for d in drafts] == ["FOMC holds at 3.50–3.75%; vote 10–2"]
    # a first start a week after a cut: the statement is no news any more
    stale = make_rule(type="rate_change", symbol="FOMC")
    late = FakeClock(datetime(2025, 12, 17, tzinfo=NY))
    old = statement(DAY, 3.5, 3.75, decision="cut", bp=-25)
    assert stale.evaluate([old], History(), None, late)[1] == []


def test_a_restamped_old_statement_is_no_news() -> None:
    """The source restamps the latest statement when the calendar changes: the release time in
    ``detail`` decides freshness, and the alert time of a fresh one is its release."""
    rule = make_rule(type="rate_change", symbol="FOMC")
    old = statement(DAY, 3.5, 3.75, decision="cut", bp=-25)
    assert old.detail is not None
    released = old.time
    later = datetime(2025, 12, 20, 9, tzinfo=NY).astimezone(UTC)
    restamped = Observation(
        old.symbol,
        later,
        old.value,
        old.kind,
        old.session,
        old.fields,
        old.source,
        {**old.detail, "time": released.isoformat()},
    )
    assert rule.evaluate([restamped], History(), None, FakeClock(later))[1] == []
    fresh = Observation(
        old.symbol,
        released + timedelta(seconds=3),
        old.value,
        old.kind,
        old.session,
        old.fields,
        old.source,
        {**old.detail, "time": released.isoformat()},
    )
    clock = FakeClock(released + timedelta(seconds=3))
    (draft,) = rule.evaluate([fresh], History(), None, clock)[1]
    assert draft.time == released
