"""Potential-grid readers: LOCPOT and cube, on tiny hand-written files and the CdTe reference."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from perovskite_defects.engines.base import EngineError
from perovskite_defects.engines.potentials import (
    BOHR_TO_ANGSTROM,
    CP2K_CUBE_SIGN,
    HARTREE_TO_EV,
    read_cube,
    read_locpot,
    read_potential_grid,
)

SHAPE = (3, 4, 5)
LATTICE = np.array([[4.0, 0.0, 0.0], [0.5, 5.0, 0.0], [0.0, 0.0, 6.0]])


def _indexed_grid(shape: tuple[int, int, int]) -> np.ndarray:
    """data[i, j, k] = i + 10 j + 100 k: any axis mix-up changes the values."""
    i, j, k = np.indices(shape)
    return (i + 10 * j + 100 * k).astype(float)


def _grid_lines(values: np.ndarray, per_line: int) -> str:
    rows = [values[n : n + per_line] for n in range(0, values.size, per_line)]
    return "".join("".join(f" {v:.11E}" for v in row) + "\n" for row in rows)


def _locpot_text(
    data: np.ndarray,
    *,
    scale: str = "1.0",
    lattice: np.ndarray = LATTICE,
    species: bool = True,
    selective: bool = False,
    n_values: int | None = None,
    trailer: str = "",
) -> str:
    lines = ["tiny test", f"  {scale}"]
    lines += ["  " + "  ".join(f"{x:.6f}" for x in row) for row in lattice]
    if species:
        lines.append("  Cs  I")
    lines.append("  1  1")
    if selective:
        lines.append("Selective dynamics")
    lines += ["Direct", "  0.0 0.0 0.0", "  0.5 0.5 0.5", " ", "  {}  {}  {}".format(*data.shape)]
    values = data.ravel(order="F")[:n_values]  # LOCPOT: x fastest
    return "\n".join(lines) + "\n" + _grid_lines(values, 5) + trailer


def test_locpot_units_order_and_trailing_blocks_ignored(tmp_path: Path) -> None:
    data = _indexed_grid(SHAPE)
    # numeric second grid and augmentation lines after the first grid must be ignored
    trailer = "augmentation occupancies   1   2\n 0.1 0.2\n   3   4   5\n" + _grid_lines(
        2 * data.ravel(order="F"), 5
    )
    path = tmp_path / "LOCPOT"
    path.write_text(_locpot_text(data, scale="2.0", trailer=trailer))
    grid = read_locpot(path)
    assert grid.data.shape == SHAPE
    np.testing.assert_array_equal(grid.data, data)
    np.testing.assert_allclose(grid.lattice, 2.0 * LATTICE)


def test_locpot_gzipped_vasp4_header_selective_negative_scale(tmp_path: Path) -> None:
    data = _indexed_grid(SHAPE)
    volume = 2.0**3 * abs(np.linalg.det(LATTICE))  # negative scale = target volume
    text = _locpot_text(data, scale=f"-{volume:.6f}", species=False, selective=True)
    path = tmp_path / "LOCPOT.gz"
    path.write_bytes(gzip.compress(text.encode()))
    grid = read_potential_grid(path)
    np.testing.assert_array_equal(grid.data, data)
    np.testing.assert_allclose(grid.lattice, 2.0 * LATTICE, rtol=1e-6)


def test_truncated_locpot_error_names_file(tmp_path: Path) -> None:
    path = tmp_path / "LOCPOT"
    path.write_text(_locpot_text(_indexed_grid(SHAPE), n_values=42))
    with pytest.raises(EngineError, match=r"LOCPOT.*expected 60 grid values, found 42"):
        read_locpot(path)


def test_truncated_gzip_and_header_errors_name_file(tmp_path: Path) -> None:
    full = gzip.compress(_locpot_text(_indexed_grid(SHAPE)).encode())
    broken = tmp_path / "LOCPOT.gz"
    broken.write_bytes(full[: len(full) // 2])
    with pytest.raises(EngineError, match=str(broken)):
        read_locpot(broken)
    header_only = tmp_path / "LOCPOT_header"
    header_only.write_text("tiny test\n 1.0\n 4 0 0\n")
    with pytest.raises(EngineError, match=r"LOCPOT_header.*header"):
        read_locpot(header_only)
    with pytest.raises(EngineError, match=r"missing"):
        read_locpot(tmp_path / "nope" / "LOCPOT")


def _cube_text(data: np.ndarray, voxels: np.ndarray, counts: tuple[int, int, int], n_values=None):
    lines = ["CP2K cube", "V_HARTREE", "    2    0.000000    0.000000    0.000000"]
    lines += [
        f"{n:5d} " + " ".join(f"{x:12.6f}" for x in v) for n, v in zip(counts, voxels, strict=True)
    ]
    lines += ["   55    0.000000    0.000000    0.000000    0.000000"] * 2
    body = []
    flat = data.reshape(-1, data.shape[2])  # x slowest, z fastest; each z row on new lines
    count = 0
    for row in flat:
        if n_values is not None and count >= n_values:
            break
        body.append(_grid_lines(row, 6))
        count += row.size
    return "\n".join(lines) + "\n" + "".join(body)


def test_cube_units_order_and_sign(tmp_path: Path) -> None:
    shape = (2, 3, 8)  # nz = 8 wraps each z row over two lines (6 + 2)
    data = _indexed_grid(shape)
    voxels = np.array([[0.5, 0.0, 0.0], [0.1, 0.4, 0.0], [0.0, 0.0, 0.3]])  # bohr
    path = tmp_path / "pot.cube"
    path.write_text(_cube_text(data, voxels, shape))
    grid = read_cube(path, sign=-1.0)
    np.testing.assert_allclose(grid.data, -HARTREE_TO_EV * data)
    expected = np.array(shape)[:, None] * voxels * BOHR_TO_ANGSTROM
    np.testing.assert_allclose(grid.lattice, expected)
    np.testing.assert_allclose(read_cube(path, sign=1.0).data, HARTREE_TO_EV * data)
    # the dispatcher applies the CP2K convention (no flip: CP2K's cube is already the
    # electron potential energy; checked on a real CP2K cube in test_cp2k_engine.py)
    assert CP2K_CUBE_SIGN == 1.0
    np.testing.assert_allclose(read_potential_grid(path).data, HARTREE_TO_EV * data)


def test_cube_negative_voxel_count_means_angstrom(tmp_path: Path) -> None:
    shape = (2, 2, 3)
    voxels = np.diag([1.0, 2.0, 3.0])
    path = tmp_path / "ang.cube"
    path.write_text(_cube_text(_indexed_grid(shape), voxels, (-2, 2, 3)))
    grid = read_cube(path, sign=1.0)
    assert grid.data.shape == shape
    np.testing.assert_allclose(
        np.diag(grid.lattice), [2.0, 2 * 2.0 * BOHR_TO_ANGSTROM, 9.0 * BOHR_TO_ANGSTROM]
    )


def test_truncated_cube_error_names_file(tmp_path: Path) -> None:
    shape = (2, 3, 4)
    path = tmp_path / "cut.cube"
    path.write_text(_cube_text(_indexed_grid(shape), np.eye(3), shape, n_values=12))
    with pytest.raises(EngineError, match=r"cut\.cube.*expected 24 grid values, found 12"):
        read_cube(path, sign=1.0)


def test_unknown_potential_file_type(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r"unknown potential file type"):
        read_potential_grid(tmp_path / "potential.dat")


@pytest.mark.reference
def test_reference_locpot_matches_pymatgen(cdte_reference: Path) -> None:
    from pymatgen.io.vasp import Locpot

    path = cdte_reference / "bulk_vasp_gam" / "LOCPOT.gz"
    grid = read_locpot(path)
    assert grid.data.shape == (80, 80, 80)
    np.testing.assert_allclose(grid.lattice, np.eye(3) * 13.086768, atol=1e-6)
    reference = Locpot.from_file(str(path))
    np.testing.assert_array_equal(grid.data, reference.data["total"])
