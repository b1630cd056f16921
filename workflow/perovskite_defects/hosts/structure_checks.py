"""Sanity checks of structure files a user supplies (competing phases).

Each check raises :class:`StructureError` with one line naming the file and the problem,
before any job starts: a CIF that does not parse, holds no atoms, has atoms on top of
each other, or lacks an element its name promises (a missing sublattice).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

# Shorter than any bond in a halide perovskite or its competing phases (H-X bonds, the
# shortest possible, are ~0.9-1.0 Å): two atoms closer than this are a file error.
MIN_DISTANCE = 0.5


class StructureError(ValueError):
    """A structure file is unreadable or physically impossible (one-line message)."""


def load_structure(path: str | Path):
    """Parse a structure file with pymatgen, turning its many error types into one."""
    from pymatgen.core import Structure

    p = Path(path)
    if not p.is_file():
        raise StructureError(f"{p}: structure file is missing")
    if p.stat().st_size == 0:
        raise StructureError(f"{p}: structure file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pymatgen warns about rounding; not errors
            structure = Structure.from_file(p)
    except Exception as err:  # pymatgen raises ValueError, KeyError, IndexError, ...
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise StructureError(f"{p}: not a readable structure file ({first})") from err
    if len(structure) == 0:
        raise StructureError(f"{p}: no atoms in the structure")
    return structure


def check_overlaps(structure, path: str | Path, min_distance: float = MIN_DISTANCE) -> None:
    """No two atoms (periodic images included) closer than ``min_distance`` Å."""
    distances = structure.distance_matrix + np.eye(len(structure)) * 1e9
    i, j = np.unravel_index(np.argmin(distances), distances.shape)
    if distances[i, j] < min_distance:
        raise StructureError(
            f"{path}: atoms {i + 1} ({structure[i].specie}) and {j + 1} ({structure[j].specie}) "
            f"are {distances[i, j]:.3f} Å apart (overlapping; minimum {min_distance} Å)"
        )


def check_elements(structure, path: str | Path, formula: str) -> None:
    """The structure holds exactly the elements of ``formula`` (no missing sublattice)."""
    expected = set(re.findall(r"[A-Z][a-z]?", formula))
    found = {el.symbol for el in structure.composition.elements}
    missing, extra = sorted(expected - found), sorted(found - expected)
    if missing:
        raise StructureError(
            f"{path}: no {', '.join(missing)} sites, but the phase is {formula} "
            f"(missing sublattice; elements in the file: {sorted(found)})"
        )
    if extra:
        raise StructureError(f"{path}: element(s) {extra} do not belong to {formula}")


def check_phase_structure(path: str | Path, formula: str) -> None:
    """All checks of a competing-phase file named after its formula."""
    structure = load_structure(path)
    check_overlaps(structure, path)
    check_elements(structure, path, formula)
