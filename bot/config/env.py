"""``${VAR}`` substitution in config text, keeping YAML valid and line numbers exact.

``${VAR}`` and ``${VAR:-default}`` are swapped for placeholders before parsing (``{``/``}`` are
YAML flow indicators) and expanded in the parsed tree, so a value keeps the line it was written
on. ``$${VAR}`` is a literal ``${VAR}``. A rule's ``template`` is never expanded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# ``${VAR}``, ``${VAR:-default}``; ``$${…}`` is the escape for a literal ``${…}``.
_ENV_RE = re.compile(r"\$?\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def protect_env_refs(text: str) -> tuple[str, dict[str, str]]:
    """Swap each ``${...}`` for a plain placeholder before parsing.

    ``{`` and ``}`` are YAML flow indicators, so ``chats: {traders: ${CHAT}}`` would not parse;
    placeholders keep the YAML valid and every line number where it was.
    """
    refs: dict[str, str] = {}

    def swap(match: re.Match[str]) -> str:
        placeholder = f"__env_ref_{len(refs)}__"
        refs[placeholder] = match.group(0)
        return placeholder

    return _ENV_RE.sub(swap, text), refs


_PLACEHOLDER_RE = re.compile(r"__env_ref_\d+__")

#: Rule keys whose values are never substituted: a message template is text the bot sends, and
#: ``${TELEGRAM_BOT_TOKEN}`` in one must not put the token in a chat (nor ``${level}`` vanish).
VERBATIM_KEYS = frozenset({"template"})


def substitute_env(
    value: Any,
    refs: Mapping[str, str],
    environ: Mapping[str, str],
    path: tuple[str | int, ...] = (),
    unset: dict[tuple[str | int, ...], list[str]] | None = None,
) -> Any:
    """Replace placeholders (see :func:`protect_env_refs`) with ``${VAR}`` /
    ``${VAR:-default}`` values from the environment, in every string of a parsed YAML tree.

    Values under :data:`VERBATIM_KEYS` get their ``${…}`` text back unchanged. ``unset``
    collects, per path, the variables that were unset with no default (named in problems).
    """
    if isinstance(value, str):
        if not _PLACEHOLDER_RE.search(value):
            return value
        if len(path) == 3 and path[0] == "rules" and path[2] in VERBATIM_KEYS:
            return _PLACEHOLDER_RE.sub(lambda m: refs[m.group(0)], value)
        whole = _PLACEHOLDER_RE.fullmatch(value) is not None

        def expand(match: re.Match[str]) -> str:
            written = refs[match.group(0)]
            if written.startswith("$$"):
                return written[1:]
            ref = _ENV_RE.fullmatch(written)
            assert ref is not None
            name, default = ref.group(1), ref.group(2)
            found = environ.get(name)
            if not found and default is None and unset is not None:
                unset.setdefault(path, []).append(name)
            return found or (default if default is not None else "")

        result = _PLACEHOLDER_RE.sub(expand, value)
        if whole and not refs[value].startswith("$$"):
            # A lone "${VAR}" is typed like YAML would type the value: numbers stay numbers,
            # true/false are booleans.
            if re.fullmatch(r"-?\d+", result):
                return int(result)
            if re.fullmatch(r"-?\d+\.\d*", result):
                return float(result)
            if result in ("true", "false"):
                return result == "true"
        return result
    if isinstance(value, dict):
        return {k: substitute_env(v, refs, environ, (*path, k), unset) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_env(v, refs, environ, (*path, i), unset) for i, v in enumerate(value)]
    return value
