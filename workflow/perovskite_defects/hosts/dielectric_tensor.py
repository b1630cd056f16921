"""The dielectric tensor of a host, computed: electronic (eps_inf) + ionic parts.

Inputs come from an engine through two callables (see
:class:`perovskite_defects.engines.cp2k_response.Cp2kResponseRunner`):

- finite-field runs of the perfect supercell at +/-E along x, y, z: the forces give the
  Born effective charges, Z*_k,ab = dF_k,b / dE_a (e; F in eV/Å, E in V/Å), and the
  Berry-phase dipole gives eps_inf_ab = delta_ab + (1 / (eps0 V)) d mu_a / dE_b with the
  ions clamped;
- zero-field runs of phonopy's displaced supercells: Gamma phonons
  (:mod:`perovskite_defects.hosts.phonons`).

The ionic part (Gonze & Lee, Phys. Rev. B 55, 10355 (1997), eq. 55; SI form):

    eps_ion_ab = 1 / (eps0 V) sum_m S_m,a S_m,b / omega_m^2,
    S_m,a = sum_k,b Z*_k,ab e_m,kb / sqrt(M_k)      (mode-effective charge, e / sqrt(amu))

with e_m the normalised eigenvectors of the mass-weighted dynamical matrix, V the unit
cell volume and omega_m = 2 pi f_m (f_m in THz); the three acoustic modes are left out.
It is undefined (a static displacement grows without bound) when an optical mode is
imaginary or zero: such a host gets :class:`IonicPartUndefinedError`, not a number.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from phonopy.structure.symmetry import symmetrize_borns_and_epsilon
from pymatgen.core import Structure
from pymatgen.io.phonopy import get_phonopy_structure

from perovskite_defects.hosts.field_symmetry import atom_mapping, field_axes, full_tensors
from perovskite_defects.hosts.phonons import (
    DEFAULT_DISPLACEMENT,
    ZERO_FREQUENCY_THZ,
    ForcesFunction,
    GammaPhonons,
    PhononError,
    displaced_supercells,
    gamma_phonons,
    perfect_supercell,
    phonons_from_forces,
)

# CODATA 2018 (exact e; eps0 and amu as recommended values)
ELEMENTARY_CHARGE = 1.602176634e-19  # C
VACUUM_PERMITTIVITY = 8.8541878128e-12  # F/m
AMU = 1.66053906660e-27  # kg
#: eps0 in e / (V Å): the permittivity in the units of the public interface.
EPS0_E_PER_V_ANGSTROM = VACUUM_PERMITTIVITY * 1e-10 / ELEMENTARY_CHARGE
#: e^2 / (eps0 * Å^3 * amu * (2 pi THz)^2): eps_ion for S^2 in e^2/amu, V in Å^3, f in THz.
IONIC_PREFACTOR = ELEMENTARY_CHARGE**2 / (
    VACUUM_PERMITTIVITY * 1e-30 * AMU * (2.0 * math.pi * 1e12) ** 2
)

AXES = "xyz"

log = logging.getLogger(__name__)

#: One finite-field run: (structure, label, field vector in V/Å) -> (forces eV/Å, dipole e Å)
FieldRun = Callable[[Structure, str, np.ndarray], tuple[np.ndarray, np.ndarray]]


class IonicPartUndefinedError(ValueError):
    """The host has an imaginary or zero optical Gamma mode: no ionic dielectric part."""


def born_charges_from_forces(
    forces_plus: Sequence[np.ndarray], forces_minus: Sequence[np.ndarray], field: float
) -> np.ndarray:
    """Z* rows (N, n_fields, 3) in e, row a = field direction: (F+_k,b - F-_k,b) / (2 E).

    ``forces_plus[a]`` are the forces (eV/Å) under the field +E along the a-th measured
    axis (V/Å); with all three axes in order the result is the full Z* (N, 3, 3).
    """
    plus = np.asarray(forces_plus, dtype=float)  # (3, N, 3): field axis, atom, force axis
    minus = np.asarray(forces_minus, dtype=float)
    return np.transpose((plus - minus) / (2.0 * field), (1, 0, 2))


def eps_inf_from_dipoles(
    dipoles_plus: Sequence[np.ndarray],
    dipoles_minus: Sequence[np.ndarray],
    field: float,
    lattice: np.ndarray,
    axes: Sequence[int] = (0, 1, 2),
) -> np.ndarray:
    """Columns ``axes`` of eps_inf, shape (len(axes), 3), from Berry-phase dipoles (e Å).

    ``dipoles_plus[i]`` is the dipole under +E (V/Å) along axis ``axes[i]``. With the
    default axes the rows are the three columns of the full tensor, i.e. its transpose
    (eps_inf is symmetric). The Berry-phase dipole is defined modulo e times a lattice
    vector; the difference is folded back to its shortest representative before use.
    """
    lattice = np.asarray(lattice, dtype=float)
    volume = abs(np.linalg.det(lattice))
    columns = np.zeros((len(axes), 3))
    for i, b in enumerate(axes):
        delta = np.asarray(dipoles_plus[i], float) - np.asarray(dipoles_minus[i], float)
        frac = delta @ np.linalg.inv(lattice)
        delta = (frac - np.round(frac)) @ lattice
        columns[i] = delta / (2.0 * field) / (EPS0_E_PER_V_ANGSTROM * volume)
        columns[i, b] += 1.0
    return columns


def acoustic_sum_rule(born: np.ndarray) -> tuple[np.ndarray, float]:
    """Z* with the charge-neutrality (acoustic) sum rule imposed, and its violation.

    The violation is the largest element of sum_k Z*_k (e) before the correction, which
    subtracts the mean over atoms: the simplest correction, as in phonopy and abipy.
    """
    total = born.sum(axis=0)
    return born - total / len(born), float(np.abs(total).max())


def ionic_tensor(
    born: np.ndarray, phonons: GammaPhonons, volume: float
) -> tuple[np.ndarray, np.ndarray]:
    """eps_ion (3x3) and the mode-effective charges S (3N, 3) in e/sqrt(amu).

    ``born``: Z* (N, 3, 3) of the unit-cell atoms (phonon order); ``volume`` in Å^3.
    Raises :class:`IonicPartUndefinedError` when an optical mode is imaginary or ~zero.
    """
    n = len(phonons.masses)
    if born.shape != (n, 3, 3):
        raise ValueError(f"Born charges have shape {born.shape}, need ({n}, 3, 3)")
    acoustic = set(phonons.acoustic_modes())
    optical = [m for m in range(3 * n) if m not in acoustic]
    bad = [m for m in optical if phonons.frequencies[m] < ZERO_FREQUENCY_THZ]
    if bad:
        listed = ", ".join(f"{phonons.frequencies[m]:.3f}" for m in bad)
        raise IonicPartUndefinedError(
            f"optical Gamma mode(s) at {listed} THz (negative = imaginary): the ionic "
            "dielectric tensor is undefined for a dynamically unstable host"
        )
    # displacement pattern of mode m: e_m,kb / sqrt(M_k); S_m,a = sum_kb Z*_k,ab u_m,kb
    vecs = phonons.eigenvectors.reshape(n, 3, 3 * n) / np.sqrt(phonons.masses)[:, None, None]
    charges = np.einsum("kab,kbm->ma", born, vecs)
    eps = np.zeros((3, 3))
    for m in optical:
        s = charges[m]
        eps += np.real(np.outer(s, np.conj(s))) / phonons.frequencies[m] ** 2
    eps *= IONIC_PREFACTOR / volume
    return 0.5 * (eps + eps.T), charges


@dataclass
class DielectricResult:
    """Electronic, ionic and total tensors of a host, with what they came from."""

    electronic: np.ndarray
    born_charges: np.ndarray
    species: list[str]
    asr_violation: float
    phonons: GammaPhonons | None
    ionic: np.ndarray | None = None
    refusal: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> np.ndarray | None:
        return None if self.ionic is None else self.electronic + self.ionic

    def summary(self) -> dict[str, Any]:
        """JSON-ready dict: tensors (dimensionless), Z* (e), phonons (THz)."""

        def r(a: np.ndarray | None) -> list | None:
            return None if a is None else np.round(a, 5).tolist()

        return {
            "electronic": r(self.electronic),
            "ionic": r(self.ionic),
            "total": r(self.total),
            "ionic_refused": self.refusal,
            "born_charges": {
                f"{i} {el}": r(z)
                for i, (el, z) in enumerate(zip(self.species, self.born_charges, strict=True))
            },
            "acoustic_sum_rule_violation_e": round(self.asr_violation, 5),
            "phonons": None if self.phonons is None else self.phonons.summary(),
            "settings": self.settings,
        }


def field_response(
    supercell: Structure, run: FieldRun, field: float, axes: Sequence[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Raw Z* (supercell atoms) and eps_inf from finite-field runs at +/-E.

    Only the field axes the supercell's symmetry does not relate are run
    (:func:`~perovskite_defects.hosts.field_symmetry.field_axes`: x alone in a cubic
    cell, 2 runs; all three in a triclinic one, 6 runs); the other rows follow from the
    symmetry operations. ``axes`` overrides the choice.
    """
    mapping = atom_mapping(supercell)
    axes = list(field_axes(supercell, mapping=mapping) if axes is None else axes)
    forces: dict[str, list[np.ndarray]] = {"+": [], "-": []}
    dipoles: dict[str, list[np.ndarray]] = {"+": [], "-": []}
    for a in axes:
        for sign, s in (("+", 1.0), ("-", -1.0)):
            vector = np.zeros(3)
            vector[a] = s * field
            f, d = run(supercell, f"field{sign}{AXES[a]}", vector)
            forces[sign].append(np.asarray(f))
            dipoles[sign].append(np.asarray(d))
    rows = born_charges_from_forces(forces["+"], forces["-"], field)
    columns = eps_inf_from_dipoles(
        dipoles["+"], dipoles["-"], field, supercell.lattice.matrix, axes
    )
    return full_tensors(supercell, axes, rows, columns, mapping=mapping)


def compute_dielectric(
    structure: Structure,
    supercell_matrix: Sequence[Sequence[int]] | Sequence[int],
    run: FieldRun,
    field: float,
    distance: float = DEFAULT_DISPLACEMENT,
    phonon_forces: ForcesFunction | None = None,
    phonon_matrix: Sequence[Sequence[int]] | Sequence[int] = (1, 1, 1),
) -> DielectricResult:
    """Electronic + ionic dielectric tensor of the unit cell ``structure``.

    The finite-field runs (Z*, eps_inf) use the Gamma-only supercell ``supercell_matrix``;
    Z* of the supercell get the acoustic sum rule, then phonopy's site-symmetry projection
    maps them onto the unit-cell atoms and symmetrises eps_inf. The Gamma phonons come
    from ``phonon_forces`` on phonopy's displaced ``phonon_matrix`` cells (the unit cell
    by default: Gamma needs no supercell), computed with the engine's own k-mesh. Without
    ``phonon_forces`` the zero-field runs of ``run`` in the Gamma-only response supercell
    give them instead; measured on cubic CsPbI3 (CP2K, DZVP, 250 Ry, 2026-12-01) that
    coarse sampling turns the Pb and I optical modes imaginary (-2.0 and -1.3 THz where the
    unit cell with a 4x4x4 k-mesh gives +0.80 and +0.54 THz), so it is kept for tests only.
    """
    phonon, cells = displaced_supercells(structure, supercell_matrix, distance)
    supercell = perfect_supercell(phonon)
    born_super, eps_raw = field_response(supercell, run, field)
    born_super, violation = acoustic_sum_rule(born_super)
    log.info("Born charges: acoustic sum rule violated by %.4f e before correction", violation)
    born, eps_inf = symmetrize_borns_and_epsilon(
        born_super,
        eps_raw,
        get_phonopy_structure(supercell),
        primitive=get_phonopy_structure(structure),
    )
    phonons: GammaPhonons | None = None
    refusal = None
    try:
        if phonon_forces is None:
            zero = np.zeros(3)
            sets = [run(cell, f"disp-{i + 1:03d}", zero)[0] for i, cell in enumerate(cells)]
            phonons = phonons_from_forces(phonon, sets)
        else:
            phonons = gamma_phonons(structure, phonon_matrix, phonon_forces, distance)
    except PhononError as err:
        refusal = f"no Gamma phonons: {err}"
    if phonon_forces is None:
        phonon_cell = np.asarray(phonon.supercell_matrix)
    else:
        phonon_cell = np.asarray(phonon_matrix)
        phonon_cell = np.diag(phonon_cell) if phonon_cell.ndim == 1 else phonon_cell
    result = DielectricResult(
        electronic=np.asarray(eps_inf),
        born_charges=np.asarray(born),
        species=[site.specie.symbol for site in structure],
        asr_violation=violation,
        phonons=phonons,
        settings={
            "supercell_matrix": np.asarray(phonon.supercell_matrix).tolist(),
            "phonon_cell_matrix": phonon_cell.tolist(),
            "phonon_forces": "Gamma-only response supercell" if phonon_forces is None else "engine",
            "field_v_per_angstrom": field,
            "displacement_angstrom": distance,
            "eps_inf_unsymmetrised": np.round(eps_raw, 5).tolist(),
        },
    )
    if phonons is None:
        result.refusal = refusal
        return result
    try:
        result.ionic, _ = ionic_tensor(result.born_charges, phonons, structure.volume)
    except IonicPartUndefinedError as err:
        result.refusal = str(err)
    return result
