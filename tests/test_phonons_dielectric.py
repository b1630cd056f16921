"""Gamma phonons (phonopy) and the ionic dielectric formula, against closed forms.

Model: rock salt with nearest-neighbour central springs of stiffness k. Its Gamma optical
mode has omega^2 = 2 k / mu (only the two neighbours along the displacement stretch their
springs), a textbook result (e.g. Ashcroft & Mermin ch. 22, diatomic chain, q = 0). The
ionic dielectric constant of a cubic diatomic crystal with charges +/-Z and one (triply
degenerate) TO mode is eps_ion = Z^2 e^2 / (eps0 V mu omega_TO^2) (Born & Huang,
Dynamical Theory of Crystal Lattices, ch. II; the Lyddane-Sachs-Teller oscillator).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from phonopy import Phonopy
from pymatgen.core import Lattice, Structure
from pymatgen.io.phonopy import get_phonopy_structure
from scipy import constants

from perovskite_defects.hosts.dielectric_tensor import (
    IonicPartUndefinedError,
    acoustic_sum_rule,
    born_charges_from_forces,
    eps_inf_from_dipoles,
    ionic_tensor,
)
from perovskite_defects.hosts.phonons import (
    PhononError,
    displaced_supercells,
    gamma_phonons,
    modulated_structure,
)

A = 5.64  # Å, rock-salt cubic lattice constant of the model
K_SPRING = 1.5  # eV/Å^2
CONVENTIONAL_FROM_FCC = [[-1, 1, 1], [1, -1, 1], [1, 1, -1]]


def fcc_primitive(species: tuple[str, str] = ("Na", "Cl")) -> Structure:
    h = A / 2
    lattice = Lattice([[0, h, h], [h, 0, h], [h, h, 0]])
    return Structure(lattice, list(species), [[0, 0, 0], [0.5, 0.5, 0.5]])


def spring_forces(k: float):
    """Forces of nearest-neighbour central harmonic springs (eV/Å), linear in u."""

    def forces(cell: Structure, label: str) -> np.ndarray:
        # reference: the same cell with every atom back on its ideal rock-salt site
        frac = np.round(cell.frac_coords * 4) / 4
        ideal = Structure(cell.lattice, cell.species, frac)
        disp = cell.cart_coords - ideal.cart_coords
        centers, points, images, dists = ideal.get_neighbor_list(A / 2 + 0.1)
        f = np.zeros((len(cell), 3))
        for i, j, image in zip(centers, points, images, strict=True):
            bond = ideal[j].coords + image @ cell.lattice.matrix - ideal[i].coords
            unit = bond / np.linalg.norm(bond)
            f[i] += k * unit * np.dot(unit, disp[j] - disp[i])
        return f

    return forces


def reduced_mass(structure: Structure) -> float:
    m1, m2 = (float(site.specie.atomic_mass) for site in structure)
    return m1 * m2 / (m1 + m2)


@pytest.fixture(scope="module")
def model_phonons():
    return gamma_phonons(fcc_primitive(), CONVENTIONAL_FROM_FCC, spring_forces(K_SPRING))


def test_optical_frequency_matches_closed_form(model_phonons):
    mu_kg = reduced_mass(fcc_primitive()) * constants.atomic_mass
    k_si = K_SPRING * constants.eV / 1e-20
    expected_thz = math.sqrt(2 * k_si / mu_kg) / (2 * math.pi) / 1e12
    freqs = np.sort(model_phonons.frequencies)
    assert np.allclose(freqs[:3], 0.0, atol=1e-3)
    assert np.allclose(freqs[3:], expected_thz, rtol=1e-6)
    assert model_phonons.imaginary_modes() == []
    assert sorted(model_phonons.acoustic_modes()) == [0, 1, 2]


def test_frequencies_match_phonopy_on_same_force_constants(model_phonons):
    """Our Gamma frequencies are phonopy's own for the same forces (no reshuffling)."""
    phonon = Phonopy(
        get_phonopy_structure(fcc_primitive()), CONVENTIONAL_FROM_FCC, primitive_matrix=None
    )
    phonon.generate_displacements(distance=0.01)
    forces = spring_forces(K_SPRING)
    from pymatgen.io.phonopy import get_pmg_structure

    phonon.forces = [forces(get_pmg_structure(c), "") for c in phonon.supercells_with_displacements]
    phonon.produce_force_constants()
    phonon.symmetrize_force_constants()
    phonon.run_qpoints([[0, 0, 0]])
    reference = phonon.qpoints.frequencies[0]
    assert np.allclose(model_phonons.frequencies, reference, atol=1e-6)


def test_commensurate_points_listed(model_phonons):
    # the conventional cell of fcc holds Gamma and the three X points
    assert len(model_phonons.commensurate_lowest) == 4


def test_ionic_tensor_matches_hand_formula(model_phonons):
    z = 1.1
    born = np.array([z * np.eye(3), -z * np.eye(3)])
    volume = fcc_primitive().volume
    eps, charges = ionic_tensor(born, model_phonons, volume)
    omega = 2 * math.pi * 1e12 * model_phonons.frequencies[3]
    mu_kg = reduced_mass(fcc_primitive()) * constants.atomic_mass
    expected = (z * constants.e) ** 2 / (constants.epsilon_0 * volume * 1e-30 * mu_kg * omega**2)
    assert np.allclose(eps, expected * np.eye(3), rtol=1e-6)
    # acoustic modes carry no charge once the sum rule holds
    assert np.allclose(charges[model_phonons.acoustic_modes()], 0.0, atol=1e-10)


def test_imaginary_mode_refused():
    unstable = gamma_phonons(fcc_primitive(), CONVENTIONAL_FROM_FCC, spring_forces(-K_SPRING))
    assert unstable.lowest < 0
    assert unstable.imaginary_modes()
    born = np.array([np.eye(3), -np.eye(3)])
    with pytest.raises(IonicPartUndefinedError, match="imaginary"):
        ionic_tensor(born, unstable, fcc_primitive().volume)


def test_modulation_follows_the_mode(model_phonons):
    mode = 4  # an optical mode
    moved = modulated_structure(model_phonons, mode, amplitude=0.5)
    ideal_frac = np.round(moved.frac_coords * 4) / 4
    disp = moved.cart_coords - Structure(moved.lattice, moved.species, ideal_frac).cart_coords
    na = [i for i, s in enumerate(moved) if s.specie.symbol == "Na"]
    cl = [i for i, s in enumerate(moved) if s.specie.symbol == "Cl"]
    # optical mode at Gamma: all Na move alike, all Cl opposite, centre of mass fixed
    assert np.allclose(disp[na], disp[na[0]], atol=1e-8)
    assert np.allclose(disp[cl], disp[cl[0]], atol=1e-8)
    masses = np.array([float(s.specie.atomic_mass) for s in moved])
    assert np.allclose(masses @ disp, 0.0, atol=1e-8)
    assert np.linalg.norm(disp[na[0]]) > 1e-3


def test_bad_supercell_and_displacement():
    with pytest.raises(PhononError, match="supercell matrix"):
        displaced_supercells(fcc_primitive(), [[1, 0, 0], [0, 1, 0], [1, 0, 0]])
    with pytest.raises(PhononError, match="displacement"):
        displaced_supercells(fcc_primitive(), [1, 1, 1], distance=0.5)


def test_born_charges_from_forces_and_sum_rule():
    field = 0.05
    z_na = np.diag([1.1, 1.2, 1.3])
    z_cl = -np.diag([1.0, 1.2, 1.3])
    born = np.array([z_na, z_cl])
    # F_k,b = sum_a E_a Z*_k,ab
    plus = [field * born[:, a, :] for a in range(3)]
    minus = [-field * born[:, a, :] for a in range(3)]
    assert np.allclose(born_charges_from_forces(plus, minus, field), born)
    corrected, violation = acoustic_sum_rule(born)
    assert violation == pytest.approx(0.1)
    assert np.allclose(corrected.sum(axis=0), 0.0)
    assert corrected[0, 0, 0] == pytest.approx(1.05)


def test_eps_inf_from_dipoles_folds_the_quantum():
    lattice = A * np.eye(3)
    field = 0.05
    chi = 0.1  # dimensionless susceptibility
    eps0 = constants.epsilon_0 * 1e-10 / constants.e  # e / (V Å)
    dmu = chi * eps0 * A**3 * field  # e Å for +E
    plus = [dmu * np.eye(3)[b] + (A * np.eye(3)[b] if b == 1 else 0) for b in range(3)]
    minus = [-dmu * np.eye(3)[b] for b in range(3)]
    eps = eps_inf_from_dipoles(plus, minus, field, lattice)
    assert np.allclose(eps, (1 + chi) * np.eye(3), rtol=1e-9)


def test_computed_source_config_and_effective_tensor(tmp_path) -> None:
    import json

    from perovskite_defects import config as cfg
    from perovskite_defects.corrections.dielectric import describe, total_tensor
    from perovskite_defects.hosts.dielectric_run import (
        ComputedDielectricError,
        effective_dielectric,
    )

    ok = cfg.validate({"dielectric": {"source": "computed"}})
    assert ok["dielectric"]["supercell"] == [2, 2, 2]
    with pytest.raises(cfg.ConfigError, match="dielectric.value"):
        cfg.validate({"dielectric": {"source": "computed", "value": 10.0}})
    # a cited value passes through untouched
    cited = {"value": 10.0, "source": "paper"}
    assert effective_dielectric(cited, None) == cited
    with pytest.raises(ComputedDielectricError, match="missing"):
        effective_dielectric(ok["dielectric"], tmp_path / "none.json", "CsPbI3")
    path = tmp_path / "dielectric.json"
    path.write_text(json.dumps({"electronic": np.diag([2.0, 2.0, 2.5]).tolist(),
                                "ionic": np.diag([3.0, 3.0, 3.5]).tolist()}))  # fmt: skip
    eff = effective_dielectric(ok["dielectric"], path, "X")
    np.testing.assert_allclose(total_tensor(eff), np.diag([5.0, 5.0, 6.0]))
    assert "computed" in eff["source"] and "diag(5, 5, 6)" in describe(eff)
    path.write_text(json.dumps({"electronic": np.eye(3).tolist(), "ionic": None,
                                "ionic_refused": "optical Gamma mode(s) at -1.0 THz"}))  # fmt: skip
    with pytest.raises(ComputedDielectricError, match="no ionic part"):
        effective_dielectric(ok["dielectric"], path, "X")


def test_electronic_screening_uses_eps_inf(tmp_path) -> None:
    """screening: electronic corrects with eps_inf (cited or computed, ionic refused or not)."""
    import json

    from perovskite_defects import config as cfg
    from perovskite_defects.corrections.dielectric import describe, screening_tensor
    from perovskite_defects.hosts.dielectric_run import effective_dielectric

    cited = cfg.validate(
        {"dielectric": {"electronic": 4.0, "ionic": 6.0, "screening": "electronic", "source": "p"}}
    )["dielectric"]
    np.testing.assert_allclose(screening_tensor(cited), 4.0 * np.eye(3))
    assert describe(cited).startswith("4 (electronic part")
    static = cfg.validate({"dielectric": {"electronic": 4.0, "ionic": 6.0}})["dielectric"]
    np.testing.assert_allclose(screening_tensor(static), 10.0 * np.eye(3))
    with pytest.raises(cfg.ConfigError, match="'dielectric.screening': 'electronic' needs"):
        cfg.validate({"dielectric": {"value": 10.0, "screening": "electronic"}})
    with pytest.raises(cfg.ConfigError, match="dielectric.screening"):
        cfg.validate({"dielectric": {"value": 10.0, "screening": "optical"}})
    computed = cfg.validate({"dielectric": {"source": "computed", "screening": "electronic"}})
    path = tmp_path / "dielectric.json"
    refusal = "optical Gamma mode(s) at -2.0 THz"
    path.write_text(json.dumps({"electronic": (3.9 * np.eye(3)).tolist(), "ionic": None,
                                "ionic_refused": refusal}))  # fmt: skip
    eff = effective_dielectric(computed["dielectric"], path, "CsPbI3")
    np.testing.assert_allclose(screening_tensor(eff), 3.9 * np.eye(3))
    assert refusal in eff["source"]


def test_cp2k_response_input(tmp_path) -> None:
    from perovskite_defects.engines.base import EngineError
    from perovskite_defects.engines.cp2k_response import DEFAULT_FIELD, write_input
    from perovskite_defects.engines.cp2k_settings import Cp2kSettings

    cell = fcc_primitive()
    text = write_input(cell, Cp2kSettings(), tmp_path / "f", [0, 0, -DEFAULT_FIELD]).read_text()
    # 0.0514 V/Å is 0.001 atomic units (Hartree / (e bohr) = 51.422 V/Å)
    assert "INTENSITY 1.0000000000E-03" in text
    assert "POLARISATION 0.0000000000 0.0000000000 -1.0000000000" in text
    assert "KPOINTS" not in text and "SMEAR" not in text  # Gamma-only, integer occupations
    assert "PERIODIC T" in text and "RUN_TYPE ENERGY_FORCE" in text
    plain = write_input(cell, Cp2kSettings(), tmp_path / "z").read_text()
    assert "PERIODIC_EFIELD" not in plain
    odd = Structure(cell.lattice, ["Pb", "I"], cell.frac_coords)  # 4 + 7 valence electrons
    with pytest.raises(EngineError, match="closed-shell"):
        write_input(odd, Cp2kSettings(), tmp_path / "o")


def test_dielectric_phonons_from_the_engine_in_the_unit_cell() -> None:
    """compute_dielectric with phonon_forces: Gamma phonons of the unit cell (no supercell)
    from the engine's forces, the field runs alone in the response supercell; the ionic part
    then equals the Lyddane-Sachs-Teller oscillator of the module docstring."""
    from perovskite_defects.hosts.dielectric_tensor import (
        EPS0_E_PER_V_ANGSTROM,
        compute_dielectric,
    )

    z, chi = 1.1, 1.3
    labels: list[str] = []

    def field_run(cell: Structure, label: str, field: np.ndarray):
        labels.append(label)
        charges = np.array([z if s.specie.symbol == "Na" else -z for s in cell])
        return np.outer(charges, field), EPS0_E_PER_V_ANGSTROM * cell.volume * chi * field

    unit = fcc_primitive()
    result = compute_dielectric(
        unit, CONVENTIONAL_FROM_FCC, field_run, 0.05, phonon_forces=spring_forces(K_SPRING)
    )
    assert all(label.startswith("field") for label in labels) and len(labels) == 2
    assert result.settings["phonon_cell_matrix"] == np.eye(3, dtype=int).tolist()
    mu_kg = reduced_mass(unit) * constants.atomic_mass
    k_si = K_SPRING * constants.eV / 1e-20
    omega_sq = 2 * k_si / mu_kg
    assert np.allclose(
        np.sort(result.phonons.frequencies)[3:], math.sqrt(omega_sq) / 2e12 / math.pi
    )
    volume_si = unit.volume * 1e-30
    expected = (z * constants.e) ** 2 / (constants.epsilon_0 * volume_si * mu_kg * omega_sq)
    np.testing.assert_allclose(result.ionic, expected * np.eye(3), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(result.electronic, (1 + chi) * np.eye(3), rtol=1e-6, atol=1e-9)


def test_forces_that_do_not_sum_to_zero_give_no_phonons() -> None:
    """A non-translation-invariant engine (as CP2K's semicore Na at 250-800 Ry, measured:
    0.27 eV/Å of drift for a 0.01 Å step) is refused, not projected away by phonopy."""
    from perovskite_defects.hosts.dielectric_tensor import compute_dielectric

    springs = spring_forces(K_SPRING)

    def drifting(cell: Structure, label: str) -> np.ndarray:
        f = springs(cell, label)
        f[0] += [0.0, 0.2, 0.2]  # one atom feels a force its neighbours do not return
        return f

    with pytest.raises(PhononError, match="not translation-invariant"):
        gamma_phonons(fcc_primitive(), CONVENTIONAL_FROM_FCC, drifting)

    def field_run(cell: Structure, label: str, field: np.ndarray):
        charges = np.array([1.0 if s.specie.symbol == "Na" else -1.0 for s in cell])
        return np.outer(charges, field), np.zeros(3)

    result = compute_dielectric(
        fcc_primitive(), CONVENTIONAL_FROM_FCC, field_run, 0.05, phonon_forces=drifting
    )
    assert result.phonons is None and result.ionic is None
    assert "not translation-invariant" in (result.refusal or "")
    assert result.summary()["phonons"] is None
