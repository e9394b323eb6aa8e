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
    return [row for row in rows if row and (len(row) > 1 or row[0].strip(" \t"))]


def _records(text: str, skip_initial_space: bool, *, strict: bool) -> list[list[str]]:
    # newline="": the reader sees line endings untranslated and splits on \r alone too
    reader = csv.reader(
        io.StringIO(text, newline=""), strict=strict, skipinitialspace=skip_initial_space
    )
    return list(reader)


def longest_row(rows: list[list[str]], width: int) -> tuple[int, int] | None:
    """``(row number, field count)`` of the first data row wider than ``width`` (the header's),
    rows numbered as errors name them (the header is row 1)."""
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
