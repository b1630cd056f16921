"""A dynamically stable host: relax, check the Gamma phonons of the supercell, follow
imaginary modes, repeat.

The loop (:func:`check_stability`), for a host supercell:

1. ``reference/``: the structure as given, relaxed within its own symmetry (cell and
   ions; a cubic prototype stays cubic). Its energy is what the distortion lowers.
2. Round 1 starts from that structure with every atom displaced at random (``rattle``,
   seeded), so that no symmetry holds the relaxation at a saddle point.
3. Each round ``round_k/``: ``relax/`` (cell and ions, no symmetry kept) -> the relaxed
   structure symmetrised to the space group spglib finds at ``symprec`` (so phonopy
   needs few displacements) -> ``perfect/`` (forces and energy of that structure) and
   ``disp_NNN/`` (phonopy's symmetry-reduced displacements; forces minus the perfect
   cell's residual forces) -> phonopy Gamma phonons of the supercell, i.e. the phonons
   at every q-point of the parent cell that the supercell holds.
4. No mode below ``tolerance_thz``: stable, stop. Otherwise the next round starts from the
   symmetrised structure displaced along every such mode (a phonopy modulation), up to
   ``max_rounds``.

Every sub-calculation has its own folder and is reused when its record exists and is
converged (the calculator's job), so a killed check resumes where it stopped; the whole
loop is deterministic given those records. The result goes to ``stability.json``.

The DFT is behind :class:`StabilityCalculator` (relax + forces): the engine adapter in
:mod:`perovskite_defects.hosts.stability_run` for the study's engine, or a stand-in in
the tests. Units: Å, eV, eV/Å, THz (negative = imaginary, phonopy's convention).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from pymatgen.core import Structure

from perovskite_defects.hosts.phonons import (
    DEFAULT_DISPLACEMENT,
    GammaPhonons,
    PhononError,
    displaced_supercells,
    phonons_from_forces,
)

log = logging.getLogger("perovskite_defects")

RESULT_FILE = "stability.json"
B_SITE_ELEMENTS = ("Pb", "Sn", "Ge")

#: Glazer tilt system of each space group that simple tilting of rigid octahedra gives
#: from the cubic aristotype Pm-3m: Howard, C. J. & Stokes, H. T., "Group-theoretical
#: analysis of octahedral tilting in perovskites", Acta Cryst. B54, 782-789 (1998), the
#: 15 tilt systems of their analysis (one space group each, all different, so the map
#: can be inverted for a perovskite whose only distortion is tilting).
HOWARD_STOKES_TILTS: dict[int, str] = {
    221: "a0a0a0",  # Pm-3m
    127: "a0a0c+",  # P4/mbm
    139: "a0b+b+",  # I4/mmm
    204: "a+a+a+",  # Im-3
    71: "a+b+c+",  # Immm
    140: "a0a0c-",  # I4/mcm
    74: "a0b-b-",  # Imma
    167: "a-a-a-",  # R-3c
    12: "a0b-c-",  # C2/m
    15: "a-b-b-",  # C2/c
    2: "a-b-c-",  # P-1
    63: "a0b+c-",  # Cmcm
    62: "a+b-b-",  # Pnma
    11: "a+b-c-",  # P2_1/m
    137: "a+a+c-",  # P4_2/nmc
}


class StabilityError(ValueError):
    """Bad input to the stability check; the message names the setting or file."""


@dataclass(frozen=True)
class StabilitySettings:
    """Settings of the check (the ``host.stability`` config block).

    Attributes:
        tolerance_thz: modes below this frequency (THz, negative) count as imaginary;
            shallower ones are taken as numerical noise of the finite differences.
        max_rounds: relax + phonon rounds before giving up (the result then says
            ``stable: false``).
        rattle_amplitude: standard deviation (Å) of the random displacement of every atom
            before the first relaxation.
        rattle_seed: seed of that displacement (the check is reproducible).
        modulation_amplitude: largest atomic displacement (Å) of the step along the
            imaginary modes between rounds.
        displacement: phonopy's finite displacement (Å).
        symprec: distance tolerance (Å) of spglib for the space group and symmetrisation.
            0.1 Å: a relaxation stopped at 0.01 eV/Å leaves an atom up to F/k ~ 0.04-0.1
            Å off its symmetric site along a soft mode (k ~ 0.1-0.25 eV/Å^2), and a
            structure left in P1 would need 6 displacements per atom (240 for 40 atoms);
            real tilts move the halides by tenths of an Å, and a tilt snapped back shows
            up again as an imaginary mode.
        relax_cell: relax cell and ions (True), or the ions only at the given cell (False:
            the cell as built, e.g. a measured or converged lattice; also where the cutoff
            is too low for a trustworthy stress).
    """

    tolerance_thz: float = -0.3
    max_rounds: int = 4
    rattle_amplitude: float = 0.05
    rattle_seed: int = 0
    modulation_amplitude: float = 0.15
    displacement: float = DEFAULT_DISPLACEMENT
    symprec: float = 0.1
    relax_cell: bool = True

    def __post_init__(self) -> None:
        checks = (
            ("tolerance_thz", self.tolerance_thz <= 0.0, "must be <= 0 THz"),
            ("max_rounds", self.max_rounds >= 1, "must be at least 1"),
            ("rattle_amplitude", 0.0 < self.rattle_amplitude <= 0.3, "must be in (0, 0.3] Å"),
            (
                "modulation_amplitude",
                0.0 < self.modulation_amplitude <= 0.5,
                "must be in (0, 0.5] Å",
            ),
            ("displacement", 0.0 < self.displacement < 0.1, "must be in (0, 0.1) Å"),
            ("symprec", 0.0 < self.symprec <= 0.2, "must be in (0, 0.2] Å"),
        )
        for key, ok, what in checks:
            if not ok:
                raise StabilityError(f"host.stability.{key}: {getattr(self, key)!r} {what}")

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> StabilitySettings:
        """Settings from a config block (unknown keys refused; ``check`` ignored)."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known - {"check"})
        if unknown:
            raise StabilityError(
                f"host.stability: unknown key(s) {', '.join(unknown)}; allowed: check, "
                + ", ".join(sorted(known))
            )
        return cls(**{k: v for k, v in values.items() if k in known})


class StabilityCalculator(Protocol):
    """The DFT behind the loop. Both methods reuse ``run_dir`` when it holds a converged
    result of an earlier (killed) check, and keep the atom order."""

    def relax(
        self, structure: Structure, run_dir: Path, keep_symmetry: bool, vary_cell: bool
    ) -> tuple[Structure, float]:
        """Relaxed structure (ions, and the cell when ``vary_cell``) and its energy (eV)."""
        ...

    def forces(self, structure: Structure, run_dir: Path) -> tuple[np.ndarray, float]:
        """Forces (eV/Å, shape (n, 3)) on the atoms of ``structure`` and its energy (eV)."""
        ...


@dataclass
class StabilityRound:
    """One relax + phonon round (energies in eV, frequencies in THz)."""

    round: int
    energy: float
    space_group: str
    space_group_number: int
    n_displacements: int
    max_residual_force: float
    lowest_frequency_thz: float
    n_imaginary: int
    frequencies_thz: list[float]
    followed_modes: list[int] = field(default_factory=list)


@dataclass
class HostStability:
    """Result of :func:`check_stability` (``stability.json``).

    Attributes:
        stable: no mode below ``tolerance_thz`` in the last round.
        rounds: rounds run.
        lowest_frequency_thz: lowest Gamma frequency of the supercell in the last round.
        n_imaginary: modes below the tolerance in the last round.
        space_group / space_group_number: of the final structure (spglib at ``symprec``).
        tilt_pattern: Glazer notation (Howard & Stokes 1998) or None where it cannot be
            named unambiguously (see :func:`glazer_tilt`).
        formula_units: formula units in the supercell (B-site atoms of a perovskite).
        energy_per_fu_vs_reference: E(final) - E(reference), per formula unit (eV).
        reference_energy: energy of the given structure relaxed in its own symmetry (eV).
        structure: the final (symmetrised) structure, ``Structure.as_dict()``.
        history: every round.
        settings: the settings used.
    """

    stable: bool
    rounds: int
    lowest_frequency_thz: float
    n_imaginary: int
    space_group: str
    space_group_number: int
    tilt_pattern: str | None
    formula_units: int
    energy_per_fu_vs_reference: float
    reference_energy: float
    reference_space_group: str
    structure: dict[str, Any]
    history: list[StabilityRound]
    settings: dict[str, Any]

    def final_structure(self) -> Structure:
        return Structure.from_dict(self.structure)

    def summary(self) -> dict[str, Any]:
        """The headline numbers (no structure, no per-round frequencies)."""
        keys = ["stable", "rounds", "lowest_frequency_thz", "n_imaginary", "space_group"]
        keys += ["space_group_number", "tilt_pattern", "energy_per_fu_vs_reference"]
        return {k: getattr(self, k) for k in keys} | {"reference": self.reference_space_group}

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def from_json(cls, path: str | Path) -> HostStability:
        p = Path(path)
        if not p.is_file():
            raise StabilityError(f"{p}: stability result is missing")
        data = json.loads(p.read_text())
        data["history"] = [StabilityRound(**r) for r in data["history"]]
        return cls(**data)


# --------------------------------------------------------------------------- symmetry


def space_group(structure: Structure, symprec: float) -> tuple[str, int]:
    """International symbol and number of ``structure`` (spglib via pymatgen)."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    analyzer = SpacegroupAnalyzer(structure, symprec=symprec)
    return analyzer.get_space_group_symbol(), int(analyzer.get_space_group_number())


def glazer_tilt(structure: Structure, space_group_number: int) -> str | None:
    """The Glazer tilt system from the space group (Howard & Stokes 1998), or None.

    Named only for a single-perovskite ABX3 with one B and one X element and an atomic A
    cation: the table maps the groups that octahedral tilting alone gives, and in an
    alloy (SQS), a cell with molecules or a group outside the table the group does not
    say which tilts are present.
    """
    elements = {site.specie.symbol for site in structure}
    b = [el for el in elements if el in B_SITE_ELEMENTS]
    x = [el for el in elements if el in ("I", "Br", "Cl", "F")]
    if len(b) != 1 or len(x) != 1 or len(elements) != 3:
        return None
    counts = structure.composition.get_el_amt_dict()
    if counts[x[0]] != 3 * counts[b[0]]:
        return None
    return HOWARD_STOKES_TILTS.get(space_group_number)


def symmetrized(structure: Structure, symprec: float) -> Structure:
    """``structure`` with cell and positions made exact in the space group found at
    ``symprec``; the cell setting and the atom order are kept.

    ASE's ``refine_symmetry`` (spglib's operations averaged over) is used rather than
    pymatgen's refined structure, which would change the cell to the standard setting
    and reorder the atoms (the defects address atoms by index in the host).
    """
    from ase.spacegroup.symmetrize import refine_symmetry
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(structure)
    refine_symmetry(atoms, symprec=symprec, verbose=False)
    return AseAtomsAdaptor.get_structure(atoms)


def rattled(structure: Structure, amplitude: float, seed: int) -> Structure:
    """Every atom displaced by a Gaussian random vector (std ``amplitude`` Å, seeded)."""
    rng = np.random.default_rng(seed)
    shift = rng.normal(0.0, amplitude, (len(structure), 3))
    return Structure(
        structure.lattice,
        structure.species,
        structure.cart_coords + shift,
        coords_are_cartesian=True,
    )


def keep_symmetry_name(structure: Structure, tol: float = 1e-4) -> str | None:
    """CP2K cell symmetry of an orthogonal cell ("CUBIC", "TETRAGONAL_AB"...), else None."""
    a, b, c = structure.lattice.abc
    if any(abs(angle - 90.0) > 1e-3 for angle in structure.lattice.angles):
        return None
    same = (abs(a - b) < tol, abs(b - c) < tol, abs(a - c) < tol)
    if all(same):
        return "CUBIC"
    if same[0]:
        return "TETRAGONAL_AB"
    if same[1]:
        return "TETRAGONAL_BC"
    if same[2]:
        return "TETRAGONAL_AC"
    return "ORTHORHOMBIC"


def formula_units(structure: Structure) -> int:
    """B-site atoms of a perovskite, else the factor of the reduced formula."""
    n_b = sum(site.specie.symbol in B_SITE_ELEMENTS for site in structure)
    if n_b:
        return n_b
    return int(structure.composition.get_reduced_composition_and_factor()[1])


# --------------------------------------------------------------------------- phonons


def supercell_phonons(
    structure: Structure, calculator: StabilityCalculator, round_dir: Path, displacement: float
) -> tuple[GammaPhonons, float, float, int]:
    """Gamma phonons of the supercell ``structure`` itself (phonopy, identity matrix).

    Returns (phonons, energy of the perfect cell in eV, its largest residual force in
    eV/Å, number of displacements). The residual forces of the perfect cell are
    subtracted from every displaced set: the relaxation leaves forces up to its threshold
    (0.05 eV/Å), which over a 0.01 Å step would otherwise fake force constants of
    several eV/Å^2.
    """
    phonon, cells = displaced_supercells(structure, [1, 1, 1], displacement)
    residual, energy = calculator.forces(structure, round_dir / "perfect")
    residual = np.asarray(residual, dtype=float)
    sets = []
    for i, cell in enumerate(cells):
        forces, _ = calculator.forces(cell, round_dir / f"disp_{i + 1:03d}")
        forces = np.asarray(forces, dtype=float)
        if forces.shape != (len(cell), 3):
            raise PhononError(f"{round_dir}/disp_{i + 1:03d}: forces of shape {forces.shape}")
        sets.append(forces - residual)
    max_residual = float(np.linalg.norm(residual, axis=1).max())
    return phonons_from_forces(phonon, sets), energy, max_residual, len(cells)


def follow_modes(phonons: GammaPhonons, modes: Sequence[int], max_displacement: float) -> Structure:
    """The structure displaced along ``modes`` (phonopy modulation at Gamma of the
    supercell, each mode with the same amplitude and phase), scaled so that the largest
    atomic displacement is ``max_displacement`` Å."""
    from pymatgen.io.phonopy import get_pmg_structure

    phonon = phonons.phonon
    if phonon is None or not modes:
        raise PhononError("no phonopy object or no mode to follow")
    identity = np.eye(3, dtype=int)
    specs = [[[0.0, 0.0, 0.0], int(m), 1.0, 0.0] for m in modes]
    modulation = phonon.run_modulations(identity, specs)
    displacement = np.real(np.sum(modulation.modulations, axis=0))  # (n, 3) Å, amplitude 1
    supercell = modulation.supercell
    largest = float(np.linalg.norm(displacement, axis=1).max())
    if largest < 1e-12:
        raise PhononError(f"modes {list(modes)} move no atom")
    start = get_pmg_structure(supercell)
    return Structure(
        start.lattice,
        start.species,
        start.cart_coords + displacement * (max_displacement / largest),
        coords_are_cartesian=True,
    )


# --------------------------------------------------------------------------- the loop


def check_stability(
    structure: Structure,
    calculator: StabilityCalculator,
    workdir: str | Path,
    settings: StabilitySettings | None = None,
) -> HostStability:
    """Bring a host supercell to a dynamically stable structure (see the module doc).

    Writes ``workdir/stability.json`` and returns the same record. A result that ends
    with imaginary modes after ``max_rounds`` is returned with ``stable=False`` (and a
    warning): the caller decides whether to go on with it.
    """
    settings = settings or StabilitySettings()
    workdir = Path(workdir)
    if len(structure) < 2:
        raise StabilityError(f"a host of {len(structure)} atom(s) has no phonons to check")
    species = [site.specie.symbol for site in structure]
    fu = formula_units(structure)
    keep = keep_symmetry_name(structure)
    reference, e_ref = calculator.relax(
        structure, workdir / "reference", keep is not None, settings.relax_cell
    )
    _check_species(reference, species, workdir / "reference")
    ref_group, _ = space_group(reference, settings.symprec)
    start = rattled(reference, settings.rattle_amplitude, settings.rattle_seed)
    history: list[StabilityRound] = []
    current = reference
    for k in range(1, settings.max_rounds + 1):
        entry, current, phonons = _one_round(k, start, calculator, workdir, settings, species)
        history.append(entry)
        soft = phonons.imaginary_modes(-settings.tolerance_thz)
        if not soft or k == settings.max_rounds:
            break
        entry.followed_modes = soft
        start = follow_modes(phonons, soft, settings.modulation_amplitude)
    last = history[-1]
    if last.n_imaginary:
        log.warning(
            "%s: %d imaginary mode(s) remain after %d rounds (lowest %.3f THz)",
            workdir, last.n_imaginary, last.round, last.lowest_frequency_thz,
        )  # fmt: skip
    result = HostStability(
        stable=last.n_imaginary == 0,
        rounds=last.round,
        lowest_frequency_thz=last.lowest_frequency_thz,
        n_imaginary=last.n_imaginary,
        space_group=last.space_group,
        space_group_number=last.space_group_number,
        tilt_pattern=glazer_tilt(current, last.space_group_number),
        formula_units=fu,
        energy_per_fu_vs_reference=round((last.energy - e_ref) / fu, 6),
        reference_energy=float(e_ref),
        reference_space_group=ref_group,
        structure=current.as_dict(),
        history=history,
        settings=asdict(settings),
    )
    workdir.mkdir(parents=True, exist_ok=True)
    result.to_json(workdir / RESULT_FILE)
    return result


def _one_round(
    k: int,
    start: Structure,
    calculator: StabilityCalculator,
    workdir: Path,
    settings: StabilitySettings,
    species: list[str],
) -> tuple[StabilityRound, Structure, GammaPhonons]:
    """Round ``k``: relax ``start``, symmetrise, Gamma phonons of the supercell."""
    round_dir = workdir / f"round_{k}"
    relaxed, _ = calculator.relax(start, round_dir / "relax", False, settings.relax_cell)
    _check_species(relaxed, species, round_dir / "relax")
    current = symmetrized(relaxed, settings.symprec)
    name, number = space_group(current, settings.symprec)
    phonons, energy, residual, n_disp = supercell_phonons(
        current, calculator, round_dir, settings.displacement
    )
    soft = phonons.imaginary_modes(-settings.tolerance_thz)
    log.info(
        "%s round %d: %s, lowest %.3f THz, %d mode(s) below %.2f THz, %d displacements",
        workdir, k, name, phonons.lowest, len(soft), settings.tolerance_thz, n_disp,
    )  # fmt: skip
    entry = StabilityRound(
        round=k,
        energy=float(energy),
        space_group=name,
        space_group_number=number,
        n_displacements=n_disp,
        max_residual_force=round(residual, 5),
        lowest_frequency_thz=round(phonons.lowest, 5),
        n_imaginary=len(soft),
        frequencies_thz=[round(float(f), 5) for f in phonons.frequencies],
    )
    return entry, current, phonons


def _check_species(structure: Structure, species: list[str], run_dir: Path) -> None:
    if [site.specie.symbol for site in structure] != species:
        raise StabilityError(f"{run_dir}: the calculation changed the atoms or their order")
    if not all(math.isfinite(x) for x in structure.cart_coords.ravel()):
        raise StabilityError(f"{run_dir}: non-finite coordinates")
