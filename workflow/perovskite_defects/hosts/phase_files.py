"""Competing phases: structure files shipped in ``structures/phases`` with their sources."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pymatgen.core import Structure

from perovskite_defects.config import PHASES_DIR


@dataclass(frozen=True)
class PhaseInput:
    """A competing phase ready for a calculation.

    Attributes:
        name: file stem (e.g. "PbI2").
        structure: starting structure (primitive cell).
        relax: "cell" (cell and ions relax) or "ions" (fixed experimental cell).
        source: literature source of the starting structure.
    """

    name: str
    structure: Structure
    relax: str
    source: str


def load_phase(name: str, directory: Path = PHASES_DIR) -> PhaseInput:
    path = directory / f"{name}.cif"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: competing-phase structure file is missing")
    header = path.read_text()
    relax = re.search(r"^# Relaxation:\s*(cell|ions)", header, re.M)
    source = re.search(r"^# Source:\s*(.+)$", header, re.M)
    if not relax or not source:
        raise ValueError(f"{path}: header must give '# Source: ...' and '# Relaxation: cell|ions'")
    structure = Structure.from_file(path)
    if len(structure) == 0:
        raise ValueError(f"{path}: no atoms in the structure")
    return PhaseInput(name, structure, relax.group(1), source.group(1).strip())


def has_free_internal_coordinates(structure: Structure, symprec: float = 1e-3) -> bool:
    """True when symmetry leaves some atom free to move (so an ionic relaxation can matter).

    An atom is pinned when the rotations of its site stabiliser share no invariant
    direction: then every symmetric force on it vanishes. Structures in which all atoms
    are pinned (bcc/fcc metals, CsCl and rock-salt halides) need only a single point.
    """
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    ops = SpacegroupAnalyzer(structure, symprec=symprec).get_symmetry_operations(cartesian=False)
    frac = structure.frac_coords
    for x in frac:
        invariant = np.eye(3)  # basis of directions left free so far
        for op in ops:
            image = op.operate(x)
            delta = image - x
            if np.allclose(delta - np.round(delta), 0.0, atol=symprec):
                # directions v with R v = v survive this operation
                null = _null_space(op.rotation_matrix - np.eye(3))
                invariant = _intersect(invariant, null)
                if invariant.shape[1] == 0:
                    break
        if invariant.shape[1] > 0:
            return True
    return False


def _null_space(matrix: np.ndarray, tol: float = 1e-8) -> np.ndarray:
    _, s, vt = np.linalg.svd(matrix)
    rank = int((s > tol).sum())
    return vt[rank:].T


def _intersect(a: np.ndarray, b: np.ndarray, tol: float = 1e-8) -> np.ndarray:
    """Basis of the intersection of the column spaces of a and b."""
    if a.shape[1] == 0 or b.shape[1] == 0:
        return np.zeros((3, 0))
    # x = a u = b w  <=>  [a, -b] [u; w] = 0
    null = _null_space(np.hstack([a, -b]), tol)
    if null.shape[1] == 0:
        return np.zeros((3, 0))
    return a @ null[: a.shape[1]]
