"""Reading daily CSV text with the standard library ``csv`` module (no pandas in the worker).

The cell rules are those the parsers had when they used ``pandas.read_csv`` + ``to_numeric`` +
``to_datetime(format="%Y-%m-%d")``, pinned by ``tests/test_csv_parsing.py``:

* records split on ``\\n``, ``\\r\\n`` or ``\\r``; lines that are empty or only spaces/tabs are
  not records (so they do not count in the row numbers errors give);
* numbers are ASCII decimal (``+1.5``, ``.5``, ``1e3``) or ``inf``/``infinity``; ``nan``,
  ``1_000`` and non-ASCII digits are not numbers;
* dates are ``YYYY-MM-DD``, month and day with or without a leading zero.
"""

from __future__ import annotations

import csv
import io
import math
from datetime import date, datetime


class CsvSyntaxError(ValueError):
    """The text cannot be split into CSV records (an unclosed quote, a giant field)."""


def read_records(text: str, *, skip_initial_space: bool = False) -> list[list[str]]:
    """The non-blank records of ``text``; the first is the header (if any)."""
    # strict first: it is the only way the csv module reports a quote left open at the end;
    # its other complaint (text after a closing quote) is accepted like pandas did, unstrict.
    try:
        rows = _records(text, skip_initial_space, strict=True)
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise CsvSyntaxError("a quoted field is not closed before the end") from None
        try:
            rows = _records(text, skip_initial_space, strict=False)
        except csv.Error as again:
            raise CsvSyntaxError(str(again)) from None
    if min(map(len, rows), default=2) > 1:  # the common case, checked at C speed
        return rows
    return [row for row in rows if len(row) > 1 or (row and row[0].strip(" \t"))]


def _records(text: str, skip_initial_space: bool, *, strict: bool) -> list[list[str]]:
    # newline="": the reader sees line endings untranslated and splits on \r alone too
    reader = csv.reader(
        io.StringIO(text, newline=""), strict=strict, skipinitialspace=skip_initial_space
    )
    return list(reader)


def longest_row(rows: list[list[str]], width: int) -> tuple[int, int] | None:
    """``(row number, field count)`` of the first data row wider than ``width`` (the header's),
    rows numbered as errors name them (the header is row 1)."""
    if max(map(len, rows), default=0) <= width:  # the common case, checked at C speed
        return None
    for number, row in enumerate(rows, start=2):
        if len(row) > width:
            return number, len(row)
    return None


def parse_number(text: str) -> float | None:
    """The float a stripped cell holds, ``None`` if it is not a number (``nan`` is not)."""
    if not text.isascii() or "_" in text:  # float() would take "1_000" and "١٢"
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return None if math.isnan(value) else value


def parse_day(text: str) -> date | None:
    """The date of a stripped ``YYYY-MM-DD`` cell (``2025-1-5`` too), ``None`` if it is not one."""
    if len(text) == 10 and text[4] == "-" and text[7] == "-":
        try:  # the common, zero-padded form: fast
            return date.fromisoformat(text)
        except ValueError:
            pass
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        return None


def stripped_column(rows: list[list[str]], index: int) -> list[str]:
    """The stripped cells of column ``index`` (``""`` where a short row lacks it)."""
    return [row[index].strip() if index < len(row) else "" for row in rows]


def parse_numbers(cells: list[str]) -> list[float | None]:
    """:func:`parse_number` of each cell; a column of plain numbers at C speed."""
    joined = "".join(cells)
    if joined.isascii() and "_" not in joined:
        try:
            values: list[float] = list(map(float, cells))
        except ValueError:
            pass
        else:
            if not any(map(math.isnan, values)):
                return list(values)
    return list(map(parse_number, cells))


def parse_days(cells: list[str]) -> list[date | None]:
    """:func:`parse_day` of each cell; a column of zero-padded dates at C speed."""
    joined = "".join(cells)
    dashes = "-" * len(cells)
    if set(map(len, cells)) <= {10} and joined[4::10] == dashes and joined[7::10] == dashes:
        try:
            return list(map(date.fromisoformat, cells))
        except ValueError:
            pass
    return list(map(parse_day, cells))
