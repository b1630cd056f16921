"""Fewer finite-field runs: the crystal's symmetry supplies the field directions it relates.

A field along one axis gives one row of every Born charge tensor (Z*_k[a, :] = dF_k / dE_a)
and one column of eps_inf. A symmetry operation (R, t) of the cell maps atom k onto atom
k' and the field E onto R E, so Z*_k' = R Z*_k R^T and eps_inf = R eps_inf R^T. Every
measured row therefore also fixes rows of the images of its atom along the rotated axes.
In a cubic host the x field alone fixes all nine elements of every tensor (2 runs instead
of 6); a tetragonal host needs x and z (4 runs); lower symmetries need all three axes.

This is the symmetry reduction DFPT codes do for their perturbations (e.g. the irreducible
electric-field perturbations of ABINIT); phonopy only reduces atomic displacements, not
fields, so it is written here. The reconstruction is a least-squares solve over all
operations, so redundant rows are averaged rather than dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

#: spglib tolerance (Å) for the operations of the response supercell
SYMPREC = 1e-3
#: Largest misfit (Å) of an image atom to count as the mapped atom
MAP_TOLERANCE = 1e-2


class FieldSymmetryError(ValueError):
    """The measured field directions do not fix every tensor element."""


#: A cell's symmetry operations as :func:`atom_mapping` gives them: (R, perm) per operation
Operations = list[tuple[np.ndarray, list[int]]]


def atom_mapping(structure: Structure, symprec: float = SYMPREC) -> Operations:
    """(R, perm) per operation: atom k goes to atom perm[k] under x -> R x + t.

    R is Cartesian. Pure translations of a supercell repeat the identity rotation; they
    are kept because they map atoms onto other atoms.
    """
    ops = SpacegroupAnalyzer(structure, symprec=symprec).get_symmetry_operations(cartesian=True)
    lattice = structure.lattice
    frac = structure.frac_coords
    species = [site.specie for site in structure]
    result = []
    for op in ops:
        moved = lattice.get_fractional_coords(op.operate_multi(structure.cart_coords))
        perm = []
        for k, f in enumerate(moved):
            delta = frac - f
            delta -= np.round(delta)
            dist = np.linalg.norm(delta @ lattice.matrix, axis=1)
            j = int(np.argmin(dist))
            if dist[j] > MAP_TOLERANCE or species[j] != species[k]:
                raise FieldSymmetryError(
                    f"symmetry operation does not map atom {k} onto an atom "
                    f"(misfit {dist[j]:.3g} Å): tolerance too loose for this structure"
                )
            perm.append(j)
        result.append((np.asarray(op.rotation_matrix, dtype=float), perm))
    return result


def field_axes(
    structure: Structure, symprec: float = SYMPREC, mapping: Operations | None = None
) -> list[int]:
    """The fewest Cartesian axes (0, 1, 2 = x, y, z) whose fields fix all tensors.

    Axes are added in the order x, z, y (z first so a tetragonal cell with its c axis
    along z needs x and z) until the rotated axes R e_a span space. ``mapping``: the
    cell's :func:`atom_mapping`, if already at hand.
    """
    ops = atom_mapping(structure, symprec) if mapping is None else mapping
    rotations = [rot for rot, _ in ops]
    chosen: list[int] = []
    for axis in (0, 2, 1):
        chosen.append(axis)
        vectors = [rot[:, a] for rot in rotations for a in chosen]
        if np.linalg.matrix_rank(np.asarray(vectors), tol=1e-6) == 3:
            return sorted(chosen)
    return [0, 1, 2]


def _solve_rows(vectors: list[np.ndarray], values: list[np.ndarray], what: str) -> np.ndarray:
    """The 3x3 matrix M with v^T M = w for every (v, w), by least squares."""
    v = np.asarray(vectors)
    if np.linalg.matrix_rank(v, tol=1e-6) < 3:
        raise FieldSymmetryError(f"the measured field axes do not fix {what}")
    solution, *_ = np.linalg.lstsq(v, np.asarray(values), rcond=None)
    return solution


def full_tensors(
    structure: Structure,
    axes: Sequence[int],
    born_rows: np.ndarray,
    eps_columns: np.ndarray,
    symprec: float = SYMPREC,
    mapping: Operations | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Full Z* (N, 3, 3) and eps_inf (3x3) from the rows measured along ``axes``.

    ``born_rows[k, i]`` is row ``axes[i]`` of Z*_k (shape (N, len(axes), 3));
    ``eps_columns[i]`` is column ``axes[i]`` of eps_inf (shape (len(axes), 3)).
    With all three axes and no symmetry this returns the measured tensors unchanged.
    """
    if mapping is None:
        mapping = atom_mapping(structure, symprec)
    n_atoms = len(structure)
    vectors: list[list[np.ndarray]] = [[] for _ in range(n_atoms)]
    values: list[list[np.ndarray]] = [[] for _ in range(n_atoms)]
    eps_v: list[np.ndarray] = []
    eps_w: list[np.ndarray] = []
    for rot, perm in mapping:
        for i, a in enumerate(axes):
            direction = rot[:, a]  # R e_a
            # Z*_k = R^T Z*_k' R, so row a of Z*_k is (R e_a)^T Z*_k' R
            for k in range(n_atoms):
                vectors[perm[k]].append(direction)
                values[perm[k]].append(born_rows[k, i] @ rot.T)
            # eps (R e_a) = R eps e_a; eps is symmetric, so rows and columns agree
            eps_v.append(direction)
            eps_w.append(rot @ eps_columns[i])
    born = np.array([_solve_rows(vectors[k], values[k], f"Z* of atom {k}") for k in range(n_atoms)])
    eps = _solve_rows(eps_v, eps_w, "eps_inf").T
    return born, eps
