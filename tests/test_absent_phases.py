"""Bounds on what a competing phase left out could do to the limits (absent_phases.py).

Pure math on hand-chosen formation energies (the CsSnI3 diagram of test_chempots.py, eV per
formula unit: CsSnI3 -5.3, CsI -3.0, SnI2 -2.0), solved by hand. Without SnI4 and Cs2SnI6,
with x = Δmu_Sn, y = Δmu_I, Δmu_Cs = -5.3 - x - 3y, the region is
-2.3 <= x + 2y <= -2.0, x <= 0, y <= 0, with vertices (Cs, Sn, I):

    Sn+SnI2 (-2.3, 0, -1.0)   CsI+Sn (-1.85, 0, -1.15)
    I2+SnI2 (-3.3, -2.0, 0)   CsI+I2 (-3.0, -2.3, 0)

I-rich is CsI+I2 (tie at Δmu_I = 0 broken by the higher Δmu_Cs), I-poor is CsI+Sn.
S(SnI4) = x + 4y over the vertices: -4.0, -4.6, -2.0, -2.3;
S(Cs2SnI6) = 2 Δmu_Cs + x + 6y: -10.6, -10.6, -8.6, -8.3.
"""

from __future__ import annotations

import pytest

from perovskite_defects.thermodynamics.absent_phases import (
    absent_phase_bound,
    absent_phase_notes,
    unsourced_phases,
)
from perovskite_defects.thermodynamics.phase_limits import compute_chemical_potential_limits

REF = {"Cs": -1.0, "Sn": -3.8, "I": -1.5}


def energy(counts: dict[str, int], formation: float) -> float:
    return sum(n * REF[el] for el, n in counts.items()) + formation


def limits(extra: dict[str, tuple[dict[str, int], float]] | None = None):
    phases: dict[str, tuple[object, float]] = {
        "Cs": ("Cs", REF["Cs"]),
        "Sn": ("Sn", REF["Sn"]),
        "I2": ("I2", 2 * REF["I"]),
        "CsI": ("CsI", energy({"Cs": 1, "I": 1}, -3.0)),
        "SnI2": ("SnI2", energy({"Sn": 1, "I": 2}, -2.0)),
    }
    for label, (counts, dh) in (extra or {}).items():
        phases[label] = (counts, energy(counts, dh))
    host = energy({"Cs": 1, "Sn": 1, "I": 3}, -5.3)
    return compute_chemical_potential_limits("CsSnI3", host, phases)


def test_bounds_of_sn4_phases_by_hand() -> None:
    res = limits()
    sni4 = absent_phase_bound(res, "SnI4")
    assert sni4 is not None
    assert sni4.cuts_below == pytest.approx(-2.0)
    assert sni4.host_unstable_below == pytest.approx(-4.6)
    assert sni4.limit_thresholds == pytest.approx({"I-rich": -2.3, "I-poor": -4.6})
    assert sni4.max_shift["I-rich"] == pytest.approx({"Cs": 1.15, "Sn": 2.3, "I": 1.15})
    cs2sni6 = absent_phase_bound(res, "Cs2SnI6")
    assert cs2sni6 is not None
    assert cs2sni6.cuts_below == pytest.approx(-8.3)
    assert cs2sni6.limit_thresholds == pytest.approx({"I-rich": -8.3, "I-poor": -10.6})
    assert absent_phase_bound(res, "NaI") is None  # not of the host's elements


@pytest.mark.parametrize(("dh", "moves"), [(-2.25, False), (-2.35, True)])
def test_threshold_decides_whether_i_rich_moves(dh: float, moves: bool) -> None:
    """Adding SnI4 with ΔH just above / below the I-rich threshold (-2.3 eV) to the solver."""
    before = limits().delta_mu("I-rich")
    after = limits({"SnI4": ({"Sn": 1, "I": 4}, dh)}).delta_mu("I-rich")
    changed = any(abs(after[el] - before[el]) > 1e-6 for el in before)
    assert changed is moves
    bound = absent_phase_bound(limits(), "SnI4")
    assert bound is not None
    for el, d in bound.max_shift["I-rich"].items():
        assert abs(after[el] - before[el]) <= d + 1e-9


def test_notes_name_the_limits_and_the_shift() -> None:
    notes = absent_phase_notes(limits(), {"SnI4": "no sourced structure", "NaI": "x"})
    assert len(notes) == 1
    note = notes[0]
    assert note.startswith("SnI4 is not in the calculation (no sourced structure)")
    assert "below -2.000 eV per formula unit" in note
    assert "I-rich moves if ΔH(SnI4) < -2.300 eV (Δmu could change by up to Cs 1.150" in note
    assert "I-poor moves if ΔH(SnI4) < -4.600 eV" in note


def test_unsourced_phases_of_a_system() -> None:
    # SnI2 and SnI4 are shipped now: the Cs-Sn-I system has no unsourced phase left
    assert unsourced_phases({"Cs", "Sn", "I"}, []) == []
    assert unsourced_phases({"Cs", "Sn", "Br"}, []) == ["SnBr4", "Cs2SnBr6"]
    assert unsourced_phases({"Cs", "Sn", "Cl"}, ["SnCl2"]) == ["SnCl4", "Cs2SnCl6"]
    assert "Cs4PbI6" in unsourced_phases({"Cs", "Pb", "I"}, [])
    # PbBr2 and PbCl2 are shipped: only the Cs-rich and Pb-rich ternaries are left
    assert unsourced_phases({"Cs", "Pb", "Br"}, []) == ["Cs4PbBr6", "CsPb2Br5"]
    assert unsourced_phases({"Cs", "Pb", "Cl"}, []) == ["Cs4PbCl6", "CsPb2Cl5"]


def test_chemical_potential_step_writes_the_bounds(tmp_path) -> None:
    """The workflow step: CsSnI3 with Cs, Sn, I2, CsI only (hand-made converged records).

    Without SnI2 the region has vertices (Cs, Sn, I) CsI+Sn (-1.85, 0, -1.15), CsI+I2
    (-3.0, -2.3, 0) and I2+Sn (-5.3, 0, 0); S(SnI2) = x + 2y is -2.3, -2.3, 0 there, so
    SnI2 would narrow the region below 0 eV and move both named limits below -2.3 eV.
    """
    from pymatgen.core import Lattice, Structure

    from perovskite_defects import config as cfg
    from perovskite_defects.engines.base import CalcRecord
    from perovskite_defects.hosts.phase_files import load_phase
    from perovskite_defects.steps import phases as steps_phases
    from perovskite_defects.steps.common import host_plan
    from perovskite_defects.steps.params import chemical_potentials_params
    from perovskite_defects.thermodynamics.phase_limits import ChemicalPotentialLimits

    def record(structure: Structure, dh: float, name: str):
        counts = {el.symbol: int(n) for el, n in structure.composition.items()}
        path = tmp_path / f"{name}.json"
        CalcRecord(
            engine="vasp",
            engine_version="test",
            energy=energy(counts, dh),
            charge=0,
            scf_converged=True,
            geometry_converged=True,
            structure=structure.as_dict(),
        ).to_json(path)
        return path

    config = cfg.validate(
        {
            "host": {"A": "Cs", "B": "Sn", "X": "I", "supercell": [1, 1, 1]},
            "defects": [{"name": "V_I", "charges": [0]}],
            "competing_phases": ["Cs", "Sn", "I2", "CsI"],
        }
    )
    # bookkeeping cell: only its composition (CsSnI3) enters the limits
    host = Structure(
        Lattice.cubic(6.2),
        ["Cs", "Sn", "I", "I", "I"],
        [[0.5, 0.5, 0.5], [0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]],
    )
    cells = {name: load_phase(name).structure for name in ("Cs", "Sn", "I2", "CsI")}
    n_csi = cells["CsI"].composition["Cs"]
    phases = {name: record(s, 0.0, name) for name, s in cells.items() if name != "CsI"}
    phases["CsI"] = record(cells["CsI"], -3.0 * n_csi, "CsI")
    name = cfg.host_name(config)
    out = tmp_path / "limits.json"
    params = chemical_potentials_params(config, host_plan(config, name))
    steps_phases.chemical_potentials(name, record(host, -5.3, "host"), phases, out, **params)
    res = ChemicalPotentialLimits.from_json(out)
    assert res.delta_mu("I-rich") == pytest.approx({"Cs": -3.0, "Sn": -2.3, "I": 0.0})
    notes = {n.split(" ", 1)[0]: n for n in res.notes if "is not in the calculation" in n}
    assert set(notes) == {"SnI2", "SnI4", "Cs2SnI6"}
    for phase in ("SnI2", "SnI4", "Cs2SnI6"):
        assert "(shipped in structures/phases/ but not listed" in notes[phase]
    assert "were below 0.000 eV per formula unit" in notes["SnI2"]
    assert "I-rich moves if ΔH(SnI2) < -2.300 eV" in notes["SnI2"]
    assert "I-poor moves if ΔH(SnI2) < -2.300 eV" in notes["SnI2"]
