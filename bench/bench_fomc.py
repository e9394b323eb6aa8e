"""FOMC statement parser accuracy over every real statement in ``../shared/data/fomc/``, and the
decision latency (page published → Telegram fake has the alert) on loopback fakes.

Accuracy: each statement (Markdown text, one-sentence-per-line text with mojibake, raw pages)
is parsed and compared with the derived decision table (decision, bp, range) and, from 2016 on,
with the dissent table (who dissented). Releases that are not decisions must raise
:class:`NoDecisionError`. Latency: a fake Fed site starts 404-ing the statement page and publishes
it at a moment; the real worker (fast polling) reads it and the fake Telegram receives the alert.

    python bench/bench_fomc.py [--data ../shared/data/fomc] [--rounds 5]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import statistics
import sys
from collections.abc import Iterable
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.fomc.parse import NoDecisionError, Statement, parse_statement  # noqa: E402

DEFAULT_DATA = ROOT.parent.parent / "shared" / "data" / "fomc"


def _truth(data: Path) -> dict[date, dict[str, str]]:
    path = data / "decisions" / "fomc_decisions_2008-12-16_to_2026-09-16_derived.csv"
    with path.open(encoding="utf-8") as handle:
        return {
            date.fromisoformat(row["meeting_date"]): row
            for row in csv.DictReader(handle)
            if row["statement_type"] == "decision"
        }


def _dissent_truth(data: Path) -> dict[date, set[str]]:
    path = data / "decisions" / "drecompounds_fomc-diff_dissents.csv"
    found: dict[date, set[str]] = {}
    with path.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            found.setdefault(date.fromisoformat(row["meeting_date"]), set()).add(row["name"])
    return found


def _inputs(data: Path) -> Iterable[tuple[str, date, Path]]:
    statements = data / "statements"
    for path in sorted(statements.glob("*.txt")):
        yield "text", date.fromisoformat(path.stem), path
    for path in sorted(statements.glob("*.html")):
        yield "page", date.fromisoformat(path.stem), path
    for path in sorted((statements / "sentence_split_aicp").glob("*.txt")):
        yield "lines", date.fromisoformat(path.stem.rsplit("_", 1)[1]), path


def _check(parsed: Statement, row: dict[str, str]) -> list[str]:
    wrong = []
    if parsed.decision != row["decision"]:
        wrong.append(f"decision {parsed.decision} != {row['decision']}")
    if abs(parsed.lower - float(row["target_lower"])) > 1e-9:
        wrong.append(f"lower {parsed.lower} != {row['target_lower']}")
    if abs(parsed.upper - float(row["target_upper"])) > 1e-9:
        wrong.append(f"upper {parsed.upper} != {row['target_upper']}")
    if parsed.bp != int(row["bp_change_upper"]):
        wrong.append(f"bp {parsed.bp} != {row['bp_change_upper']}")
    return wrong


def accuracy(data: Path, verbose: bool = False) -> int:
    """Print per-style accuracy; return the number of mismatches."""
    truth = _truth(data)
    dissents = _dissent_truth(data)
    totals: dict[str, list[int]] = {}
    bp_known = bp_total = 0
    dissent_ok = dissent_total = 0
    failures: list[str] = []
    # the range before each meeting, as the live source knows it: the previous statement read
    # (pages are few and far apart: their previous meeting's range comes from the table)
    previous: dict[str, tuple[float, float]] = {}
    days = sorted(truth)
    before = {
        d: (float(truth[p]["target_lower"]), float(truth[p]["target_upper"]))
        for p, d in itertools.pairwise(days)
    }
    for style, day, path in _inputs(data):
        row = truth.get(day)
        known = before.get(day) if style == "page" else previous.get(style)
        try:
            parsed = parse_statement(path.read_bytes(), day=day, previous=known)
        except NoDecisionError as exc:
            if row is not None:
                failures.append(f"{style} {day}: {exc}")
                totals.setdefault(style, [0, 0])[1] += 1
            continue
        previous[style] = (parsed.lower, parsed.upper)
        if row is None:
            continue  # before the table starts (2008-10) or an operational release
        count = totals.setdefault(style, [0, 0])
        count[1] += 1
        wrong = _check(parsed, row)
        bp_total += row["decision"] != "hold"
        bp_known += row["decision"] != "hold" and parsed.bp == int(row["bp_change_upper"])
        has_vote = b"Voting" in path.read_bytes()
        if has_vote and day.year >= 2016:
            dissent_total += 1
            names = {d.name for d in parsed.dissents}
            if names == dissents.get(day, set()) or _close_names(names, dissents.get(day, set())):
                dissent_ok += 1
            elif verbose:
                failures.append(f"{style} {day}: dissents {names} != {dissents.get(day)}")
        if wrong:
            failures.append(f"{style} {day}: {'; '.join(wrong)}")
        else:
            count[0] += 1
    negatives = sorted((data / "statements" / "other_releases").glob("*"))
    rejected = 0
    for path in negatives:
        try:
            parse_statement(path.read_bytes())
        except NoDecisionError:
            rejected += 1
    print("FOMC parser accuracy (decision, range and stated bp vs the derived decision table)")
    for style, (ok, total) in totals.items():
        print(f"  {style:6s} {ok:4d}/{total:<4d} {100 * ok / max(total, 1):6.2f}%")
    all_ok = sum(v[0] for v in totals.values())
    all_n = sum(v[1] for v in totals.values())
    print(f"  all    {all_ok:4d}/{all_n:<4d} {100 * all_ok / max(all_n, 1):6.2f}%")
    print(
        f"  size of the move right (stated, or from the previous statement): {bp_known}/{bp_total}"
    )
    print(f"  dissenters named as in the dissent table: {dissent_ok}/{dissent_total}")
    print(f"  other releases (no rate decision expected) rejected: {rejected}/{len(negatives)}")
    print("    (the 2008-10-08 coordinated cut among them is a real decision: parsed is right)")
    for failure in failures:
        print("  MISS", failure)
    return len(failures)


def _close_names(got: set[str], want: set[str]) -> bool:
    """The dissent table shortens some names ("Eric Rosengren" for "Eric S. Rosengren")."""
    return {n.split()[-1] for n in got} == {n.split()[-1] for n in want}


def futures_odds(data: Path) -> None:
    """Odds for the 2024-09-18 meeting from the real Yahoo ZQ closes of the last day in the
    subset (2024-09-09), to compare with what FedWatch showed then (a cut certain; 25 vs 50 bp
    roughly 70/30). The subset's "2025 Jan" rows duplicate Dec 2024 (a bug in the source), so
    January is left out."""
    from bot.fomc.odds import implied_odds, odds_summary

    path = next((data / "futures").glob("avlsv_ZQ_*.csv"), None)
    if path is None:
        return
    closes: dict[str, dict[tuple[int, int], float]] = {}
    months = {"Sep": 9, "Oct": 10, "Nov": 11, "Dec": 12}
    with path.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            year, _, name = row["term"].partition(" ")
            if not row["name"].endswith(".Close") or name not in months or year != "2024":
                continue
            closes.setdefault(row["Index"], {})[(2024, months[name])] = float(row["value"])
    day = max(closes)
    meetings = [date(2024, 9, 18), date(2024, 11, 7), date(2024, 12, 18)]
    odds = implied_odds(meetings, closes[day], partial=True)  # December needs January
    first = odds[0]
    moves = ", ".join(f"{25 * k:+d} bp {p:.0%}" for k, p in sorted(first.moves.items()))
    print(f"odds from the real ZQ closes of {day} (range 5.25–5.50%):")
    print(f"  2024-09-18 move: {moves}")
    for line in odds_summary(odds, (5.25, 5.5)).splitlines():
        print(f"  {line}")


def latency(rounds: int) -> None:
    """Decision latency in real seconds on loopback fakes (see :mod:`tests.fomc_latency`):
    the page goes up at 14:00:00 on the worker's clock; polls every ``fast_every`` (2 s), so
    the figure is about the time to the next poll (0–2 s) plus one cycle and one send."""
    import logging

    from tests.fomc_latency import measure_latency

    logging.disable(logging.WARNING)  # the fakes' request logs
    figures = []
    for index in range(rounds):
        # vary where 14:00:00 falls between two polls (0.0 … 1.9 s after one)
        figures.append(measure_latency(lead=2.0 + (index * 0.7) % 2.0))
    print(
        f"decision latency (page up → Telegram fake has the alert), {rounds} rounds: "
        f"median {statistics.median(figures):.2f} s, max {max(figures):.2f} s "
        f"(fast_every 2 s; figures {', '.join(f'{f:.2f}' for f in figures)})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    if not args.data.is_dir():
        print(f"no data at {args.data}", file=sys.stderr)
        return 2
    accuracy(args.data, args.verbose)
    futures_odds(args.data)
    if args.rounds > 0:
        latency(args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
