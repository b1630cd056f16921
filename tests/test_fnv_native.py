"""The native FNV gives the same numbers as pymatgen-analysis-defects' implementation."""

from __future__ import annotations

from pathlib import Path

import pytest

from perovskite_defects.engines import vasp_output


@pytest.mark.parametrize(
    "eps", [9.13, [9.13, 9.13, 20.0], [[9.0, 1.0, 0.0], [1.0, 9.0, 0.0], [0.0, 0.0, 12.0]]]
)
@pytest.mark.reference
def test_native_fnv_equals_library(cdte_reference: Path, eps) -> None:
    from perovskite_defects.corrections import fnv_correction, locate_defect
    from perovskite_defects.engines.potentials import read_potential_grid

    bulk_dir, defect_dir = cdte_reference / "bulk_vasp_gam", cdte_reference / "v_Cd_-2_vasp_gam"
    bulk, defect = vasp_output.parse_vasp_dir(bulk_dir), vasp_output.parse_vasp_dir(defect_dir)
    _, frac = locate_defect(bulk.structure, defect.structure)
    grids = [read_potential_grid(d / "LOCPOT.gz") for d in (bulk_dir, defect_dir)]
    native = fnv_correction(-2, eps, *grids, frac)
    library = fnv_correction(-2, eps, *grids, frac, backend="library")
    assert native.total == pytest.approx(library.total, abs=1e-5)
    assert native.point_charge == pytest.approx(library.point_charge, abs=1e-5)
    assert native.axis_delta_v == pytest.approx(library.axis_delta_v, abs=1e-9)
    assert native.error == pytest.approx(library.error, abs=1e-9)
    if eps == 9.13:
        assert native.total == pytest.approx(0.7278, abs=1e-3)  # doped 3.2.1 reference
