"""The live worker with the shipped config never loads pandas or the calendar library.

Its sessions come from a child process (bot.calendar_child) and its CSV parsers use the ``csv``
module, which keeps it at ~66 MB instead of ~120 MB (README › Benchmarks). Proven on a real
``python -m bot run`` of the shipped ``config.yaml`` pointed at the loopback fakes, after it
has parsed FRED's and Stooq's CSV history and polled: no extension module of those packages is
mapped into the process (``/proc/PID/maps``), which is what their import would do. (numpy is
allowed: the history's row checks and the market-context facts use it, at ~15 MB.)
"""

from __future__ import annotations

import subprocess
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.fakes.fred import FredFake, fred_csv
from tests.fakes.stooq import StooqFake, stooq_csv
from tests.fakes.yahoo import ScriptedServer
from tests.worker_support import shipped_worker

HEAVY = ("/pandas/", "/pandas_market_calendars/", "/exchange_calendars/")


def _days(n: int) -> list[date]:
    start = date.today() - timedelta(days=2 * n)
    days = [start + timedelta(days=i) for i in range(2 * n)]
    return [d for d in days if d.weekday() < 5][-n:]


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc")
def test_the_worker_with_the_shipped_config_loads_no_pandas(tmp_path: Path) -> None:
    days = _days(60)

    def script(fakes: dict[str, ScriptedServer]) -> None:
        # Yahoo stays unscripted (404s), so RUT and GSPC fail over to Stooq's CSV.
        stooq, fred = fakes["stooq"], fakes["fred"]
        assert isinstance(stooq, StooqFake) and isinstance(fred, FredFake)
        stooq.daily("^rut", stooq_csv([(d, 2400.0 + i) for i, d in enumerate(days)]))
        stooq.daily("^spx", stooq_csv([(d, 6000.0 + i) for i, d in enumerate(days)]))
        for series, value in (("DFEDTARL", 4.25), ("DFEDTARU", 4.5)):
            fred.series(series, fred_csv(series, [(d, value) for d in days]))

    lines: list[str] = []

    def loaded(symbol: str) -> bool:
        return any(f"history {symbol}: " in line and " 0 fetched" not in line for line in lines)

    with shipped_worker(tmp_path, script, stderr=subprocess.PIPE) as worker:
        proc = worker.proc
        reader = threading.Thread(target=lambda: lines.extend(proc.stderr or ()), daemon=True)
        reader.start()
        deadline = time.monotonic() + 60  # bounds a hang only; typically ~1 s
        while not (loaded("FED") and loaded("RUT") and loaded("GSPC")) or not any(
            "range" in seen.query for seen in worker.fakes["yahoo"].requests()
        ):
            assert proc.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.02)
        maps = Path(f"/proc/{proc.pid}/maps").read_text()
    reader.join(timeout=5)
    heavy = sorted(
        {line.split()[-1] for line in maps.splitlines() if any(h in line for h in HEAVY)}
    )
    assert heavy == [], heavy[:5]
