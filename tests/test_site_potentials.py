"""Site potentials from a potential grid (CP2K's stand-in for core-level potentials)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from perovskite_defects.cli import main
from perovskite_defects.engines.base import PotentialGrid
from perovskite_defects.engines.potentials import site_potentials


def test_sphere_average_of_a_plane_wave_is_analytic() -> None:
    # <cos(k.r)> over a sphere of radius R = cos(k.r0) * 3 (sin kR - kR cos kR) / (kR)^3
    n, length, radius = 48, 10.0, 1.0
    x = np.arange(n) / n * length
    data = np.broadcast_to(np.cos(2 * np.pi * x / length)[:, None, None], (n, n, n)).copy()
    grid = PotentialGrid(np.eye(3) * length, data)
    values = site_potentials(grid, [[0, 0, 0], [0.5, 0.3, 0.2], [0.25, 0.9, 0.1]], radius)
    kr = 2 * np.pi / length * radius
    factor = 3 * (np.sin(kr) - kr * np.cos(kr)) / kr**3
    expected = factor * np.cos(2 * np.pi * np.array([0.0, 0.5, 0.25]))
    np.testing.assert_allclose(values, expected, atol=2e-3)


def test_constant_grid_and_periodic_wrap() -> None:
    grid = PotentialGrid(np.diag([5.0, 6.0, 7.0]), np.full((20, 24, 28), -3.5))
    np.testing.assert_allclose(site_potentials(grid, [[0.99, 0.0, 0.01]], 1.2), [-3.5])


def test_too_coarse_grid_is_explained() -> None:
    grid = PotentialGrid(np.eye(3) * 10.0, np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="grid too coarse"):
        site_potentials(grid, [[0.25, 0.25, 0.25]], 0.3)


@pytest.mark.reference
def test_cli_efnv_on_the_cdte_reference(cdte_reference: Path, capsys) -> None:
    code = main(["correct", "--bulk", str(cdte_reference / "bulk_vasp_gam"),
                 "--defect", str(cdte_reference / "v_Cd_-2_vasp_gam"), "--charge", "-2",
                 "--dielectric", "9.13", "--correction", "efnv", "--json"])  # fmt: skip
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["efnv_correction"] == pytest.approx(0.7509, abs=0.01)
    assert result["efnv_parts"]["point_charge"] == pytest.approx(0.6839, abs=1e-3)
    assert result["raw_energy_difference"] == pytest.approx(7.4480, abs=1e-3)
