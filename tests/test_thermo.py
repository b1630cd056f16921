"""Defect thermodynamics checked against hand-computed numbers."""

from __future__ import annotations

import numpy as np
import pytest

from perovskite_defects.engines.base import CalcRecord
from perovskite_defects.thermodynamics.formation import (
    DefectChargeEntry,
    TransitionLevel,
    charge_lines,
    envelope_energy,
    format_charge,
    formation_energy,
    lower_envelope,
    stable_charge_states,
    transition_levels,
)

MU = {"I": -1.7, "Na": -2.8, "Pb": -5.3}

# --- formation energy arithmetic -------------------------------------------------------------


def test_vacancy_by_hand() -> None:
    # V_I^+1: -100 - (-103) - (-1)(-1.7) + 1 * (2.0 + 0.5) + 0.1 = 3 - 1.7 + 2.5 + 0.1 = 3.9
    e = formation_energy(-100.0, -103.0, {"I": -1}, MU, 1, 2.0, fermi_level=0.5, correction=0.1)
    assert e == pytest.approx(3.9)


def test_substitution_by_hand() -> None:
    # Na_Pb^-1: -104 - (-103) - (1 * -2.8 + (-1) * -5.3) + (-1)(2.0 + 0) + 0.2
    #         = -1 - 2.5 - 2.0 + 0.2 = -5.3
    e = formation_energy(-104.0, -103.0, {"Na": 1, "Pb": -1}, MU, -1, 2.0, correction=0.2)
    assert e == pytest.approx(-5.3)


def test_neutral_defect_ignores_fermi_level() -> None:
    a = formation_energy(-101.0, -100.0, {"Na": 1}, MU, 0, 2.0, fermi_level=0.0)
    b = formation_energy(-101.0, -100.0, {"Na": 1}, MU, 0, 2.0, fermi_level=1.3)
    assert a == pytest.approx(b) == pytest.approx(1.8)


def test_missing_chemical_potential_is_named() -> None:
    with pytest.raises(ValueError, match="Cs"):
        formation_energy(-1.0, 0.0, {"Cs": -1}, MU, 0, 0.0)


# --- lower envelope and transition levels ---------------------------------------------------


def test_levels_three_states() -> None:
    lines = {1: 1.0, 0: 1.5, -1: 2.6}
    levels = transition_levels(lines, band_gap=1.5)
    assert [lev.label for lev in levels] == ["+1/0", "0/-1"]
    assert [lev.level for lev in levels] == pytest.approx([0.5, 1.1])
    assert [lev.depth for lev in levels] == pytest.approx([1.0, 0.4])
    assert all(lev.in_gap for lev in levels)
    assert (levels[0].q, levels[0].q_prime) == (1, 0)
    assert stable_charge_states(lines, (0.0, 1.5)) == [1, 0, -1]


def test_neutral_never_stable_gives_midgap_level() -> None:
    # +1 and -1 cross at (2.0 - 1.0) / 2 = 0.5 where they are at 1.5; the neutral is at 2.0
    lines = {1: 1.0, 0: 2.0, -1: 2.0}
    levels = transition_levels(lines, band_gap=1.0)
    assert len(levels) == 1
    assert levels[0].label == "+1/-1"
    assert levels[0].level == pytest.approx(0.5)
    assert levels[0].depth == pytest.approx(0.5)
    assert stable_charge_states(lines, (0.0, 1.0)) == [1, -1]


def test_three_lines_meeting_at_one_point_report_direct_level() -> None:
    # all three cross at E_F = 0.5 (value 1.5): the neutral is stable only at that point
    levels = transition_levels({1: 1.0, 0: 1.5, -1: 2.0}, band_gap=1.5)
    assert [(lev.label, lev.level) for lev in levels] == [("+1/-1", pytest.approx(0.5))]


def test_single_charge_state_has_no_levels() -> None:
    assert transition_levels({0: 1.2}, band_gap=1.5) == []
    assert stable_charge_states({0: 1.2}, (0.0, 1.5)) == [0]


def test_level_outside_gap_needs_wider_window() -> None:
    lines = {1: 1.0, 0: 1.5, -1: 2.6}
    inside = transition_levels(lines, band_gap=1.0)
    assert [lev.label for lev in inside] == ["+1/0"]
    wide = transition_levels(lines, band_gap=1.0, window=(-0.5, 1.5))
    assert [lev.label for lev in wide] == ["+1/0", "0/-1"]
    assert wide[1].level == pytest.approx(1.1)
    assert wide[1].depth == pytest.approx(-0.1)
    assert not wide[1].in_gap


def test_state_stable_only_below_vbm() -> None:
    # ε(+2/+1) = (1.0 - 1.5) / 1 = -0.5 (below the VBM), ε(+1/0) = 0.5
    lines = {2: 1.5, 1: 1.0, 0: 1.5}
    assert [lev.label for lev in transition_levels(lines, band_gap=1.5)] == ["+1/0"]
    assert stable_charge_states(lines, (0.0, 1.5)) == [1, 0]
    wide = transition_levels(lines, band_gap=1.5, window=(-1.0, 1.5))
    assert [lev.label for lev in wide] == ["+2/+1", "+1/0"]
    assert wide[0].level == pytest.approx(-0.5)
    assert wide[0].depth == pytest.approx(2.0)
    assert not wide[0].in_gap and wide[1].in_gap


def test_skipped_intermediate_state() -> None:
    # from +2 (0.0 at the VBM): crosses 0 at 1.5 / 2 = 0.75 before +1 at 1.0, so +1 is
    # never stable and the level is ε(+2/0) = 0.75
    levels = transition_levels({2: 0.0, 1: 1.0, 0: 1.5}, band_gap=1.5)
    assert [(lev.label, lev.level) for lev in levels] == [("+2/0", pytest.approx(0.75))]


def test_level_at_window_edges_is_reported() -> None:
    # +1 and 0 tie at E_F = 0; 0 and -1 tie at E_F = 1.5 (= band gap)
    levels = transition_levels({1: 1.0, 0: 1.0, -1: 2.5}, band_gap=1.5)
    assert [(lev.label, lev.level) for lev in levels] == [
        ("+1/0", pytest.approx(0.0)),
        ("0/-1", pytest.approx(1.5)),
    ]
    assert all(lev.in_gap for lev in levels)


def test_envelope_segments_and_energy() -> None:
    lines = {1: 1.0, 0: 1.5, -1: 2.6}
    segs = lower_envelope(lines, (0.0, 1.5))
    assert [(s.charge, s.start, s.end) for s in segs] == [
        (1, 0.0, pytest.approx(0.5)),
        (0, pytest.approx(0.5), pytest.approx(1.1)),
        (-1, pytest.approx(1.1), 1.5),
    ]
    # at E_F = 0, 0.8, 1.5: +1 gives 1.0; neutral 1.5; -1 gives 2.6 - 1.5 = 1.1
    assert envelope_energy(lines, [0.0, 0.8, 1.5]) == pytest.approx(np.array([1.0, 1.5, 1.1]))


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="window"):
        transition_levels({0: 1.0}, band_gap=1.0, window=(1.0, 0.0))
    with pytest.raises(ValueError, match="no charge states"):
        transition_levels({}, band_gap=1.0)
    with pytest.raises(ValueError, match="not finite"):
        transition_levels({0: float("nan")}, band_gap=1.0)


def test_transition_level_label_and_format() -> None:
    assert TransitionLevel(2, 1, 0.1, 1.4, True).label == "+2/+1"
    assert TransitionLevel(0, -2, 0.1, 1.4, True).label == "0/-2"
    assert [format_charge(q) for q in (1, 0, -1)] == ["+1", "0", "-1"]


# --- entries -------------------------------------------------------------------------------

LIMITS = {"I-rich": {"I": -1.5, "Pb": -5.3}, "I-poor": {"I": -2.65, "Pb": -3.0}}


def test_entry_from_energies_per_limit() -> None:
    entry = DefectChargeEntry.from_energies(
        "V_I", 1, -100.0, -103.0, {"I": -1}, LIMITS, vbm=2.0, correction=0.1
    )
    # I-rich: 3 - 1.5 + 2.0 + 0.1 = 3.6 ; I-poor: 3 - 2.65 + 2.0 + 0.1 = 2.45
    assert entry.formation_energies == pytest.approx({"I-rich": 3.6, "I-poor": 2.45})
    assert entry.converged and not entry.is_missing
    assert entry.correction == 0.1


def test_missing_entry_is_explicit() -> None:
    entry = DefectChargeEntry.missing("V_I", -1, LIMITS, note="SCF failed")
    assert entry.is_missing and not entry.converged
    assert entry.formation_energies == {"I-rich": None, "I-poor": None}
    assert entry.correction is None


def _record(energy: float, charge: int, converged: bool = True) -> CalcRecord:
    return CalcRecord(
        engine="test",
        engine_version="0",
        energy=energy,
        charge=charge,
        scf_converged=converged,
        geometry_converged=True,
        structure={},
        vbm=2.0,
        run_dir=f"runs/q{charge}",
    )


def test_entry_from_records() -> None:
    bulk = _record(-103.0, 0)
    entry = DefectChargeEntry.from_records("V_I", _record(-100.0, 1), bulk, {"I": -1}, LIMITS)
    assert entry.charge == 1
    assert entry.formation_energies["I-rich"] == pytest.approx(3.5)
    bad = DefectChargeEntry.from_records(
        "V_I", _record(-100.0, 1, converged=False), bulk, {"I": -1}, LIMITS
    )
    assert bad.status == "unconverged" and "runs/q1" in bad.note
    gone = DefectChargeEntry.from_records("V_I", None, bulk, {"I": -1}, LIMITS, charge=-1)
    assert gone.is_missing and gone.charge == -1


def test_charge_lines_skip_missing_and_unconverged() -> None:
    entries = [
        DefectChargeEntry("V_I", 1, {"I-rich": 1.0}),
        DefectChargeEntry("V_I", 0, {"I-rich": 1.5}, status="unconverged"),
        DefectChargeEntry.missing("V_I", -1, ["I-rich"]),
        DefectChargeEntry("Na_i", 1, {"I-rich": 0.3}),
    ]
    assert charge_lines(entries, "V_I", "I-rich") == {1: 1.0}
    assert charge_lines(entries, "V_I", "I-rich", include_unconverged=True) == {1: 1.0, 0: 1.5}
