"""Benchmark: whole processes — the worker with the shipped config, and a real backtest.

    python bench/bench_startup.py [--rounds 3] [--settle 5]

Worker: copies the shipped ``config.yaml`` to a temporary directory with every ``base_url``
(Telegram, Yahoo, Stooq, FRED, the Fed) pointed at the loopback fakes of ``tests/fakes`` and a
scratch SQLite state, spawns ``python -m bot run`` and prints, per round and as medians:
spawn → first request at any fake (the history load), spawn → first quote request (the
first poll: the CME future polls at any hour but the weekend), and the process's peak RSS
(``VmHWM``) ``--settle`` seconds later. The fakes answer what they are not scripted for with
404: the worker polls, logs, and carries on, which is what start-up and memory are about.

Backtest: ``python -m bot backtest`` as a whole process over the real ^RUT/^SPX/RTY=F and Fed
files of ``../shared/data`` (skipped when they are not there) with the shipped config, the
command of README › Backtest: wall-clock seconds and peak RSS (``/proc`` of the child).

Figures are printed, never asserted; the load average is printed beside them (2 shared cores).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# ../shared/data beside the repository (or beside the worktrees' parent); BENCH_DATA overrides
DATA = next(
    (
        path
        for path in (
            Path(os.environ.get("BENCH_DATA", ROOT.parent / "shared" / "data")),
            ROOT.parents[1] / "shared" / "data",
        )
        if path.is_dir()
    ),
    ROOT.parent / "shared" / "data",
)
sys.path.insert(0, str(ROOT))

from tests.worker_support import shipped_worker  # noqa: E402 - after the path above


def peak_rss(pid: int) -> float:
    """Peak resident set size of a running process in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def worker_round(settle: float) -> tuple[float, float, float]:
    """(spawn → first request (history), → first quote request (the first poll), peak RSS
    MB) of one worker start."""
    with tempfile.TemporaryDirectory() as scratch, shipped_worker(Path(scratch)) as worker:
        first = quote = float("nan")
        deadline = worker.spawned + 30
        while time.monotonic() < deadline and worker.proc.poll() is None:
            seen = [s for fake in worker.fakes.values() for s in fake.requests()]
            now = time.monotonic() - worker.spawned
            if seen and first != first:  # NaN: not set yet
                first = now
            if any("range" in s.query for s in worker.fakes["yahoo"].requests()):
                quote = now
                break
            time.sleep(0.005)
        time.sleep(settle)
        rss = peak_rss(worker.proc.pid) if worker.proc.poll() is None else float("nan")
    return first, quote, rss


def backtest_round() -> tuple[float, float] | None:
    """(wall seconds, peak RSS MB) of the README's backtest over the real files."""
    files = {
        "RUT": "RUT_daily.csv",
        "GSPC": "SPX_daily.csv",
        "RTY": "RTY_F_daily.csv",
        "DFEDTARU": "DFEDTARU.csv",
        "DFEDTARL": "DFEDTARL.csv",
    }
    if not all((DATA / name).exists() for name in files.values()):
        return None
    command = [sys.executable, "-m", "bot", "backtest", "--start", "2024-11-01"]
    for key, name in files.items():
        command += ["--data", f"{key}={DATA / name}"]
    started = time.monotonic()
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
    # wait4 gives the child's peak RSS after it exits
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, proc.returncode
    return wall, usage.ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds run before RSS")
    args = parser.parse_args()
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    firsts, starts, peaks = [], [], []
    for n in range(args.rounds):
        first, quote, rss = worker_round(args.settle)
        firsts.append(first)
        starts.append(quote)
        peaks.append(rss)
        print(
            f"worker round {n + 1}: first request (history) {first:.2f} s, first quote poll "
            f"{quote:.2f} s, peak RSS {rss:.0f} MB"
        )
    print(
        f"worker (shipped config.yaml, fakes): start → first request median "
        f"{statistics.median(firsts):.2f} s, → first quote poll median "
        f"{statistics.median(starts):.2f} s (target ≤ 0.8 s), peak RSS median "
        f"{statistics.median(peaks):.0f} MB (target ≤ 115 MB)"
    )
    walls, rsss = [], []
    for _ in range(args.rounds):
        found = backtest_round()
        if found is None:
            print("backtest: ../shared/data not found, skipped")
            break
        walls.append(found[0])
        rsss.append(found[1])
    if walls:
        print(
            f"backtest process (README command, real files, --start 2024-11-01): wall "
            f"{', '.join(f'{w:.2f}' for w in walls)} s, median {statistics.median(walls):.2f} s "
            f"(target ≤ 1.5 s); peak RSS {statistics.median(rsss):.0f} MB"
        )
    one, five, _ = os.getloadavg()
    print(f"load average {one:.1f} / {five:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
