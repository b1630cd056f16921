"""FNV correction and defect location: CdTe V_Cd^-2 reference plus analytic checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from perovskite_defects.corrections import FNVResult, fnv_correction, locate_defect
from perovskite_defects.engines.base import CalcRecord, PotentialGrid
from perovskite_defects.engines.potentials import read_locpot
from perovskite_defects.engines.vasp_output import parse_vasp_dir

EPS_CDTE = 9.13
L_CDTE = 13.0868
MADELUNG_SC = 2.8373  # simple-cubic Madelung constant (point charge in a neutralising jellium)
COULOMB_EV_ANGSTROM = 14.3996454784  # e^2 / (4 pi eps0)

PAIRS = {
    "ordered": ("bulk_vasp_gam", "v_Cd_-2_vasp_gam"),
    "reordered": ("bulk_vasp_gam_alt", "v_Cd_-2_choppy_changy_vasp_gam"),
}


def madelung_point_charge(q: float, eps: float, length: float) -> float:
    """Lattice energy of a point charge in a simple-cubic cell, eV."""
    return q * q * MADELUNG_SC / (2 * eps * length) * COULOMB_EV_ANGSTROM


@pytest.fixture(scope="module")
def cdte(cdte_reference: Path) -> dict[str, dict]:
    """Records and potential grids of both reference pairs, parsed once (80^3 grids)."""
    out: dict[str, dict] = {}
    for key, (bulk_dir, defect_dir) in PAIRS.items():
        out[key] = {
            "bulk": parse_vasp_dir(cdte_reference / bulk_dir),
            "defect": parse_vasp_dir(cdte_reference / defect_dir),
            "bulk_grid": read_locpot(cdte_reference / bulk_dir / "LOCPOT.gz"),
            "defect_grid": read_locpot(cdte_reference / defect_dir / "LOCPOT.gz"),
        }
    return out


@pytest.fixture(scope="module")
def fnv(cdte: dict[str, dict]) -> dict[str, FNVResult]:
    results = {}
    for key, pair in cdte.items():
        bulk: CalcRecord = pair["bulk"]
        defect: CalcRecord = pair["defect"]
        _, frac = locate_defect(bulk.structure, defect.structure)
        results[key] = fnv_correction(
            defect.charge, EPS_CDTE, pair["bulk_grid"], pair["defect_grid"], frac
        )
    return results


@pytest.mark.reference
def test_fnv_matches_reference(fnv: dict[str, FNVResult]) -> None:
    res = fnv["ordered"]
    assert res.charge == -2
    assert res.total == pytest.approx(0.7278, abs=0.01)
    assert res.point_charge == pytest.approx(0.6839, abs=1e-3)
    assert res.point_charge == pytest.approx(madelung_point_charge(-2, EPS_CDTE, L_CDTE), abs=1e-3)
    assert res.total == pytest.approx(res.point_charge - res.alignment)
    assert res.alignment == pytest.approx(-2 * np.mean(res.axis_delta_v))
    assert np.ptp(res.axis_delta_v) < 1e-3  # cubic cell, defect on a symmetric site
    assert 0 < res.error < 0.05
    assert len(res.axes) == 3 and res.axes[0].x.shape == (80,)
    assert "axes" not in repr(res)
    summary = json.loads(json.dumps(res.summary()))  # JSON-ready
    assert summary["total"] == pytest.approx(res.total)
    assert summary["axis_delta_v"] == pytest.approx(list(res.axis_delta_v))


@pytest.mark.reference
def test_reordered_atoms_give_identical_fnv(fnv: dict[str, FNVResult]) -> None:
    a, b = fnv["ordered"], fnv["reordered"]
    for name in ("total", "point_charge", "alignment"):
        assert getattr(a, name) == pytest.approx(getattr(b, name), abs=1e-4)


@pytest.mark.reference
def test_locate_vacancy_in_both_orderings(cdte: dict[str, dict]) -> None:
    found = {}
    for key, pair in cdte.items():
        bulk = pair["bulk"].pmg_structure()
        kind, frac = locate_defect(bulk, pair["defect"].pmg_structure())
        assert kind == "vacancy"
        site = np.argmin(bulk.lattice.get_all_distances(bulk.frac_coords, [frac])[:, 0])
        assert bulk[int(site)].species_string == "Cd"
        found[key] = frac
    delta = found["ordered"] - found["reordered"]
    assert np.abs(delta - np.round(delta)).max() < 1e-6


@pytest.mark.reference
def test_defect_position_matters(cdte: dict[str, dict], fnv: dict[str, FNVResult]) -> None:
    pair = cdte["ordered"]
    off = fnv_correction(-2, EPS_CDTE, pair["bulk_grid"], pair["defect_grid"], [0.5, 0.5, 0.5])
    assert off.point_charge == pytest.approx(fnv["ordered"].point_charge)
    assert abs(off.total - fnv["ordered"].total) > 0.1


# --- analytic checks on flat grids (no reference data needed) -------------------------


def _flat(length: float, n: int) -> PotentialGrid:
    return PotentialGrid(lattice=np.eye(3) * length, data=np.zeros((n, n, n)))


def _point_charge(q: int, eps, length: float) -> float:
    n = int(np.ceil(length / 0.4))  # >= 3 samples in the 1 Å alignment window
    grid = _flat(length, n)
    return fnv_correction(q, eps, grid, grid, [0.0, 0.0, 0.0]).point_charge


def test_point_charge_scales_as_q2_over_eps_and_inverse_length() -> None:
    base = _point_charge(1, 1.0, 10.0)
    assert base == pytest.approx(madelung_point_charge(1, 1.0, 10.0), rel=1e-4)
    assert _point_charge(2, 1.0, 10.0) == pytest.approx(4 * base, rel=1e-5)
    assert _point_charge(-3, 4.0, 10.0) == pytest.approx(9 / 4 * base, rel=1e-5)
    assert _point_charge(1, 1.0, 20.0) == pytest.approx(base / 2, rel=1e-4)


def test_odd_grid_is_resampled_not_rejected() -> None:
    # the library's model potential fails on odd grids; ours resamples them to n + 1
    odd = fnv_correction(1, 1.0, _flat(10.0, 25), _flat(10.0, 25), [0.0, 0.0, 0.0])
    even = fnv_correction(1, 1.0, _flat(10.0, 26), _flat(10.0, 26), [0.0, 0.0, 0.0])
    assert odd.axes[0].x.shape == (26,)
    assert odd.total == pytest.approx(even.total, abs=1e-9)


def test_dielectric_forms() -> None:
    scalar = _point_charge(1, 5.0, 10.0)
    assert _point_charge(1, [5.0, 5.0, 5.0], 10.0) == pytest.approx(scalar, abs=1e-9)
    assert _point_charge(1, 5.0 * np.eye(3), 10.0) == pytest.approx(scalar, abs=1e-9)
    # anisotropic tensors go to the library (sxdefectalign-style treatment)
    aniso = _point_charge(1, [5.0, 5.0, 10.0], 10.0)
    assert _point_charge(1, 10.0, 10.0) < aniso < scalar
    grid = _flat(10.0, 8)
    with pytest.raises(ValueError, match="symmetric"):
        fnv_correction(1, [[5, 1, 0], [0, 5, 0], [0, 0, 5]], grid, grid, [0, 0, 0])
    with pytest.raises(ValueError, match="positive definite"):
        fnv_correction(1, -5.0, grid, grid, [0, 0, 0])
    with pytest.raises(ValueError, match="shape"):
        fnv_correction(1, [5.0, 5.0], grid, grid, [0, 0, 0])


def test_zero_charge_and_mismatched_grids() -> None:
    grid = _flat(10.0, 8)
    zero = fnv_correction(0, 5.0, grid, grid, [0.2, 0.3, 0.4])
    assert (zero.total, zero.point_charge, zero.alignment) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="grids differ"):
        fnv_correction(1, 5.0, grid, _flat(10.0, 10), [0, 0, 0])
    with pytest.raises(ValueError, match="different lattices"):
        fnv_correction(1, 5.0, grid, _flat(11.0, 8), [0, 0, 0])


# --- locate_defect on a small perovskite supercell --------------------------------------


@pytest.fixture(scope="module")
def perovskite():
    from pymatgen.core import Lattice, Structure

    cell = Structure(
        Lattice.cubic(6.3),
        ["Cs", "Pb", "I", "I", "I"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )
    return cell * (2, 2, 2)


def _shuffled(structure, seed: int = 0, jitter: float = 0.15):
    """Same atoms in random order, each moved by up to ``jitter`` Å (a 'relaxation')."""
    from pymatgen.core import Structure

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(structure))
    cart = structure.cart_coords[order] + rng.uniform(-jitter, jitter, (len(order), 3))
    species = [structure[int(i)].species_string for i in order]
    return Structure(structure.lattice, species, cart, coords_are_cartesian=True)


def test_locate_vacancy_substitution_interstitial(perovskite) -> None:
    iodine = next(i for i, s in enumerate(perovskite) if s.species_string == "I")
    lead = next(i for i, s in enumerate(perovskite) if s.species_string == "Pb")

    vac = perovskite.copy()
    vac.remove_sites([iodine])
    kind, frac = locate_defect(perovskite, _shuffled(vac))
    assert kind == "vacancy"
    np.testing.assert_allclose(frac, perovskite[iodine].frac_coords % 1.0, atol=1e-8)

    sub = perovskite.copy()
    sub.replace(lead, "Sn")
    kind, frac = locate_defect(perovskite.as_dict(), _shuffled(sub).as_dict())
    assert kind == "substitution"
    dist = perovskite.lattice.get_distance_and_image(frac, perovskite[lead].frac_coords)[0]
    assert dist < 0.3

    inter = perovskite.copy()
    inter.append("I", [0.125, 0.125, 0.125])
    kind, frac = locate_defect(perovskite, _shuffled(inter, seed=1))
    assert kind == "interstitial"
    assert perovskite.lattice.get_distance_and_image(frac, [0.125, 0.125, 0.125])[0] < 0.3


def test_locate_complex_and_no_defect(perovskite) -> None:
    iodine = next(i for i, s in enumerate(perovskite) if s.species_string == "I")
    lead = next(i for i, s in enumerate(perovskite) if s.species_string == "Pb")
    pair = perovskite.copy()
    pair.replace(lead, "Sn")
    pair.remove_sites([iodine])
    kind, _ = locate_defect(perovskite, _shuffled(pair))
    assert kind == "complex"
    with pytest.raises(ValueError, match="no defect"):
        locate_defect(perovskite, _shuffled(perovskite, jitter=0.05))
