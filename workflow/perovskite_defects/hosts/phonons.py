"""Gamma-point (and supercell-commensurate) phonons of a host with phonopy.

Usable on any host file: give a pymatgen ``Structure`` (the unit cell), a supercell matrix
and a function that returns the forces (eV/Å) on the atoms of a displaced supercell; any
engine can provide it (:class:`perovskite_defects.engines.cp2k_response.Cp2kResponseRunner`
is the CP2K one). phonopy does the physics: symmetry-reduced displacements, force
constants (symmetrised for translational invariance), dynamical matrices and modulations.

Units: Å, eV/Å for forces, THz (cyclic frequency, phonopy's default) for frequencies;
imaginary frequencies are reported as negative numbers, phonopy's convention.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from phonopy import Phonopy
from phonopy.harmonic.dynmat_to_fc import get_commensurate_points
from pymatgen.core import Structure
from pymatgen.io.phonopy import get_phonopy_structure, get_pmg_structure

#: Largest sum of the forces of a displaced cell (eV/Å) accepted as grid noise
FORCE_DRIFT_TOLERANCE = 0.01

#: Forces (eV/Å, shape (n_atoms, 3)) on a displaced supercell; ``label`` names the run
#: (e.g. "disp-003") so that an engine can keep one folder per displacement.
ForcesFunction = Callable[[Structure, str], np.ndarray]

#: Modes below this magnitude (THz) count as zero (acoustic at Gamma, numerical noise).
ZERO_FREQUENCY_THZ = 0.05

#: Finite-displacement amplitude (Å); phonopy's default for VASP, small enough for the
#: harmonic regime and large enough that grid noise in the forces stays small.
DEFAULT_DISPLACEMENT = 0.01


class PhononError(ValueError):
    """Bad input to a phonon calculation; the message names what is wrong."""


@dataclass
class GammaPhonons:
    """Phonons at Gamma of the unit cell, from supercell force constants.

    Attributes:
        frequencies: (3N,) frequencies in THz, ascending; negative = imaginary.
        eigenvectors: (3N, 3N) complex, column m is mode m (phonopy's convention: the
            eigenvectors of the mass-weighted dynamical matrix, atom-major: x1 y1 z1 x2...).
        masses: (N,) atomic masses in amu (phonopy's table).
        species: element symbols of the unit cell, in order.
        supercell_matrix: 3x3 integer matrix of the supercell the forces came from.
        commensurate_lowest: lowest frequency (THz) at every q-point commensurate with the
            supercell, as {"qa qb qc": THz} (fractions of the unit cell's reciprocal
            vectors); zone-boundary instabilities (octahedral tilts at M and R of a cubic
            perovskite in a 2x2x2 supercell) show up here, not at Gamma.
        phonon: the phonopy object (force constants set), for modulations and further use.
    """

    frequencies: np.ndarray
    eigenvectors: np.ndarray
    masses: np.ndarray
    species: list[str]
    supercell_matrix: np.ndarray
    commensurate_lowest: dict[str, float] = field(default_factory=dict)
    phonon: Phonopy | None = None

    @property
    def lowest(self) -> float:
        """Lowest Gamma frequency (THz; negative = imaginary)."""
        return float(self.frequencies.min())

    def imaginary_modes(self, tolerance: float = ZERO_FREQUENCY_THZ) -> list[int]:
        """Indices of Gamma modes with an imaginary frequency beyond ``tolerance`` THz."""
        return [int(i) for i in np.flatnonzero(self.frequencies < -tolerance)]

    def acoustic_modes(self) -> list[int]:
        """The three Gamma modes closest to a rigid translation of the cell.

        Chosen by overlap with the mass-weighted uniform translations rather than by
        frequency, so that a soft optical mode is never mistaken for an acoustic one.
        """
        n = len(self.masses)
        sqrt_m = np.sqrt(self.masses)
        translations = np.zeros((3 * n, 3))
        for axis in range(3):
            translations[axis::3, axis] = sqrt_m
        translations /= np.linalg.norm(translations, axis=0)
        overlap = np.sum(np.abs(translations.T @ self.eigenvectors) ** 2, axis=0)
        return sorted(int(i) for i in np.argsort(overlap)[-3:])

    def summary(self) -> dict[str, Any]:
        """JSON-ready numbers (THz)."""
        return {
            "frequencies_thz": [round(float(f), 5) for f in self.frequencies],
            "lowest_thz": round(self.lowest, 5),
            "imaginary_modes": self.imaginary_modes(),
            "acoustic_modes": self.acoustic_modes(),
            "commensurate_lowest_thz": self.commensurate_lowest,
            "supercell_matrix": self.supercell_matrix.tolist(),
            "species": self.species,
        }


def make_phonopy(
    structure: Structure, supercell_matrix: Sequence[Sequence[int]] | Sequence[int]
) -> Phonopy:
    """A phonopy object for the unit cell ``structure`` (taken as the primitive cell)."""
    matrix = np.asarray(supercell_matrix, dtype=int)
    if matrix.shape == (3,):
        matrix = np.diag(matrix)
    if matrix.shape != (3, 3) or round(abs(np.linalg.det(matrix))) < 1:
        raise PhononError(
            f"supercell matrix must be 3 integers or a non-singular 3x3, got {matrix.tolist()}"
        )
    # "P": the structure itself is the primitive cell (phonopy 4 would otherwise reduce it)
    return Phonopy(get_phonopy_structure(structure), supercell_matrix=matrix, primitive_matrix="P")


def displaced_supercells(
    structure: Structure,
    supercell_matrix: Sequence[Sequence[int]] | Sequence[int],
    distance: float = DEFAULT_DISPLACEMENT,
) -> tuple[Phonopy, list[Structure]]:
    """phonopy's symmetry-reduced displaced supercells (+/- where symmetry needs both)."""
    if not 0.0 < distance < 0.1:
        raise PhononError(f"displacement {distance} Å is outside (0, 0.1) Å")
    phonon = make_phonopy(structure, supercell_matrix)
    phonon.generate_displacements(distance=distance, is_plusminus="auto")
    cells = [get_pmg_structure(cell) for cell in phonon.supercells_with_displacements or []]
    return phonon, cells


def perfect_supercell(phonon: Phonopy) -> Structure:
    """The undisplaced supercell of ``phonon`` (same atom order as the displaced ones)."""
    return get_pmg_structure(phonon.supercell)


def gamma_phonons(
    structure: Structure,
    supercell_matrix: Sequence[Sequence[int]] | Sequence[int],
    forces: ForcesFunction,
    distance: float = DEFAULT_DISPLACEMENT,
) -> GammaPhonons:
    """Displacements -> engine forces -> force constants -> Gamma phonons.

    ``forces(supercell, label)`` is called once per symmetry-distinct displacement.
    """
    phonon, cells = displaced_supercells(structure, supercell_matrix, distance)
    sets = []
    for i, cell in enumerate(cells):
        f = np.asarray(forces(cell, f"disp-{i + 1:03d}"), dtype=float)
        if f.shape != (len(cell), 3):
            raise PhononError(f"forces of disp-{i + 1:03d}: shape {f.shape}, need ({len(cell)}, 3)")
        sets.append(f)
    return phonons_from_forces(phonon, sets)


def check_force_drift(force_sets: Sequence[np.ndarray]) -> None:
    """PhononError when the forces of a displaced cell do not sum to ~zero.

    A translation-invariant energy gives forces that sum to zero; grid noise leaves a few
    meV/Å (CsPbI3, CP2K 250 Ry: <= 7e-4 eV/Å). phonopy's symmetrisation would silently
    project a large drift away, and with it the evidence that the forces are wrong:
    measured on NaCl with CP2K's semicore Na GTH-q9 potential (250-800 Ry, REL_CUTOFF
    40-120, 7x7x7 k-mesh, 2026-12-01), one Na moved 0.01 Å felt 0.28-0.42 eV/Å while the
    cell's forces summed to 0.27-0.40 eV/Å, and the "TO mode" came out at 12.7-15.1 THz
    against 4.92 THz measured. Tolerance: :data:`FORCE_DRIFT_TOLERANCE` or 10 % of the
    largest force, whichever is larger.
    """
    for i, forces in enumerate(force_sets):
        f = np.asarray(forces, dtype=float)
        drift = float(np.linalg.norm(f.sum(axis=0)))
        largest = float(np.abs(f).max(initial=0.0))
        if drift > max(FORCE_DRIFT_TOLERANCE, 0.1 * largest):
            raise PhononError(
                f"forces of disp-{i + 1:03d} sum to {drift:.3g} eV/Å (largest force "
                f"{largest:.3g} eV/Å): the engine's energy is not translation-invariant at "
                "these settings, so no phonons are computed from them"
            )


def phonons_from_forces(phonon: Phonopy, force_sets: Sequence[np.ndarray]) -> GammaPhonons:
    """Gamma phonons from the forces of ``phonon``'s displaced supercells (eV/Å).

    The force constants are symmetrised (phonopy's translational-invariance and
    index-permutation projection), so the acoustic modes come out at ~0 THz.
    """
    check_force_drift(force_sets)
    phonon.forces = np.asarray(force_sets, dtype=float)
    phonon.produce_force_constants(show_drift=False)
    phonon.symmetrize_force_constants(show_drift=False)
    gamma = phonon.run_qpoints([[0.0, 0.0, 0.0]], with_eigenvectors=True)
    if gamma.eigenvectors is None:
        raise PhononError("phonopy returned no eigenvectors at Gamma")
    freqs, vecs = gamma.frequencies[0], gamma.eigenvectors[0]
    lowest: dict[str, float] = {}
    for q in get_commensurate_points(phonon.supercell_matrix):
        key = " ".join(f"{x:g}" for x in np.round(q, 6) + 0.0)
        qpoints = phonon.run_qpoints([q])
        lowest[key] = round(float(np.min(qpoints.frequencies[0])), 5)
    primitive = phonon.primitive
    return GammaPhonons(
        frequencies=np.asarray(freqs, dtype=float),
        eigenvectors=np.asarray(vecs),
        masses=np.asarray(primitive.masses, dtype=float),
        species=list(primitive.symbols),
        supercell_matrix=np.asarray(phonon.supercell_matrix, dtype=int),
        commensurate_lowest=lowest,
        phonon=phonon,
    )


def modulated_structure(
    phonons: GammaPhonons,
    mode: int,
    amplitude: float,
    qpoint: Sequence[float] = (0.0, 0.0, 0.0),
    dimension: Sequence[int] | Sequence[Sequence[int]] | None = None,
) -> Structure:
    """The structure displaced along phonon ``mode`` at ``qpoint`` (phonopy modulation).

    ``amplitude`` is phonopy's modulation amplitude (Å sqrt(amu)); ``dimension`` is the
    cell the modulation lives in (default: the supercell of the force constants, which
    holds every commensurate q-point). For the unstable-host loop: displace along the
    imaginary mode, relax, recompute phonons.
    """
    phonon = phonons.phonon
    if phonon is None:
        raise PhononError("these phonons carry no phonopy object (no force constants)")
    n_modes = 3 * len(phonons.masses)
    if not 0 <= mode < n_modes:
        raise PhononError(f"mode {mode} is out of range 0..{n_modes - 1}")
    dim = phonons.supercell_matrix if dimension is None else np.asarray(dimension, dtype=int)
    modulation = phonon.run_modulations(dim, [[list(qpoint), mode, amplitude, 0.0]])
    return get_pmg_structure(modulation.modulated_supercells[0])
