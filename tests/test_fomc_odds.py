"""FedWatch-style odds: CME's published worked example (settlements of 2022-09-12) and
hand-built curves."""

from __future__ import annotations

from datetime import date

import pytest

from bot.fomc.odds import OddsError, implied_odds, odds_summary

# CME's "Fedwatch calculation examples", daily settles as of September 12, 2022
CME_2022 = {
    (2022, 9): 97.4475,
    (2022, 10): 96.9400,
    (2022, 11): 96.4300,
    (2022, 12): 96.2350,
    (2023, 1): 96.1150,
    (2023, 2): 96.0200,
}
MEETINGS_2022 = [date(2022, 9, 21), date(2022, 11, 2), date(2022, 12, 14)]


def test_cme_worked_example() -> None:
    sept, nov, dec = implied_odds(MEETINGS_2022, CME_2022)
    # September: October has no meeting, so it anchors September's end (worked backward)
    assert sept.end == pytest.approx(3.0600)
    assert sept.start == pytest.approx(2.29875)  # the example's 2.2987
    assert sept.change_bp == pytest.approx(76.125)  # 0.7613 → 3.045 steps of 25 bp
    assert sept.moves == pytest.approx({3: 0.955, 4: 0.045})
    # November: chained forward from October (1 day before the meeting, 29 from it on)
    assert nov.start == pytest.approx(3.0600)
    assert nov.end == pytest.approx(3.5876, abs=1e-4)
    assert nov.change_bp == pytest.approx(52.76, abs=0.01)
    assert nov.moves[2] == pytest.approx(1 - 0.110345, abs=1e-5)
    # the tree: cumulative steps after November
    assert nov.steps[5] == pytest.approx(0.955 * (1 - 0.110345), abs=1e-5)
    assert sum(nov.steps.values()) == pytest.approx(1.0)
    # December: January has no meeting → anchored on January
    assert dec.end == pytest.approx(100 - 96.1150)
    assert dec.start == pytest.approx(((100 - 96.2350) * 31 - dec.end * 18) / 13)
    assert sept.p_hike == pytest.approx(1.0) and sept.p_cut == 0


def test_hand_built_cut_curve() -> None:
    """Range 3.50–3.75% (EFFR 3.63); a meeting on Oct 28 fully priced for a 25 bp cut, then
    December half priced for another."""
    effr = 3.63
    oct_avg = (27 * effr + 4 * (effr - 0.25)) / 31  # 27 days before, 4 from the meeting day
    dec_avg = (8 * (effr - 0.25) + 23 * (effr - 0.25 - 0.125)) / 31
    prices = {
        (2026, 9): 100 - effr,
        (2026, 10): 100 - oct_avg,
        (2026, 11): 100 - (effr - 0.25),
        (2026, 12): 100 - dec_avg,
        (2027, 1): 100 - (effr - 0.375),
    }
    octo, dece = implied_odds([date(2026, 10, 28), date(2026, 12, 9)], prices)
    assert octo.moves == pytest.approx({-1: 1.0})
    assert octo.p_cut == pytest.approx(1.0)
    assert dece.moves == pytest.approx({-1: 0.5, 0: 0.5})
    assert dece.steps == pytest.approx({-2: 0.5, -1: 0.5})
    assert odds_summary([octo, dece], (3.5, 3.75)) == (
        "FOMC 2026-10-28: cut 100% (most likely 3.25–3.50%)\n"
        "FOMC 2026-12-09: cut 100% (most likely 3.00–3.25%)"
    )


def test_hold_and_two_meetings_in_a_row_chain_forward() -> None:
    """No futures month without a meeting after the first: chain forward from the month
    before; an unchanged curve is a 100% hold."""
    flat = {(2026, m): 100 - 3.63 for m in range(2, 8)}
    odds = implied_odds([date(2026, 3, 18), date(2026, 4, 29), date(2026, 6, 17)], flat)
    assert [o.p_hold for o in odds] == pytest.approx([1.0, 1.0, 1.0])
    assert odds_summary(odds, (3.5, 3.75), meetings=1) == (
        "FOMC 2026-03-18: hold 100% (most likely 3.50–3.75%)"
    )


def test_missing_contract() -> None:
    with pytest.raises(OddsError, match="2026-10"):
        implied_odds([date(2026, 10, 28)], {(2026, 9): 96.37})


def test_later_meeting_months_count_even_when_not_priced() -> None:
    """November 2024 is followed by a December meeting: it must be chained forward from
    October, not anchored on December's contract; December itself, without its contract, is
    left out with ``partial`` (an error without)."""
    prices = {(2024, 9): 94.7975, (2024, 10): 94.995, (2024, 11): 95.295}
    meetings = [date(2024, 9, 18), date(2024, 11, 7), date(2024, 12, 18)]
    sept, nov = implied_odds(meetings, prices, partial=True)
    assert sept.moves == pytest.approx({-2: 0.394, -1: 0.606}, abs=0.001)
    assert nov.start == pytest.approx(sept.end) and nov.start == pytest.approx(100 - 94.995)
    # (4.705 × 30 − 5.005 × 6) / 24 = 4.63: −37.5 bp, between 25 and 50 bp
    assert nov.moves == pytest.approx({-2: 0.5, -1: 0.5}, abs=0.001)
    with pytest.raises(OddsError, match="2024-12"):
        implied_odds(meetings, prices)
