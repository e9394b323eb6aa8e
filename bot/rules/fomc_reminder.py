"""``fomc_reminder``: "FOMC decision today at 14:00 ET (projections meeting)" on the morning of
each scheduled decision day.

The meeting calendar comes from the ``fomc`` symbol's observations (``detail["meetings"]``: the
next meetings the source read from the Fed's calendar); the rule keeps the latest list in its
state, so a restart or a day without a new statement still knows it. It fires on the first
poll-cycle ``tick`` at or after ``at`` (New York time) on a decision day, before the release, once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from typing import Any, ClassVar

from bot.clock import Clock
from bot.config import ClockTime, RuleParams
from bot.fomc.calendar import NEW_YORK, RELEASE
from bot.model import AlertDraft, History, Observation
from bot.rules.base import RULES, Rule, RuleState


class FomcReminderParams(RuleParams):
    """``type: fomc_reminder`` options."""

    symbol: str  # a symbol of the ``fomc`` source
    at: ClockTime = time(8, 30)  # New York time
    release: ClockTime = RELEASE  # when the statement is due, New York time


def reminder_text(meeting: Mapping[str, Any], release: time = RELEASE) -> str:
    """The reminder's words."""
    hour = f"{release:%H:%M}"
    extra = " (projections meeting)" if meeting.get("projections") else ""
    return f"FOMC decision today at {hour} ET{extra}"


@RULES.register("fomc_reminder")
class FomcReminderRule(Rule[FomcReminderParams]):
    """Reminds of the day's scheduled FOMC decision."""

    type_name: ClassVar[str] = "fomc_reminder"
    params_model: ClassVar[type[RuleParams]] = FomcReminderParams
    template_fields: ClassVar[frozenset[str]] = frozenset({"decision_day", "projections"})
    observation_kinds: ClassVar[frozenset[str]] = frozenset({"rate", "tick"})

    def evaluate(
        self,
        observations: Sequence[Observation],
        history: History,
        state: Mapping[str, Any] | None,
        clock: Clock,
    ) -> tuple[RuleState, list[AlertDraft]]:
        state = dict(state or {})
        meetings: list[dict[str, Any]] = list(state.get("meetings", []))
        reminded = state.get("reminded")
        drafts: list[AlertDraft] = []
        for observation in observations:
            detail = observation.detail
            if observation.kind != "tick":
                if detail is not None and detail.get("meetings"):
                    meetings = _merge(meetings, detail["meetings"], observation.time)
                continue
            local = observation.time.astimezone(NEW_YORK)
            today = local.date().isoformat()
            meeting = next((m for m in meetings if m.get("decision_day") == today), None)
            if meeting is None or reminded == today:
                continue
            if not self.params.at <= local.time() < self.params.release:
                continue
            reminded = today
            drafts.append(
                AlertDraft(
                    key=today,
                    symbol=self.params.symbol,
                    time=observation.time,
                    value=0.0,
                    text=reminder_text(meeting, self.params.release),
                    fields={
                        "decision_day": today,
                        "projections": "yes" if meeting.get("projections") else "no",
                    },
                )
            )
        return {"meetings": meetings, "reminded": reminded}, drafts


def _merge(
    known: list[dict[str, Any]], fresh: Sequence[Mapping[str, Any]], now: datetime
) -> list[dict[str, Any]]:
    """The fresh list, plus known meetings it no longer lists that are still ahead (a calendar
    read trimmed to the next few meetings must not forget later ones)."""
    today = now.astimezone(NEW_YORK).date()
    merged = {
        m["decision_day"]: dict(m) for m in known if date.fromisoformat(m["decision_day"]) >= today
    }
    merged.update({m["decision_day"]: dict(m) for m in fresh})
    return [merged[k] for k in sorted(merged)]
