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
    if parsed.bp is not None and parsed.bp != int(row["bp_change_upper"]):
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
    for style, day, path in _inputs(data):
        row = truth.get(day)
        if row is None:
            continue  # before the table starts (2008-10) or an operational release
        count = totals.setdefault(style, [0, 0])
        count[1] += 1
        try:
            parsed = parse_statement(path.read_bytes(), day=day)
        except NoDecisionError as exc:
            failures.append(f"{style} {day}: {exc}")
            continue
        wrong = _check(parsed, row)
        bp_total += row["decision"] != "hold"
        bp_known += row["decision"] != "hold" and parsed.bp is not None
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
    print(f"  moves whose size the text states: {bp_known}/{bp_total}")
    print(f"  dissenters named as in the dissent table: {dissent_ok}/{dissent_total}")
    print(f"  other releases (no rate decision expected) rejected: {rejected}/{len(negatives)}")
    print("    (the 2008-10-08 coordinated cut among them is a real decision: parsed is right)")
    for failure in failures:
        print("  MISS", failure)
    return len(failures)


def _close_names(got: set[str], want: set[str]) -> bool:
    """The dissent table shortens some names ("Eric Rosengren" for "Eric S. Rosengren")."""
    return {n.split()[-1] for n in got} == {n.split()[-1] for n in want}


def latency(rounds: int) -> None:
    """Decision latency on loopback fakes (see :mod:`tests.fakes.fed`)."""
    sys.path.insert(0, str(ROOT))
    from tests.fomc_latency import measure_latency

    figures = [measure_latency() for _ in range(rounds)]
    print(
        f"decision latency (page up → Telegram fake has the alert), {rounds} rounds: "
        f"median {statistics.median(figures):.2f}s, max {max(figures):.2f}s"
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
    if args.rounds > 0:
        latency(args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
