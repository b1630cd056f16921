"""Study tables: CSV round trip, Markdown layout, missing rows kept."""

from __future__ import annotations

import csv

import pytest

from perovskite_defects.reporting.tables import read_csv, write_csv, write_markdown
from perovskite_defects.thermodynamics.formation import DefectChargeEntry, transition_levels
from perovskite_defects.thermodynamics.rows import formation_energy_table, transition_level_table

LIMITS = ["I-rich", "I-poor"]


def entries() -> list[DefectChargeEntry]:
    return [
        DefectChargeEntry("V_I", 1, {"I-rich": 1.23456, "I-poor": 0.1}, correction=0.25),
        DefectChargeEntry("V_I", 0, {"I-rich": 2.0, "I-poor": 0.85}, correction=0.0),
        DefectChargeEntry.missing("V_I", -1, LIMITS, note="SCF failed"),
        DefectChargeEntry(
            "Na_Pb", -1, {"I-rich": -0.0001, "I-poor": 1 / 3}, 0.1, status="unconverged"
        ),
    ]


def test_formation_energy_rows() -> None:
    rows = formation_energy_table(entries())
    assert list(rows[0]) == [
        "defect",
        "charge",
        "E_f[I-rich] (eV)",
        "E_f[I-poor] (eV)",
        "correction (eV)",
        "converged",
    ]
    assert len(rows) == 4  # the missing calculation is not dropped
    missing = rows[2]
    assert missing["defect"] == "V_I" and missing["charge"] == -1
    assert missing["E_f[I-rich] (eV)"] is None and missing["correction (eV)"] is None
    assert missing["converged"] == "missing"
    assert rows[3]["converged"] is False
    assert rows[0]["converged"] is True


def test_csv_round_trip(tmp_path) -> None:
    rows = formation_energy_table(entries())
    path = tmp_path / "formation.csv"
    write_csv(rows, path)
    assert read_csv(path) == rows  # exact: floats are written with repr
    with path.open(newline="") as handle:
        raw = list(csv.reader(handle))
    assert raw[0][2] == "E_f[I-rich] (eV)"
    assert raw[3] == ["V_I", "-1", "", "", "", "missing"]


def test_markdown_table(tmp_path) -> None:
    path = tmp_path / "formation.md"
    notes = ["energies from CP2K PBE", "corrections: Freysoldt"]
    write_markdown(formation_energy_table(entries()), path, "Formation energies", notes)
    lines = path.read_text().splitlines()
    assert lines[0] == "## Formation energies"
    header = (
        "| defect | charge | E_f[I-rich] (eV) | E_f[I-poor] (eV) | correction (eV) | converged |"
    )
    assert lines[2] == header
    assert lines[3] == "|---|---|---|---|---|---|"
    assert lines[4] == "| V_I | +1 | 1.235 | 0.100 | 0.250 | True |"
    assert lines[6] == "| V_I | -1 |  |  |  | missing |"
    assert lines[7] == "| Na_Pb | -1 | 0.000 | 0.333 | 0.100 | False |"
    assert "- energies from CP2K PBE" in lines
    assert "- corrections: Freysoldt" in lines


def test_transition_level_rows(tmp_path) -> None:
    levels = {
        "V_I": transition_levels({1: 1.0, 0: 1.5, -1: 2.6}, band_gap=1.5),
        "Na_i": transition_levels({1: 0.2}, band_gap=1.5),  # one charge state: no level
        "Na_Pb": None,  # levels could not be computed
    }
    rows = transition_level_table(levels)
    assert [r["q/q'"] for r in rows] == ["+1/0", "0/-1", "none", "missing"]
    assert rows[0]["level above VBM (eV)"] == pytest.approx(0.5)
    assert rows[1]["depth below CBM (eV)"] == pytest.approx(0.4)
    assert rows[3]["level above VBM (eV)"] is None

    csv_path = tmp_path / "levels.csv"
    write_csv(rows, csv_path)
    assert read_csv(csv_path) == rows

    md_path = tmp_path / "levels.md"
    write_markdown(rows, md_path, "Transition levels", notes="gap 1.5 eV (PBE)")
    text = md_path.read_text()
    assert "| defect | q/q' | level above VBM (eV) | depth below CBM (eV) |" in text
    assert "| V_I | 0/-1 | 1.100 | 0.400 |" in text
    assert "| Na_Pb | missing |  |  |" in text
    assert "- gap 1.5 eV (PBE)" in text


def test_empty_table_needs_columns(tmp_path) -> None:
    with pytest.raises(ValueError, match="no rows"):
        write_csv([], tmp_path / "x.csv")
    write_csv([], tmp_path / "x.csv", columns=["defect", "charge"])
    assert (tmp_path / "x.csv").read_text().strip() == "defect,charge"
