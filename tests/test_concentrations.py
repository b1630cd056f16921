"""Fermi level and concentrations as the workflow wires them (config -> fermi.py)."""

from __future__ import annotations

import gzip
import math
import shutil
from pathlib import Path

import pytest

from perovskite_defects import config as cfg
from perovskite_defects.thermodynamics.carriers import (
    K_B,
    DosBands,
    EffectiveMassBands,
    effective_density_of_states,
)
from perovskite_defects.thermodynamics.concentrations import (
    DefectSite,
    band_model,
    concentration_rows,
    dopant_effect_rows,
    dopants_of,
    fermi_rows,
    site_density,
    solve_limits,
    spin_degeneracy,
)
from perovskite_defects.thermodynamics.formation import DefectChargeEntry

DATA = Path(__file__).parent / "data" / "cp2k"


def test_degeneracies_and_site_density() -> None:
    assert spin_degeneracy(281) == 2.0 and spin_degeneracy(272) == 1.0
    assert spin_degeneracy(None) == 1.0
    # 3 iodine sites per 5-atom cell of 6.4 Å: 3 / (6.4e-8 cm)^3
    expected = 3 / (6.4e-8) ** 3
    assert site_density(3, 8, 8 * 6.4**3) == pytest.approx(expected, rel=1e-12)


def _settings(**changes):
    conc = cfg.validate({})["concentrations"]
    conc.update(changes)
    return conc


def test_single_donor_closed_form() -> None:
    """One donor (+1 only) and electrons: in the Boltzmann limit n = c(+1) gives
    E_F = (E_g - E0)/2 + kT/2 ln(g N / N_c), with g = 2 from an odd electron count."""
    gap, e0, t, n_sites = 1.5, -1.0, 300.0, 1e22
    entries = [DefectChargeEntry("D", 1, {"X-rich": e0, "X-poor": e0 + 0.3})]
    sites = {"D": DefectSite("D", n_sites, {1: spin_degeneracy(271)})}
    bands = EffectiveMassBands(gap, 0.2, 0.2)
    results = solve_limits(
        _settings(limits=["X-rich"]), entries, sites, ["X-rich", "X-poor"], bands
    )
    assert [r.limit for r in results] == ["X-rich"]
    kt = K_B * t
    n_c = effective_density_of_states(0.2, t)
    expected = (gap - e0) / 2 + kt / 2 * math.log(2 * n_sites / n_c)
    sol = results[0].room
    assert sol.fermi_level == pytest.approx(expected, abs=2e-3)  # FD vs Boltzmann: < 1 meV
    assert sol.electrons == pytest.approx(sol.concentrations["D"][1], rel=1e-6)
    rows = concentration_rows(results)
    assert rows[0]["concentration (cm^-3)"] == sol.concentrations["D"][1]
    assert fermi_rows(results)[0]["Fermi level above VBM (eV)"] == sol.fermi_level
    with pytest.raises(ValueError, match="concentrations.limits"):
        solve_limits(_settings(limits=["nope"]), entries, sites, ["X-rich"], bands)


def test_dopant_effect_against_closed_forms() -> None:
    """A native deep donor D (+1) alone sits against electrons: E_F = (E_g - E_D)/2 +
    kT/2 ln(N / N_c). An acceptor dopant A (-1) pins E_F where D+ and A- compensate:
    E_F = (E_A - E_D)/2 + kT/2 ln(N_A / N_D), with carriers negligible (> 0.9 eV from both
    edges), so the deep-trap density D+ rises from n to N_D exp(-(E_D + E_F)/kT)."""
    gap, e_d, e_a, t, n_sites = 2.0, -0.5, 1.5, 300.0, 1e22
    entries = [
        DefectChargeEntry("D", 1, {"rich": e_d}),
        DefectChargeEntry("Na_A", -1, {"rich": e_a}),
    ]
    sites = {name: DefectSite(name, n_sites, {q: 1.0}) for name, q in (("D", 1), ("Na_A", -1))}
    bands = EffectiveMassBands(gap, 0.2, 0.2)
    settings = _settings()
    native = solve_limits(settings, entries, {"D": sites["D"]}, ["rich"], bands)
    full = solve_limits(settings, entries, sites, ["rich"], bands)
    (row,) = dopant_effect_rows(native, full, ["Na"], ["D"])
    kt = K_B * t
    n_c = effective_density_of_states(0.2, t)
    ef_native = (gap - e_d) / 2 + kt / 2 * math.log(n_sites / n_c)
    ef_doped = (e_a - e_d) / 2  # N_A = N_D
    assert row["Fermi level, native only (eV)"] == pytest.approx(ef_native, abs=2e-3)
    assert row["Fermi level, with dopants (eV)"] == pytest.approx(ef_doped, abs=1e-6)
    assert (
        row["Fermi level, with dopants (eV)"] == fermi_rows(full)[0]["Fermi level above VBM (eV)"]
    )
    trap_native = row["deep-trap density, native only (cm^-3)"]
    assert trap_native == pytest.approx(row["n, native only (cm^-3)"], rel=1e-4)
    expected = n_sites * math.exp(-(e_d + ef_doped) / kt)
    assert row["deep-trap density, with dopants (cm^-3)"] == pytest.approx(expected, rel=1e-5)
    assert (row["dopants"], row["deep-trap defects"]) == ("Na", "D")
    # a dopant defect with a deep level counts in the doped column only
    (both,) = dopant_effect_rows(native, full, ["Na"], ["D", "Na_A"])
    assert both["deep-trap density, native only (cm^-3)"] == trap_native
    assert both["deep-trap density, with dopants (cm^-3)"] == pytest.approx(2 * expected, rel=1e-5)


def test_dopants_of_a_defect() -> None:
    host = {"Cs", "Pb", "I"}
    assert dopants_of({"I": -1}, host) == []
    assert dopants_of({"Na": 1, "Pb": -1}, host) == ["Na"]
    assert dopants_of({"Na": 1, "I": -1}, host) == ["Na"]  # the Na_B+V_X complex
    assert dopants_of({"Na": -1}, {"Na", "Cl"}) == []  # removing a host atom is native


def test_quench_keeps_totals() -> None:
    entries = [
        DefectChargeEntry("V", 1, {"L": 0.8}),
        DefectChargeEntry("V", 0, {"L": 1.4}),
        DefectChargeEntry("A", -1, {"L": 1.5}),
    ]
    sites = {"V": DefectSite("V", 1e22, {1: 1.0, 0: 2.0}), "A": DefectSite("A", 5e21, {-1: 1.0})}
    bands = EffectiveMassBands(1.5, 0.2, 0.3)
    hot = _settings(synthesis_temperature=600.0)
    (res,) = solve_limits(hot, entries, sites, ["L"], bands)
    frozen = res.solution.frozen_totals  # type: ignore[union-attr]
    assert res.room.temperature == 300.0
    assert res.room.total_concentration("V") == pytest.approx(frozen["V"], rel=1e-9)
    row = fermi_rows([res])[0]
    assert row["synthesis temperature (K)"] == 600.0


@pytest.mark.reference
def test_band_model_choice(tmp_path: Path, cdte_reference: Path) -> None:
    # default study's bulk: the weighted shifted mesh misses R -> effective masses (auto)
    bulk_dir = tmp_path / "bulk"
    shutil.copytree(DATA / "cspbi3_bulk_2x2x2", bulk_dir)
    (bulk_dir / "cp2k.out").write_bytes(gzip.decompress((bulk_dir / "cp2k.out.gz").read_bytes()))
    edges = (1.05753, 2.471142)
    bands, note = band_model(_settings(), bulk_dir, 2085.0, edges, edges)
    assert isinstance(bands, EffectiveMassBands) and "parabolic" in note
    with pytest.raises(ValueError, match="miss the band edges"):
        band_model(_settings(carriers="dos"), bulk_dir, 2085.0, edges, edges)
    # CdTe's Gamma-only run holds its edges at its only (weighted) k-point -> DOS
    from perovskite_defects.engines.vasp_output import parse_vasp_dir

    cdte = cdte_reference / "bulk_vasp_gam"
    rec = parse_vasp_dir(cdte)
    vol = rec.pmg_structure().volume
    bands, note = band_model(_settings(), cdte, vol, (rec.vbm, rec.cbm), (rec.vbm, rec.cbm))
    assert isinstance(bands, DosBands) and "bulk DOS" in note
    assert bands.band_gap == pytest.approx(1.469, abs=5e-3)
    # external (e.g. hybrid) edges: the DOS is scissor-shifted onto them
    wider, _ = band_model(_settings(), cdte, vol, (rec.vbm, rec.cbm), (rec.vbm, rec.cbm + 0.5))
    assert wider.band_gap == pytest.approx(bands.band_gap + 0.5, abs=1e-9)
    assert wider.electron_density(0.7, 300) < bands.electron_density(0.7, 300)
