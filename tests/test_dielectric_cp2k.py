"""Computed dielectric tensor of rock-salt NaCl with the real CP2K (slow).

One shared calculation (module fixture): the 2-atom primitive cell at the experimental
lattice constant 5.64 Å, response supercell = the 8-atom conventional cube (Gamma-only),
6 finite-field runs + 2 phonopy displacements, PBE, DZVP-MOLOPT-SR, 250 Ry.

References (experiment, room temperature):
- eps_inf: the refractive index of NaCl, n = 1.544 at 589 nm (CRC Handbook of Chemistry
  and Physics, "Optical properties of crystals"), n^2 = 2.38; the infrared-side
  long-wavelength limit is ~2.33.
- eps_0 = 5.90 and the TO frequency 164 cm^-1 = 4.92 THz: Lowndes & Martin,
  Proc. R. Soc. Lond. A 308, 473 (1969).
- Z*: not measured directly; the oscillator formula (Born & Huang) with the values
  above gives Z*^2 = (eps_0 - eps_inf) eps0 V mu omega_TO^2 / e^2, Z* = 1.10.

Tolerances, and why: Z* within 15 %: PBE, a DZVP basis, 250 Ry, and above all the
single-point Berry phase of a Gamma-only 5.64 Å cell, which discretises the k-derivative
over 2 pi / L and lowers the response (measured: Z*(Na) 1.00 here). eps_inf is lowered
much more by the same discretisation (measured 1.67 in this cell, 2.01 along the long
axis of a 16-atom 2x1x1 cell): it is checked against the experimental value only to
35 % and must lie below it; a converged value needs larger cells (see the report in
engines/cp2k_response.py).
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from scipy import constants

from perovskite_defects.engines.cp2k_response import DEFAULT_FIELD, Cp2kResponseRunner
from perovskite_defects.engines.cp2k_settings import Cp2kSettings
from perovskite_defects.hosts.dielectric_tensor import compute_dielectric

# 8 CP2K runs of 40-60 s each on an idle core: outside make test (make test-long).
pytestmark = [pytest.mark.slow, pytest.mark.long]

A_EXP = 5.64  # Å
N_REFRACTIVE = 1.544
EPS_INF_EXP = 2.33
EPS_0_EXP = 5.90
TO_THZ_EXP = 4.92
CONVENTIONAL = [[-1, 1, 1], [1, -1, 1], [1, 1, -1]]


def primitive() -> Structure:
    h = A_EXP / 2
    return Structure(Lattice([[0, h, h], [h, 0, h], [h, h, 0]]), ["Na", "Cl"],
                     [[0, 0, 0], [0.5, 0.5, 0.5]])  # fmt: skip


def z_star_experiment() -> float:
    s = primitive()
    m1, m2 = (float(site.specie.atomic_mass) for site in s)
    mu = m1 * m2 / (m1 + m2) * constants.atomic_mass
    omega = 2 * math.pi * TO_THZ_EXP * 1e12
    z2 = (EPS_0_EXP - EPS_INF_EXP) * constants.epsilon_0 * s.volume * 1e-30 * mu * omega**2
    return math.sqrt(z2) / constants.e


@pytest.fixture(scope="module")
def nacl(tmp_path_factory, cp2k_binary):
    runner = Cp2kResponseRunner(Cp2kSettings(), tmp_path_factory.mktemp("nacl_dielectric"))
    start = time.time()
    result = compute_dielectric(primitive(), CONVENTIONAL, runner.field_run, DEFAULT_FIELD)
    print(f"\nNaCl dielectric: {time.time() - start:.0f} s for 8 CP2K runs")
    print(result.summary())
    return result


def test_born_charges_near_experiment_and_sum_rule(nacl):
    reference = z_star_experiment()
    assert reference == pytest.approx(1.10, abs=0.02)  # the cited numbers hang together
    na, cl = nacl.born_charges
    assert np.allclose(na, na[0, 0] * np.eye(3), atol=1e-3)  # cubic site symmetry
    assert na[0, 0] == pytest.approx(reference, rel=0.15)
    assert np.allclose(na + cl, 0.0, atol=1e-8)  # sum rule imposed
    # before the correction the violation is not zero (grid, basis) but the correction
    # per atom (violation / 8 atoms of the cube) stays below 5 % of Z* (measured: 0.18 e
    # over the cube, 0.022 e per atom, 2 %)
    assert 0.0 < nacl.asr_violation / 8 < 0.05 * na[0, 0]


def test_eps_inf_below_experiment_within_discretisation_error(nacl):
    eps = nacl.electronic
    assert np.allclose(eps, eps[0, 0] * np.eye(3), atol=1e-3)
    assert abs(N_REFRACTIVE**2 - EPS_INF_EXP) < 0.1  # the two cited values agree
    assert 1.0 < eps[0, 0] < EPS_INF_EXP
    assert eps[0, 0] == pytest.approx(EPS_INF_EXP, rel=0.35)


@pytest.mark.xfail(
    strict=True,
    reason="CP2K 250 Ry, Na GTH-q9: moving the Na on a grid point by 0.01 Å lowered the "
    "energy by 64 meV and gave a 12 eV/Å force along the displacement (grid artefact, "
    "measured with and without XC smoothing), so the Gamma phonons of this cell are wrong",
)
def test_phonons_and_ionic_part(nacl):
    phonons = nacl.phonons
    optical = np.delete(phonons.frequencies, phonons.acoustic_modes())
    assert np.allclose(phonons.frequencies[phonons.acoustic_modes()], 0.0, atol=0.05)
    assert phonons.imaginary_modes() == []
    assert np.allclose(optical, optical.mean(), rtol=1e-3)  # triply degenerate T1u
    # PBE at the experimental lattice constant; Gamma-only forces in the 8-atom cell
    assert optical.mean() == pytest.approx(TO_THZ_EXP, rel=0.25)
    assert nacl.ionic is not None and nacl.refusal is None
    total = nacl.total
    assert np.allclose(total, total[0, 0] * np.eye(3), atol=1e-3)
    assert total[0, 0] == pytest.approx(EPS_0_EXP, rel=0.35)
