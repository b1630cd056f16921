"""Site assignment between bulk and defect cells: the fast path equals the Hungarian optimum.

:func:`~perovskite_defects.corrections.sites.assign_sites` skips scipy's
``linear_sum_assignment`` when the pairs within the tolerance are already one-to-one and
complete; these tests check it against ``linear_sum_assignment`` itself (scipy, the
reference) on relaxed, shuffled vacancy, substitution, interstitial and complex cells, and
on ambiguous cases that need the full algorithm.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from perovskite_defects.corrections.sites import assign_sites


def _reference(dist: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = linear_sum_assignment(dist)
    keep = dist[rows, cols] <= tol
    return rows[keep], cols[keep]


def _periodic_distances(a: np.ndarray, b: np.ndarray, length: float) -> np.ndarray:
    diff = a[:, None, :] - b[None, :, :]
    diff -= np.round(diff)
    return np.linalg.norm(diff * length, axis=-1)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("kind", ["vacancy", "substitution", "interstitial", "complex"])
def test_fast_path_equals_the_hungarian_optimum(kind: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.arange(4)] * 3, indexing="ij"), -1).reshape(-1, 3) / 4.0
    bulk = grid.copy()
    defect = grid + rng.uniform(-0.02, 0.02, grid.shape)  # relaxation: 0.2 Å in a 10 Å cell
    if kind in ("vacancy", "complex"):
        defect = np.delete(defect, rng.integers(len(defect)), axis=0)
    if kind in ("interstitial", "complex"):
        defect = np.vstack([defect, [0.125, 0.125, 0.125]])
    defect = defect[rng.permutation(len(defect))]
    dist = _periodic_distances(bulk, defect, 10.0)
    rows, cols = assign_sites(dist, 1.25)
    ref_rows, ref_cols = _reference(dist, 1.25)
    np.testing.assert_array_equal(rows, ref_rows)
    np.testing.assert_array_equal(cols, ref_cols)


def test_ambiguous_pairs_use_the_full_assignment() -> None:
    # two defect atoms near bulk site 0, none near site 1: only the optimum decides
    dist = np.array([[0.1, 0.2, 3.0], [3.0, 3.0, 0.3], [2.0, 0.9, 3.0]])
    rows, cols = assign_sites(dist, 1.0)
    ref_rows, ref_cols = _reference(dist, 1.0)
    np.testing.assert_array_equal(rows, ref_rows)
    np.testing.assert_array_equal(cols, ref_cols)
    assert rows.tolist() == [0, 1, 2] and cols.tolist() == [0, 2, 1]


@pytest.mark.parametrize("seed", range(4))
def test_cell_distances_are_minimum_image_distances(seed: int) -> None:
    """Against pymatgen's ``get_all_distances`` and a brute-force search over images."""
    from pymatgen.core import Lattice, Structure

    from perovskite_defects.corrections.cells import Cell

    rng = np.random.default_rng(seed)
    lattice = np.diag(rng.uniform(6, 9, 3)) + rng.uniform(-1, 1, (3, 3))
    lattice[2] += lattice[0] + lattice[1]  # a skewed basis of the same lattice
    a, b = rng.uniform(-1, 2, (6, 3)), rng.uniform(-1, 2, (9, 3))
    cell = Cell.of(Structure(Lattice(lattice), ["Cs"] * 6, a))
    ours = cell.distances(a, b)
    np.testing.assert_allclose(ours, Lattice(lattice).get_all_distances(a, b), atol=1e-10)
    shifts = np.stack(np.meshgrid(*[np.arange(-4, 5)] * 3, indexing="ij"), -1).reshape(-1, 3)
    diff = (b[None, :, None, :] - a[:, None, None, :] + shifts[None, None]) @ lattice
    np.testing.assert_allclose(ours, np.linalg.norm(diff, axis=-1).min(axis=-1), atol=1e-10)
