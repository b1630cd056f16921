"""Find what a defect supercell changed relative to its bulk supercell, and where.

Sites are matched by periodic distance with a one-to-one assignment, never by index, so
the result does not depend on the order in which either calculation listed its atoms.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from perovskite_defects.corrections.cells import Cell

if TYPE_CHECKING:
    from pymatgen.core import Structure

#: Default matching tolerance as a fraction of the shortest bulk interatomic distance:
#: relaxed neighbours of a defect move well below half a bond length.
MATCH_TOL_FRACTION = 0.5


def locate_defect(
    bulk_structure: Structure | dict[str, Any] | Cell,
    defect_structure: Structure | dict[str, Any] | Cell,
    *,
    tol: float | None = None,
) -> tuple[str, np.ndarray]:
    """Classify a point defect and give its fractional position in the defect cell.

    Args:
        bulk_structure: pristine supercell (pymatgen ``Structure``, its ``as_dict()``, or
            a :class:`~perovskite_defects.corrections.cells.Cell`).
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
    bulk = Cell.of(bulk_structure)
    defect = Cell.of(defect_structure)
    bulk_frac, defect_frac = bulk.frac_coords, defect.frac_coords
    dist = defect.distances(bulk_frac, defect_frac)
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
    bulk_structure: Structure | dict[str, Any] | Cell,
    defect_structure: Structure | dict[str, Any] | Cell,
    *,
    tol: float | None = None,
) -> dict[int, int]:
    """Defect-cell atom index -> bulk atom index of the atoms that sit on a bulk site.

    The same one-to-one assignment as :func:`locate_defect` (any species; within ``tol``,
    default half the shortest bulk interatomic distance): atoms are paired by position,
    never by index. Vacant bulk sites and interstitial atoms have no entry.
    """
    bulk = Cell.of(bulk_structure)
    defect = Cell.of(defect_structure)
    dist = defect.distances(bulk.frac_coords, defect.frac_coords)
    rows, cols = assign_sites(dist, _default_tol(bulk) if tol is None else tol)
    return {int(j): int(i) for i, j in zip(rows, cols, strict=True)}


def _compare_sites(
    bulk: Cell, defect: Cell, dist: np.ndarray, tol: float
) -> tuple[list[int], list[int], list[int]]:
    """Bulk-site indices left empty, and defect-site indices that are new or changed species.

    Uses an optimal one-to-one assignment (:func:`assign_sites`) so that two atoms can
    never claim the same bulk site, keeping only pairs at most ``tol`` apart.
    """
    rows, cols = assign_sites(dist, tol)
    matched_bulk = set(rows.tolist())
    matched_defect = set(cols.tolist())
    vacancies = [i for i in range(len(bulk)) if i not in matched_bulk]
    interstitials = [j for j in range(len(defect)) if j not in matched_defect]
    substitutions = [
        int(j)
        for i, j in zip(rows, cols, strict=True)
        if bulk.species[int(i)] != defect.species[int(j)]
    ]
    return vacancies, interstitials, substitutions


def assign_sites(dist: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (row, column) of the optimal one-to-one assignment of ``dist`` within ``tol``.

    The optimal assignment (least total distance, ``min(rows, columns)`` pairs, Hungarian
    algorithm) keeping only pairs at most ``tol`` apart; rows ascending. Usually no
    algorithm is needed: when the pairs within ``tol`` already form a one-to-one
    assignment of that size, it is the unique optimum (any other assignment swaps some of
    these pairs, each <= tol, for as many others, each > tol, so it costs more) and is
    returned directly. Only otherwise (e.g. two atoms near one site, or a vacancy with an
    interstitial) is scipy's ``linear_sum_assignment`` run.
    """
    close = dist <= tol
    if (close.sum(axis=1) <= 1).all() and (close.sum(axis=0) <= 1).all():
        rows, cols = np.nonzero(close)
        if rows.size == min(dist.shape):
            return rows, cols
    # imported only here: scipy.optimize costs ~0.8 s CPU to import, most of a CLI call
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(dist)
    keep = dist[rows, cols] <= tol
    return rows[keep], cols[keep]


def _default_tol(bulk: Cell) -> float:
    return MATCH_TOL_FRACTION * bulk.shortest_distance()


def _wrap(frac: np.ndarray) -> np.ndarray:
    wrapped = np.mod(np.asarray(frac, dtype=float), 1.0)
    wrapped[np.isclose(wrapped, 1.0, atol=1e-8)] = 0.0  # -1e-9 would wrap to ~1.0
    return wrapped


def _centroid(frac: np.ndarray) -> np.ndarray:
    """Mean position of fractional coordinates, unwrapped around the first one."""
    offsets = frac - frac[0]
    offsets -= np.round(offsets)
    return _wrap(frac[0] + offsets.mean(axis=0))
