"""eFNV on an elongated (2:1 tetragonal) supercell against pydefect on the same data.

Real CP2K runs of a 2x1x1 supercell of cubic CsPbI3 (12.8 x 6.4 x 6.4 Å: bulk, V_I(+1),
Na_i(+1) at a low-symmetry point), stored in tests/data/cp2k/cspbi3_2x1x1_efnv/ (its
README says how they were made). Site potentials: the workflow's 1 Å sphere averages of the
Hartree cubes. eps = diag(8, 8, 12) is an arbitrary anisotropic test tensor, not CsPbI3's.

In this cell pydefect's sampling radius (half the largest face distance, 6.4 Å) is twice
the radius of the sphere inscribed in the Wigner-Seitz cell (3.2 Å), so the two sampling
regions give corrections 0.23-0.26 eV apart. The cell is far too small for a physical
correction (|q| x std error up to 0.1 eV): it tests the implementation only.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from perovskite_defects.cli import correct
from perovskite_defects.corrections import EFNVResult, efnv_correction
from perovskite_defects.corrections.sampling import half_max_face_distance
from perovskite_defects.engines import cp2k
from perovskite_defects.engines.potentials import read_potential_grid, site_potentials

DATA = Path(__file__).parent / "data" / "cp2k" / "cspbi3_2x1x1_efnv"
EPS = [8.0, 8.0, 12.0]  # arbitrary anisotropic test tensor (diagonal, Cartesian)
SITE_RADIUS = 1.0  # Å, the workflow's default site_radius

# Recorded reference values: pydefect 0.10.1 (vise 0.9.6, pymatgen 2026.10.24, numpy 2.4.6)
# on the same structures and site potentials, printed by
#   PYTHONPATH=workflow /tmp/pydefect_venv/bin/python \
#       tests/data/cp2k/cspbi3_2x1x1_efnv/make_reference.py
# "pydefect_default" is make_efnv_correction as it comes (HalfMaxFaceDistanceDefectRegion);
# "ws_inscribed_sphere" is the same call with FixedDistanceDefectRegion(3.2 + 1e-3 Å).
# Values: total correction (eV), point-charge term (eV), atoms sampled.
PYDEFECT = {
    "v_i_q1": {
        "pydefect_default": (-0.0555828732559919, 0.1977310144559513, 2),
        "ws_inscribed_sphere": (-0.28758280024681493, 0.1977310144559513, 8),
    },
    "na_i_q1": {
        "pydefect_default": (0.9663651698582159, 0.1977310144559513, 3),
        "ws_inscribed_sphere": (0.7078583003017995, 0.1977310144559513, 7),
    },
}
DEFECTS = tuple(PYDEFECT)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    """Unpacked copies of the stored runs: folder, structure, site potentials (eV)."""
    root = tmp_path_factory.mktemp("cspbi3_2x1x1")
    out = {}
    for run in ("bulk", *DEFECTS):
        folder = root / run
        shutil.copytree(DATA / run, folder)
        packed = folder / "cp2k.out.gz"
        (folder / "cp2k.out").write_bytes(gzip.decompress(packed.read_bytes()))
        record = cp2k.parse(folder).require_converged()
        structure = record.pmg_structure()
        grid = read_potential_grid(folder / str(record.potential_file))
        out[run] = (folder, structure, site_potentials(grid, structure.frac_coords, SITE_RADIUS))
    return out


def _efnv(runs: dict[str, tuple], run: str, **kwargs) -> EFNVResult:
    _, bulk_s, bulk_pot = runs["bulk"]
    _, defect_s, defect_pot = runs[run]
    return efnv_correction(1, EPS, bulk_pot, defect_pot, bulk_s, defect_s, **kwargs)


@pytest.mark.parametrize("run", DEFECTS)
def test_default_sampling_agrees_with_pydefect(runs: dict[str, tuple], run: str) -> None:
    res = _efnv(runs, run)
    total, point_charge, n_sampled = PYDEFECT[run]["pydefect_default"]
    assert res.sampling == "half_max_face_distance"
    assert res.sampling_radius == pytest.approx(6.4, abs=1e-9)  # half the 12.8 Å axis
    assert res.n_sampled == n_sampled
    assert res.point_charge == pytest.approx(point_charge, abs=1e-6)
    assert res.total == pytest.approx(total, abs=1e-3)
    assert abs(res.total - total) < 1e-6  # measured: 5e-11 eV


@pytest.mark.parametrize("run", DEFECTS)
def test_inscribed_sphere_option_agrees_with_pydefect_at_that_radius(
    runs: dict[str, tuple], run: str
) -> None:
    res = _efnv(runs, run, sampling="ws_inscribed_sphere")
    total, _, n_sampled = PYDEFECT[run]["ws_inscribed_sphere"]
    assert res.sampling_radius == pytest.approx(3.2, abs=1e-9)
    assert res.n_sampled == n_sampled
    assert res.total == pytest.approx(total, abs=1e-6)


@pytest.mark.parametrize("run", DEFECTS)
def test_summary_reports_both_regions(runs: dict[str, tuple], run: str) -> None:
    default = _efnv(runs, run)
    other = _efnv(runs, run, sampling="ws_inscribed_sphere")
    both = default.summary()["by_sampling"]
    assert both == other.summary()["by_sampling"]
    assert both["half_max_face_distance"]["total"] == pytest.approx(default.total, abs=1e-12)
    assert both["ws_inscribed_sphere"]["total"] == pytest.approx(other.total, abs=1e-12)
    # the regions differ in an elongated cell, by 0.23 (V_I) and 0.26 eV (Na_i) here
    assert abs(default.total - other.total) > 0.2


def test_vacancy_image_on_the_sphere_is_not_sampled(runs: dict[str, tuple]) -> None:
    # The I atom half the long period from V_I lies exactly on the 6.4 Å sphere; it is
    # not outside it. pydefect compares raw floats and, on these files, left it out too.
    res = _efnv(runs, "v_i_q1")
    on_sphere = np.abs(res.site_distances - 6.4) < 1e-6
    assert int(on_sphere.sum()) == 1
    assert not res.sampled[on_sphere].any()


def test_cli_correct_uses_the_default(runs: dict[str, tuple]) -> None:
    result = correct(runs["bulk"][0], runs["na_i_q1"][0], 1, EPS, scheme="efnv")
    assert result["defect_kind"] == "interstitial"
    assert result["efnv_parts"]["sampling"] == "half_max_face_distance"
    assert result["efnv_correction"] == pytest.approx(PYDEFECT["na_i_q1"]["pydefect_default"][0])


def test_half_max_face_distance_is_a_face_distance_not_a_vector_length() -> None:
    assert half_max_face_distance(np.diag([4.0, 6.0, 10.0])) == pytest.approx(5.0, abs=1e-12)
    # c tilted: |c| = sqrt(109) = 10.44 Å but the (a, b) faces stay 10 Å apart (V / |a x b|
    # = 240 / 24); the other two: 240 / |b x c| = 3.83 Å, 240 / |c x a| = 6 Å
    tilted = np.array([[4.0, 0.0, 0.0], [0.0, 6.0, 0.0], [3.0, 0.0, 10.0]])
    assert half_max_face_distance(tilted) == pytest.approx(5.0, abs=1e-12)
    with pytest.raises(ValueError, match="sampling 'largest'"):
        efnv_correction(1, 5.0, [0.0], [0.0], {}, {}, sampling="largest")
