"""User message templates (a rule's ``template:``): checked at load, bounded when rendered.

A template is a :meth:`str.format` string with named fields only. Every field a rule offers is
already formatted text (``{value}`` is ``2,603.91`` like ``{level}`` is ``2,600``), except
``{value_raw}``, the plain number. ``check`` renders each field with a sample of its real type,
so a spec that cannot apply (``{value_raw:d}``, ``{time:%Y}``) is a located config error, not an
exception in the middle of a poll cycle; widths and precisions are bounded, and a rendered alert
is cut at :data:`MAX_ALERT_CHARS`.
"""

from __future__ import annotations

import difflib
import re
import string
from collections.abc import Collection, Mapping
from typing import Any

#: Fields holding numbers rather than formatted text; every other field is a ``str``.
NUMERIC_FIELDS: Mapping[str, float] = {"value_raw": 2603.91}
#: Largest width or precision a template field may ask for (``{value:>12}`` is typical).
MAX_FIELD_WIDTH = 200
#: Longest alert text kept (four Telegram messages); the rest is cut and marked.
MAX_ALERT_CHARS = 4 * 4096
TRUNCATED = "… [truncated]"

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# The format-spec mini-language, enough to find width and precision.
_SPEC_RE = re.compile(
    r"^(?:.?[<>=^])?[-+ ]?z?#?0?(?P<width>\d*)[,_]?(?:\.(?P<precision>\d+))?[a-zA-Z%]?$",
    re.S,
)


class TemplateError(ValueError):
    """A template cannot be rendered with the fields given."""


def template_problems(template: str, allowed: Collection[str]) -> list[str]:
    """Every problem of ``template`` given the field names a rule offers (empty: it is fine).

    Named fields only, known ones only, no conversions or nested fields, bounded widths, and
    each field's spec must format a sample value of the field's real type.
    """
    found: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        return [f"invalid template: {exc}"]
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field or not _NAME_RE.fullmatch(field):
            found.append(
                f"template field {{{field}}} is not allowed: use plain names such as "
                f"{{value}} (no positions, attributes or indexes)"
            )
        elif field not in allowed:
            close = difflib.get_close_matches(field, sorted(allowed), n=1)
            hint = f" (did you mean {{{close[0]}}}?)" if close else ""
            found.append(
                f"unknown template field {{{field}}}{hint}; available: "
                + ", ".join(sorted(allowed))
            )
        elif conversion or (spec and "{" in spec):
            found.append(
                f"template field {{{field}}}: conversions and nested fields are not allowed"
            )
        elif spec:
            problem = _spec_problem(field, spec)
            if problem:
                found.append(f"template field {{{field}:{spec}}}: {problem}")
    return found


def _spec_problem(field: str, spec: str) -> str | None:
    match = _SPEC_RE.match(spec)
    if match:
        for part in ("width", "precision"):
            size = match.group(part)
            if size and int(size) > MAX_FIELD_WIDTH:
                return f"{part} {int(size):,} is too large (at most {MAX_FIELD_WIDTH})"
    try:
        format(sample_value(field), spec)
    except (ValueError, TypeError) as exc:
        if field in NUMERIC_FIELDS:
            return f"{exc} (this field is a number)"
        hint = "; {value_raw} is the number" if field == "value" else ""
        return f"{exc} (this field is text{hint})"
    return None


def sample_value(field: str) -> Any:
    """A value of the type ``field`` has when an alert is rendered."""
    return NUMERIC_FIELDS.get(field, "2,603.91")


def render(template: str, fields: Mapping[str, Any]) -> str:
    """Render ``template``; raises :class:`TemplateError` whatever goes wrong."""
    try:
        return template.format_map(fields)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise TemplateError(f"{type(exc).__name__}: {exc}") from exc


def bound(text: str, limit: int = MAX_ALERT_CHARS) -> str:
    """``text`` cut to ``limit`` characters, the cut marked with :data:`TRUNCATED`."""
    if len(text) <= limit:
        return text
    return text[: limit - len(TRUNCATED)] + TRUNCATED
