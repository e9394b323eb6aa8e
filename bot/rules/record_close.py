"""``record_close``: a new all-time (or N-session) closing high or low.

Only final daily closes count — an intraday print above the record is not a record close (on
2024-11-25 ^RUT traded above its 2021 record but closed at 2,442.03, below 2,442.74: no alert).
The record is seeded from history, so a first run never fires just because no state existed.
Closes the rule never saw (the bot was down) are folded into the record from history silently.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, ClassVar, Literal

from pydantic import StrictBool, field_validator

from bot.clock import Clock
from bot.config import RuleParams
from bot.context import longest_phrase, ordinal, series_facts
from bot.model import AlertDraft, DailySeries, History, Observation
from bot.rules.base import RULES, Rule, RuleContext, RuleState
from bot.rules.batch import batch_arrays, fast_path
from bot.rules.text import fmt_count, fmt_percent, fmt_signed, fmt_value
from bot.rules.windows import Window, WindowValue, fold_extreme, parse_day


class RecordCloseParams(RuleParams):
    """``type: record_close`` options."""

    symbol: str
    kind: Literal["high", "low"] = "high"
    #: ``252d``: a close above the highest close of the previous 252 sessions; default all-time
    window: WindowValue | None = None
    #: attach the symbol's chart (a picture) to the alert in Telegram
    chart: StrictBool = False

    @field_validator("window")
    @classmethod
    def _sessions_only(cls, value: Window | None) -> Window | None:
        if value is not None and value.calendar:
            raise ValueError(f"expected a number of sessions such as 252d, got {value}")
        return value


@RULES.register("record_close")
class RecordCloseRule(Rule[RecordCloseParams]):
    """Fires on a close beyond every earlier close (of the window)."""

    type_name: ClassVar[str] = "record_close"
    params_model: ClassVar[type[RuleParams]] = RecordCloseParams
    template_fields: ClassVar[frozenset[str]] = frozenset(
        {
            "kind",
            "session",
            "previous",
            "previous_date",
            "gain",
            "gain_pct",
            "days",
            "sessions",
            "stretch_rank",
            "since_year",
        }
    )
    observation_kinds: ClassVar[frozenset[str]] = frozenset({"close"})

    def __init__(self, params: RecordCloseParams, context: RuleContext) -> None:
        super().__init__(params, context)
        self._span = params.window.sessions if params.window is not None else None
        self._high = params.kind == "high"

    def history_days(self) -> int | None:
        return None if self.params.window is None else self.params.window.history_days()

    def reconcile(self, state: Mapping[str, Any] | None, history: History) -> RuleState | None:
        """The record as the extreme of the stored one (what was seen live) and every history
        row up to the last session judged: a record stored while history was missing (seeded
        from a live close) is corrected once history arrives. Never fires."""
        last_session = parse_day(state.get("last_session")) if state else None
        if state is None or last_session is None:
            return dict(state) if state is not None else None
        series = history.get(self.params.symbol)
        last = series.index_on_or_before(last_session)
        first = 0 if self._span is None else max(last - self._span + 1, 0)
        best, best_day = _extreme(series, first, last, self._high)
        record = state.get("record")
        if best is None or best_day is None:
            return dict(state)
        if record is None or (best > record if self._high else best < record):
            return {**state, "record": best, "date": best_day.isoformat()}
        return dict(state)

    def evaluate(
        self,
        observations: Sequence[Observation],
        history: History,
        state: Mapping[str, Any] | None,
        clock: Clock,
    ) -> tuple[RuleState, list[AlertDraft]]:
        series = history.get(self.params.symbol)
        dates = series.dates
        high, span = self._high, self._span
        state = state or {}
        record: float | None = state.get("record")
        record_day = parse_day(state.get("date"))
        last_session = parse_day(state.get("last_session"))
        # Index of the last history row already folded into the record.
        folded = series.index_on_or_before(last_session) if last_session is not None else -1
        drafts: list[AlertDraft] = []
        size, following = len(dates), -1
        # A long batch (a backtest) visits only the rows found by _batch_rows; the state it
        # skips over is caught up below exactly as after a restart (folding missed closes).
        rows: Sequence[int] = range(len(observations))
        final_session: date | None = None
        if span is None:  # all-time records (a rolling window recomputes as it slides)
            found = fast_path(
                len(observations),
                lambda: self._batch_rows(observations, series, record, folded, last_session),
            )
            if found is not None:
                rows, final_session = found
        for row in rows:
            observation = observations[row]
            session = observation.session or observation.time.astimezone(self.context.tz).date()
            if last_session is not None and session <= last_session:
                continue  # the same close again (re-poll, restart): already judged
            # The first row dated on or after the session, walking forward (sessions only grow
            # within a batch; bisect when they did not): cheaper than a bisection per row.
            if following < 0 or (following > 0 and dates[following - 1] >= session):
                following = bisect.bisect_left(dates, session)
            while following < size and dates[following] < session:
                following += 1
            prev = following - 1
            if span is not None:
                low_index = max(prev - span + 1, 0)
                if prev < 0 or record_day is None or record_day < dates[low_index]:
                    # The record left the window (or there is none yet): recompute it once.
                    record, record_day = _extreme(series, low_index, prev, high)
                    folded = prev
            # Closes between the last one judged and this one (missed while down): fold in.
            record, record_day, folded = fold_extreme(
                series, record, record_day, folded, prev, high
            )
            value = observation.value
            if record is not None and record_day is not None:
                if value > record if high else value < record:
                    drafts.append(
                        self._draft(observation, session, series, record, record_day, prev)
                    )
                    record, record_day = value, session
            else:
                record, record_day = value, session
            last_session = session
            folded = prev
        if final_session is not None and last_session != final_session:
            # Fast path: the batch's last rows were skipped (no new record among them); judge
            # them as the loop would have: fold their history rows in, remember the session.
            record, record_day, folded = fold_extreme(
                series, record, record_day, folded, series.index_before(final_session), high
            )
            last_session = final_session
        new_state = {
            "record": record,
            "date": record_day.isoformat() if record_day else None,
            "last_session": last_session.isoformat() if last_session else None,
        }
        return new_state, drafts

    def _batch_rows(
        self,
        observations: Sequence[Observation],
        series: DailySeries,
        record: float | None,
        folded: int,
        last_session: date | None,
    ) -> tuple[list[int], date] | None:
        """Fast path for long batches (all-time records): the rows on which a new record is
        set (and row 0), and the session of the last row; ``None`` when the batch does not
        suit it (sessions not strictly increasing, NaNs) and every row must be visited.

        The loop's record before a row is the extreme of: the record it started with, the
        history rows it folds in (``folded + 1`` .. the row before the session), and the
        earlier observations (those that did not beat it leave it unchanged). numpy computes
        that running extreme for the whole batch; only rows beyond it change the state.
        """
        import numpy as np

        values, ordinals = batch_arrays(observations, self.context.tz)
        if len(ordinals) > 1 and not bool(np.all(ordinals[1:] > ordinals[:-1])):
            return None
        if last_session is not None and int(ordinals[0]) <= last_session.toordinal():
            return None
        rows_ordinals, rows_values = series.arrays()
        if np.isnan(values).any() or np.isnan(rows_values).any():
            return None  # Python's max()/comparisons and numpy's disagree on NaN
        high = self._high
        extreme = np.maximum if high else np.minimum
        outside = -np.inf if high else np.inf
        running = np.full(len(values), outside if record is None else record)
        # History rows folded in before each observation: folded+1 .. prev.
        prev = np.searchsorted(rows_ordinals, ordinals, side="left") - 1
        start = folded + 1
        if len(rows_values) > start:
            folded_extreme = extreme.accumulate(rows_values[start:])
            has_rows = prev >= start
            running = np.where(
                has_rows,
                extreme(running, folded_extreme[np.where(has_rows, prev - start, 0)]),
                running,
            )
        # Earlier observations of the batch.
        earlier = np.empty_like(values)
        earlier[0] = outside
        earlier[1:] = extreme.accumulate(values)[:-1]
        running = extreme(running, earlier)
        beyond = values > running if high else values < running
        beyond[0] = True
        last = observations[-1]
        final = last.session or last.time.astimezone(self.context.tz).date()
        return np.flatnonzero(beyond).tolist(), final

    def _draft(
        self,
        observation: Observation,
        session: date,
        series: DailySeries,
        previous: float,
        previous_day: date,
        prev_index: int,
    ) -> AlertDraft:
        params = self.params
        name = self.context.name(params.symbol)
        gain = observation.value - previous
        gain_pct = (observation.value / previous - 1.0) * 100.0 if previous else 0.0
        days = (session - previous_day).days
        sessions = prev_index - series.index_on_or_before(previous_day) + 1
        what = "high" if self._high else "low"
        if params.window is None:
            label, scope = f"record {what}", "record"
        else:
            label = scope = f"{params.window.sessions}-session {what}"
        fields = {
            "kind": what,
            "session": session.isoformat(),
            "previous": fmt_value(previous),
            "previous_date": previous_day.isoformat(),
            "gain": fmt_signed(gain),
            "gain_pct": fmt_percent(gain_pct),
            "days": fmt_count(days),
            "sessions": fmt_count(sessions),
        }
        stood = (
            f"it stood {fields['days']} day{'' if days == 1 else 's'} "
            f"({fields['sessions']} session{'' if sessions == 1 else 's'})"
        )
        rank = self._stretch_rank(series, prev_index, previous_day, days)
        fields["stretch_rank"] = ordinal(rank) if rank else ""
        fields["since_year"] = str(series.dates[0].year) if series.dates else ""
        if rank and sessions > 1:
            ranked = (
                f" — the {longest_phrase(rank)} since {fields['since_year']}"
                if rank <= RANKED
                else ""
            )
            # The drought it ends, ranked among every stretch between record closes of the
            # history (bot.context: the same numbers as `report` and the digest).
            stood = (
                f"the first record close since {fields['previous_date']}, ending "
                f"{_article(fields['days'])} {fields['days']}-day stretch "
                f"({fields['sessions']} sessions){ranked}"
            )
        text = (
            f"{name} ({params.symbol}) closed at a {label} of {fmt_value(observation.value)} "
            f"on {fields['session']}: previous {scope} {fields['previous']} of "
            f"{fields['previous_date']}, {fields['gain']} points ({fields['gain_pct']}); {stood}"
        )
        return AlertDraft(
            key=f"{what}:{fields['session']}",
            symbol=params.symbol,
            time=observation.time,
            value=observation.value,
            text=text,
            fields=fields,
        )

    def _stretch_rank(
        self, series: DailySeries, prev_index: int, previous_day: date, days: int
    ) -> int:
        """Rank of the ``days``-long stretch a new all-time high ends (1 = the longest of the
        history); 0 when not ranked: lows and windowed records, or a previous record that the
        history does not show as its last record close (then the ranks would not be its)."""
        if not self._high or self._span is not None or prev_index < 0:
            return 0
        facts = series_facts(series)
        records = facts.records_through(prev_index)
        if series.dates[facts.record_rows[records - 1]] != previous_day:
            return 0
        return facts.stretch_rank(records, days)


#: The stretch a record ends is ranked in its message only among the longest this many (the
#: 67th-longest says nothing); the ``stretch_rank`` field always has the rank.
RANKED = 10


def _article(number: str) -> str:
    """``a`` or ``an`` before a number as read aloud: an 8-day, an 11-day, an 18,000…"""
    head = number.split(",", 1)[0]
    return "an" if head.startswith("8") or head in ("11", "18") else "a"


def _extreme(
    series: DailySeries, first: int, last: int, high: bool
) -> tuple[float | None, date | None]:
    """Highest (or lowest) close in rows ``first..last`` and its date; the earliest on ties."""
    if last < first or last < 0:
        return None, None
    window = series.values[first : last + 1]
    best = max(window) if high else min(window)
    return best, series.dates[first + window.index(best)]
