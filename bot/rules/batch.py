"""Optional numpy fast paths for long batches — one shape for every rule type.

A rule type needs only its per-observation loop: :meth:`~bot.rules.base.Rule.evaluate` run on
every observation, in order, is the specification, and it is what the live loop runs (a few
observations per call). A backtest hands each rule one batch of ~10,000 observations; a rule
*may* add a fast path for that case, a method beside its loop that computes with numpy over
the whole batch what the loop needs, with the same IEEE float64 arithmetic as the loop's
scalar code. It is reached through one door, :func:`fast_path`, in one of two forms:

- **rows to visit** (``cross``, ``near``, ``change``, ``record_close``, ``relative``): the rows
  on which the loop can change its state or fire; :func:`rows_to_visit` gives them, or every
  row. The loop then runs unchanged over those rows only — on every other row it would have
  done nothing. Helpers: :func:`episode_rows` (threshold state machines), :func:`switch_rows`
  (fire-and-re-arm machines), :func:`batch_arrays`, :func:`batch_base_indices`,
  :func:`batch_rows_of`.
- **precomputed numbers** (``digest``): per-row figures for the whole batch at once, which
  the loop formats; rows the fast path does not cover are left to the loop's own code.

:func:`fast_path` returns ``None`` for batches shorter than :data:`BATCH_MIN`, inside
:func:`loops_only`, and when the fast path itself declines the batch (returns ``None``: NaNs,
sessions out of order); the caller then runs its plain loop. ``tests/test_rule_fast_paths.py``
runs every rule type on long random batches with and without fast paths (:func:`loops_only`)
and requires the same alerts and state: a new fast path is tested by adding its rule type's
params there.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from bot.model import DailySeries, Observation, ObservationBatch
from bot.rules.windows import Window

T = TypeVar("T")

#: Batches at least this long take the fast paths; shorter ones run the plain loops.
BATCH_MIN = 16

_loops_only: ContextVar[bool] = ContextVar("loops_only", default=False)


def fast_path(size: int, compute: Callable[[], T | None]) -> T | None:
    """``compute()`` — a rule's numpy fast path — for a batch of ``size`` rows, or ``None``
    when the rule must run its plain loop (a short batch, :func:`loops_only`, or ``compute``
    declining the batch by returning ``None``)."""
    if size < BATCH_MIN or _loops_only.get():
        return None
    return compute()


def rows_to_visit(
    size: int, compute: Callable[[], Sequence[int] | None], start: int = 0
) -> Sequence[int]:
    """The rows (ascending, from ``start``) a rule's loop must visit in a batch of ``size``:
    those its fast path ``compute`` finds, else every row (see :func:`fast_path`)."""
    rows = fast_path(size, compute)
    return range(start, size) if rows is None else rows


@contextmanager
def loops_only() -> Iterator[None]:
    """Within the block every rule runs its plain loop (tests compare the two)."""
    token = _loops_only.set(True)
    try:
        yield
    finally:
        _loops_only.reset(token)


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def batch_arrays(observations: Sequence[Observation], tz: ZoneInfo) -> tuple[Any, Any]:
    """``(values, session ordinals)`` of a batch as numpy arrays (float64, int64).

    The session is :func:`session_of`'s. Cached on an :class:`~bot.model.ObservationBatch`
    (the engine shares one batch among the rules that want the same observations).
    """
    import numpy as np

    cache = observations.cache if isinstance(observations, ObservationBatch) else None
    key = ("arrays", tz.key, len(observations))
    if cache is not None and key in cache:
        return cache[key]  # type: ignore[no-any-return]
    values = np.fromiter((o.value for o in observations), np.float64, len(observations))
    ordinals = np.fromiter(
        (
            (o.session if o.session is not None else o.time.astimezone(tz).date()).toordinal()
            for o in observations
        ),
        np.int64,
        len(observations),
    )
    if cache is not None:
        cache[key] = (values, ordinals)
    return values, ordinals


def period_start_ordinals(window: Window, ordinals: Any) -> Any:
    """:meth:`Window.period_start` of each day ordinal (calendar windows), vectorised."""
    import numpy as np

    days = (ordinals - _EPOCH_ORDINAL).astype("datetime64[D]")
    if window.kind == "mtd":
        starts = days.astype("datetime64[M]")
    elif window.kind == "qtd":
        months = days.astype("datetime64[M]").astype(np.int64)  # months since 1970-01
        starts = (months - months % 3).astype("datetime64[M]")
    elif window.kind == "ytd":
        starts = days.astype("datetime64[Y]")
    else:
        raise ValueError(f"{window} has no calendar period")
    return starts.astype("datetime64[D]").astype(np.int64) + _EPOCH_ORDINAL


def base_indices(window: Window, series: DailySeries, ordinals: Any) -> Any:
    """:meth:`Window.base_index` for each session ordinal, vectorised (-1: too early)."""
    import numpy as np

    rows = series.arrays()[0]
    if window.kind == "sessions":
        following = np.searchsorted(rows, ordinals, side="left")  # first row dated >= session
        return np.where(following >= window.sessions, following - window.sessions, -1)
    return np.searchsorted(rows, period_start_ordinals(window, ordinals), side="left") - 1


def batch_base_indices(
    observations: Sequence[Observation], tz: ZoneInfo, window: Window, series: DailySeries
) -> Any:
    """:func:`base_indices` of a batch's sessions (:func:`batch_arrays`) in ``series``.

    Cached on an :class:`~bot.model.ObservationBatch` per window and series, as the rules of a
    backtest share a few windows (``mtd`` in many rules) over the same batch.
    """
    ordinals = batch_arrays(observations, tz)[1]
    cache = observations.cache if isinstance(observations, ObservationBatch) else None
    key = ("bases", tz.key, len(observations), str(window), id(series), len(series))
    found = cache.get(key) if cache is not None else None
    if found is not None and found[0] is series:  # the very series (an id can be reused)
        return found[1]
    bases = base_indices(window, series, ordinals)
    if cache is not None:
        cache[key] = (series, bases)
    return bases


def batch_rows_of(observations: Sequence[Observation], tz: ZoneInfo, series: DailySeries) -> Any:
    """For each observation of a batch, the row of ``series`` dated its session; -1 if none.

    Cached on an :class:`~bot.model.ObservationBatch` per series, like
    :func:`batch_base_indices`.
    """
    import numpy as np

    ordinals = batch_arrays(observations, tz)[1]
    cache = observations.cache if isinstance(observations, ObservationBatch) else None
    key = ("rows", tz.key, len(observations), id(series), len(series))
    found = cache.get(key) if cache is not None else None
    if found is not None and found[0] is series:
        return found[1]
    dates = series.arrays()[0]
    if len(dates):
        row = np.searchsorted(dates, ordinals, side="left")  # first row dated >= session
        at = np.minimum(row, len(dates) - 1)
        rows = np.where(dates[at] == ordinals, at, -1)
    else:
        rows = np.full(len(ordinals), -1, dtype=np.int64)
    if cache is not None:
        cache[key] = (series, rows)
    return rows


def episode_rows(valid: Any, beyond: Any) -> Any:
    """Indices of the rows a threshold state machine must visit, in order.

    ``valid``: rows it evaluates at all (enough history); ``beyond``: rows past the threshold.
    Rows past the threshold change the state; of each run of valid rows inside the threshold
    only the first can (an episode ends there, see :func:`breach_step`); row 0 seeds the state.
    """
    import numpy as np

    index = np.flatnonzero(valid)
    inside_after_beyond = np.zeros(len(index), dtype=bool)
    hits = beyond[index]
    inside_after_beyond[1:] = hits[:-1] & ~hits[1:]
    keep = hits | inside_after_beyond
    if len(index):
        keep[0] = True
    rows = index[keep]
    if not len(rows) or rows[0] != 0:
        rows = np.concatenate(([0], rows))
    return rows


def switch_rows(fires: Any, rearms: Any, armed: bool, start: int) -> list[int]:
    """The rows from ``start`` on which a fire-and-re-arm machine changes, ascending.

    Armed, it fires on the first row of ``fires`` (boolean array) and disarms; disarmed, it
    re-arms on the first row of ``rearms``; a row that fires never re-arms, nor one that
    re-arms fire. On every other row it does nothing, so the loop visits only these.
    """
    import numpy as np

    fire_rows: list[int] = np.flatnonzero(fires).tolist()
    arm_rows: list[int] = np.flatnonzero(rearms).tolist()
    found: list[int] = []
    row = start
    while True:
        rows = fire_rows if armed else arm_rows
        k = bisect.bisect_left(rows, row)
        if k == len(rows):
            return found
        row = rows[k]
        found.append(row)
        armed = not armed
        row += 1
