"""README's backtest examples run as written, with the files they name (small stand-ins for
``shared/data`` in its formats) and without the network: no IXIC file is needed."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from bot.cli import main

ROOT = Path(__file__).resolve().parents[1]


def examples() -> list[list[str]]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Backtest\n", 1)[1].split("\n## ", 1)[0]
    block = re.findall(r"```sh\n(.*?)```", section, flags=re.S)[0]
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("python -m bot backtest") and "..." not in line:
            commands.append(shlex.split(line)[3:])
    return commands


def stooq(rows: list[tuple[str, float]]) -> str:
    return "Date,Open,High,Low,Close,Volume\n" + "".join(
        f"{d},{v},{v},{v},{v},1000\n" for d, v in rows
    )


@pytest.fixture
def data(tmp_path: Path) -> Path:
    days = ["2024-10-31", "2024-11-01", "2024-11-04", "2024-11-05"]
    (tmp_path / "RUT_daily.csv").write_text(
        stooq(list(zip(days, [2196.65, 2209.99, 2219.48, 2252.52], strict=True)))
    )
    (tmp_path / "SPX_daily.csv").write_text(
        stooq(list(zip(days, [5705.45, 5728.80, 5712.69, 5782.76], strict=True)))
    )
    (tmp_path / "RTY_F_daily.csv").write_text(
        stooq(list(zip(days, [2200.0, 2212.0, 2222.0, 2255.0], strict=True)))
    )
    for series, value in (("DFEDTARU", 5.0), ("DFEDTARL", 4.75)):
        (tmp_path / f"{series}.csv").write_text(
            f"observation_date,{series}\n" + "".join(f"{d},{value:.2f}\n" for d in days)
        )
    return tmp_path


def test_readme_backtest_examples_run_as_written(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    commands = examples()
    assert len(commands) >= 2
    for args in commands:
        args = [a.replace("$D", str(data)) for a in args]
        code = main(["backtest", "--config", str(ROOT / "config.yaml"), *args[1:]])
        out, err = capsys.readouterr()
        assert code == 0, (args, err)
        assert "alerts from" in out
