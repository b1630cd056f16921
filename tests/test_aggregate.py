"""Tables across the hosts of a sweep from each host's host_results.json (no DFT, no files
but the ones written here).

Two hand-made hosts: CsPbI3 with one V_I, and an alloy whose V_I site class "PbSn" has two
representatives kT ln 3 apart, so their Boltzmann weights are 1 and 1/3 and the class
average is E_low + kT ln 3 / 4 (by hand). Checked: the aggregated rows carry
each host's own table rows cell for cell, the class averages and class levels equal the
hand values, a failed run stays a row and stays out of the averages.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from perovskite_defects.reporting.aggregate import K_B, aggregate
from perovskite_defects.reporting.tables import read_csv, write_csv
from perovskite_defects.thermodynamics.band_edges import BandEdges
from perovskite_defects.thermodynamics.formation import (
    DefectChargeEntry,
    charge_lines,
    transition_levels,
)
from perovskite_defects.thermodynamics.host_results import HOST_RESULTS_JSON, HostResults
from perovskite_defects.thermodynamics.rows import formation_energy_table
from perovskite_defects.thermodynamics.trap_classes import transition_level_rows

T = 300.0
SPLIT = K_B * T * math.log(3.0)  # Boltzmann weights 1 and 1/3
LIMITS = ["I-rich", "I-poor"]
EDGES = BandEdges(vbm=1.0, cbm=2.5, source="bulk")
# defect id -> charge -> E_f at I-rich, E_F = VBM (eV); None: failed for good
PURE = {"V_I": {1: 0.5, 0: 1.0}}
ALLOY = {
    "V_I_a": {1: 0.5, 0: 1.0},
    "V_I_b": {1: 0.5 + SPLIT, 0: 1.0 + SPLIT, -1: None},
}


def _results(energies: dict[str, dict[int, float | None]]) -> HostResults:
    """A host's results by hand: at I-poor every V_I costs 1 eV less (mu_I 1 eV lower)."""
    entries = [
        DefectChargeEntry.missing(name, q, LIMITS, "failed: SCF ladder exhausted")
        if e is None
        else DefectChargeEntry(name, q, {"I-rich": e, "I-poor": e - 1.0}, correction=0.0)
        for name, by_q in energies.items()
        for q, e in by_q.items()
    ]
    levels = {
        name: None
        if None in by_q.values()
        else transition_levels(charge_lines(entries, name, LIMITS[0]), EDGES.gap)
        for name, by_q in energies.items()
    }
    return HostResults(
        entries=entries,
        levels=levels,
        lines_by_limit={
            lim: {n: charge_lines(entries, n, lim) for n in energies} for lim in LIMITS
        },
        formation_rows=formation_energy_table(entries, LIMITS),
        level_rows=transition_level_rows(levels, EDGES.gap, 0.1),
        sites={},
        dopants={name: [] for name in energies},
        limit_names=LIMITS,
        band_edges=EDGES,
    )


def _host(base: Path, name: str, x: float, energies, site_class: str) -> dict:
    tables = base / name / "tables"
    tables.mkdir(parents=True)
    res = _results(energies)
    res.to_json(tables / HOST_RESULTS_JSON)
    write_csv(res.formation_rows, tables / "formation_energies.csv")  # as the tables step
    manifest = [
        {"id": i, "defect": "V_I", "site_class": site_class, "multiplicity": 3.0 / len(energies)}
        for i in energies
    ]
    (base / name / "manifest.json").write_text(json.dumps(manifest))
    return {
        "name": name,
        "composition": {"A": "Cs", "x": x, "X": {"I": 1.0}},
        "tables": tables,
        "manifest": base / name / "manifest.json",
    }


@pytest.fixture
def aggregated(tmp_path: Path) -> Path:
    hosts = [
        _host(tmp_path, "CsPbI3", 0.0, PURE, ""),
        _host(tmp_path, "CsSn0.5Pb0.5I3", 0.5, ALLOY, "PbSn"),
    ]
    aggregate(hosts, T, tmp_path / "tables")
    return tmp_path


def test_rows_carry_each_hosts_table_cell_for_cell(aggregated: Path) -> None:
    lines = (aggregated / "tables/formation_energies.csv").read_text().splitlines()
    own = {
        host: (aggregated / host / "tables/formation_energies.csv").read_text().splitlines()
        for host in ("CsPbI3", "CsSn0.5Pb0.5I3")
    }
    head = "host,A,X,x,defect type,site class,multiplicity,"
    assert lines[0] == head + own["CsPbI3"][0]
    assert lines[1:] == [f"CsPbI3,Cs,I,0.0,V_I,,3.0,{row}" for row in own["CsPbI3"][1:]] + [
        f"CsSn0.5Pb0.5I3,Cs,I,0.5,V_I,PbSn,1.5,{row}" for row in own["CsSn0.5Pb0.5I3"][1:]
    ]
    failed = [
        r for r in read_csv(aggregated / "tables/formation_energies.csv") if r["charge"] == -1
    ]
    assert [(r["defect"], r["converged"]) for r in failed] == [
        ("V_I_b", "failed: SCF ladder exhausted")
    ]


def test_class_averages_and_levels_by_hand(aggregated: Path) -> None:
    rows = read_csv(aggregated / "tables/class_averages.csv")
    alloy = {(r["charge"], r["limit"]): r for r in rows if r["host"] == "CsSn0.5Pb0.5I3"}
    assert set(alloy) == {(q, lim) for q in (1, 0) for lim in LIMITS}  # the failed -1: none
    for (q, limit), row in alloy.items():
        low = PURE["V_I"][q] - (1.0 if limit == "I-poor" else 0.0)  # type: ignore[operator]
        assert row["representatives"] == 2
        assert row["E_f Boltzmann (eV)"] == pytest.approx(low + SPLIT / 4, abs=1e-12)
        assert (row["E_f min (eV)"], row["E_f max (eV)"]) == pytest.approx((low, low + SPLIT))
    pure = [r for r in rows if r["host"] == "CsPbI3"]
    assert [(r["charge"], r["limit"], r["E_f Boltzmann (eV)"]) for r in pure] == [
        (1, "I-rich", 0.5), (1, "I-poor", -0.5), (0, "I-rich", 1.0), (0, "I-poor", 0.0)
    ]  # fmt: skip
    levels = read_csv(aggregated / "tables/class_transition_levels.csv")
    # both averaged lines shift by SPLIT / 4: the level stays at 1.0 - 0.5 eV
    assert [(r["host"], r["site class"], r["q/q'"]) for r in levels] == [
        ("CsPbI3", None, "+1/0"),
        ("CsSn0.5Pb0.5I3", "PbSn", "+1/0"),
    ]
    for row in levels:
        assert row["level above VBM (eV)"] == pytest.approx(0.5, abs=1e-12)
        assert row["depth below CBM (eV)"] == pytest.approx(EDGES.gap - 0.5, abs=1e-12)


def test_a_host_without_host_results_json_is_one_line(tmp_path: Path) -> None:
    host = _host(tmp_path, "CsPbI3", 0.0, PURE, "")
    (host["tables"] / HOST_RESULTS_JSON).unlink()
    with pytest.raises(ValueError, match=r"CsPbI3/tables/host_results.json: cannot be read"):
        aggregate([host], T, tmp_path / "tables")
