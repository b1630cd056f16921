"""Symmetry-reduced finite-field runs (hosts/field_symmetry.py) against hand-built tensors.

The model crystal is cubic (and tetragonally stretched) CsPbI3 with Born charges written
down per site from the geometry alone, not from the symmetry code: Cs and Pb isotropic,
each I with an axial value along its Pb-I-Pb bond and a transverse one across it (the
form the site symmetry 4/mmm allows; e.g. Zhong, King-Smith & Vanderbilt, Phys. Rev.
Lett. 72, 3618 (1994) for the anomalous axial charge of the perovskite anion). A field run
returns F_k = Z*_k^T E and the dipole eps0 V chi E, so a run with fewer field axes must
give back every tensor exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from perovskite_defects.hosts.dielectric_tensor import (
    EPS0_E_PER_V_ANGSTROM,
    field_response,
)
from perovskite_defects.hosts.field_symmetry import (
    FieldSymmetryError,
    field_axes,
    full_tensors,
)

Z_CS, Z_PB = 1.3, 4.2
Z_AXIAL, Z_TRANSVERSE = -3.6, -0.95
Z_AXIAL_APICAL = -3.9  # the I bonded along c, when c is stretched


def perovskite(c_over_a: float = 1.0) -> Structure:
    unit = Structure(
        Lattice.from_parameters(6.4, 6.4, 6.4 * c_over_a, 90, 90, 90),
        ["Cs", "Pb", "I", "I", "I"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )
    return unit * (2, 2, 2)


def hand_born(cell: Structure, tetragonal: bool) -> np.ndarray:
    """Z* per site from its species and, for I, the direction to its nearest Pb."""
    born = []
    for site in cell:
        el = site.specie.symbol
        if el == "Cs":
            born.append(np.diag([Z_CS, Z_CS, Z_CS + (0.2 if tetragonal else 0.0)]))
        elif el == "Pb":
            born.append(Z_PB * np.eye(3))
        else:
            pb = min(
                (n for n in cell.get_neighbors(site, 4.0) if n.specie.symbol == "Pb"),
                key=lambda n: n.nn_distance,
            )
            bond = pb.coords - site.coords
            axis = int(np.argmax(np.abs(bond)))
            diag = np.full(3, Z_TRANSVERSE)
            diag[axis] = Z_AXIAL_APICAL if (tetragonal and axis == 2) else Z_AXIAL
            born.append(np.diag(diag))
    return np.array(born)


def model_run(cell: Structure, born: np.ndarray, chi: np.ndarray, calls: list[str]):
    def run(structure: Structure, label: str, field: np.ndarray):
        calls.append(label)
        forces = np.einsum("kab,a->kb", born, field)
        dipole = EPS0_E_PER_V_ANGSTROM * structure.volume * (chi @ field)
        return forces, dipole

    return run


@pytest.mark.parametrize(
    ("c_over_a", "axes", "runs"), [(1.0, [0], 2), (1.05, [0, 2], 4)], ids=["cubic", "tetragonal"]
)
def test_fewer_field_runs_give_every_tensor(c_over_a: float, axes: list[int], runs: int) -> None:
    cell = perovskite(c_over_a)
    tetragonal = c_over_a != 1.0
    born = hand_born(cell, tetragonal)
    chi = np.diag([4.0, 4.0, 3.6 if tetragonal else 4.0])
    calls: list[str] = []
    assert field_axes(cell) == axes
    got_born, got_eps = field_response(cell, model_run(cell, born, chi, calls), 0.05)
    assert len(calls) == runs
    assert np.abs(got_born - born).max() < 1e-9
    assert np.abs(got_eps - (np.eye(3) + chi)).max() < 1e-9


def test_low_symmetry_cell_needs_all_three_axes() -> None:
    cell = perovskite(1.05)
    cell.perturb(0.05, min_distance=0.01)  # P1 in general
    assert field_axes(cell) == [0, 1, 2]


def test_all_axes_without_symmetry_return_the_measured_tensors() -> None:
    cell = perovskite(1.0)
    cell.perturb(0.05, min_distance=0.01)
    rng = np.random.default_rng(7)
    rows = rng.normal(size=(len(cell), 3, 3))
    columns = rng.normal(size=(3, 3))
    born, eps = full_tensors(cell, [0, 1, 2], rows, columns)
    assert np.allclose(born, rows)
    assert np.allclose(eps, columns.T)


def test_too_few_axes_is_refused() -> None:
    cell = perovskite(1.05)  # tetragonal: x alone cannot fix the zz elements
    rows = np.zeros((len(cell), 1, 3))
    with pytest.raises(FieldSymmetryError, match="do not fix"):
        full_tensors(cell, [0], rows, np.zeros((1, 3)))
