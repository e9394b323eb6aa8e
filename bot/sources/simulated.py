"""``simulated``: a seeded random-walk market for ``run --demo`` (no network).

Prices are a deterministic function of (seed, ticker, hour), so a demo run is repeatable and
intraday prints agree with daily closes; daily closes follow each symbol's calendar (sessions
only, at their actual close), and futures move around their index with a basis and noise of
their own. Before ``start`` the walk is history (drift-free);
from ``start`` on it drifts upward so the shipped rules (record close, 2,500) fire within a few
simulated days. Symbols with ``series`` are a Fed target range that is cut once after ``cut_after``.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime, time, timedelta
from typing import ClassVar

from bot.calendars import get_calendar
from bot.config import Duration, SourceParams, SymbolConfig
from bot.model import DailySeries, Observation
from bot.sources.base import SOURCES, Source

# Where each well-known ticker starts, a little below its record so the demo shows the approach.
START_PRICES = {"^RUT": 2405.0, "RTY=F": 2412.0, "^GSPC": 6600.0, "^IXIC": 22400.0}
# Futures follow their index with their own basis, as RTY=F follows ^RUT, plus noise of their
# own (mean-reverting, so they stay around the index instead of drifting off or copying it).
FOLLOWS = {"RTY=F": ("^RUT", 1.003)}
#: Futures' own noise per simulated hour, and how much of it is left after an hour.
FUTURES_NOISE = 0.0008
FUTURES_PERSISTENCE = 0.9
# History never goes above start × this: the record is 1.6% away when the demo starts
# (for ^RUT: 2,443.48, about where the real 2021 record of 2,442.74 was).
RECORD_HEADROOM = 1.016
HOUR = timedelta(hours=1)


class SimulatedParams(SourceParams):
    """Options of the simulated market."""

    seed: int = 2021
    start: datetime = datetime(2026, 1, 5, tzinfo=UTC)
    drift: float = 0.0002  # per simulated hour, from ``start`` on (about +0.5% a day)
    volatility: float = 0.001  # per simulated hour
    history_days: int = 400
    cut_after: Duration = timedelta(days=3)


@SOURCES.register("simulated")
class SimulatedSource(Source):
    """A deterministic random-walk market."""

    type_name: ClassVar[str] = "simulated"
    params_model: ClassVar[type[SourceParams]] = SimulatedParams

    def __init__(self, name: str, params: SourceParams, clock: object) -> None:
        super().__init__(name, params, clock)  # type: ignore[arg-type]
        assert isinstance(params, SimulatedParams)
        self.sim = params
        self._paths: dict[str, list[float]] = {}
        self._rngs: dict[str, random.Random] = {}

    def _path(self, ticker: str, hours: int) -> list[float]:
        """Hourly prices from ``start - history_days``, extended to at least ``hours`` steps."""
        path = self._paths.setdefault(ticker, [1.0])
        rng = self._rngs.setdefault(ticker, random.Random(f"{self.sim.seed}:{ticker}"))
        history_hours = self.sim.history_days * 24
        while len(path) <= hours:
            drift = self.sim.drift if len(path) >= history_hours else 0.0
            path.append(path[-1] * math.exp(drift + rng.gauss(0.0, self.sim.volatility)))
        return path

    def _noise(self, ticker: str, hours: int) -> float:
        """The futures' own log-deviation from basis × index at hour ``hours``: a seeded
        mean-reverting walk (AR(1)), deterministic like the prices."""
        key = f"noise:{ticker}"
        path = self._paths.setdefault(key, [0.0])
        rng = self._rngs.setdefault(key, random.Random(f"{self.sim.seed}:{key}"))
        while len(path) <= hours:
            path.append(path[-1] * FUTURES_PERSISTENCE + rng.gauss(0.0, FUTURES_NOISE))
        return path[hours]

    def _price_at(self, ticker: str, moment: datetime) -> float:
        origin = self.sim.start - timedelta(days=self.sim.history_days)
        hours = max(0, int((moment - origin) / HOUR))
        if ticker in FOLLOWS:
            index, basis = FOLLOWS[ticker]
            index_price = self._price_at(index, moment)
            return round(index_price * basis * math.exp(self._noise(ticker, hours)), 2)
        # History is anchored so that the walk reaches START_PRICES at ``start``.
        path = self._path(ticker, max(hours, self.sim.history_days * 24))
        start_price = START_PRICES.get(ticker, 100.0)
        price = path[hours] * start_price / path[self.sim.history_days * 24]
        cap = start_price * RECORD_HEADROOM
        if moment < self.sim.start and price > cap:
            price = cap * cap / price  # reflect the walk below the cap: the record stays ahead
        return round(price, 2)

    def _fed_range(self, moment: datetime) -> tuple[float, float]:
        if moment >= self.sim.start + self.sim.cut_after:
            return 4.00, 4.25
        return 4.25, 4.50

    def fetch_latest(self, symbol_id: str, spec: SymbolConfig) -> Observation:
        now = self.clock.now()
        hour = now.replace(minute=0, second=0, microsecond=0)
        if spec.series is not None:
            lower, upper = self._fed_range(hour)
            return Observation(
                symbol=symbol_id,
                time=datetime.combine(hour.date(), time(), UTC),
                value=upper,
                kind="rate",
                session=hour.date(),
                fields={"lower": lower, "upper": upper},
                source=self.name,
            )
        ticker = spec.ticker_for(self.name, symbol_id)
        return Observation(
            symbol=symbol_id,
            time=hour,
            value=self._price_at(ticker, hour),
            kind="price",
            source=self.name,
        )

    def fetch_daily(
        self, symbol_id: str, spec: SymbolConfig, start: date | None, end: date | None
    ) -> DailySeries:
        today = self.clock.now().date()
        first = max(
            start or date.min, (self.sim.start - timedelta(days=self.sim.history_days)).date()
        )
        last = min(end or today, today)
        series = DailySeries()
        if spec.series is None:
            # Closes follow the symbol's real calendar: a row per session (no New Year's Day,
            # no weekend), valued at the session's actual close, once it has closed.
            ticker = spec.ticker_for(self.name, symbol_id)
            now = self.clock.now()
            for session in get_calendar(spec.calendar).sessions_between(first, last):
                if session.close > now:
                    break
                series.append(session.date, self._price_at(ticker, session.close))
            return series
        day = first
        while day <= last:  # the Fed range: a FRED row every day
            lower, upper = self._fed_range(datetime.combine(day, time(23), UTC))
            series.append(day, upper, lower=lower, upper=upper)
            day += timedelta(days=1)
        return series
