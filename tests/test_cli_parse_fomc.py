"""``python -m bot parse-fomc``: one JSON line per input, an error line for a non-decision."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from bot.cli import main
from tests.fakes.fed import FedFake, cut_statement, statement_page, statement_path

DAY = date(2025, 12, 10)


def test_json_lines_for_files_and_urls(
    tmp_path: Path, fed_fake: FedFake, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "monetary20251210a.htm"
    page.write_bytes(statement_page(DAY, cut_statement(DAY)).encode())
    text = tmp_path / "2026-01-28.txt"  # the date comes from the name: the text has none
    text.write_text(
        "The Committee decided to maintain the target range for the federal funds rate at "
        "3-1/2 to 3\u20113/4 percent.",
        encoding="utf-8",
    )
    goals = tmp_path / "longer-run-goals.md"
    goals.write_text("The Committee is firmly committed to fulfilling its statutory mandate.")
    fed_fake.publish(DAY, statement_page(DAY, cut_statement(DAY)))
    url = fed_fake.base_url + statement_path(DAY)
    code = main(["parse-fomc", "--json", str(page), str(text), str(goals), url])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1  # one input had no decision
    assert lines[0] == {
        "file": str(page),
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
    assert lines[1] == {
        "file": str(text),
        "date": "2026-01-28",
        "decision": "hold",
        "bp": 0,
        "lower": 3.5,
        "upper": 3.75,
        "dissents": [],
    }
    assert lines[2] == {"file": str(goals), "error": "no FOMC rate decision found in the text"}
    assert lines[3]["file"] == url and lines[3]["decision"] == "cut"


def test_plain_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "statement.html"
    page.write_bytes(statement_page(DAY, cut_statement(DAY)).encode())
    assert main(["parse-fomc", str(page)]) == 0
    assert capsys.readouterr().out.strip() == (
        f"{page}: 2025-12-10: FOMC cuts by 25 bp to 3.50–3.75% (from 3.75–4.00%); vote 9–3 — "
        "Miran preferred \u221250 bp; Goolsbee, Schmid preferred no change"
    )
