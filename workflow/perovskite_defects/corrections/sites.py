"""Find what a defect supercell changed relative to its bulk supercell, and where.

Sites are matched by periodic distance with a one-to-one assignment, never by index, so
the result does not depend on the order in which either calculation listed its atoms.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pymatgen.core import Structure

#: Default matching tolerance as a fraction of the shortest bulk interatomic distance:
#: relaxed neighbours of a defect move well below half a bond length.
MATCH_TOL_FRACTION = 0.5


def locate_defect(
    bulk_structure: Structure | dict[str, Any],
    defect_structure: Structure | dict[str, Any],
    *,
    tol: float | None = None,
) -> tuple[str, np.ndarray]:
    """Classify a point defect and give its fractional position in the defect cell.

    Args:
        bulk_structure: pristine supercell (pymatgen ``Structure`` or its ``as_dict()``).
        defect_structure: the same supercell with the defect (any atom order).
        tol: largest distance in Å for a defect-cell atom to still sit on a bulk site;
            default half the shortest bulk interatomic distance.

    Returns:
        ``(kind, frac_coords)`` with kind "vacancy", "substitution", "interstitial" or
        "complex". Vacancies are placed at the empty bulk site, substitutions and
        interstitials at the defect-cell atom, complexes at the centroid (minimum image)
        of all changed sites. Coordinates are wrapped into [0, 1).

    Raises:
        ValueError: when the two cells match site by site (no defect).
    """
    bulk = _as_structure(bulk_structure)
    defect = _as_structure(defect_structure)
    lattice = defect.lattice
    bulk_frac = np.asarray(bulk.frac_coords)
    defect_frac = np.asarray(defect.frac_coords)
    dist = np.asarray(lattice.get_all_distances(bulk_frac, defect_frac))
    tol = _default_tol(bulk) if tol is None else tol

    vacancies, interstitials, substitutions = _compare_sites(bulk, defect, dist, tol)
    if len(vacancies) == 1 and not interstitials and not substitutions:
        return "vacancy", _wrap(bulk_frac[vacancies[0]])
    if len(substitutions) == 1 and not vacancies and not interstitials:
        return "substitution", _wrap(defect_frac[substitutions[0]])
    if len(interstitials) == 1 and not vacancies and not substitutions:
        return "interstitial", _wrap(defect_frac[interstitials[0]])
    changed = [bulk_frac[i] for i in vacancies]
    changed += [defect_frac[j] for j in interstitials + substitutions]
    if not changed:
        raise ValueError("bulk and defect structures match site by site: no defect found")
    return "complex", _centroid(np.array(changed))


def matched_sites(
    bulk_structure: Structure | dict[str, Any],
    defect_structure: Structure | dict[str, Any],
    *,
    tol: float | None = None,
) -> dict[int, int]:
    """Defect-cell atom index -> bulk atom index of the atoms that sit on a bulk site.

    The same one-to-one assignment as :func:`locate_defect` (any species; within ``tol``,
    default half the shortest bulk interatomic distance): atoms are paired by position,
    never by index. Vacant bulk sites and interstitial atoms have no entry.
    """
    from scipy.optimize import linear_sum_assignment

    bulk = _as_structure(bulk_structure)
    defect = _as_structure(defect_structure)
    dist = np.asarray(defect.lattice.get_all_distances(bulk.frac_coords, defect.frac_coords))
    tol = _default_tol(bulk) if tol is None else tol
    rows, cols = linear_sum_assignment(dist)
    return {int(j): int(i) for i, j in zip(rows, cols, strict=True) if dist[i, j] <= tol}


def _compare_sites(
    bulk: Structure, defect: Structure, dist: np.ndarray, tol: float
) -> tuple[list[int], list[int], list[int]]:
    """Bulk-site indices left empty, and defect-site indices that are new or changed species.

    Uses an optimal one-to-one assignment (Hungarian algorithm) so that two atoms can never
    claim the same bulk site, then rejects pairs further apart than ``tol``.
    """
    from scipy.optimize import linear_sum_assignment  # scipy import is slow: keep it local

    rows, cols = linear_sum_assignment(dist)
    close = dist[rows, cols] <= tol
    matched_bulk = set(rows[close].tolist())
    matched_defect = set(cols[close].tolist())
    vacancies = [i for i in range(len(bulk)) if i not in matched_bulk]
    interstitials = [j for j in range(len(defect)) if j not in matched_defect]
    substitutions = [
        int(j)
        for i, j in zip(rows[close], cols[close], strict=True)
        if bulk[int(i)].species != defect[int(j)].species
    ]
    return vacancies, interstitials, substitutions


def _as_structure(structure: Structure | dict[str, Any]) -> Structure:
    from pymatgen.core import Structure

    if isinstance(structure, dict):
        return Structure.from_dict(structure)
    return structure


def _default_tol(bulk: Structure) -> float:
    dmat = np.asarray(bulk.distance_matrix, dtype=float)
    np.fill_diagonal(dmat, np.inf)
    shortest = float(dmat.min()) if dmat.size > 1 else float(min(bulk.lattice.abc))
    return MATCH_TOL_FRACTION * shortest


def _wrap(frac: np.ndarray) -> np.ndarray:
    wrapped = np.mod(np.asarray(frac, dtype=float), 1.0)
    wrapped[np.isclose(wrapped, 1.0, atol=1e-8)] = 0.0  # -1e-9 would wrap to ~1.0
    return wrapped


def _centroid(frac: np.ndarray) -> np.ndarray:
    """Mean position of fractional coordinates, unwrapped around the first one."""
    offsets = frac - frac[0]
    offsets -= np.round(offsets)
    return _wrap(frac[0] + offsets.mean(axis=0))
