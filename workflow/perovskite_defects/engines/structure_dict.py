"""pymatgen's ``Structure.as_dict()`` of a plain periodic structure, without pymatgen.

A parser that only reads a structure (lattice, element symbols, fractional coordinates)
and stores it in a :class:`~perovskite_defects.engines.base.CalcRecord` would otherwise
import ``pymatgen.core`` for that alone, ~0.2 s of CPU per process, a third of a
``perovskite-defects correct`` call. This writes the same dictionary, key for key and
bit for bit (``tests/test_structure_dict.py`` compares it with pymatgen's own), for
structures whose atoms are all chemical elements; anything else (e.g. a dummy species)
is passed to pymatgen, so the result never differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: The 118 element symbols of the IUPAC periodic table (pymatgen's ``Element`` names).
_SYMBOL_TABLE = """
H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se
Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy
Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf
Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc Lv Ts Og
"""
ELEMENT_SYMBOLS = frozenset(_SYMBOL_TABLE.split())


def structure_as_dict(
    lattice: np.ndarray, species: Sequence[str], frac_coords: np.ndarray
) -> dict[str, Any]:
    """``Structure(Lattice(lattice), species, frac_coords).as_dict()``, computed here.

    Args:
        lattice: 3x3 cell matrix in Å, rows are lattice vectors.
        species: one element symbol per site.
        frac_coords: fractional coordinates, shape (n_sites, 3), not wrapped.
    """
    matrix = np.array(lattice, dtype=np.float64).reshape((3, 3))
    frac = np.asarray(frac_coords, dtype=np.float64)
    if not set(species) <= ELEMENT_SYMBOLS or frac.shape != (len(species), 3):
        # imported only here: pymatgen.core is the slow import this module avoids
        from pymatgen.core import Lattice, Structure

        return Structure(Lattice(lattice), list(species), frac_coords).as_dict()
    lattice_dict: dict[str, Any] = {"matrix": matrix.tolist(), "pbc": (True, True, True)}
    names = ("a", "b", "c", "alpha", "beta", "gamma")
    lattice_dict.update(zip(names, _parameters(matrix), strict=True))
    lattice_dict["volume"] = float(abs(np.dot(np.cross(matrix[0], matrix[1]), matrix[2])))
    sites = [
        {
            "species": [{"element": symbol, "occu": 1}],
            "abc": frac[i].tolist(),
            "properties": {},
            "label": symbol,
            "xyz": np.dot(frac[i], matrix).tolist(),  # per site, as pymatgen's site.coords
        }
        for i, symbol in enumerate(species)
    ]
    return {
        "@module": "pymatgen.core.structure",
        "@class": "Structure",
        "charge": 0.0,
        "lattice": lattice_dict,
        "properties": {},
        "sites": sites,
    }


def _parameters(matrix: np.ndarray) -> list[float]:
    """a, b, c (Å) and alpha, beta, gamma (degrees), with pymatgen's ``Lattice`` formulas."""
    lengths = np.sqrt(np.sum(matrix**2, axis=1)).tolist()
    cosines = np.zeros(3)
    for dim in range(3):
        j, k = (dim + 1) % 3, (dim + 2) % 3
        cosines[dim] = np.clip(np.dot(matrix[j], matrix[k]) / (lengths[j] * lengths[k]), -1, 1)
    return [*lengths, *np.rad2deg(np.arccos(cosines)).tolist()]
