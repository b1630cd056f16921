"""The computed dielectric route on real CP2K output of cubic CsPbI3 (recorded runs).

tests/data/cp2k_cspbi3_dielectric_recorded/runs.json holds the forces and Berry-phase
dipoles that CP2K 2023.1 printed in the default study's own response runs (2x2x2
supercell, PBE, DZVP, 250 Ry, Gamma only; see its "recorded" field): the +/-x field runs
and phonopy's three displaced cells. Two independent routes to the Born charges meet here:
dF/dE from the field runs (what the workflow uses) and dP/du from the Berry-phase dipoles
of the displaced cells; they are the same derivative of the energy (a Maxwell relation,
e.g. Gonze & Lee, Phys. Rev. B 55, 10355 (1997)), so a wrong unit, sign or axis in either
parser would show as a mismatch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Structure

from perovskite_defects.engines.cp2k_response import DEFAULT_FIELD
from perovskite_defects.hosts.dielectric_tensor import (
    IonicPartUndefinedError,
    acoustic_sum_rule,
    born_charges_from_forces,
    eps_inf_from_dipoles,
    ionic_tensor,
)
from perovskite_defects.hosts.field_symmetry import field_axes, full_tensors
from perovskite_defects.hosts.phonons import (
    displaced_supercells,
    perfect_supercell,
    phonons_from_forces,
)

DATA = Path(__file__).parent / "data" / "cp2k_cspbi3_dielectric_recorded" / "runs.json"


@pytest.fixture(scope="module")
def recorded():
    data = json.loads(DATA.read_text())
    unit = Structure.from_dict(data["unit_cell"])
    phonon, cells = displaced_supercells(unit, [2, 2, 2], 0.01)
    runs = {
        name: (np.array(r["forces_eV_per_A"]), np.array(r["dipole_eA"]))
        for name, r in data["runs"].items()
    }
    return unit, phonon, cells, perfect_supercell(phonon), runs


def test_x_field_alone_gives_every_born_charge(recorded) -> None:
    _, _, _, supercell, runs = recorded
    assert field_axes(supercell) == [0]
    (f_plus, d_plus), (f_minus, d_minus) = runs["field+x"], runs["field-x"]
    rows = born_charges_from_forces([f_plus], [f_minus], DEFAULT_FIELD)
    cols = eps_inf_from_dipoles([d_plus], [d_minus], DEFAULT_FIELD, supercell.lattice.matrix, [0])
    born, eps = full_tensors(supercell, [0], rows, cols)
    born, violation = acoustic_sum_rule(born)
    assert violation < 0.005  # e; a real run, so not zero
    np.testing.assert_allclose(eps, eps[0, 0] * np.eye(3), atol=1e-3)
    assert 3.5 < eps[0, 0] < 4.5
    pb = [z for z, site in zip(born, supercell, strict=True) if site.specie.symbol == "Pb"]
    # Pb's Born charge is anomalous (far above its nominal +2), as in every lead halide
    assert all(np.allclose(z, z[0, 0] * np.eye(3), atol=1e-3) and z[0, 0] > 4 for z in pb)


def test_born_charges_from_forces_equal_those_from_dipoles(recorded) -> None:
    _, phonon, _, supercell, runs = recorded
    (f_plus, d_plus), (f_minus, d_minus) = runs["field+x"], runs["field-x"]
    rows = born_charges_from_forces([f_plus], [f_minus], DEFAULT_FIELD)
    cols = eps_inf_from_dipoles([d_plus], [d_minus], DEFAULT_FIELD, supercell.lattice.matrix, [0])
    born, _ = full_tensors(supercell, [0], rows, cols)
    zero_field = 0.5 * (d_plus + d_minus)
    lattice = supercell.lattice.matrix
    assert len(phonon.displacements) == 3
    for i, (atom, *vector) in enumerate(phonon.displacements):
        u = np.asarray(vector)
        delta = runs[f"disp-{i + 1:03d}"][1] - zero_field
        frac = delta @ np.linalg.inv(lattice)
        delta = (frac - np.round(frac)) @ lattice  # Berry-phase dipole: modulo e R
        from_dipoles = delta / np.linalg.norm(u)
        from_forces = (u / np.linalg.norm(u)) @ born[atom]
        # one-sided 0.01 Å difference against a central field difference: 0.03 e
        np.testing.assert_allclose(from_dipoles, from_forces, atol=0.03)


def test_unstable_cubic_host_gets_no_ionic_part(recorded) -> None:
    unit, phonon, _, _, runs = recorded
    forces = [runs[f"disp-{i + 1:03d}"][0] for i in range(len(phonon.displacements))]
    phonons = phonons_from_forces(phonon, forces)
    assert phonons.lowest < -1.0  # THz: the polar instability of cubic CsPbI3 at Gamma
    with pytest.raises(IonicPartUndefinedError, match="imaginary"):
        ionic_tensor(np.zeros((len(unit), 3, 3)), phonons, unit.volume)
