"""Tables and plots of a ground-state search (thermodynamics/ground_state_search.py).

The energies below are HAND-MADE inputs for the table logic, not physics: round numbers
chosen so that each rule (reference, lowest, threshold, ties, ordering) is exercised.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from perovskite_defects.thermodynamics.ground_state_search import (
    cross_charge_trials,
    energy_table,
    label_distortion,
    lowest_trials,
    parse_label,
    plot_energies,
)

HAND_MADE = {
    0: {
        "Unperturbed": -100.00,
        "Bond_Distortion_-40.0%": -100.30,  # a new ground state, 0.30 eV lower
        "Bond_Distortion_-20.0%": -100.10,
        "Bond_Distortion_0.0%": -100.00,
        "Bond_Distortion_20.0%": -99.90,
    },
    1: {
        "Unperturbed": -104.00,
        "Rattled": -104.02,  # lower, but within the 0.05 eV threshold
    },
    -1: {
        "Unperturbed": -95.00,
        "Bond_Distortion_30.0%": -95.00,  # a tie: the plain relaxation wins
    },
}


def test_labels_parse() -> None:
    assert label_distortion("Bond_Distortion_-30.0%") == -0.3
    assert label_distortion("Bond_Distortion_0.0%") == 0.0
    assert label_distortion("Rattled") is None
    assert parse_label("Bond_Distortion_-40.0%_from_+1") == (-0.4, 1)
    assert parse_label("Rattled_from_-1") == (None, -1)
    assert parse_label("Bond_Distortion_10.0%_from_0") == (0.1, 0)
    with pytest.raises(ValueError, match="'Dimer' is not Unperturbed"):
        label_distortion("Dimer")
    with pytest.raises(ValueError, match="is not Unperturbed"):
        parse_label("Bond_Distortion_-40.0%_from_")


def test_energy_table_relative_to_plain_relaxation() -> None:
    rows = energy_table(HAND_MADE)
    assert [(r.charge, r.label) for r in rows][:4] == [
        (1, "Unperturbed"),
        (1, "Rattled"),
        (0, "Unperturbed"),
        (0, "Bond_Distortion_-40.0%"),
    ]
    by_key = {(r.charge, r.label): r for r in rows}
    assert by_key[(0, "Bond_Distortion_-40.0%")].relative == pytest.approx(-0.30)
    assert by_key[(0, "Bond_Distortion_20.0%")].relative == pytest.approx(0.10)
    assert by_key[(0, "Bond_Distortion_20.0%")].distortion == 0.2
    assert by_key[(1, "Rattled")].relative == pytest.approx(-0.02)
    assert len(rows) == 9


def test_lowest_trials_and_threshold() -> None:
    results = {r.charge: r for r in lowest_trials(HAND_MADE)}
    assert list(results) == [1, 0, -1]
    assert results[0].lowest == "Bond_Distortion_-40.0%"
    assert results[0].lowering == pytest.approx(-0.30)
    assert results[0].new_ground_state
    assert results[1].lowest == "Rattled" and not results[1].new_ground_state
    assert results[-1].lowest == "Unperturbed" and results[-1].lowering == 0.0
    strict = {r.charge: r for r in lowest_trials(HAND_MADE, min_e_diff=0.01)}
    assert strict[1].new_ground_state


def test_bad_records_one_line() -> None:
    with pytest.raises(ValueError, match=r"^charge \+2: no Unperturbed energy"):
        energy_table({2: {"Rattled": -1.0}})
    with pytest.raises(ValueError, match=r"^charge 0, Rattled: energy nan is not finite"):
        lowest_trials({0: {"Unperturbed": -1.0, "Rattled": float("nan")}})
    with pytest.raises(ValueError, match="no charge state"):
        lowest_trials({})


def test_plot_one_line_per_charge(tmp_path: Path) -> None:
    paths = plot_energies(HAND_MADE, "V_I", tmp_path / "V_I_search")
    assert [p.name for p in paths] == ["V_I_search.png", "V_I_search.svg"]
    svg = paths[1].read_text()
    for charge in ("q = +1", "q = 0", "q = -1"):
        assert charge in svg
    assert paths[0].stat().st_size > 5000


def test_cross_charge_trials_and_their_rows(tmp_path: Path) -> None:
    """The one new ground state (q = 0, -40 %) is to be tried in +1 and -1; once relaxed
    there, its rows carry the source charge and the plot draws them."""
    todo = cross_charge_trials(lowest_trials(HAND_MADE))
    assert todo == [
        (1, 0, "Bond_Distortion_-40.0%", "Bond_Distortion_-40.0%_from_0"),
        (-1, 0, "Bond_Distortion_-40.0%", "Bond_Distortion_-40.0%_from_0"),
    ]
    records = {q: dict(e) for q, e in HAND_MADE.items()}
    records[-1]["Bond_Distortion_-40.0%_from_0"] = -95.20  # hand-made, as above
    rows = [r for r in energy_table(records) if r.source_charge is not None]
    assert [(r.charge, r.distortion, r.source_charge) for r in rows] == [(-1, -0.4, 0)]
    assert rows[0].relative == pytest.approx(-0.20)
    lowest = {r.charge: r for r in lowest_trials(records)}
    assert lowest[-1].lowest == "Bond_Distortion_-40.0%_from_0"
    assert len(plot_energies(records, "V_I", tmp_path / "cross")) == 2


def test_plot_without_any_trial_energy_still_writes_both_files(tmp_path) -> None:
    paths = plot_energies({-1: {}}, "V_I", tmp_path / "summary")
    assert sorted(p.suffix for p in paths) == [".png", ".svg"]
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
