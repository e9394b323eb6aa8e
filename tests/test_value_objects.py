"""Observations, drafts and alerts are values: equal by content, hashable, never assigned to.

They are built ~70,000 times in a 10,000-bar backtest, so at run time they are plain slotted
dataclasses (a frozen dataclass's ``__init__`` costs ~7× as much); immutability is enforced by
the type checker instead (``bot.model.value_object``): ``mypy bot`` fails on an assignment.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.model import Alert, AlertDraft, Observation

ROOT = Path(__file__).resolve().parents[1]
MOMENT = datetime(2024, 11, 25, 21, 0, tzinfo=UTC)


def test_values_are_equal_by_content_and_hashable() -> None:
    one = Observation("RUT", MOMENT, 2442.74, "close")
    same = Observation("RUT", MOMENT, 2442.74, "close")
    assert one == same and hash(one) == hash(same) and len({one, same}) == 1
    draft = AlertDraft(key="k", symbol="RUT", time=MOMENT, value=1.0, text="t")
    assert draft == AlertDraft(key="k", symbol="RUT", time=MOMENT, value=1.0, text="t")
    alert = Alert(
        id="r:k", rule_id="r", rule_type="cross", symbol="RUT", time=MOMENT, value=1.0, text="t"
    )
    assert len({alert, alert}) == 1


def test_values_have_no_instance_dict() -> None:
    # (a frozen slotted dataclass raised TypeError here on Python 3.11: cpython#90562)
    with pytest.raises((AttributeError, TypeError)):
        Observation("RUT", MOMENT, 1.0, "close").extra = 1  # type: ignore[attr-defined]


@pytest.mark.skipif(shutil.which("mypy") is None, reason="mypy not installed")
def test_the_type_checker_rejects_assigning_to_a_value(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from datetime import UTC, datetime\n"
        "from bot.model import Alert, AlertDraft, Observation\n"
        "o = Observation('RUT', datetime.now(UTC), 1.0, 'close')\n"
        "o.value = 2.0\n"
        "d = AlertDraft(key='k', symbol='RUT', time=o.time, value=1.0, text='t')\n"
        "d.text = 'changed'\n"
        "a = Alert(id='r:k', rule_id='r', rule_type='x', symbol='RUT', time=o.time, value=1.0,"
        " text='t')\n"
        "a.chats = ()\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--follow-imports=silent", str(probe)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    read_only = [line for line in done.stdout.splitlines() if "is read-only" in line]
    assert len(read_only) == 3, done.stdout
