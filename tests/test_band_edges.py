"""Band edges from the bulk or from an external run aligned by the average potential."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from perovskite_defects.engines.base import EngineError, PotentialGrid
from perovskite_defects.engines.potentials import read_potential_grid
from perovskite_defects.engines.vasp_output import parse_vasp_dir
from perovskite_defects.thermodynamics.band_edges import (
    aligned_edges,
    average_potential,
    study_band_edges,
)


@pytest.fixture(scope="module")
def cdte_bulk(cdte_reference: Path):
    folder = cdte_reference / "bulk_vasp_gam"
    record = parse_vasp_dir(folder)
    return folder, record, read_potential_grid(folder / str(record.potential_file))


@pytest.mark.reference
def test_default_is_the_bulk_record(cdte_bulk) -> None:
    folder, record, _ = cdte_bulk
    edges = study_band_edges({"source": "bulk"}, record, folder)
    assert edges.vbm == pytest.approx(1.5968, abs=1e-3)  # doped 3.2.1 reference
    assert edges.gap == pytest.approx(1.469, abs=5e-3)
    assert edges.offset == 0.0


@pytest.mark.reference
def test_aligning_a_folder_to_itself_changes_nothing(cdte_bulk) -> None:
    folder, record, _ = cdte_bulk
    edges = study_band_edges({"source": "external", "folder": str(folder)}, record, folder)
    assert edges.offset == pytest.approx(0.0, abs=1e-12)
    assert (edges.vbm, edges.cbm) == pytest.approx((record.vbm, record.cbm), abs=1e-12)


@pytest.mark.reference
def test_a_constant_potential_shift_is_removed(cdte_bulk) -> None:
    _, record, grid = cdte_bulk
    shift = 0.731  # eV: the external run's zero of energy sits elsewhere
    shifted_grid = PotentialGrid(grid.lattice, grid.data + shift)
    # a "hybrid" run: same potential up to the shift, gap opened by 0.5 eV
    external = dataclasses.replace(
        record, vbm=record.vbm + shift - 0.2, cbm=record.cbm + shift + 0.3
    )
    vbm, cbm, offset = aligned_edges(record, grid, external, shifted_grid)
    assert offset == pytest.approx(-shift, abs=1e-9)
    assert vbm == pytest.approx(record.vbm - 0.2, abs=1e-9)
    assert cbm == pytest.approx(record.cbm + 0.3, abs=1e-9)
    assert average_potential(shifted_grid) - average_potential(grid) == pytest.approx(shift)


@pytest.mark.reference
def test_other_engine_or_missing_folder_is_refused(cdte_bulk, tmp_path: Path) -> None:
    folder, record, grid = cdte_bulk
    other = dataclasses.replace(record, engine="cp2k")
    with pytest.raises(EngineError, match="different zeros"):
        aligned_edges(record, grid, other, grid)
    with pytest.raises(EngineError, match="band_edges.folder"):
        study_band_edges({"source": "external", "folder": str(tmp_path / "nope")}, record, folder)
    with pytest.raises(EngineError, match="band_edges.folder"):
        study_band_edges({"source": "external", "folder": ""}, record, folder)
    assert np.isfinite(average_potential(grid))
