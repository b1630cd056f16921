"""The physics of a host's tables from hand-made records, without files (host_results).

Every number is chosen to be solved by hand: E_f(q) = E_def - E_bulk - sum_i n_i mu_i
+ q (E_VBM + E_F) + E_corr (Freysoldt et al., Rev. Mod. Phys. 86, 253 (2014), Eq. 1), and
eps(q/q') = E_f(q') - E_f(q) at E_F = 0.
"""

from __future__ import annotations

import json

import pytest
from pymatgen.core import Lattice, Structure

from perovskite_defects.engines.base import CalcRecord
from perovskite_defects.thermodynamics.band_edges import BandEdges
from perovskite_defects.thermodynamics.carriers import EffectiveMassBands
from perovskite_defects.thermodynamics.given_limits import limits_from_config
from perovskite_defects.thermodynamics.host_results import (
    SCHEMA_VERSION,
    DefectRun,
    HostResults,
    host_results,
)
from perovskite_defects.thermodynamics.quenched import QuenchedSolution
from perovskite_defects.thermodynamics.trap_classes import (
    DONOR_PHS,
    LOCALIZED,
    NO_STATE,
    DefectStates,
)

CONC = {
    "temperature": 300.0,
    "synthesis_temperature": None,
    "limits": [],
    "orientational_degeneracy": {},
}


def _cell() -> Structure:
    return Structure(
        Lattice.cubic(6.4),
        ["Cs", "Pb", "I", "I", "I"],
        [[0.5, 0.5, 0.5], [0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]],
    )


def _record(energy: float, charge: int, nelect: float, **extra) -> CalcRecord:
    return CalcRecord(
        engine="cp2k",
        engine_version="hand-made",
        energy=energy,
        charge=charge,
        scf_converged=True,
        geometry_converged=None,
        structure=_cell().as_dict(),
        nelect=nelect,
        vbm=1.0,
        cbm=2.5,
        extra=extra,
    )


def _states(character: str) -> DefectStates:
    gap_state = [(1.5, 1.0)] if character == LOCALIZED else []
    return DefectStates(character, gap_state, 0.0, 1.0, 2.5)


def _solved(concentrations=CONC):
    bulk = _record(-100.0, 0, 40)
    # mu_Cs + mu_Pb + 3 mu_I = -40 - 30 - 30 = E_bulk per formula unit: on the host
    limits = limits_from_config(
        {
            "source": "hand-made test values",
            "limits": {"I-rich": {"Cs": -40.0, "Pb": -30.0, "I": -10.0, "Na": -5.0}},
        },
        {"Cs": 1, "Pb": 1, "I": 3},
        -100.0,
        dopants=["Na"],
    )
    runs = [
        # V_I: +1: -89.6 + 100 - 10 + 1.0 + 0.1 = 1.5; 0: -88.2 + 100 - 10 = 1.8 -> eps 0.3
        DefectRun("V_I", _record(-89.6, 1, 32), {"I": -1}, 1, 0.1, _states(NO_STATE)),
        DefectRun("V_I", _record(-88.2, 0, 33), {"I": -1}, 1, 0.0, _states(DONOR_PHS)),
        # Na_i: +1: -105.5 + 100 + 5 + 1.0 = 0.5; 0: -104.0 + 100 + 5 = 1.0 -> eps 0.5
        DefectRun("Na_i", _record(-105.5, 1, 48), {"Na": 1}, 1, 0.0, _states(NO_STATE)),
        DefectRun("Na_i", _record(-104.0, 0, 49), {"Na": 1}, 1, 0.0, _states(LOCALIZED)),
        # I_i failed for good: a row, never a number, and no level
        DefectRun("I_i", _record(0.0, 0, 47, failure="SCF ladder exhausted"), {"I": 1}, 1, 0.0),
    ]
    edges = BandEdges(vbm=1.0, cbm=2.5, source="bulk")
    return host_results(
        runs,
        bulk,
        edges,
        limits,
        n_cells=1,
        shallow_threshold=0.1,
        concentrations=concentrations,
        bands=EffectiveMassBands(gap=1.5, m_e=0.2, m_h=0.2),
    )


@pytest.fixture
def results():
    return _solved()


def test_formation_energies_and_levels_by_hand(results) -> None:
    by_state = {(e.name, e.charge): e for e in results.entries}
    assert by_state[("V_I", 1)].formation_energies["I-rich"] == pytest.approx(1.5)
    assert by_state[("V_I", 0)].formation_energies["I-rich"] == pytest.approx(1.8)
    assert by_state[("Na_i", 1)].formation_energies["I-rich"] == pytest.approx(0.5)
    assert by_state[("Na_i", 0)].formation_energies["I-rich"] == pytest.approx(1.0)
    assert by_state[("I_i", 0)].is_missing and "SCF ladder" in by_state[("I_i", 0)].note
    assert [lv.level for lv in results.levels["V_I"]] == pytest.approx([0.3])
    assert [lv.level for lv in results.levels["Na_i"]] == pytest.approx([0.5])
    assert results.levels["I_i"] is None
    assert results.lines_by_limit["I-rich"]["V_I"] == pytest.approx({1: 1.5, 0: 1.8})


def test_classes_follow_the_states_and_feed_the_trap_density(results) -> None:
    rows = {row["defect"]: row for row in results.level_rows}
    # 0.3 eV above the VBM is deep by position, but V_I(0) holds its electron in a donor
    # perturbed-host state: a shallow donor (pydefect/doped reading)
    assert rows["V_I"]["class by position"] == "deep" and rows["V_I"]["class"] == "shallow"
    assert rows["Na_i"]["class"] == "deep" and rows["Na_i"]["class from"] == "position"
    assert results.deep_defects == ["Na_i"]
    assert results.dopants == {"V_I": [], "Na_i": ["Na"], "I_i": []}
    assert results.dopant_elements == ["Na"]


def test_native_only_neutrality_leaves_the_dopant_out(results) -> None:
    (doped,) = results.with_dopants
    (native,) = results.native_only
    assert set(doped.room.concentrations) == {"V_I", "Na_i"}
    assert set(native.room.concentrations) == {"V_I"}
    # Na_i(+1) at 0.5 eV is a donor far cheaper than V_I(+1) at 1.5 eV: it pushes E_F up
    assert doped.room.fermi_level > native.room.fermi_level


def test_without_a_band_model_no_neutral_state_is_solved(results) -> None:
    bare = host_results(
        [],
        _record(-100.0, 0, 40),
        BandEdges(vbm=1.0, cbm=2.5, source="bulk"),
        limits_from_config(
            {"source": "hand-made", "limits": {"I-rich": {"Cs": -40.0, "Pb": -30.0, "I": -10.0}}},
            {"Cs": 1, "Pb": 1, "I": 3},
            -100.0,
        ),
        n_cells=1,
        shallow_threshold=0.1,
        concentrations=CONC,
        bands=None,
    )
    assert bare.entries == [] and bare.with_dopants == [] and bare.native_only == []


def test_json_round_trip_gives_an_equal_object(results, tmp_path) -> None:
    """host_results.json (what the aggregation and the API read) holds every field: the
    object read back equals the one written, charges as keys included."""
    results.to_json(tmp_path / "host_results.json")
    data = json.loads((tmp_path / "host_results.json").read_text())
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["lines_by_limit"]["I-rich"]["V_I"] == pytest.approx({"1": 1.5, "0": 1.8})
    back = HostResults.from_json(tmp_path / "host_results.json")
    assert back == results
    assert back.lines_by_limit["I-rich"]["V_I"] == results.lines_by_limit["I-rich"]["V_I"]
    assert back.fermi_rows() == results.fermi_rows()
    assert back.dopant_effect_rows() == results.dopant_effect_rows()
    assert back.dopant_effect_rows()  # Na_i is a dopant: rows to compare
    assert back.entries[-1].is_missing  # the failed I_i stays a row


def test_json_round_trip_of_a_quenched_solution() -> None:
    quenched = _solved(CONC | {"synthesis_temperature": 600.0})
    (state,) = quenched.with_dopants
    assert isinstance(state.solution, QuenchedSolution)
    back = HostResults.from_dict(json.loads(json.dumps(quenched.to_dict())))
    assert set(state.solution.room.concentrations["V_I"]) == {1, 0}
    assert back == quenched
    assert back.fermi_rows()[0]["synthesis temperature (K)"] == 600.0
    assert back.concentration_rows() == quenched.concentration_rows()


def test_another_schema_version_or_a_bad_file_is_one_line(results, tmp_path) -> None:
    path = tmp_path / "host_results.json"
    path.write_text(json.dumps(results.to_dict() | {"schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(ValueError, match=r"host_results.json: not a host_results file "):
        HostResults.from_json(path)
    data = results.to_dict()
    del data["entries"]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"host_results.json: .*no key 'entries'"):
        HostResults.from_json(path)
    with pytest.raises(ValueError, match=r"absent.json: cannot be read"):
        HostResults.from_json(tmp_path / "absent.json")
