"""split_html: parts fit, cuts fall on line boundaries, HTML is balanced in every part."""

from __future__ import annotations

import html
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.notify.split import TELEGRAM_LIMIT, html_to_plain, split_html, utf16_len
from tests.fakes.telegram import _check_html, _plain_text

_TAG_RE = re.compile(r"<(/?)([a-z-]+)[^>]*>")


def assert_balanced(part: str) -> None:
    """Every tag opened in ``part`` is closed in it, innermost first; Telegram would parse it."""
    stack: list[str] = []
    for closing, name in _TAG_RE.findall(part):
        if closing:
            assert stack and stack[-1] == name, f"unbalanced </{name}> in {part[:80]!r}"
            stack.pop()
        else:
            stack.append(name)
    assert not stack, f"unclosed {stack} in {part[-80:]!r}"
    assert _check_html(part) is None, _check_html(part)


def visible(parts: list[str]) -> str:
    return "".join(_plain_text(p) for p in parts)


def test_short_text_is_one_part_unchanged() -> None:
    assert split_html("<b>RUT</b> crossed 2,500") == ["<b>RUT</b> crossed 2,500"]
    assert split_html("") == []


def test_exactly_the_limit_is_one_part() -> None:
    text = "x" * TELEGRAM_LIMIT
    assert split_html(text) == [text]


def test_ten_thousand_chars_split_on_line_boundaries() -> None:
    lines = [f"line {n:04d} " + "·" * 90 for n in range(100)]  # 100 lines of 100 chars
    text = "<b>Daily digest</b>\n" + "\n".join(lines)
    assert len(text) > 10_000

    parts = split_html(text)

    assert len(parts) == 3
    for part in parts:
        assert utf16_len(part) <= TELEGRAM_LIMIT
        assert_balanced(part)
        # every part ends with a whole line: cut only where a newline was
        assert part.endswith("·")
    # nothing lost but the newlines at the cuts
    assert visible(parts).replace("\n", "") == _plain_text(text).replace("\n", "")
    assert "\n".join(_plain_text(p) for p in parts) == _plain_text(text)


def test_tags_open_across_a_cut_are_closed_and_reopened() -> None:
    text = '<b>bold <a href="https://x.example/?a=1&amp;b=2">link\n' + "word " * 30 + "</a></b>"
    parts = split_html(text, limit=80)
    assert len(parts) > 2
    for part in parts:
        assert utf16_len(part) <= 80
        assert_balanced(part)
    assert parts[1].startswith('<b><a href="https://x.example/?a=1&amp;b=2">')
    assert parts[-1].endswith("</a></b>")
    assert " ".join(_plain_text(p) for p in parts).split() == _plain_text(text).split()


def test_a_single_line_longer_than_the_limit_is_cut_between_words() -> None:
    text = "<i>" + " ".join(f"w{n:03d}" for n in range(400)) + "</i>"  # one line, 2,000 chars
    parts = split_html(text, limit=500)
    assert len(parts) == 5
    for part in parts:
        assert utf16_len(part) <= 500
        assert_balanced(part)
        assert part.startswith("<i>") and part.endswith("</i>")
    assert " ".join(_plain_text(p) for p in parts).split() == [f"w{n:03d}" for n in range(400)]


def test_a_word_longer_than_the_limit_is_cut_but_never_inside_an_entity() -> None:
    text = "<code>" + "a&amp;b&lt;" * 1000 + "</code>"  # one 'word', no blanks
    parts = split_html(text, limit=100)
    for part in parts:
        assert utf16_len(part) <= 100
        assert_balanced(part)
        # an entity cut in two would leave a bare '&' or a fragment like 'amp;'
        assert not re.search(r"&(?!amp;|lt;)", part)
    assert visible(parts) == html.unescape("a&amp;b&lt;" * 1000)


def test_emoji_count_as_two_units() -> None:
    text = "📈" * 3000  # 3,000 characters, 6,000 UTF-16 units
    parts = split_html(text)
    assert [utf16_len(p) for p in parts] == [4096, 1904]
    assert "".join(parts) == text


def test_tag_that_cannot_fit_raises() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        split_html('<a href="' + "x" * 200 + '">t</a> more', limit=50)


@settings(max_examples=200, deadline=None)
@given(
    chunks=st.lists(
        st.one_of(
            st.text(alphabet="ab <&>\n📈é", min_size=1, max_size=30).map(
                lambda s: html.escape(s, quote=False)
            ),
            st.sampled_from(["<b>", "</b>", "<i>", "</i>", '<a href="u">', "</a>"]),
        ),
        max_size=60,
    ),
    limit=st.integers(min_value=60, max_value=300),
)
def test_property_parts_fit_balanced_and_keep_the_words(chunks: list[str], limit: int) -> None:
    # build well-formed HTML from the random chunks: drop closers with no opener, close the rest
    stack: list[str] = []
    out: list[str] = []
    for chunk in chunks:
        m = _TAG_RE.fullmatch(chunk)
        if m is None:
            out.append(chunk)
        elif m.group(1):
            if stack and stack[-1] == m.group(2):
                stack.pop()
                out.append(chunk)
        elif len(stack) < 3:  # real alerts nest shallowly; deep nesting can't fit small limits
            stack.append(m.group(2))
            out.append(chunk)
    out.extend(f"</{name}>" for name in reversed(stack))
    text = "".join(out)

    parts = split_html(text, limit=limit)

    for part in parts:
        assert utf16_len(part) <= limit
        assert_balanced(part)
        if len(parts) > 1:  # a cut never leaves a part with nothing to read
            assert _plain_text(part).strip()
    # cuts only drop blanks/newlines: the non-blank characters survive in order
    squeeze = re.compile(r"\s+")
    assert squeeze.sub("", visible(parts)) == squeeze.sub("", _plain_text(text))


def test_html_to_plain_is_what_the_user_would_see_and_never_longer() -> None:
    source = '<b>RUT &lt; 2,500 &amp; falling</b>\n<a href="x">link</a> &quot;q&quot;'
    plain = html_to_plain(source)
    assert plain == 'RUT < 2,500 & falling\nlink "q"'
    assert utf16_len(plain) <= utf16_len(source)
