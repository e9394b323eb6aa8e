"""``python -m bot backtest``: replay daily history through the configured rules.

The replay uses the very same :class:`~bot.engine.Engine` as the live worker — a second driver,
not a second implementation. Every daily close becomes a ``close`` observation stamped at its
session's actual close (from the symbol's calendar: 16:00 New York for XNYS, 13:00 on half
days); rate series (FRED) become ``rate`` observations stamped like the live FRED source does
(the row's date, 00:00 UTC) and, being date-only, are shown as that date (``2015-12-16``, not
the previous evening in New York); scheduled rules (``digest``) get a ``tick`` at each due
moment.

Rows before ``--start`` warm the rules up — the record, the windows, the armed flags, the
cooldown clock, exactly as a bot running all along would have them — and their alerts are
discarded. The backtest never opens the state store and never sends a message.

Length (over 400 lines): the replay and its input — which symbols a replay needs, from files or
sources, rate or close — decide together what the rules see; the command's arguments and output
are in :mod:`bot.commands.backtest`.
"""

from __future__ import annotations

import contextlib
import gc
import operator
import time as time_module
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from bot.calendars import get_calendar
from bot.clock import FakeClock, SystemClock
from bot.config import Config, SymbolConfig
from bot.engine import Engine
from bot.errors import BotError
from bot.model import Alert, DailySeries, History, Observation
from bot.rules import Rule

_by_time = operator.attrgetter("time")


class BacktestError(BotError):
    """A problem with the backtest's input: bad ``--data``, unknown id, unreadable file."""


# ---------------------------------------------------------------------------------------------
# The pure part: history in, alerts out
# ---------------------------------------------------------------------------------------------


def is_rate_symbol(config: Config, symbol_id: str, series: DailySeries | None = None) -> bool:
    """Whether a symbol's rows are rate observations (FRED) rather than closes."""
    spec = config.symbols.get(symbol_id)
    if spec is not None:
        for name in spec.source:
            source = config.sources.get(name)
            if source is not None and source.type == "fred":
                return True
    return series is not None and ("upper" in series.columns or "lower" in series.columns)


def _close_times(spec: SymbolConfig | None, dates: Sequence[date]) -> list[datetime]:
    """When each dated row became a final close: the session's close, from the calendar.

    Rows on days without a session (holiday rows some futures files have) count at the end of
    that day in the exchange's time zone (23:59:59, so they keep their date when shown), about
    when :meth:`MarketCalendar.close_is_final` treats them as final.
    """
    if not dates:
        return []
    calendar = get_calendar(spec.calendar if spec is not None else "always")
    closes = {s.date: s.close for s in calendar.sessions_between(dates[0], dates[-1])}
    tz = calendar.tz
    out: list[datetime] = []
    for day in dates:
        moment = closes.get(day)
        if moment is None:
            moment = datetime.combine(day, time(23, 59, 59), tz).astimezone(UTC)
        out.append(moment)
    return out


def build_observations(
    config: Config,
    history: History,
    rules: Sequence[Rule[Any]],
    end: date | None = None,
    ticks_from: date | None = None,
) -> list[Observation]:
    """Every observation of the replay, in time order: closes, rates and scheduled ticks.

    Ticks start at ``ticks_from`` (the report's start): scheduled rules need no warm-up, they
    seed themselves from history, so a digest for every warm-up day would be wasted work.
    """
    needed = {symbol for rule in rules if rule.params.enabled for symbol in rule.symbols()}
    observations: list[Observation] = []
    first: date | None = None
    last: date | None = None
    for symbol in sorted(needed):
        if symbol not in history:
            continue
        series = history.get(symbol)
        count = series.index_on_or_before(end) + 1 if end is not None else len(series)
        if count <= 0:
            continue
        dates = series.dates[:count]
        values = series.values[:count]
        first = dates[0] if first is None else min(first, dates[0])
        last = dates[-1] if last is None else max(last, dates[-1])
        if is_rate_symbol(config, symbol, series):
            lower = series.columns.get("lower")
            upper = series.columns.get("upper")
            for i, day in enumerate(dates):
                fields = None
                if lower is not None or upper is not None:
                    fields = {k: col[i] for k, col in (("lower", lower), ("upper", upper)) if col}
                observations.append(
                    Observation(
                        symbol,
                        datetime.combine(day, time(0), UTC),  # as the live FRED source stamps
                        values[i],
                        "rate",
                        day,
                        fields,
                        "backtest",
                    )
                )
        else:
            times = _close_times(config.symbols.get(symbol), dates)
            observations.extend(
                Observation(symbol, moment, value, "close", day, None, "backtest")
                for day, moment, value in zip(dates, times, values, strict=True)
            )
    if first is not None and last is not None:
        if ticks_from is not None:
            first = max(first, ticks_from)
        ticks: set[datetime] = set()
        for rule in rules:
            if rule.params.enabled and first <= last:
                ticks.update(rule.scheduled_times(first, last))
        observations.extend(
            Observation("*", moment, 0.0, "tick", None, None, "backtest") for moment in ticks
        )
    observations.sort(key=_by_time)
    return observations


def _day_of(observation: Observation, config: Config) -> date:
    if observation.session is not None:
        return observation.session
    return observation.time.astimezone(config.tz).date()


@dataclass
class ReplayResult:
    """What a replay produced, with counts for the summary line."""

    alerts: list[Alert] = field(default_factory=list)
    observations: int = 0
    warmup: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    #: alerts dropped because their rule was still warming up (no ``start``)
    warmup_alerts: int = 0
    #: ids of the rules replayed
    rules: list[str] = field(default_factory=list)


def replay_detailed(
    config: Config,
    history: History,
    start: date | None = None,
    end: date | None = None,
    rules: Sequence[str] | None = None,
) -> ReplayResult:
    """Replay ``history`` through the config's rules (or only those with the ids ``rules``);
    alerts dated ``start``..``end`` only.

    Without ``start``, each rule's first alerts wait until it has the history it needs
    (:func:`warmup_until`): the second row of a file is not "a record high"."""
    with _no_cyclic_gc():
        return _replay(config, history, start, end, rules)


#: Warm-up of a rule that wants all history (an all-time record, the digest) when a backtest
#: has no ``--start``: its first year of data.
ALL_HISTORY_WARMUP_DAYS = 365


def warmup_until(rule: Rule[Any], history: History) -> date | None:
    """The first day a rule may alert in a replay without ``--start``.

    Rules that want all history (``history_days() is None``: an all-time record, ``near`` a
    record, the digest) start after the first :data:`ALL_HISTORY_WARMUP_DAYS` of their
    symbols' data — a record among the first rows of a file is no record. Others need no
    warm-up here: windows wait for their base row by themselves, a ``cross`` arms on its
    first value, ``rate_change`` on its first range. ``None``: no warm-up."""
    if rule.history_days() is not None:
        return None
    firsts = [history.get(s).dates[0] for s in rule.symbols() if s in history and history.get(s)]
    if not firsts:
        return None
    from datetime import timedelta

    return max(firsts) + timedelta(days=ALL_HISTORY_WARMUP_DAYS)


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector during a replay.

    A replay allocates tens of thousands of long-lived, acyclic objects (observations, alerts);
    each allocation burst triggers collections that walk them all again (~10% of the run).
    Reference counting still frees everything; the collector runs again afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def select_rules(config: Config, rules: Sequence[str] | None) -> list[str]:
    """The ids of the rules to replay (``--rule``; default all); raises :class:`BacktestError`
    naming every unknown id."""
    ids = [params.id for params in config.rules]
    if not rules:
        return ids
    unknown = [r for r in rules if r not in ids]
    if unknown:
        raise BacktestError(
            f"--rule {', '.join(unknown)}: unknown rule id; rules: {', '.join(ids) or 'none'}"
        )
    return [i for i in ids if i in set(rules)]


def _replay(
    config: Config,
    history: History,
    start: date | None,
    end: date | None,
    rules: Sequence[str] | None = None,
) -> ReplayResult:
    engine = Engine.from_config(config)
    if rules is not None:
        # Only these rules run; the others stay in the context (the digest still lists the
        # levels of every cross rule).
        selected = set(select_rules(config, rules))
        engine.rules = [rule for rule in engine.rules if rule.id in selected]
    if end is not None:
        history = History({s: history.get(s).until(end) for s in history.symbols()})
    observations = build_observations(config, history, engine.rules, end, start)
    split = 0
    if start is not None:
        while split < len(observations) and _day_of(observations[split], config) < start:
            split += 1
    warmup, main = observations[:split], observations[split:]
    clock = FakeClock(observations[-1].time if observations else datetime.now(UTC))
    states: dict[str, dict[str, Any]] = {}
    result = ReplayResult(observations=len(main), warmup=len(warmup))
    seen: dict[str, str] | None = None  # the engine's newest-seen map, carried as live
    for batch, keep in ((warmup, False), (main, True)):
        if not batch:
            continue
        evaluated = engine.evaluate(batch, history, states, clock, seen=seen)
        states.update(evaluated.states)
        seen = evaluated.seen
        result.errors.update(evaluated.errors)
        if keep:
            result.alerts.extend(evaluated.alerts)
    if start is None:  # each rule's warm-up: alerts before it has the history it needs
        until = {rule.id: warmup_until(rule, history) for rule in engine.rules}
        # as moments: a day's start in the configured zone (one comparison per alert)
        since = {
            rule_id: (first, datetime.combine(first, time(0), config.tz))
            for rule_id, first in until.items()
            if first is not None
        }
        kept = []
        for alert in result.alerts:
            bound = since.get(alert.rule_id)
            if bound is None or (
                alert.day >= bound[0] if alert.day is not None else alert.time >= bound[1]
            ):
                kept.append(alert)
            else:
                result.warmup_alerts += 1
        result.alerts = kept
    result.rules = [rule.id for rule in engine.rules]
    return result


def replay(
    config: Config,
    history: History,
    start: date | None = None,
    end: date | None = None,
) -> list[Alert]:
    """Alerts the configured rules would have sent between ``start`` and ``end``, in time order.

    Rows before ``start`` only warm the rules up. Pure: no store, no network, no sending.
    """
    return replay_detailed(config, history, start, end).alerts


# ---------------------------------------------------------------------------------------------
# Loading the data: --data files, else the configured sources
# ---------------------------------------------------------------------------------------------


def parse_data_args(items: Iterable[str]) -> dict[str, str]:
    """``["RUT=rut.csv", ...]`` → ``{"RUT": "rut.csv"}``; raises :class:`BacktestError`."""
    found: dict[str, str] = {}
    for item in items:
        key, sep, path = item.partition("=")
        key, path = key.strip(), path.strip()
        if not sep or not key or not path:
            raise BacktestError(f"--data expects ID=FILE (e.g. --data RUT=rut.csv), got {item!r}")
        if key in found:
            raise BacktestError(f"--data {key} given twice ({found[key]!r} and {path!r})")
        found[key] = path
    return found


def _fred_ids(spec: SymbolConfig) -> dict[str, str]:
    """FRED series of a symbol as ``{column: series id}`` (empty for other symbols)."""
    if isinstance(spec.series, Mapping):
        return {str(k): str(v) for k, v in spec.series.items()}
    return {"value": spec.series} if spec.series else {}


def load_data_files(config: Config, data: Mapping[str, str]) -> History:
    """Read every ``--data`` file into a :class:`History` keyed by symbol id.

    A key names a symbol, or a FRED series of a symbol built from several series
    (``DFEDTARU``/``DFEDTARL``): those are joined by date into one symbol with ``lower``/
    ``upper`` columns, its value being ``upper`` as the live FRED source delivers it.
    """
    from bot.sources.csvfile import read_daily_csv
    from bot.sources.fred import parse_fred_csv, value_column

    series_owner: dict[str, tuple[str, str]] = {}  # series id → (symbol id, column)
    for symbol_id, spec in config.symbols.items():
        for column, series_id in _fred_ids(spec).items():
            series_owner.setdefault(series_id.upper(), (symbol_id, column))
    history = History()
    parts: dict[str, dict[str, DailySeries]] = {}
    for key, path in data.items():
        if key in config.symbols:
            _check_kind(config, key, path)
            history.set(key, read_daily_csv(path, symbol=key))
            continue
        owner = series_owner.get(key.upper())
        if owner is None:
            symbols = ", ".join(config.symbols) or "none"
            series = ", ".join(sorted(series_owner)) or "none"
            raise BacktestError(
                f"--data {key}: unknown id {key!r}; symbols: {symbols}; FRED series: {series}"
            )
        symbol_id, column = owner
        try:
            text = Path(path).read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise BacktestError(
                f"--data {key}={path}: cannot read: {exc.strerror or exc}"
            ) from None
        except UnicodeDecodeError:
            raise BacktestError(f"--data {key}={path}: not UTF-8 text") from None
        series_id = _fred_ids(config.symbols[symbol_id])[column]
        parts.setdefault(symbol_id, {})[column] = parse_fred_csv(
            text, series_id, symbol=symbol_id, url=path
        )
    for symbol_id, columns in parts.items():
        if symbol_id in history:
            raise BacktestError(
                f"--data gives symbol {symbol_id} both as a whole and by series "
                f"({', '.join(columns)})"
            )
        wanted = _fred_ids(config.symbols[symbol_id])
        missing = [wanted[c] for c in wanted if c not in columns]
        if missing:
            raise BacktestError(
                f"symbol {symbol_id} is built from {', '.join(wanted.values())}: "
                f"--data {' and '.join(missing)} missing (give all of them, or none to fetch)"
            )
        history.set(symbol_id, _join_columns(columns, value_column(wanted)))
    return history


def _serves_daily_bars(config: Config, symbol_id: str) -> bool:
    """Whether the symbol's first source serves daily bars (a source type may say it does not
    with a ``daily_history = False`` class attribute)."""
    from bot.sources.base import SOURCES

    spec = config.symbols.get(symbol_id)
    source = config.sources.get(spec.source[0]) if spec is not None and spec.source else None
    if source is None:
        return True
    try:
        return bool(getattr(SOURCES.get(source.type), "daily_history", True))
    except KeyError:
        return True


def _check_kind(config: Config, symbol_id: str, path: str) -> None:
    """Refuse a file whose values cannot be the symbol's: a FRED rate series given for an
    index (or a price file for a rate symbol) would replay percentages as closes."""
    from bot.sources.csvfile import detect_csv_format

    try:
        with open(path, encoding="utf-8-sig") as handle:
            header = handle.readline()
    except (OSError, UnicodeDecodeError):
        return  # read_daily_csv reports it, naming the file
    kind = detect_csv_format(header)
    rate = is_rate_symbol(config, symbol_id)
    if kind == "fred" and not rate:
        series_id = header.split(",")[1].strip().strip('"')
        raise BacktestError(
            f"--data {symbol_id}={path}: a FRED rate series ({series_id}), but {symbol_id} is a "
            f"price symbol: give it a daily price CSV (Date,Open,High,Low,Close,…)"
        )
    if kind in ("yahoo", "stooq") and rate:
        raise BacktestError(
            f"--data {symbol_id}={path}: a daily price CSV, but {symbol_id} is a rate symbol: "
            f"give it its FRED CSV (observation_date,SERIES)"
        )


def _join_columns(columns: Mapping[str, DailySeries], main: str) -> DailySeries:
    """Rows dated in every series (an inner join, as the FRED source joins them)."""
    common = set.intersection(*(set(s.dates) for s in columns.values()))
    days = sorted(common)
    by_column = {name: dict(zip(s.dates, s.values, strict=True)) for name, s in columns.items()}
    extra = {name: [values[d] for d in days] for name, values in by_column.items()}
    return DailySeries(days, extra[main], extra if len(columns) > 1 else None)


def load_history(
    config: Config,
    data: Mapping[str, str],
    end: date | None = None,
    sleep: Callable[[float], None] = time_module.sleep,
    rules: Sequence[str] | None = None,
) -> tuple[History, list[str]]:
    """``--data`` files, plus what else the replayed rules (``rules``: ids; default all) read.

    Symbols without ``--data`` are read from a local (``csv``) source; from the network only
    when no ``--data`` was given at all (a backtest from files never goes online behind your
    back). Symbols that only a digest lists are optional: without data the digest says so.
    Every required symbol that cannot be loaded is reported at once, in one
    :class:`BacktestError`. Returns the history and the symbols read from sources (``sleep``
    paces the sources' retries)."""
    from bot.errors import SourceError

    history = load_data_files(config, data)
    selected = set(select_rules(config, rules))
    chosen = [p for p in config.rules if p.enabled and p.id in selected]
    required: set[str] = set()
    optional: set[str] = set()
    for params in chosen:
        if params.type == "digest":
            optional.update(getattr(params, "symbols", []))
            rate = getattr(params, "rate", None)
            if rate:
                required.add(rate)
        else:
            required.update(params.watched_symbols())
    # A symbol whose source serves no daily bars (``Source.daily_history`` False: FOMC
    # statements) has nothing to replay: optional, never fetched.
    no_bars = {s for s in required | optional if not _serves_daily_bars(config, s)}
    required -= no_bars
    optional = (optional | no_bars) - required
    missing = sorted(s for s in required | optional if s not in history)
    if not missing:
        return history, []

    def local(symbol: str) -> bool:
        spec = config.symbols[symbol]
        return all(
            (source := config.sources.get(name)) is not None and source.type == "csv"
            for name in spec.source
        )

    fetch = [s for s in missing if s not in no_bars and (not data or local(s))]
    failures: dict[str, str] = {}
    fetched: list[str] = []
    if fetch:
        from bot.sources.poller import Poller

        poller = Poller.from_config(config, SystemClock(), sleep=sleep)
        try:
            for symbol in fetch:
                try:
                    series = poller.fetch_daily(symbol, config.symbols[symbol], None, end)
                except SourceError as exc:
                    failures[symbol] = str(exc)
                    continue
                history.set(symbol, series)
                fetched.append(symbol)
        finally:
            poller.close()
    absent = [s for s in missing if s in required and s not in fetch]
    failed = [s for s in missing if s in required and s in failures]
    if absent or failed:
        users = {s: [p.id for p in chosen if s in p.watched_symbols()] for s in [*absent, *failed]}
        parts = []
        if absent:
            parts.append(
                f"{', '.join(absent)} {'has' if len(absent) == 1 else 'have'} no --data "
                f"(read by {', '.join(sorted({r for s in absent for r in users[s]}))}): give "
                + " ".join(f"--data {s}=FILE" for s in absent)
                + ", or replay only some rules with --rule ID"
            )
        if failed:
            parts.append(
                f"{', '.join(failed)} {'has' if len(failed) == 1 else 'have'} no --data and "
                "could not be fetched: " + "; ".join(failures[s] for s in failed)
            )
        raise BacktestError("; ".join(parts))
    return history, fetched
