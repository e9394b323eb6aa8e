"""Plain data passed between modules: observations in, alerts out, daily history alongside."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, TypeVar, dataclass_transform

ObservationKind = Literal["price", "close", "rate", "tick"]

_T = TypeVar("_T")


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def value_object(cls: type[_T]) -> type[_T]:
    """A slotted dataclass, equal and hashed by content, frozen for the type checker.

    Observations, drafts and alerts are built ~70,000 times in a 10,000-bar backtest, and a
    frozen dataclass's ``__init__`` sets each field through ``object.__setattr__`` (0.80 µs
    against 0.11 µs for 11 fields; 12 % of the backtest). So they are plain slotted dataclasses
    at run time, and ``mypy bot`` rejects any assignment to them (tests/test_value_objects.py).
    """
    return dataclass(slots=True, unsafe_hash=True)(cls)


@value_object
class Observation:
    """One value of one symbol at one time, as a source delivered it.

    ``kind``: ``price`` an intraday print; ``close`` a *final* daily close for ``session``;
    ``rate`` a published rate observation (``fields`` holds e.g. ``lower``/``upper``);
    ``tick`` no data, just "the clock reached ``time``" (symbol ``"*"``), for scheduled rules
    such as ``digest``. ``time`` is timezone-aware UTC.
    """

    symbol: str
    time: datetime
    value: float
    kind: ObservationKind = "price"
    session: date | None = None
    fields: Mapping[str, float] | None = None
    source: str = ""
    #: structured facts a source attaches beyond numbers (an FOMC statement's vote and
    #: dissents, see bot.sources.fomc); rules that do not know them ignore them
    detail: Mapping[str, Any] | None = None

    @property
    def date_only(self) -> bool:
        """Whether this is a row of a series published per date (a FRED rate): its ``time`` is a
        nominal 00:00 UTC of ``session``, so it is shown as that date — never as a time, which
        in New York would be the previous evening. (Final closes carry their session's real
        close as ``time``.)"""
        return self.kind == "rate" and self.session is not None


class ObservationBatch(list[Observation]):
    """A time-ordered batch the engine hands, unchanged, to every rule that wants it.

    A plain list that can also remember derived columns (numpy arrays of values and session
    days, built by :func:`bot.rules.windows.batch_arrays`), so the rules of a backtest sharing
    one 10,000-row batch convert it once rather than once each. Do not mutate a batch after
    handing it to rules (the cache only guards against a change of length).
    """

    __slots__ = ("cache",)

    def __init__(self, observations: Iterable[Observation] = ()) -> None:
        super().__init__(observations)
        self.cache: dict[Any, Any] = {}


@value_object
class AlertDraft:
    """What a rule says happened. The engine turns it into an :class:`Alert`.

    ``key`` makes the alert id deterministic: the engine uses ``f"{rule_id}:{key}"``, so the same
    event seen twice (a re-poll, a restart, a second replica) is the same alert.
    ``fields`` are the values a user ``template`` may use; ``text`` is the default message.
    ``day``: set when the event is known by its date only (a date-only observation, see
    :attr:`Observation.date_only`): the alert is then shown as that date.
    """

    key: str
    symbol: str
    time: datetime
    value: float
    text: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    day: date | None = None
    #: for the bot's operator, not the rule's audience: goes to ``telegram.admin_chat``
    to_admin: bool = False


@value_object
class Alert:
    """A message to deliver, with a deterministic id (``rule_id:event_key``)."""

    id: str
    rule_id: str
    rule_type: str
    symbol: str
    time: datetime
    value: float
    text: str
    silent: bool = False
    chats: tuple[str, ...] = ()
    day: date | None = None  # a date-only event (see AlertDraft.day): shown as this date
    chart: bool = False  # attach the symbol's chart (``chart: true`` on cross/record rules)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "rule_id": self.rule_id,
            "rule_type": self.rule_type,
            "symbol": self.symbol,
            "time": self.time.isoformat(),
            "value": self.value,
            "text": self.text,
            "silent": self.silent,
            "chats": list(self.chats),
        }
        if self.day is not None:
            data["day"] = self.day.isoformat()
        if self.chart:
            data["chart"] = True
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Alert:
        return cls(
            id=data["id"],
            rule_id=data["rule_id"],
            rule_type=data["rule_type"],
            symbol=data["symbol"],
            time=datetime.fromisoformat(data["time"]),
            value=float(data["value"]),
            text=data["text"],
            silent=bool(data.get("silent", False)),
            chats=tuple(data.get("chats", ())),
            day=date.fromisoformat(data["day"]) if data.get("day") else None,
            chart=bool(data.get("chart", False)),
        )


class DailySeries:
    """Daily values of one symbol in date order: ``close`` plus optional extra columns.

    Lookups are by bisection on plain lists, which keeps per-observation rule code fast in
    backtests (no pandas indexing in the hot loop). ``to_frame``/``from_frame`` convert to pandas.
    """

    __slots__ = ("_arrays", "_ordinals", "columns", "dates", "values")

    def __init__(
        self,
        dates: Sequence[date] = (),
        values: Sequence[float] = (),
        columns: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        if len(dates) != len(values):
            raise ValueError("dates and values differ in length")
        self.dates: list[date] = list(dates)
        self.values: list[float] = [float(v) for v in values]
        self.columns: dict[str, list[float]] = {k: list(v) for k, v in (columns or {}).items()}
        self._ordinals: list[int] = [d.toordinal() for d in self.dates]
        self._arrays: tuple[Any, Any] | None = None

    def arrays(self) -> tuple[Any, Any]:
        """``(ordinals, values)`` as numpy arrays (int64 day ordinals, float64 closes).

        Built once and kept until :meth:`append` changes the series: the rules' batch fast
        paths (``bot.rules``) search and compute on them for a whole backtest at a time.
        """
        arrays = self._arrays
        if arrays is None or len(arrays[0]) != len(self.dates):
            import numpy as np  # only backtest-sized batches need it

            arrays = self._arrays = (
                np.array(self._ordinals, dtype=np.int64),
                np.array(self.values, dtype=np.float64),
            )
        return arrays

    def __len__(self) -> int:
        return len(self.dates)

    def index_on_or_before(self, day: date) -> int:
        """Index of the last row dated ``day`` or earlier; -1 if none."""
        return bisect.bisect_right(self._ordinals, day.toordinal()) - 1

    def index_before(self, day: date) -> int:
        """Index of the last row dated strictly before ``day``; -1 if none."""
        return bisect.bisect_left(self._ordinals, day.toordinal()) - 1

    def value_on_or_before(self, day: date) -> tuple[date, float] | None:
        i = self.index_on_or_before(day)
        return (self.dates[i], self.values[i]) if i >= 0 else None

    def last(self) -> tuple[date, float] | None:
        return (self.dates[-1], self.values[-1]) if self.dates else None

    def append(self, day: date, value: float, **extra: float) -> None:
        """Add or replace the row for ``day`` (rows must arrive in date order)."""
        if self.dates and day < self.dates[-1]:
            raise ValueError(f"row {day} is older than the last row {self.dates[-1]}")
        self._arrays = None
        if self.dates and day == self.dates[-1]:
            self.values[-1] = float(value)
            for key, v in extra.items():
                self.columns.setdefault(key, [float("nan")] * len(self.dates))[-1] = float(v)
            return
        self.dates.append(day)
        self._ordinals.append(day.toordinal())
        self.values.append(float(value))
        for key in set(self.columns) | set(extra):
            self.columns.setdefault(key, [float("nan")] * (len(self.dates) - 1)).append(
                float(extra.get(key, float("nan")))
            )

    def until(self, day: date) -> DailySeries:
        """A copy holding the rows dated ``day`` or earlier."""
        n = self.index_on_or_before(day) + 1
        return DailySeries(
            self.dates[:n], self.values[:n], {k: v[:n] for k, v in self.columns.items()}
        )

    def to_frame(self) -> Any:
        import pandas as pd

        frame = pd.DataFrame({"close": self.values, **self.columns}, index=pd.Index(self.dates))
        frame.index.name = "date"
        return frame

    @classmethod
    def from_frame(cls, frame: Any, value_column: str = "close") -> DailySeries:
        """From a pandas frame indexed by date (or Timestamp) with a ``close`` column."""
        frame = frame.sort_index()
        dates = [d.date() if hasattr(d, "date") else d for d in frame.index]
        extra = {
            str(c): [float(x) for x in frame[c].tolist()]
            for c in frame.columns
            if c != value_column
        }
        return cls(dates, [float(x) for x in frame[value_column].tolist()], extra)


class History:
    """Daily series per symbol id. Rules read it; drivers (live, backtest) fill it."""

    def __init__(self, series: Mapping[str, DailySeries] | None = None) -> None:
        self._series: dict[str, DailySeries] = dict(series or {})

    def get(self, symbol: str) -> DailySeries:
        """The symbol's series (empty if none was loaded)."""
        series = self._series.get(symbol)
        if series is None:
            series = self._series[symbol] = DailySeries()
        return series

    def set(self, symbol: str, series: DailySeries) -> None:
        self._series[symbol] = series

    def symbols(self) -> Iterable[str]:
        return self._series.keys()

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._series
