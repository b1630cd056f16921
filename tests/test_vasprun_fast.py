"""The fast vasprun reader gives the same records as pymatgen's Vasprun, and the native FNV
the same numbers as pymatgen-analysis-defects."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from perovskite_defects.engines import vasp
from perovskite_defects.engines.vasprun_fast import FastParseError, FastVasprun, _cut

FOLDERS = ["bulk_vasp_gam", "v_Cd_-2_vasp_gam", "bulk_vasp_gam_alt"]


@pytest.mark.parametrize("name", FOLDERS)
def test_same_record_as_pymatgen(cdte_reference: Path, name: str, monkeypatch) -> None:
    fast = asdict(vasp.parse_vasp_dir(cdte_reference / name))
    original = vasp._load_vasprun
    monkeypatch.setattr(vasp, "_load_vasprun", lambda p: original(p, fast=False))
    slow = asdict(vasp.parse_vasp_dir(cdte_reference / name))
    assert fast["extra"].pop("efermi") is not None  # read here; pymatgen skips it
    slow["extra"].pop("efermi")
    assert fast == slow


def test_eigenvalues_match(cdte_reference: Path) -> None:
    from pymatgen.io.vasp import Vasprun

    path = cdte_reference / "v_Cd_-2_vasp_gam" / "vasprun.xml.gz"
    ours = FastVasprun(path)
    ref = Vasprun(str(path), parse_potcar_file=False, parse_dos=False)
    for ours_arr, ref_arr in zip(ours.eigenvalues.values(), ref.eigenvalues.values(), strict=True):
        np.testing.assert_array_equal(ours_arr, ref_arr)
    assert ours.actual_kpoints_weights == pytest.approx(ref.actual_kpoints_weights)
    assert ours.final_energy == ref.final_energy


def test_unusual_input_is_refused_for_fallback(tmp_path: Path) -> None:
    with pytest.raises(FastParseError, match="unterminated"):
        _cut(b"<a><dos> never closed", b"dos")
    bad = tmp_path / "vasprun.xml"
    bad.write_text("<modeling><generator/></modeling>")
    with pytest.raises(FastParseError):
        FastVasprun(bad)


@pytest.mark.parametrize(
    "eps", [9.13, [9.13, 9.13, 20.0], [[9.0, 1.0, 0.0], [1.0, 9.0, 0.0], [0.0, 0.0, 12.0]]]
)
def test_native_fnv_equals_library(cdte_reference: Path, eps) -> None:
    from perovskite_defects.corrections import fnv_correction, locate_defect
    from perovskite_defects.engines.potentials import read_potential_grid

    bulk_dir, defect_dir = cdte_reference / "bulk_vasp_gam", cdte_reference / "v_Cd_-2_vasp_gam"
    bulk, defect = vasp.parse_vasp_dir(bulk_dir), vasp.parse_vasp_dir(defect_dir)
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
