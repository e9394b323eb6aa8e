"""The wording of an FOMC decision alert, from a parsed statement's data (``Observation.detail``).

"FOMC cuts by 25 bp to 3.50–3.75% (from 3.75–4.00%); vote 9–3 — Miran preferred −50 bp;
Goolsbee, Schmid preferred no change".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.rules.text import fmt_range

MINUS = "\u2212"


def _surname(name: str) -> str:
    parts = [p for p in name.split() if p.rstrip(".,") not in {"Jr", "Sr", "II", "III"}]
    return parts[-1] if parts else name


def _preferred(text: str) -> str:
    """``-50 bp`` → ``−50 bp`` (a real minus sign, as traders write it)."""
    return text.replace("-", MINUS, 1) if text.startswith("-") else text


def fmt_dissents(dissents: Sequence[Mapping[str, Any]]) -> str:
    """ "Miran preferred −50 bp; Goolsbee, Schmid preferred no change" (grouped by wish)."""
    groups: dict[str, list[str]] = {}
    for dissent in dissents:
        groups.setdefault(str(dissent.get("preferred") or "other"), []).append(
            _surname(str(dissent.get("name", "")))
        )
    parts = []
    for wish, names in groups.items():
        who = ", ".join(names)
        if wish == "other":
            parts.append(f"{who} dissented")
        elif wish in {"no change"} or wish.endswith(" bp") or wish.endswith("%"):
            parts.append(f"{who} preferred {_preferred(wish)}")
        else:
            parts.append(f"{who} preferred to {wish}")
    return "; ".join(parts)


def fmt_vote(detail: Mapping[str, Any]) -> str:
    """ "9–3", or "" when the statement does not say."""
    votes_for, against = detail.get("votes_for"), detail.get("votes_against")
    if votes_for is None:
        return ""
    return f"{votes_for}–{against or 0}"


def describe_decision(
    detail: Mapping[str, Any],
    old: tuple[float | None, float] | None,
    new: tuple[float | None, float],
    label: str = "FOMC",
) -> str:
    """The alert text of one decision; ``old`` is the range before it (None: unknown)."""
    lower, upper = new
    moved = round((upper - old[1]) * 100) if old is not None else detail.get("bp")
    decision = detail.get("decision", "hold")
    if moved is not None and moved != 0:
        decision = "cut" if moved < 0 else "hike"
    target = fmt_range(lower, upper)
    if decision == "hold":
        head = f"{label} holds at {target}"
    else:
        verb = "cuts" if decision == "cut" else "hikes"
        size = f" by {abs(int(moved))} bp" if moved is not None else ""
        head = f"{label} {verb}{size} to {target}"
        if old is not None:
            head += f" (from {fmt_range(*old)})"
    vote = fmt_vote(detail)
    dissents = fmt_dissents(detail.get("dissents") or ())
    if vote:
        head += f"; vote {vote}"
    if dissents:
        head += f" — {dissents}"
    return head
