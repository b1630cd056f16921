"""Defect and carrier concentrations and the self-consistent Fermi level, checked against
closed-form answers (textbook semiconductor statistics), never against the code's own output.

Physical constants here come from scipy.constants, independently of the module's own.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import constants as sc
from scipy.special import zeta

from perovskite_defects.reporting.tables import read_csv, write_csv
from perovskite_defects.thermodynamics.carriers import (
    BandModel,
    DosBands,
    EffectiveMassBands,
    dos_bands_from_eigenvalues,
    effective_density_of_states,
    fermi_dirac_half,
    log_fermi_dirac_half,
)
from perovskite_defects.thermodynamics.fermi_solver import (
    CONCENTRATION,
    DefectSpecies,
    FermiSolution,
    defect_concentrations,
    solve_fermi_level,
)
from perovskite_defects.thermodynamics.formation import DefectChargeEntry
from perovskite_defects.thermodynamics.quenched import QuenchedSolution, solve_quenched

KB = sc.k / sc.e  # eV/K
GAP, M_E, M_H = 1.5, 0.2, 0.3
V_CELL = 6.3**3  # Å^3, a cubic 5-atom ABX3 cell
CM3_PER_A3 = 1e-24


def kt(temperature: float) -> float:
    return KB * temperature


def n_eff(mass: float, temperature: float) -> float:
    """Textbook N_c = 2 (m* k T / (2 pi hbar^2))^{3/2}, in cm^-3."""
    m = mass * sc.m_e
    return 2.0 * (m * sc.k * temperature / (2.0 * math.pi * sc.hbar**2)) ** 1.5 * 1e-6


def parabolic_dos_per_cell(energy_above_edge: np.ndarray, mass: float, volume: float) -> np.ndarray:
    """Spin-degenerate parabolic DOS, states/eV per cell: V/(2 pi^2) (2m/hbar^2)^{3/2} sqrt(E)."""
    e_joule = np.clip(energy_above_edge, 0.0, None) * sc.e
    per_m3_per_joule = (
        1.0 / (2.0 * math.pi**2) * (2.0 * mass * sc.m_e / sc.hbar**2) ** 1.5 * np.sqrt(e_joule)
    )
    return per_m3_per_joule * sc.e * volume * 1e-30


def fd_half_series(eta: float, terms: int = 400) -> float:
    """F_1/2(eta) = -Li_{3/2}(-e^eta) = sum_k (-1)^{k+1} e^{k eta} / k^{3/2}, valid for eta < 0."""
    return math.fsum((-1) ** (k + 1) * math.exp(k * eta) / k**1.5 for k in range(1, terms))


def fd_half_sommerfeld(eta: float) -> float:
    """Degenerate asymptotic: 4/(3 sqrt(pi)) eta^{3/2} (1 + pi^2/(8 eta^2) + 7 pi^4/(640 eta^4))."""
    return (
        4.0
        / (3.0 * math.sqrt(math.pi))
        * eta**1.5
        * (1.0 + math.pi**2 / (8.0 * eta**2) + 7.0 * math.pi**4 / (640.0 * eta**4))
    )


def charge_balance(sol: FermiSolution) -> tuple[float, float]:
    """Positive and negative charge densities recomputed from the reported numbers."""
    pos, neg = sol.holes, sol.electrons
    for by_q in sol.concentrations.values():
        for q, c in by_q.items():
            if q > 0:
                pos += q * c
            else:
                neg += -q * c
    return pos, neg


def assert_neutral(sol: FermiSolution, tol: float = 1e-6) -> None:
    pos, neg = charge_balance(sol)
    assert abs(pos - neg) / pos <= tol
    assert sol.charge_residual <= tol


@pytest.fixture(scope="module")
def bands() -> EffectiveMassBands:
    return EffectiveMassBands(GAP, M_E, M_H)


def messy_defects() -> list[DefectSpecies]:
    """Several defects, several charges, amphoteric ones, degeneracies != 1."""
    return [
        DefectSpecies(
            "V_I", {1: (0.30, 1.0), 0: (1.45, 2.0), -1: (2.95, 1.0)}, 3, cell_volume=V_CELL
        ),
        DefectSpecies(
            "I_i", {1: (0.90, 3.0), 0: (1.55, 6.0), -1: (1.60, 3.0)}, 6, cell_volume=V_CELL
        ),
        DefectSpecies("V_Pb", {0: (2.40, 1.0), -1: (2.05, 2.0), -2: (1.85, 1.0)}, 1, V_CELL),
        DefectSpecies(
            "Pb_I", {2: (0.80, 1.0), 1: (1.50, 2.0), 0: (2.30, 1.0), -1: (3.60, 2.0)}, 3, V_CELL
        ),
        DefectSpecies("V_Cs", {0: (1.90, 1.0), -1: (0.95, 1.0)}, 1, cell_volume=V_CELL),
    ]


# --- Fermi-Dirac integral ---------------------------------------------------------------------


def test_fd_half_at_zero() -> None:
    # F_1/2(0) = eta_Dirichlet(3/2) = (1 - 2^{-1/2}) zeta(3/2) = 0.76514702462540794...
    exact = (1.0 - 2.0**-0.5) * zeta(1.5)
    assert fermi_dirac_half(0.0) == pytest.approx(exact, rel=1e-12)
    assert fermi_dirac_half(0.0) == pytest.approx(0.76514702462540794, rel=1e-12)


@pytest.mark.parametrize("eta", [-50.0, -10.0, -2.0, -0.5, -0.2])
def test_fd_half_negative_eta_series(eta: float) -> None:
    assert fermi_dirac_half(eta) == pytest.approx(fd_half_series(eta), rel=1e-11)


@pytest.mark.parametrize("eta", [-25.0, -40.0, -100.0])
def test_fd_half_boltzmann_limit(eta: float) -> None:
    # F_1/2 = e^eta (1 - e^eta / 2^{3/2} + ...): the correction is below 1e-11 here.
    assert fermi_dirac_half(eta) / math.exp(eta) == pytest.approx(1.0, abs=1e-11)


def test_fd_half_log_does_not_underflow() -> None:
    # e^-800 underflows to 0 as a float, but its logarithm is still exact.
    assert log_fermi_dirac_half(-800.0) == pytest.approx(-800.0, abs=1e-12)


@pytest.mark.parametrize("eta", [100.0, 1000.0, 1e5])
def test_fd_half_degenerate_sommerfeld(eta: float) -> None:
    assert fermi_dirac_half(eta) == pytest.approx(fd_half_sommerfeld(eta), rel=1e-11)


def test_fd_half_against_polylog() -> None:
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 30
    for eta in (-20.0, -3.0, -0.2, 0.3, 1.0, 2.5, 7.0, 30.0):
        exact = float(mpmath.re(-mpmath.polylog(1.5, -mpmath.exp(eta))))
        assert fermi_dirac_half(eta) == pytest.approx(exact, rel=1e-11), eta


def test_fd_half_rejects_nan() -> None:
    with pytest.raises(ValueError, match="finite"):
        fermi_dirac_half(float("nan"))


# --- effective-mass bands ---------------------------------------------------------------------


def test_effective_dos_textbook_value() -> None:
    # N_c(m* = 1, 300 K) = 2.51e19 cm^-3 (Sze & Ng)
    assert effective_density_of_states(1.0, 300.0) == pytest.approx(2.51e19, rel=2e-3)
    for m, t in ((0.2, 300.0), (0.3, 650.0)):  # 1e-8: room for CODATA 2018 vs 2022 m_e
        assert effective_density_of_states(m, t) == pytest.approx(n_eff(m, t), rel=1e-8)


def test_degenerate_electron_gas(bands: EffectiveMassBands) -> None:
    # E_F 0.1 eV inside the conduction band at 10 K (eta ~ 116): free-electron gas
    # n = (1 / 3 pi^2) (2 m* E / hbar^2)^{3/2}, times the Sommerfeld factor 1 + pi^2/8 (kT/E)^2.
    e, t = 0.1, 10.0
    n0 = (2.0 * M_E * sc.m_e * e * sc.e / sc.hbar**2) ** 1.5 / (3.0 * math.pi**2) * 1e-6
    exact = n0 * (1.0 + math.pi**2 / 8.0 * (kt(t) / e) ** 2)
    assert bands.electron_density(GAP + e, t) == pytest.approx(exact, rel=1e-8)


# --- intrinsic semiconductor -----------------------------------------------------------------


@pytest.mark.parametrize("temperature", [300.0, 450.0])
def test_intrinsic_fermi_level_and_density(bands: EffectiveMassBands, temperature: float) -> None:
    sol = solve_fermi_level([], bands, temperature)
    kbt = kt(temperature)
    ef_exact = GAP / 2.0 + 0.75 * kbt * math.log(M_H / M_E)
    ni_exact = math.sqrt(n_eff(M_E, temperature) * n_eff(M_H, temperature)) * math.exp(
        -GAP / (2.0 * kbt)
    )
    assert sol.fermi_level == pytest.approx(ef_exact, abs=1e-9)
    assert sol.electrons == pytest.approx(ni_exact, rel=1e-8)
    assert sol.holes == pytest.approx(ni_exact, rel=1e-8)
    assert sol.in_gap
    assert sol.concentrations == {}
    assert_neutral(sol)


# --- donors -----------------------------------------------------------------------------------


def test_fixed_shallow_donor(bands: EffectiveMassBands) -> None:
    # N_D >> n_i (~8e5 cm^-3) and N_D << N_c: n = N_D, E_F = E_C - kT ln(N_c / N_D).
    t, n_d = 300.0, 1e13
    donor = DefectSpecies("D", {1: (0.0, 1.0)}, site_density=1e22)
    sol = solve_fermi_level([donor], bands, t, fixed_concentrations={"D": n_d})
    assert sol.concentrations["D"][1] == pytest.approx(n_d, rel=1e-12)
    assert sol.electrons == pytest.approx(n_d, rel=1e-9)
    assert sol.holes < 1e-6 * n_d
    assert sol.fermi_level == pytest.approx(GAP - kt(t) * math.log(n_eff(M_E, t) / n_d), abs=1e-6)
    assert sol.fixed_totals == {"D": n_d}
    assert_neutral(sol)


def test_self_consistent_donor_closed_form(bands: EffectiveMassBands) -> None:
    # +1 donor with E_f = E0 + E_F and no other defect, p negligible:
    # N_s exp(-(E0 + E_F)/kT) = N_c exp(-(E_g - E_F)/kT)  =>  E_F = (E_g - E0 + kT ln(N_s/N_c))/2
    t, e0 = 300.0, -0.3
    donor = DefectSpecies("D", {1: (e0, 1.0)}, multiplicity=1, cell_volume=V_CELL)
    n_s = 1.0 / (V_CELL * CM3_PER_A3)
    exact = (GAP - e0 + kt(t) * math.log(n_s / n_eff(M_E, t))) / 2.0
    sol = solve_fermi_level([donor], bands, t)
    assert sol.holes < 1e-6 * sol.electrons  # the regime of the closed form
    assert sol.fermi_level == pytest.approx(exact, abs=1e-6)
    assert sol.concentrations["D"][1] == pytest.approx(
        n_s * math.exp(-(e0 + exact) / kt(t)), rel=1e-5
    )
    assert_neutral(sol)


def test_schottky_pair_closed_form(bands: EffectiveMassBands) -> None:
    # V_X^+ (3 sites/cell) compensated by V_M^2- (1 site/cell), carriers negligible:
    # N_X e^{-(E1 + E_F)/kT} = 2 N_M e^{-(E2 - 2 E_F)/kT} => E_F = (E2 - E1 + kT ln(N_X/2N_M)) / 3
    t, e1, e2 = 300.0, -0.4, 2.1
    v_x = DefectSpecies("V_X", {1: (e1, 1.0)}, multiplicity=3, cell_volume=V_CELL)
    v_m = DefectSpecies("V_M", {-2: (e2, 1.0)}, multiplicity=1, cell_volume=V_CELL)
    sol = solve_fermi_level([v_x, v_m], bands, t)
    exact = (e2 - e1 + kt(t) * math.log(3.0 / 2.0)) / 3.0
    assert sol.fermi_level == pytest.approx(exact, abs=1e-6)
    assert sol.concentrations["V_X"][1] == pytest.approx(2.0 * sol.concentrations["V_M"][-2])
    assert_neutral(sol)


def test_degenerate_donor_beyond_default_bracket(bands: EffectiveMassBands) -> None:
    # N_D = 2e21 cm^-3 puts E_F ~2.7 eV above the CBM: the default bracket (CBM + 2 eV) must
    # widen. n = N_D with the degenerate (Sommerfeld) form of F_1/2, accurate here to 1e-10.
    t, n_d = 300.0, 2e21
    donor = DefectSpecies("D", {1: (0.0, 1.0)}, site_density=1e22)
    sol = solve_fermi_level([donor], bands, t, fixed_concentrations={"D": n_d})
    eta = (sol.fermi_level - GAP) / kt(t)
    assert eta > 2.0 / kt(t)
    assert not sol.in_gap
    assert n_eff(M_E, t) * fd_half_sommerfeld(eta) == pytest.approx(n_d, rel=1e-8)
    assert_neutral(sol)


# --- defect concentrations at a given Fermi level ----------------------------------------------


def test_site_density_and_degeneracy() -> None:
    t, ef = 300.0, 0.6
    v_x = DefectSpecies("V_X", {1: (0.5, 1.0), 0: (1.4, 2.0)}, 3, cell_volume=V_CELL)
    n_s = 3.0 / (V_CELL * CM3_PER_A3)
    assert v_x.n_sites == pytest.approx(n_s, rel=1e-14)
    assert n_s == pytest.approx(1.1998e22, rel=1e-4)
    c = v_x.concentrations(ef, t)
    assert c[1] == pytest.approx(n_s * math.exp(-(0.5 + ef) / kt(t)), rel=1e-12)
    assert c[0] == pytest.approx(2.0 * n_s * math.exp(-1.4 / kt(t)), rel=1e-12)
    fractions = v_x.charge_fractions(ef, t)
    assert sum(fractions.values()) == pytest.approx(1.0)
    assert fractions[1] == pytest.approx(c[1] / (c[1] + c[0]))
    same = DefectSpecies("V_X", {1: (0.5, 1.0)}, site_density=n_s)
    assert defect_concentrations([same], ef, t)["V_X"][1] == pytest.approx(c[1], rel=1e-12)


def test_from_formation_energies_defaults_degeneracy_to_one() -> None:
    d = DefectSpecies.from_formation_energies("V_I", {1: 0.4, 0: 1.2}, cell_volume=V_CELL)
    assert d.charge_states == {1: (0.4, 1.0), 0: (1.2, 1.0)}
    d2 = DefectSpecies.from_formation_energies(
        "V_I", {1: 0.4, 0: 1.2}, degeneracies={1: 1, 0: 2}, cell_volume=V_CELL
    )
    assert d2.charge_states[0] == (1.2, 2.0)


def test_from_thermo_entries() -> None:
    entries = [
        DefectChargeEntry("V_I", 1, {"I-rich": 0.9, "I-poor": 0.3}),
        DefectChargeEntry("V_I", 0, {"I-rich": 1.8, "I-poor": 1.2}),
        DefectChargeEntry.missing("V_I", -1, ["I-rich", "I-poor"]),
        DefectChargeEntry("V_Pb", -2, {"I-rich": 1.0, "I-poor": 1.6}),
    ]
    d = DefectSpecies.from_entries(
        entries, "V_I", "I-poor", degeneracies={1: 1, 0: 2}, multiplicity=3, cell_volume=V_CELL
    )
    assert d.charge_states == {1: (0.3, 1.0), 0: (1.2, 2.0)}


# --- general neutrality -----------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [300.0, 650.0])
def test_messy_neutrality(bands: EffectiveMassBands, temperature: float) -> None:
    defects = messy_defects()
    dopant = DefectSpecies("Na_Pb", {-1: (0.0, 1.0), 0: (0.25, 2.0)}, 1, cell_volume=V_CELL)
    sol = solve_fermi_level(
        [*defects, dopant], bands, temperature, fixed_concentrations={"Na_Pb": 1e12}
    )
    assert_neutral(sol)
    kbt = kt(temperature)
    for d in defects:  # equilibrium species follow N_s g exp(-(E0 + q E_F)/kT) at the root
        for q, (e0, g) in d.charge_states.items():
            expected = d.n_sites * g * math.exp(-(e0 + q * sol.fermi_level) / kbt)
            assert sol.concentrations[d.name][q] == pytest.approx(expected, rel=1e-9)
    assert sol.total_concentration("Na_Pb") == pytest.approx(1e12, rel=1e-12)
    assert 0.0 < sol.fermi_level < GAP and sol.in_gap
    # Several charge states of the amphoteric I_i are populated at once.
    i_i = sol.concentrations["I_i"]
    assert min(i_i[1], i_i[-1]) > 1e-6 * max(i_i.values())


def test_given_bracket_without_root_is_rejected(bands: EffectiveMassBands) -> None:
    with pytest.raises(ValueError, match="does not change sign"):
        solve_fermi_level([], bands, 300.0, bracket=(0.0, 0.5))
    with pytest.raises(ValueError, match="bracket"):
        solve_fermi_level([], bands, 300.0, bracket=(1.0, 0.5))


# --- DOS band model ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def parabolic_dos_bands() -> DosBands:
    step = 5e-4  # eV; trapezoid error on the sqrt(E) edge ~ 0.2 (step/kT)^{3/2} ~ 1e-3
    energies = np.arange(-4.0, GAP + 4.0 + step / 2, step)
    dos = parabolic_dos_per_cell(energies - GAP, M_E, V_CELL) + parabolic_dos_per_cell(
        -energies, M_H, V_CELL
    )
    return DosBands(energies, dos, vbm=0.0, cbm=GAP, volume=V_CELL)


@pytest.mark.parametrize("fermi_level", [-0.05, 0.3, 0.75, 1.2, 1.55])
def test_dos_bands_match_effective_masses(
    parabolic_dos_bands: DosBands, bands: EffectiveMassBands, fermi_level: float
) -> None:
    t = 300.0
    assert parabolic_dos_bands.band_gap == pytest.approx(GAP)
    assert parabolic_dos_bands.electron_density(fermi_level, t) == pytest.approx(
        bands.electron_density(fermi_level, t), rel=1e-2
    )
    assert parabolic_dos_bands.hole_density(fermi_level, t) == pytest.approx(
        bands.hole_density(fermi_level, t), rel=1e-2
    )


def test_dos_bands_solver_matches_effective_masses(
    parabolic_dos_bands: DosBands, bands: EffectiveMassBands
) -> None:
    a = solve_fermi_level(messy_defects(), parabolic_dos_bands, 300.0)
    b = solve_fermi_level(messy_defects(), bands, 300.0)
    assert_neutral(a)
    assert a.fermi_level == pytest.approx(b.fermi_level, abs=0.01 * kt(300.0))
    assert isinstance(parabolic_dos_bands, BandModel)


def test_dos_from_eigenvalues_parabolic() -> None:
    # Radial k-shells filling a sphere of the Brillouin-zone volume (2 pi)^3 / V, so the
    # normalised shell weights are the true BZ fractions; one parabolic band on each side.
    k_max = (6.0 * math.pi**2 / V_CELL) ** (1.0 / 3.0)  # Å^-1
    n_shells = 8000
    dk = k_max / n_shells
    k = (np.arange(n_shells) + 0.5) * dk
    weights = k**2  # prop. to 4 pi k^2 dk
    hbar2_2m0 = sc.hbar**2 / (2.0 * sc.m_e) / sc.e * 1e20  # eV Å^2
    eig = np.column_stack([-hbar2_2m0 * k**2 / M_H, GAP + hbar2_2m0 * k**2 / M_E])
    sigma = 2e-3  # eV, << kT: Gaussian-tail inflation exp(sigma^2 / 2 kT^2) ~ 0.3 %
    dos_bands = dos_bands_from_eigenvalues(eig, weights, 0.0, GAP, V_CELL, sigma, spin_degeneracy=2)
    # Each of the two bands holds 2 states per cell.
    total = np.trapezoid(dos_bands.dos, dos_bands.energies)
    assert total == pytest.approx(4.0, rel=1e-9)
    ref = EffectiveMassBands(GAP, M_E, M_H)
    for ef in (-0.05, 0.75, 1.55):
        assert dos_bands.electron_density(ef, 300.0) == pytest.approx(
            ref.electron_density(ef, 300.0), rel=2e-2
        )
        assert dos_bands.hole_density(ef, 300.0) == pytest.approx(
            ref.hole_density(ef, 300.0), rel=2e-2
        )


def test_dos_from_single_eigenvalue_is_a_gaussian() -> None:
    sigma = 0.1
    eig = np.array([[-1.0, 1.0]])
    db = dos_bands_from_eigenvalues(eig, [3.0], -1.0, 1.0, 100.0, sigma, spin_degeneracy=1)
    peak = float(np.interp(1.0, db.energies, db.dos))
    assert peak == pytest.approx(1.0 / (sigma * math.sqrt(2.0 * math.pi)), rel=1e-3)
    # Spin-polarised layout (n_spins, n_kpoints, n_bands) with one electron per state.
    db2 = dos_bands_from_eigenvalues(
        np.stack([eig, eig]), [1.0], -1.0, 1.0, 100.0, sigma, spin_degeneracy=1
    )
    assert np.trapezoid(db2.dos, db2.energies) == pytest.approx(4.0, rel=1e-9)


# --- quenching --------------------------------------------------------------------------------


def test_quench_conserves_totals(bands: EffectiveMassBands) -> None:
    defects = messy_defects()
    t_syn, t_room = 650.0, 300.0
    q = solve_quenched(defects, bands, t_syn, t_room)
    assert isinstance(q, QuenchedSolution)
    hot = solve_fermi_level(defects, bands, t_syn)
    assert q.synthesis.fermi_level == pytest.approx(hot.fermi_level, abs=1e-12)
    for d in defects:
        syn_total = math.fsum(q.synthesis.concentrations[d.name].values())
        room_total = math.fsum(q.room.concentrations[d.name].values())
        assert room_total == pytest.approx(syn_total, rel=1e-12)
        assert q.frozen_totals[d.name] == pytest.approx(syn_total, rel=1e-12)
        # Room-temperature charge states follow Boltzmann weights g e^{-E_f/kT} at the new E_F.
        w = {
            c: g * math.exp(-(e0 + c * q.room.fermi_level) / kt(t_room))
            for c, (e0, g) in d.charge_states.items()
        }
        for c, wc in w.items():
            expected = syn_total * wc / math.fsum(w.values())
            assert q.room.concentrations[d.name][c] == pytest.approx(expected, rel=1e-9)
    assert_neutral(q.synthesis)
    assert_neutral(q.room)
    # Frozen-in defects outnumber the room-temperature equilibrium ones.
    cold = solve_fermi_level(defects, bands, t_room)
    assert q.room.total_concentration("V_I") > 10.0 * cold.total_concentration("V_I")
    summary = q.summary()
    assert summary["fermi_level_eV"] == q.room.fermi_level
    assert summary["synthesis_fermi_level_eV"] == q.synthesis.fermi_level
    assert summary["temperature_K"] == t_room


def test_quench_at_equal_temperatures_is_equilibrium(bands: EffectiveMassBands) -> None:
    q = solve_quenched(messy_defects(), bands, 400.0, 400.0)
    assert q.room.fermi_level == pytest.approx(q.synthesis.fermi_level, abs=1e-9)


# --- result tables ----------------------------------------------------------------------------


def test_rows_and_summary(bands: EffectiveMassBands, tmp_path) -> None:
    sol = solve_fermi_level(messy_defects()[:2], bands, 300.0)
    rows = list(sol.to_rows())
    assert [(r["defect"], r["charge"]) for r in rows] == [
        ("V_I", 1),
        ("V_I", 0),
        ("V_I", -1),
        ("I_i", 1),
        ("I_i", 0),
        ("I_i", -1),
    ]
    assert rows[0][CONCENTRATION] == sol.concentrations["V_I"][1]
    summary = sol.summary()
    assert summary["fermi_level_eV"] == sol.fermi_level
    assert summary["n_cm3"] == sol.electrons and summary["p_cm3"] == sol.holes
    write_csv(rows, tmp_path / "c.csv")
    assert read_csv(tmp_path / "c.csv") == rows


# --- bad inputs -------------------------------------------------------------------------------


def test_negative_temperature(bands: EffectiveMassBands) -> None:
    with pytest.raises(ValueError, match="temperature must be a positive"):
        solve_fermi_level([], bands, -300.0)
    with pytest.raises(ValueError, match="room temperature"):
        solve_quenched([], bands, 600.0, 0.0)
    with pytest.raises(ValueError, match="temperature"):
        bands.electron_density(1.0, float("nan"))


def test_bad_band_parameters() -> None:
    with pytest.raises(ValueError, match="band gap must be positive"):
        EffectiveMassBands(-1.0, 0.2, 0.3)
    with pytest.raises(ValueError, match="m_h"):
        EffectiveMassBands(1.5, 0.2, 0.0)
    e = np.linspace(-3.0, 3.0, 61)
    with pytest.raises(ValueError, match="CBM .* must lie above the VBM"):
        DosBands(e, np.ones_like(e), vbm=1.0, cbm=0.5, volume=100.0)
    with pytest.raises(ValueError, match="shape"):
        DosBands(e, np.ones(10), vbm=0.0, cbm=1.0, volume=100.0)
    with pytest.raises(ValueError, match="negative"):
        DosBands(e, -np.ones_like(e), vbm=0.0, cbm=1.0, volume=100.0)
    with pytest.raises(ValueError, match="no states above the CBM"):
        DosBands(e, np.where(e < 0.0, 1.0, 0.0), vbm=0.0, cbm=1.0, volume=100.0)
    with pytest.raises(ValueError, match="must contain"):
        DosBands(e, np.ones_like(e), vbm=0.0, cbm=4.0, volume=100.0)
    with pytest.raises(ValueError, match="one weight per k-point"):
        dos_bands_from_eigenvalues(np.zeros((3, 2)), [1.0], 0.0, 1.0, 100.0, 0.1, spin_degeneracy=2)


def test_missing_degeneracy() -> None:
    with pytest.raises(ValueError, match="V_I charge \\+1: missing degeneracy"):
        DefectSpecies("V_I", {1: (0.5, None)}, cell_volume=V_CELL)  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="expected \\(formation energy, degeneracy\\)"):
        DefectSpecies("V_I", {1: 0.5}, cell_volume=V_CELL)  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="missing degeneracy for charge -1"):
        DefectSpecies.from_formation_energies(
            "V_I", {1: 0.5, -1: 2.0}, degeneracies={1: 2.0}, cell_volume=V_CELL
        )
    with pytest.raises(ValueError, match="degeneracy must be positive"):
        DefectSpecies("V_I", {1: (0.5, 0.0)}, cell_volume=V_CELL)


def test_bad_defect_sites() -> None:
    with pytest.raises(ValueError, match="exactly one of cell_volume and site_density"):
        DefectSpecies("V_I", {1: (0.5, 1.0)})
    with pytest.raises(ValueError, match="exactly one of cell_volume and site_density"):
        DefectSpecies("V_I", {1: (0.5, 1.0)}, cell_volume=V_CELL, site_density=1e22)
    with pytest.raises(ValueError, match="multiplicity is used only with cell_volume"):
        DefectSpecies("V_I", {1: (0.5, 1.0)}, multiplicity=3, site_density=1e22)
    with pytest.raises(ValueError, match="no charge states"):
        DefectSpecies("V_I", {}, cell_volume=V_CELL)
    with pytest.raises(ValueError, match="not an integer"):
        DefectSpecies("V_I", {0.5: (0.5, 1.0)}, cell_volume=V_CELL)  # type: ignore[dict-item]


def test_empty_defects_without_bands() -> None:
    with pytest.raises(ValueError, match="no band model"):
        solve_fermi_level([], None, 300.0)  # type: ignore[arg-type]


def test_bad_fixed_concentrations_and_names(bands: EffectiveMassBands) -> None:
    d = DefectSpecies("V_I", {1: (0.5, 1.0)}, cell_volume=V_CELL)
    with pytest.raises(ValueError, match="unknown defect 'V_Pb'"):
        solve_fermi_level([d], bands, 300.0, fixed_concentrations={"V_Pb": 1e15})
    with pytest.raises(ValueError, match="V_I: fixed concentration must be >= 0"):
        solve_fermi_level([d], bands, 300.0, fixed_concentrations={"V_I": -1.0})
    with pytest.raises(ValueError, match="unique: V_I repeated"):
        solve_fermi_level([d, d], bands, 300.0)
