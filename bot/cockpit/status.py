"""``/status [SYMBOL]``: the last value of each symbol, where it stands, and how fresh it is."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from bot.charts import chart_levels, record_close
from bot.config import Config
from bot.model import DailySeries, Observation
from bot.rules.text import fmt_number, fmt_percent, fmt_signed, fmt_time, fmt_value

if TYPE_CHECKING:
    from bot.store import Store


def record_of(series: DailySeries | None) -> tuple[date, float] | None:
    """The highest close of ``series`` and its date (None without history)."""
    return record_close(series) if series is not None else None


def distance(value: float, target: float) -> str:
    """``2,500: 120.50 pts (5.07%) above`` — how far ``target`` is from ``value``."""
    gap = target - value
    where = "above" if gap > 0 else "below" if gap < 0 else "at"
    pct = abs(gap) / value * 100 if value else 0.0
    return f"{fmt_value(abs(gap))} pts ({pct:.2f}%) {where}"


def symbol_status(
    config: Config,
    symbol: str,
    quote: Observation | None,
    series: DailySeries | None,
    now: datetime,
    stale_after: timedelta,
) -> list[str]:
    """The lines of one symbol's status."""
    name = config.symbol_name(symbol)
    head = f"{name} ({symbol})" if name != symbol else symbol
    if quote is None:
        last = series.last() if series is not None else None
        if last is None:
            return [f"{head}: no data yet (missing)"]
        return [f"{head}: no quote yet; last close {fmt_value(last[1])} on {last[0]}"]
    if quote.kind == "rate" and quote.fields:
        lower, upper = quote.fields.get("lower"), quote.fields.get("upper")
        when = quote.session.isoformat() if quote.session else fmt_time(quote.time, config.tz)
        if lower is not None and upper is not None:
            return [f"{head}: target range {lower:.2f}%–{upper:.2f}% (as of {when})"]
    age = now - quote.time
    stale = " — STALE" if quote.kind == "price" and age > stale_after else ""
    source = f" via {quote.source}" if quote.source else ""
    lines = [
        f"{head}: {fmt_value(quote.value)} at {fmt_time(quote.time, config.tz)}{source}{stale}"
    ]
    if series is not None and len(series):
        day = quote.session or quote.time.astimezone(config.tz).date()
        previous_i = series.index_before(day)
        if previous_i >= 0:
            prev = series.values[previous_i]
            change = quote.value - prev
            lines.append(f"  day: {fmt_signed(change)} ({fmt_percent(change / prev * 100)})")
        record = record_of(series)
        if record is not None:
            record_day, record_value = record
            lines.append(
                f"  record close {fmt_value(record_value)} ({record_day}): "
                f"{distance(quote.value, record_value)}"
            )
    for level in chart_levels(config, symbol):
        lines.append(f"  level {fmt_number(level)}: {distance(quote.value, level)}")
    if series is not None and len(series):
        lines.extend(context_lines(series))
    return lines


def context_lines(series: DailySeries) -> list[str]:
    """The market context of the series' last close (:mod:`bot.context`): period changes, the
    52-week range, how long the record has stood."""
    from bot.context import symbol_facts

    facts = symbol_facts(series)
    if facts is None:
        return []
    fields = facts.template_fields()
    record = facts.record
    return [
        f"  context (close {facts.date}): MTD {fields['mtd_pct']}, YTD {fields['ytd_pct']}, "
        f"1y {fields['one_year_pct']}; 52w {fields['low_52w']}–{fields['high_52w']}",
        f"  record stood {fields['days_since_record']} days "
        f"({fields['drought_rank']} longest stretch, {record.count_ytd} records this year)",
    ]


def status_text(
    config: Config,
    symbols: Sequence[str],
    quotes: dict[str, Observation],
    series_of: dict[str, DailySeries | None],
    now: datetime,
) -> str:
    """The whole ``/status`` answer for ``symbols``."""
    blocks = [
        "\n".join(
            symbol_status(
                config,
                symbol,
                quotes.get(symbol),
                series_of.get(symbol),
                now,
                config.sanity.stale_after,
            )
        )
        for symbol in symbols
    ]
    return "\n\n".join(blocks) or "No symbols configured."


def odds_text(config: Config, store: Store) -> str:
    """What follows the symbols in ``/status``: the latest odds of each ``rate_odds`` rule
    (:func:`bot.rules.rate_odds.odds_blocks`), from the store's rule states as ``/rules`` reads
    them (a replica's cockpit sees what the evaluating replica wrote); ``""`` without such
    rules (the store is not read then)."""
    if not any(params.type == "rate_odds" for params in config.rules):
        return ""
    from bot.rules.rate_odds import odds_blocks

    blocks = odds_blocks(config.rules, store.load_states())
    return "".join("\n\n" + "\n".join(block) for block in blocks)
