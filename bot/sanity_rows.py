"""Row checks for daily series — history rows and FRED rows — the same checks
:class:`bot.sanity.SanityChecker` applies to single observations, a whole series at a time.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping
from datetime import date, datetime

from bot.config import SanityConfig
from bot.model import DailySeries

log = logging.getLogger("bot.sanity")  # one logger for every sanity rejection

#: Neighbours on each side a history row is compared with (their median) by :func:`clean_daily`.
NEIGHBOURS = 5


def rate_problem(values: Mapping[str, float], config: SanityConfig) -> str | None:
    """Why a rate row (``value``, ``lower``, ``upper`` … in percent) is implausible, or ``None``.

    Outside ``min_rate``..``max_rate`` (an upper bound of 99 is a data error, not a 9,450 bp
    hike), or a lower bound above the upper one.
    """
    for name, number in values.items():
        if not math.isfinite(number):
            return f"{name} {number!r} is not a finite number"
        if not config.min_rate <= number <= config.max_rate:
            return (
                f"{name} {number:g}% is outside the plausible band "
                f"{config.min_rate:g}..{config.max_rate:g}%"
            )
    lower, upper = values.get("lower"), values.get("upper")
    if lower is not None and upper is not None and lower > upper:
        return f"lower bound {lower:g}% is above the upper bound {upper:g}%"
    return None


def latest_day(now: datetime, config: SanityConfig) -> date:
    """The newest date a date-only row (a daily bar, a FRED row) may carry at ``now``."""
    return (now + config.max_skew).date()


def clean_daily(
    symbol: str,
    series: DailySeries,
    now: datetime,
    config: SanityConfig,
    *,
    rates: bool = False,
) -> DailySeries:
    """``series`` without the rows :class:`SanityChecker` would reject, each logged.

    Every row: finite, dated no later than :func:`latest_day`. Closes (``rates=False``):
    positive, and within ``max_ratio`` of the median of up to :data:`NEIGHBOURS` rows on each
    side (a lone 1e12 or 0.01 among real closes; a real −14 % day is kept). Rates: within the
    plausible band, lower ≤ upper (:func:`rate_problem`).
    """
    n = len(series)
    if n == 0:
        return series
    import numpy as np

    values = np.asarray(series.values, dtype=np.float64)
    last_day = latest_day(now, config)
    reasons: dict[int, str] = {}
    for i in range(n - 1, -1, -1):  # future rows are at the end: stop at the first past one
        if series.dates[i] <= last_day:
            break
        reasons[i] = f"dated {series.dates[i].isoformat()}, in the future"
    finite = np.isfinite(values)
    if rates:
        names = ["value", *series.columns]
        columns = [values, *(np.asarray(c, dtype=np.float64) for c in series.columns.values())]
        for i in range(n):
            if i in reasons:
                continue
            row = {k: float(c[i]) for k, c in zip(names, columns, strict=True)}
            row = {k: v for k, v in row.items() if k == "value" or not math.isnan(v)}
            problem = rate_problem(row, config)
            if problem is not None:
                reasons[i] = problem
    else:
        for i in np.flatnonzero(~finite | (values <= 0)).tolist():
            reasons.setdefault(i, f"close {values[i]!r} is not a positive finite number")
        usable = np.where(finite & (values > 0), values, np.nan)
        if n > 1:
            padded = np.concatenate(
                [np.full(NEIGHBOURS, np.nan), usable, np.full(NEIGHBOURS, np.nan)]
            )
            windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * NEIGHBOURS + 1).copy()
            windows[:, NEIGHBOURS] = np.nan  # the row itself is not its own neighbour
            with warnings.catch_warnings():
                # a row without neighbours has no median ("All-NaN slice"): NaN compares
                # false below, so such a row is kept
                warnings.simplefilter("ignore", RuntimeWarning)
                medians = np.nanmedian(windows, axis=1)
            ratio = config.max_ratio
            with np.errstate(all="ignore"):
                off = (usable > medians * ratio) | (usable * ratio < medians)
            for i in np.flatnonzero(off).tolist():
                reasons.setdefault(
                    i,
                    f"close {values[i]:g} is more than {ratio:g}× away from its neighbours "
                    f"(median {medians[i]:g})",
                )
    if not reasons:
        return series
    for i in sorted(reasons):
        log.warning("rejected history row of %s dated %s: %s", symbol, series.dates[i], reasons[i])
    keep = [i for i in range(n) if i not in reasons]
    return DailySeries(
        [series.dates[i] for i in keep],
        [series.values[i] for i in keep],
        {k: [v[i] for i in keep] for k, v in series.columns.items()},
    )
