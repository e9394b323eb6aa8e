"""The FOMC statement parser on fixtures written in the shapes of the real statements (pages,
Markdown with front matter, one sentence per line with mojibake)."""

from __future__ import annotations

from datetime import date

import pytest

from bot.fomc.parse import NoDecisionError, fix_mojibake, number, parse_statement
from tests.fakes.fed import ERROR_PAGE, NOT_FOUND_PAGE, cut_statement, statement_page

DAY = date(2025, 12, 10)


def test_page_cut_with_mixed_dissents() -> None:
    page = statement_page(DAY, cut_statement(DAY), release="2:00 p.m. EST")
    parsed = parse_statement(page.encode())  # bytes, no charset: decoded as UTF-8
    assert (parsed.decision, parsed.bp, parsed.lower, parsed.upper) == ("cut", -25, 3.5, 3.75)
    assert parsed.date == DAY  # from the page's article__time paragraph
    assert parsed.release == "2:00 p.m. EST"
    assert [(d.name, d.preferred) for d in parsed.dissents] == [
        ("Stephen I. Miran", "-50 bp"),
        ("Austan D. Goolsbee", "no change"),
        ("Jeffrey R. Schmid", "no change"),
    ]
    assert (parsed.votes_for, parsed.votes_against) == (9, 3)
    assert parsed.to_json() == {
        "date": "2025-12-10",
        "decision": "cut",
        "bp": -25,
        "lower": 3.5,
        "upper": 3.75,
        "dissents": [
            {"name": "Stephen I. Miran", "preferred": "-50 bp"},
            {"name": "Austan D. Goolsbee", "preferred": "no change"},
            {"name": "Jeffrey R. Schmid", "preferred": "no change"},
        ],
    }


def test_a_dissent_is_never_the_decision() -> None:
    """The 2026 format: the vote first, the decision next, dissents preferring a move."""
    day = date(2026, 7, 29)
    page = statement_page(
        day,
        [
            "The Federal Open Market Committee approved the following statement for release by "
            "a 9 \u2013 3 vote:",
            "The Committee decided to maintain the target range for the federal funds rate at "
            "3-1/2 to 3-3/4 percent, in support of the Federal Reserve's dual mandate.",
            "&nbsp;",
            "Voting against the monetary policy action were Beth M. Hammack, Neel Kashkari, and "
            "Lorie K. Logan, who preferred to raise the target range for the federal funds rate "
            "by 1/4 percentage point at this meeting.",
        ],
    )
    parsed = parse_statement(page)
    assert (parsed.decision, parsed.bp, parsed.lower, parsed.upper) == ("hold", 0, 3.5, 3.75)
    assert [d.surname for d in parsed.dissents] == ["Hammack", "Kashkari", "Logan"]
    assert {d.preferred for d in parsed.dissents} == {"+25 bp"}
    assert (parsed.votes_for, parsed.votes_against) == (9, 3)


def test_dissent_sentence_before_the_decision_in_plain_text() -> None:
    text = (
        "Voting against this action was Stephen I. Miran, who preferred to lower the target "
        "range for the federal funds rate by 1/2 percentage point at this meeting.\n\n"
        "In support of its goals, the Committee decided to lower the target range for the "
        "federal funds rate by 1/4 percentage point to 4 to 4\u20111/4 percent."
    )
    parsed = parse_statement(text, day=date(2025, 9, 17))
    assert (parsed.decision, parsed.bp, parsed.lower, parsed.upper) == ("cut", -25, 4.0, 4.25)
    assert [(d.surname, d.preferred) for d in parsed.dissents] == [("Miran", "-50 bp")]


def test_cut_without_by_and_a_dissent_naming_a_range() -> None:
    """2020-03-15: "to 0 to 1/4 percent" (no "by"); Mester preferred "to 1/2 to 3/4 percent"."""
    text = (
        "The Federal Reserve is prepared to use its full range of tools.\n\n"
        "The Committee decided to lower the target range for the federal funds rate to 0 to "
        "1/4 percent. The Committee expects to maintain this target range until it is "
        "confident that the economy has weathered recent events.\n\n"
        "Voting against this action was Loretta J. Mester, who was fully supportive of all of "
        "the actions taken but preferred to reduce the target range for the federal funds rate "
        "to 1/2 to 3/4 percent at this meeting."
    )
    alone = parse_statement(text)
    assert (alone.decision, alone.bp, alone.lower, alone.upper) == ("cut", None, 0.0, 0.25)
    assert alone.dissents[0].preferred == "0.50–0.75%"
    known = parse_statement(text, previous=(1.0, 1.25))
    assert known.bp == -100
    assert [(d.surname, d.preferred) for d in known.dissents] == [("Mester", "-50 bp")]


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        (
            "The Committee decided to raise the target range for the federal funds rate to "
            "3-3/4 to 4 percent.",
            ("hike", None, 3.75, 4.0),
        ),
        (
            "The Committee decided to maintain the target range for the federal funds rate at "
            "1/4 to 1/2 percent.",
            ("hold", 0, 0.25, 0.5),
        ),
        (
            "The Committee today reaffirmed its view that the current 0 to 1/4 percent target "
            "range for the federal funds rate remains appropriate.",
            ("hold", 0, 0.0, 0.25),
        ),
        (
            "The Committee will maintain the target range for the federal funds rate at 0 to "
            "1/4 percent and continues to anticipate that economic conditions are likely to "
            "warrant exceptionally low levels.",
            ("hold", 0, 0.0, 0.25),
        ),
        (
            "The Federal Open Market Committee decided today to establish a target range for "
            "the federal funds rate of 0 to 1/4 percent.",
            ("cut", None, 0.0, 0.25),
        ),
        (
            "The Federal Open Market Committee decided today to lower its target for the "
            "federal funds rate 50 basis points to 1 percent.",
            ("cut", -50, 1.0, 1.0),
        ),
        (
            "the Committee decided today to lower the target range for the federal funds rate "
            "by 1/2 percentage point, to 1\u20111/2 to 1\u20113/4 percent.",
            ("cut", -50, 1.5, 1.75),
        ),
        (
            "The Committee decided to raise the target range for the federal funds rate to "
            "1\u20111/2 to 1-3/4 percent and anticipates that ongoing increases will be "
            "appropriate.",
            ("hike", None, 1.5, 1.75),
        ),
    ],
)
def test_decision_styles_since_2008(
    sentence: str, expected: tuple[str, int | None, float, float]
) -> None:
    parsed = parse_statement(f"Information received since the Committee met.\n\n{sentence}")
    assert (parsed.decision, parsed.bp, parsed.lower, parsed.upper) == expected


def test_2014_implicit_hold() -> None:
    text = (
        "To support continued progress, the Committee today reaffirmed its view that a highly "
        "accommodative stance of monetary policy remains appropriate. In determining how long "
        "to maintain the current 0 to 1/4 percent target range for the federal funds rate, the "
        "Committee will assess progress."
    )
    parsed = parse_statement(text)
    assert (parsed.decision, parsed.lower, parsed.upper) == ("hold", 0.0, 0.25)


def test_markdown_front_matter_and_vote_paragraph() -> None:
    text = (
        "---\nid: 2024-12-18-fomc-statement\ndate: 2024-12-18\ntitle: Federal Reserve issues "
        "FOMC statement\ntype: meeting\nurl: https://www.federalreserve.gov/newsevents/"
        "pressreleases/monetary20241218a.htm\n---\n\nDecember 18, 2024\n\nFor release at 2:00 "
        "p.m. EST\n\nIn support of its goals, the Committee decided to lower the target range "
        "for the federal funds rate by 1/4 percentage point to 4-1/4 to 4-1/2 percent.\n\n"
        "Voting for the monetary policy action were Jerome H. Powell, Chair; John C. Williams, "
        "Vice Chair; and Christopher J. Waller. Voting against the action was Beth M. Hammack, "
        "who preferred to maintain the target range for the federal funds rate at 4-1/2 to "
        "4-3/4 percent.\n\nFor media inquiries, please email [email\u00a0protected] or call."
    )
    parsed = parse_statement(text)
    assert parsed.date == date(2024, 12, 18)
    assert (parsed.decision, parsed.bp, parsed.lower, parsed.upper) == ("cut", -25, 4.25, 4.5)
    assert [(d.name, d.preferred) for d in parsed.dissents] == [("Beth M. Hammack", "no change")]
    assert (parsed.votes_for, parsed.votes_against) == (3, 1)


def test_emphasis_tags_inside_the_decision_sentence() -> None:
    """2026-09-16: ``by 1/4 percentage point<strong> </strong>to 3-3/4<strong> </strong>to 4``."""
    page = statement_page(
        date(2026, 9, 16),
        [
            "the Committee decided to raise the target range for the federal funds rate by 1/4 "
            "percentage point<strong> </strong>to 3-3/4<strong> </strong>to 4 percent."
        ],
    )
    parsed = parse_statement(page)
    assert (parsed.decision, parsed.bp, parsed.lower, parsed.upper) == ("hike", 25, 3.75, 4.0)
    assert parsed.dissents == ()


@pytest.mark.parametrize(
    "hyphen",
    [
        "\u00e2\u20ac\u2018",  # U+2011's UTF-8 bytes read as cp1252: â€‘
        "\u00e2\u0080\u0091",  # the same bytes read as Latin-1
        "\u00e2\u20ac\u2011",  # as the issue transcribes it
    ],
)
def test_double_encoded_text_one_sentence_per_line(hyphen: str) -> None:
    lines = [
        "Available indicators suggest that economic activity has been expanding.",
        "Job gains have slowed this year.",
        "Uncertainty about the economic outlook remains elevated.",
        "The Committee is attentive to the risks to both sides of its dual mandate.",
        "In support of its goals, the Committee decided to lower the target range for the "
        f"federal funds rate by 1/4 percentage point to 3{hyphen}1/2 to 3{hyphen}3/4 percent.",
        "The Committee is strongly committed to its 2 percent objective.",
        "In assessing the appropriate stance of monetary policy, the Committee will monitor.",
    ]
    parsed = parse_statement("\n".join(lines))
    assert (parsed.decision, parsed.lower, parsed.upper) == ("cut", 3.5, 3.75)


def test_fix_mojibake_keeps_real_text() -> None:
    assert fix_mojibake("3\u00e2\u20ac\u20181/2 by a 9 \u00e2\u20ac\u201c 3 vote") == (
        "3\u20111/2 by a 9 \u2013 3 vote"
    )
    assert fix_mojibake("Türkiye, café") == "Türkiye, café"


@pytest.mark.parametrize(
    "text",
    [
        NOT_FOUND_PAGE,
        ERROR_PAGE,
        "The Federal Open Market Committee (FOMC) is firmly committed to fulfilling its "
        "statutory mandate. The Committee judges that inflation at the rate of 2 percent is "
        "most consistent over the longer run with the Federal Reserve's statutory mandate.",
        "Minutes of the Federal Open Market Committee. The manager reported that the federal "
        "funds rate had traded within the target range of 3-1/2 to 3-3/4 percent.",
    ],
)
def test_no_decision(text: str) -> None:
    with pytest.raises(NoDecisionError):
        parse_statement(text)


def test_numbers() -> None:
    assert [number(t) for t in ("3-1/2", "1/4", "4", "0.5", "3 - 3/4")] == [3.5, 0.25, 4, 0.5, 3.75]


@pytest.mark.parametrize(
    "dissent",
    [
        # a vote paragraph whose wording reads like a decision
        "Voting against the action was Esther L. George, who believed the Committee should "
        "have decided to raise the target range for the federal funds rate to 1/2 to 3/4 "
        "percent.",
        # a "preferred" sentence outside the vote paragraph
        "President Kashkari preferred that the Committee decided to lower the target range "
        "for the federal funds rate to 0 to 1/4 percent.",
    ],
)
def test_dissent_worded_like_a_decision_is_not_the_decision(dissent: str) -> None:
    text = (
        f"{dissent}\n\nThe Committee decided to maintain the target range for the federal "
        "funds rate at 1/4 to 1/2 percent."
    )
    parsed = parse_statement(text)
    assert (parsed.decision, parsed.lower, parsed.upper) == ("hold", 0.25, 0.5)
