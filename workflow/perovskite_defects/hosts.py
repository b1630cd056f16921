"""Host structures: the cubic ABX3 prototype and its supercells."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pymatgen.core import Lattice, Structure

# Pm-3m ABX3: A at the cube corner, B at the body centre, X at the face centres.
PROTOTYPE_FRAC_COORDS = {
    "A": [(0.0, 0.0, 0.0)],
    "B": [(0.5, 0.5, 0.5)],
    "X": [(0.5, 0.5, 0.0), (0.5, 0.0, 0.5), (0.0, 0.5, 0.5)],
}


def cubic_prototype(a_site: str, b_site: str, x_site: str, lattice_constant: float) -> Structure:
    """The 5-atom cubic perovskite cell with lattice constant ``lattice_constant`` (Å)."""
    if not 3.0 < lattice_constant < 10.0:
        raise ValueError(f"lattice constant {lattice_constant} Å is outside (3, 10) Å")
    species, coords = [], []
    for role, element in (("A", a_site), ("B", b_site), ("X", x_site)):
        for frac in PROTOTYPE_FRAC_COORDS[role]:
            species.append(element)
            coords.append(frac)
    return Structure(Lattice.cubic(lattice_constant), species, coords)


def supercell(unit_cell: Structure, multiples: Sequence[int]) -> Structure:
    """Diagonal supercell; sites keep the unit cell's species order."""
    if len(multiples) != 3 or any(int(m) < 1 for m in multiples):
        raise ValueError(f"supercell multiples must be three positive integers, got {multiples}")
    return unit_cell.make_supercell(np.diag([int(m) for m in multiples]), in_place=False)


def min_image_distance(structure: Structure) -> float:
    """Shortest distance between a point and its own periodic images (Å)."""
    lattice = structure.lattice
    best = np.inf
    for n in np.ndindex(3, 3, 3):
        shift = np.array(n) - 1
        if not shift.any():
            continue
        best = min(best, float(np.linalg.norm(shift @ lattice.matrix)))
    return best
