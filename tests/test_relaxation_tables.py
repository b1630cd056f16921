"""Relaxed defects in the tables: relaxation energy, local geometry and unrelaxed levels.

Hand-made records (as in test_host_results.py), numbers solved by hand:
E_f(q) = E_def - E_bulk - sum_i n_i mu_i + q E_VBM + E_corr at E_F = 0, and the unrelaxed
E_f(q) = E_f(q) - (E_def - E_initial). Gap 1.5 eV, shallow within 0.1 eV of an edge.
"""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from perovskite_defects.defects.local_environment import geometry_summary
from perovskite_defects.defects.local_geometry import local_geometry
from perovskite_defects.engines.base import CalcRecord
from perovskite_defects.hosts.perovskite import cubic_prototype, supercell
from perovskite_defects.thermodynamics.band_edges import BandEdges
from perovskite_defects.thermodynamics.given_limits import limits_from_config
from perovskite_defects.thermodynamics.host_results import DefectRun, host_results
from perovskite_defects.thermodynamics.relaxation import UNRELAXED_CLASS, UNRELAXED_LEVEL
from perovskite_defects.thermodynamics.rows import LOCAL_GEOMETRY, RELAXATION

CONC = {
    "temperature": 300.0,
    "synthesis_temperature": None,
    "limits": [],
    "orientational_degeneracy": {},
}


def _record(energy: float, charge: int, nelect: float, initial: float | None) -> CalcRecord:
    cell = Structure(
        Lattice.cubic(6.4),
        ["Cs", "Pb", "I", "I", "I"],
        [[0.5] * 3, [0] * 3, [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]],
    )
    return CalcRecord(
        engine="cp2k",
        engine_version="hand-made",
        energy=energy,
        charge=charge,
        scf_converged=True,
        geometry_converged=None if initial is None else True,
        structure=cell.as_dict(),
        nelect=nelect,
        vbm=1.0,
        cbm=2.5,
        initial_energy=initial,
    )


def _results(relaxed: bool):
    limits = limits_from_config(
        {"source": "hand-made", "limits": {"I-rich": {"Cs": -40.0, "Pb": -30.0, "I": -10.0}}},
        {"Cs": 1, "Pb": 1, "I": 3},
        -100.0,
    )

    def run(name, energy, q, nelect, initial, added, corr=0.0, geometry=None):
        record = _record(energy, q, nelect, initial if relaxed else None)
        return DefectRun(name, record, added, 1, corr, local_geometry=geometry)

    runs = [
        # V_I +1: -89.6 + 100 - 10 + 1 + 0.1 = 1.5, relaxed by 0.25 (unrelaxed 1.75);
        # 0: 1.8, not lowered (unrelaxed 1.8). eps(+1/0): 0.3 relaxed (deep), 0.05 unrelaxed
        # (shallow).
        run("V_I", -89.6, 1, 32, -89.35, {"I": -1}, 0.1, "Pb-Pb across V_I 6.900 (host 6.400)"),
        run("V_I", -88.2, 0, 33, -88.2, {"I": -1}),
        # I_i: relaxed +1 1.0, 0 1.6, -1 1.8: negative U, only +1/-1 at 0.4. Unrelaxed (+1
        # and -1 lowered by 0.4): 1.4, 1.6, 2.2: +1/0 at 0.2 and 0/-1 at 0.6.
        run("I_i", -110.0, 1, 46, -109.6, {"I": 1}),
        run("I_i", -108.4, 0, 47, -108.4, {"I": 1}),
        run("I_i", -107.2, -1, 48, -106.8, {"I": 1}),
    ]
    return host_results(
        runs,
        _record(-100.0, 0, 40, None),
        BandEdges(vbm=1.0, cbm=2.5, source="bulk"),
        limits,
        n_cells=1,
        shallow_threshold=0.1,
        concentrations=CONC,
        bands=None,
    )


def test_formation_rows_carry_relaxation_energy_and_geometry() -> None:
    rows = {(r["defect"], r["charge"]): r for r in _results(relaxed=True).formation_rows}
    assert rows[("V_I", 1)]["E_f[I-rich] (eV)"] == pytest.approx(1.5)
    assert rows[("V_I", 1)][RELAXATION] == pytest.approx(-0.25)
    assert rows[("V_I", 0)][RELAXATION] == pytest.approx(0.0)
    assert rows[("I_i", -1)][RELAXATION] == pytest.approx(-0.4)
    assert rows[("V_I", 1)][LOCAL_GEOMETRY] == "Pb-Pb across V_I 6.900 (host 6.400)"
    assert rows[("I_i", 0)][LOCAL_GEOMETRY] is None


def test_unrelaxed_levels_and_classes_beside_the_relaxed_ones() -> None:
    res = _results(relaxed=True)
    rows = {(r["defect"], r["q/q'"]): r for r in res.level_rows}
    v_i = rows[("V_I", "+1/0")]
    assert v_i["level above VBM (eV)"] == pytest.approx(0.3)
    assert v_i["class by position"] == "deep"
    assert v_i[UNRELAXED_LEVEL] == pytest.approx(0.05)
    assert v_i[UNRELAXED_CLASS] == "shallow"
    # the same two states unrelaxed: (2.2 - 1.4) / 2
    i_i = rows[("I_i", "+1/-1")]
    assert i_i["level above VBM (eV)"] == pytest.approx(0.4)
    assert i_i[UNRELAXED_LEVEL] == pytest.approx(0.4)
    notes = " ".join(res.level_notes)
    assert "V_I +1/0: shallow -> deep" in notes
    assert "I_i: unrelaxed levels +1/0 0.20 eV (deep), 0/-1 0.60 eV (deep)" in notes
    assert "relaxed +1/-1 0.40 eV (deep)" in notes
    assert "V_I: unrelaxed" not in notes  # same charge states on its envelope


def test_unrelaxed_study_has_no_relaxation_columns() -> None:
    res = _results(relaxed=False)
    assert RELAXATION not in res.formation_rows[0] and LOCAL_GEOMETRY not in res.formation_rows[0]
    assert UNRELAXED_LEVEL not in res.level_rows[0]
    assert res.level_notes == []


def test_geometry_summary_of_a_vacancy_whose_neighbours_moved_apart() -> None:
    a = 6.4
    bulk = supercell(cubic_prototype("Cs", "Pb", "I", a), [2, 2, 2])
    defect = bulk.copy()

    def at(element: str, cart: list[float]) -> int:
        return next(
            i
            for i, s in enumerate(defect)
            if s.specie.symbol == element and np.allclose(s.coords, cart, atol=1e-6)
        )

    # the two Pb beside the I at (a, a/2, a/2) move 0.1 Å away from the empty site
    h = a / 2
    defect.translate_sites([at("Pb", [h, h, h])], [-0.1, 0, 0], frac_coords=False)
    defect.translate_sites([at("Pb", [a + h, h, h])], [0.1, 0, 0], frac_coords=False)
    defect.remove_sites([at("I", [a, h, h])])
    summary = geometry_summary(local_geometry(bulk, defect).to_dict())
    assert summary == "Pb-Pb across V_I 6.600 (host 6.400)"
