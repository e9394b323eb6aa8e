"""Read an FOMC statement: the decision (cut / hike / hold), its size, the new target range, the
vote and the dissents.

Input is the statement page as the Fed serves it (``div#article`` paragraphs), or plain text
(with or without Markdown front matter, one paragraph per block or one sentence per line).
Every wording since 2008 is handled: "decided to lower the target range … by 1/4 percentage
point to 3-1/2 to 3-3/4 percent", "… to 0 to 1/4 percent" without "by", "maintain … at",
"reaffirmed … remains appropriate", whole numbers ("to 4 to 4-1/4"), U+2011 hyphens,
double-encoded UTF-8 ("â€‘") and pages without a charset (bytes are decoded as UTF-8).

A dissent ("Voting against … who preferred to lower … by 1/2 percentage point") is never taken for
the decision: the vote paragraphs are set aside before the decision is looked for, and a sentence
saying "preferred" is never a decision.

Length (over 400 lines): one reader of one document — the page's text, the decision sentence,
the vote and the dissents are found in the same paragraphs with the same number words.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from html.parser import HTMLParser
from typing import Any, Literal

from bot.errors import BotError

Decision = Literal["cut", "hike", "hold"]


class NoDecisionError(BotError, ValueError):
    """The text holds no FOMC rate decision (another release, an error page, a truncated page)."""


@dataclass(frozen=True)
class Dissent:
    """One member voting against: who, and what they preferred (``"-50 bp"``, ``"no change"``,
    ``"0.50–0.75%"``, or a few words for a dissent that is not about the rate)."""

    name: str
    preferred: str
    bp: int | None = None  # the change they preferred, from the old range, when known

    @property
    def surname(self) -> str:
        parts = [p for p in self.name.split() if p.rstrip(".") not in {"Jr", "Sr", "III"}]
        return parts[-1] if parts else self.name


@dataclass(frozen=True)
class Statement:
    """What one statement says."""

    decision: Decision
    lower: float
    upper: float
    bp: int | None  # change of the upper bound in basis points; None when the text omits it
    date: date | None = None
    dissents: tuple[Dissent, ...] = ()
    votes_for: int | None = None
    votes_against: int | None = None
    release: str | None = None  # "2:00 p.m. EDT"
    sentence: str = field(default="", compare=False)

    @property
    def previous(self) -> tuple[float, float] | None:
        """The range before the decision, when the size of the move is known."""
        if self.bp is None:
            return None
        return (self.lower - self.bp / 100, self.upper - self.bp / 100)

    def to_json(self) -> dict[str, Any]:
        """The ``parse-fomc --json`` shape."""
        return {
            "date": self.date.isoformat() if self.date else None,
            "decision": self.decision,
            "bp": self.bp,
            "lower": self.lower,
            "upper": self.upper,
            "dissents": [{"name": d.name, "preferred": d.preferred} for d in self.dissents],
        }


# ------------------------------------------------------------------------- text clean-up

_CP1252_BACK = {chr(c).encode("cp1252", "ignore").decode("latin-1"): c for c in range(0x80, 0xA0)}
# a UTF-8 lead byte read as Latin-1/cp1252, then continuation bytes read the same way
_MOJIBAKE_RE = re.compile(
    "[\u00c2-\u00f4][\u0080-\u00bf\u20ac\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160"
    "\u2039\u0152\u017d\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153"
    "\u017e\u0178]{1,3}"
)


def _undo_one(match: re.Match[str]) -> str:
    run = match.group(0)
    raw = bytearray()
    for char in run:
        try:
            raw += char.encode("cp1252")
        except UnicodeEncodeError:
            try:
                raw += char.encode("latin-1")
            except UnicodeEncodeError:
                return run
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return run  # a real accented letter followed by punctuation: leave it


# "â€" before a dash that survived as itself (a transcription of the mojibake, not its bytes)
_LEFTOVER_RE = re.compile("\u00e2\u20ac([\u2010-\u2015])")


def fix_mojibake(text: str) -> str:
    """Undo UTF-8 that was decoded as Latin-1/cp1252 ("3â€‘1/2" → "3‑1/2"), run by run."""
    if "\u00e2" not in text and "\u00c3" not in text and "\u00c2" not in text:
        return text  # the common case: nothing to undo
    return _LEFTOVER_RE.sub(r"\1", _MOJIBAKE_RE.sub(_undo_one, text))


_HYPHENS = str.maketrans(
    {"\u2010": "-", "\u2011": "-", "\u2012": "-", "\u00a0": " ", "\u202f": " ", "\u2009": " "}
)


def normalize(text: str) -> str:
    """Mojibake undone, every hyphen variant an ASCII hyphen, no-break spaces plain spaces."""
    return fix_mojibake(text).translate(_HYPHENS)


def to_text(raw: str | bytes) -> str:
    """Bytes as UTF-8 (whatever the server said: the Fed serves pages without a charset), BOM
    dropped."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    return raw.lstrip("\ufeff")


# ------------------------------------------------------------------------- paragraphs


class _ArticleParser(HTMLParser):
    """Paragraphs of ``div#article`` (or of the whole body when there is no such div).

    ``<p class="releaseTime">`` is never closed on the Fed's pages: any block tag ends an open
    paragraph."""

    _BLOCK = frozenset({"div", "ul", "ol", "li", "h1", "h2", "h3", "h4", "table", "footer"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.article_depth = 0  # >0 while inside div#article (counts nested divs)
        self.seen_article = False
        self.skip = 0
        self.current: list[str] | None = None
        self.article: list[str] = []
        self.body: list[str] = []
        self.time_text: str | None = None
        self._in_time = False

    def _end(self) -> None:
        if self.current is not None:
            text = re.sub(r"\s+", " ", "".join(self.current)).strip()
            if text:
                (self.article if self.article_depth else self.body).append(text)
        self.current = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "noscript"):
            self.skip += 1
            return
        attributes = dict(attrs)
        if tag == "div":
            if self.article_depth:
                self.article_depth += 1
            elif attributes.get("id") == "article":
                self.article_depth = 1
                self.seen_article = True
        if tag == "p":
            self._end()
            self.current = []
            self._in_time = "article__time" in (attributes.get("class") or "")
        elif tag in self._BLOCK:
            self._end()
        elif tag == "br" and self.current is not None:
            self.current.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "noscript"):
            self.skip = max(0, self.skip - 1)
            return
        if tag == "p" or tag in self._BLOCK:
            if self._in_time and self.current is not None:
                self.time_text = "".join(self.current).strip()
                self._in_time = False
            self._end()
        if tag == "div" and self.article_depth:
            self.article_depth -= 1

    def handle_data(self, data: str) -> None:
        if self.current is not None and not self.skip:
            self.current.append(data)


def looks_like_html(text: str) -> bool:
    """Whether ``text`` is an HTML page rather than plain text or Markdown."""
    head = text.lstrip()[:2000].lower()
    return head.startswith("<") or "<p" in head or "<html" in head


_FRONT_RE = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)


def paragraphs(raw: str | bytes) -> tuple[list[str], date | None]:
    """The statement's paragraphs (normalised) and the date found in the text, if any."""
    text = to_text(raw)
    found: date | None = None
    if looks_like_html(text):
        parser = _ArticleParser()
        parser.feed(text)
        parser.close()
        parser._end()
        blocks = parser.article if parser.seen_article else parser.body
        if parser.time_text:
            found = _long_date(normalize(parser.time_text))
    else:
        front = _FRONT_RE.match(text)
        if front:
            stamp = re.search(r"^date:\s*(\d{4}-\d{2}-\d{2})", front.group(1), re.MULTILINE)
            if stamp:
                found = date.fromisoformat(stamp.group(1))
            text = text[front.end() :]
        blocks = [re.sub(r"\s+", " ", b).strip() for b in re.split(r"\n\s*\n", text)]
        # one sentence per line (another extraction style): every line is a block
        if len(blocks) <= 2 and text.count("\n") > 5:
            blocks = [line.strip() for line in text.splitlines()]
    cleaned = [normalize(html.unescape(b)) for b in blocks if b and b.strip()]
    if found is None:
        for block in cleaned[:3]:
            found = _long_date(block)
            if found:
                break
    return cleaned, found


_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"


def _long_date(text: str) -> date | None:
    match = re.fullmatch(rf"\s*((?:{_MONTHS}) \d{{1,2}}, \d{{4}})\s*", text)
    if not match:
        return None
    return datetime.strptime(match.group(1), "%B %d, %Y").date()


# ------------------------------------------------------------------------- numbers

_NUM = r"\d+(?:\.\d+)?(?:\s*-\s*\d+/\d+)?|\d+/\d+"
_RANGE_RE = re.compile(rf"({_NUM})\s*(?:percent\s+)?to\s+({_NUM})\s+percent")
_SINGLE_RE = re.compile(rf"\bto\s+({_NUM})\s+percent")
_BY_RE = re.compile(rf"\bby\s+({_NUM})\s+percentage\s+points?")
_BASIS_RE = re.compile(r"(\d+)\s+basis\s+points?")


def number(text: str) -> float:
    """ "3-1/2" → 3.5, "1/4" → 0.25, "4" → 4.0, "0.5" → 0.5."""
    text = re.sub(r"\s+", "", text)
    whole, _, frac = text.partition("-") if "/" in text and "-" in text else ("", "", text)
    if "/" in frac:
        num, den = frac.split("/")
        value = int(num) / int(den)
    else:
        value = float(frac)
    return (float(whole) if whole else 0.0) + value


def _move_bp(text: str) -> int | None:
    by = _BY_RE.search(text)
    if by:
        return round(number(by.group(1)) * 100)
    basis = _BASIS_RE.search(text)
    return int(basis.group(1)) if basis else None


# ------------------------------------------------------------------------- the decision

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"“(])")
_DECISION_RE = re.compile(r"\b(?:decided|will maintain|reaffirmed|agreed|voted)\b", re.IGNORECASE)
_CUT_RE = re.compile(r"\b(?:lower|reduce|cut|decrease)\b", re.IGNORECASE)
_HIKE_RE = re.compile(r"\b(?:raise|increase)\b", re.IGNORECASE)
_HOLD_RE = re.compile(r"\b(?:maintain|keep|remains appropriate|reaffirmed)\b", re.IGNORECASE)
_CURRENT_RE = re.compile(rf"\bmaintain the current (?:{_NUM})\s+to\s+(?:{_NUM}) percent target")
_VOTE_PARAGRAPH = re.compile(r"^\s*(?:Voting (?:for|against)|Absent and not voting)", re.I)


def _is_vote(paragraph: str) -> bool:
    return bool(_VOTE_PARAGRAPH.match(paragraph)) or "Voting against" in paragraph


def _decision_sentence(blocks: list[str]) -> str | None:
    for block in blocks:
        if _is_vote(block):
            continue
        for sentence in _SENTENCE_SPLIT.split(block):
            if "prefer" in sentence.lower() or "federal funds rate" not in sentence:
                continue
            if not re.search(r"\btarget\b", sentence) or not _DECISION_RE.search(sentence):
                continue
            if "Committee" not in sentence and "FOMC" not in sentence:
                continue
            if _RANGE_RE.search(sentence) or _SINGLE_RE.search(sentence):
                return sentence
    # 2014: "reaffirmed … a highly accommodative stance … remains appropriate" carries no range;
    # the range is in "how long to maintain the current 0 to 1/4 percent target range"
    for block in blocks:
        if _is_vote(block):
            continue
        for sentence in _SENTENCE_SPLIT.split(block):
            if "prefer" not in sentence.lower() and _CURRENT_RE.search(sentence):
                return sentence
    return None


def _verb_part(sentence: str) -> str:
    """The sentence up to its (first) range: the verb that moves the rate comes before it."""
    match = _RANGE_RE.search(sentence) or _SINGLE_RE.search(sentence)
    return sentence[: match.start()] if match else sentence


def parse_statement(
    raw: str | bytes,
    *,
    day: date | None = None,
    previous: tuple[float, float] | None = None,
) -> Statement:
    """The decision in one statement (page or text). ``day``: the date when the text has none
    (e.g. from the page's URL). ``previous``: the range before this meeting, if known — the size
    of a move whose text does not state it ("raise … to 1/4 to 1/2 percent") is then known.
    Raises :class:`NoDecisionError` when there is none."""
    blocks, found = paragraphs(raw)
    sentence = _decision_sentence(blocks)
    if sentence is None:
        raise NoDecisionError("no FOMC rate decision found in the text")
    match = _RANGE_RE.search(sentence)
    if match:
        lower, upper = number(match.group(1)), number(match.group(2))
    else:
        single = _SINGLE_RE.search(sentence)
        assert single is not None  # _decision_sentence checked
        lower = upper = number(single.group(1))
    verbs = _verb_part(sentence)
    bp = _move_bp(verbs + (match.group(0) if match else ""))
    decision: Decision
    if _CUT_RE.search(verbs):
        decision = "cut"
    elif _HIKE_RE.search(verbs):
        decision = "hike"
    elif re.search(r"\bestablish\b", verbs):
        # the one such statement (2008-12-16) replaced the 1% target by 0 to 1/4 percent
        decision = "cut"
    elif _HOLD_RE.search(sentence):
        decision, bp = "hold", 0
    else:
        raise NoDecisionError(f"cannot tell the decision from {sentence[:120]!r}")
    if bp is not None and decision == "cut":
        bp = -abs(bp)
    if bp is None and previous is not None:
        bp = round((upper - previous[1]) * 100)
    if bp is not None:
        previous = (lower - bp / 100, upper - bp / 100)
    dissents = parse_dissents(blocks, previous)
    votes_for, votes_against = _votes(blocks, dissents)
    return Statement(
        decision=decision,
        lower=lower,
        upper=upper,
        bp=bp,
        date=day or found,
        dissents=tuple(dissents),
        votes_for=votes_for,
        votes_against=votes_against,
        release=_release(blocks),
        sentence=sentence,
    )


def _release(blocks: list[str]) -> str | None:
    for block in blocks[:6]:
        match = re.search(r"For release at (\d{1,2}:\d{2} [ap]\.m\. E[SD]T)", block)
        if match:
            return match.group(1)
    return None


def _votes(blocks: list[str], dissents: list[Dissent]) -> tuple[int | None, int | None]:
    for block in blocks:
        match = re.search(r"by an? (\d+)\s*[-–—]\s*(\d+) vote", block)
        if match:
            return int(match.group(1)), int(match.group(2))
    for block in blocks:
        if block.startswith("Voting for"):
            text = re.split(r"\.\s+(?=Voting against|Absent)", block)[0]
            members = [m for m in re.split(r";", text) if m.strip()]
            return len(members), len({d.name for d in dissents})
    return None, None


# ------------------------------------------------------------------------- dissents

_AGAINST_RE = re.compile(
    r"Voting against (?:the |this )?(?:monetary policy |policy )?(?:action|policy)?\s*"
    r"(?:was|were)\s*:?\s*(.*)",
    re.IGNORECASE,
)
_WHO_RE = re.compile(r"^(?:and\s+)?(?P<names>.+?),?\s+(?:who|each of whom)\b(?P<rest>.*)$", re.S)


def _split_names(text: str) -> list[str]:
    parts = re.split(r",\s*(?:and\s+)?|\s+and\s+", text.strip().rstrip(".,:"))
    return [p.strip() for p in parts if p.strip()]


def _fmt_bp(bp: int) -> str:
    return "no change" if bp == 0 else f"{bp:+d} bp"


def _preferred(rest: str, previous: tuple[float, float] | None) -> tuple[str, int | None]:
    """What a dissenter preferred, from the words after "who"."""
    low = rest.lower()
    at = low.find("prefer")
    wish = rest[at:] if at >= 0 else rest
    wish_low = wish.lower()
    if "federal funds" not in wish_low and "target range" not in wish_low:
        if "no change" in wish_low:
            return "no change", 0
        summary = re.sub(r"^(?:preferred|prefers|would have preferred)\s+(?:to\s+)?", "", wish)
        return summary.strip().rstrip(".")[:80], None
    if "no change" in wish_low or re.search(r"\bmaintain\b", wish_low):
        return "no change", 0
    sign = -1 if _CUT_RE.search(wish) else 1 if _HIKE_RE.search(wish) else 0
    bp = _move_bp(wish)
    if bp is not None and sign:
        return _fmt_bp(sign * bp), sign * bp
    match = _RANGE_RE.search(wish)
    if match:
        lower, upper = number(match.group(1)), number(match.group(2))
        if previous is not None:
            moved = round((upper - previous[1]) * 100)
            return _fmt_bp(moved), moved
        return f"{lower:.2f}–{upper:.2f}%", None
    return wish.strip().rstrip(".")[:80], None


def parse_dissents(blocks: list[str], previous: tuple[float, float] | None = None) -> list[Dissent]:
    """Each member voting against and what they preferred. ``previous``: the range before the
    decision (to express "preferred to reduce … to 1/2 to 3/4 percent" as a move)."""
    dissents: list[Dissent] = []
    for block in blocks:
        found = _AGAINST_RE.search(block)
        if not found:
            continue
        text = found.group(1)
        # the vote text ends where another sentence about someone else begins
        text = re.split(r"\.\s+(?=Absent|[A-Z][a-z]+ [A-Z]\. [A-Z][a-z]+ voted|Patrick)", text)[0]
        for clause in re.split(r";\s*", text):
            who = _WHO_RE.match(clause.strip())
            if who:
                names = _split_names(who.group("names"))
                preferred, bp = _preferred(who.group("rest"), previous)
            else:
                names = _split_names(re.split(r"(?<=[a-z]{2})\.\s", clause)[0])
                preferred, bp = "other", None
            dissents.extend(Dissent(name, preferred, bp) for name in names)
    return dissents
