"""Split a Telegram HTML message into parts that fit one message each, HTML balanced in each.

Telegram refuses texts longer than 4,096 characters. :func:`split_html` cuts at line boundaries
where it can (else between words, else anywhere — never inside a tag or an ``&entity;``), closes
the tags still open at the end of a part and re-opens them at the start of the next, so each part
parses on its own and keeps its formatting.

Lengths are counted in UTF-16 code units of the HTML source: that is how Telegram counts, and the
source is never shorter than the text the user sees, so a part that fits here fits there.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Literal

TELEGRAM_LIMIT = 4096

# A tag, an entity, a newline, a run of blanks, a word, or a stray character.
_TOKEN_RE = re.compile(r"<[^<>]*>|&#?[A-Za-z0-9]+;|\n|[ \t]+|[^<&\n \t]+|[<&]")
_TAG_ONLY_RE = re.compile(r"<[^<>]*>")
_TAG_NAME_RE = re.compile(r"<\s*(/?)\s*([A-Za-z][A-Za-z0-9-]*)")

TokenKind = Literal["open", "close", "newline", "space", "text", "entity"]


@dataclass(frozen=True, slots=True)
class _Token:
    kind: TokenKind
    raw: str
    size: int  # UTF-16 code units
    name: str = ""  # tag name for open/close


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units: an emoji counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def split_html(text: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Cut ``text`` (Telegram HTML) into parts of at most ``limit`` UTF-16 units each.

    Prefers line boundaries, then blanks, then a hard cut between characters; the newline or
    blank at a cut is dropped. Tags open at a cut are closed at the end of the part and re-opened
    (with their attributes) at the start of the next. Parts with no visible text are skipped.
    Raises ``ValueError`` if a single tag or the re-opened tags alone do not fit in ``limit``.
    """
    if limit <= 0:
        raise ValueError(f"limit must be positive, got {limit}")
    if not text:
        return []
    if utf16_len(text) <= limit:
        return [text]
    tokens = _tokenize(text)
    parts: list[str] = []
    stack: list[_Token] = []  # open tags at position i
    i = 0
    while i < len(tokens):
        # Blanks and newlines at the start of a part would only be trimmed by Telegram.
        while i < len(tokens) and tokens[i].kind in ("newline", "space"):
            i += 1
        if i >= len(tokens):
            break
        start_stack = list(stack)
        size = sum(t.size for t in start_stack)
        cur = list(start_stack)
        j = i
        last_newline: tuple[int, list[_Token]] | None = None
        last_space: tuple[int, list[_Token]] | None = None
        while j < len(tokens):
            tok = tokens[j]
            new = _apply(cur, tok)
            if size + tok.size + _closers_size(new) > limit:
                break
            if tok.kind == "newline" and j > i:
                last_newline = (j, list(cur))
            elif tok.kind == "space" and j > i:
                last_space = (j, list(cur))
            size += tok.size
            cur = new
            j += 1
        if j >= len(tokens):  # the rest fits
            end, resume, end_stack = j, j, cur
        elif tokens[j].kind in ("newline", "space") and j > i:
            end, resume, end_stack = j, j + 1, cur
        elif last_newline is not None:
            end, resume, end_stack = last_newline[0], last_newline[0] + 1, last_newline[1]
        elif last_space is not None:
            end, resume, end_stack = last_space[0], last_space[0] + 1, last_space[1]
        elif j > i:
            end, resume, end_stack = j, j, cur  # hard cut between tokens
        elif tokens[j].kind == "text" and len(tokens[j].raw) > 1:
            # One word longer than a whole message: cut it into characters and go again.
            tokens[j : j + 1] = [_text_token(ch) for ch in tokens[j].raw]
            continue
        else:
            raise ValueError(
                f"cannot split into parts of {limit}: {tokens[j].raw[:40]!r} does not fit "
                f"after the re-opened tags {''.join(t.raw for t in start_stack)[:80]!r}"
            )
        body = tokens[i:end]
        if any(t.kind in ("text", "entity") for t in body):
            head = "".join(t.raw for t in start_stack)
            parts.append(head + "".join(t.raw for t in body) + _closers(end_stack))
        stack = end_stack
        i = resume
    return parts


def html_to_plain(text: str) -> str:
    """Telegram HTML as the plain text a user would see: tags dropped, entities decoded.

    For resending a part Telegram refused to parse as HTML; never longer than ``text``.
    """
    return html.unescape(_TAG_ONLY_RE.sub("", text))


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    for match in _TOKEN_RE.finditer(text):
        raw = match.group(0)
        size = utf16_len(raw)
        if raw.startswith("<") and len(raw) > 1:
            tag = _TAG_NAME_RE.match(raw)
            if tag is not None and not raw.endswith("/>"):
                kind: TokenKind = "close" if tag.group(1) else "open"
                tokens.append(_Token(kind, raw, size, tag.group(2).lower()))
                continue
        if raw.startswith("&") and len(raw) > 1:
            tokens.append(_Token("entity", raw, size))  # atomic: never cut inside
        elif raw == "\n":
            tokens.append(_Token("newline", raw, size))
        elif raw.isspace():
            tokens.append(_Token("space", raw, size))
        else:
            tokens.append(_Token("text", raw, size))
    return tokens


def _text_token(raw: str) -> _Token:
    return _Token("text", raw, utf16_len(raw))


def _apply(stack: list[_Token], tok: _Token) -> list[_Token]:
    """The open-tag stack after ``tok`` (a copy when it changes)."""
    if tok.kind == "open":
        return [*stack, tok]
    if tok.kind == "close":
        # Close the innermost tag of that name (and anything opened inside it, as HTML does).
        for k in range(len(stack) - 1, -1, -1):
            if stack[k].name == tok.name:
                return stack[:k]
    return stack


def _closers(stack: list[_Token]) -> str:
    return "".join(f"</{t.name}>" for t in reversed(stack))


def _closers_size(stack: list[_Token]) -> int:
    return sum(len(t.name) + 3 for t in stack)
