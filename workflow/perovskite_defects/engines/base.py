"""The engine-neutral calculation record: the one contract between engines and analysis.

Every engine parser turns a finished run folder into a :class:`CalcRecord`; everything
downstream (corrections, chemical potentials, thermodynamics, tables) reads only records.
Units are eV and Å throughout; engines convert at their parser.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


class EngineError(RuntimeError):
    """A DFT run failed, did not converge, or its output is missing or unreadable."""


@dataclass
class PotentialGrid:
    """Electrostatic potential on a regular grid.

    Attributes:
        lattice: 3x3 cell matrix in Å (rows are lattice vectors).
        data: potential energy of an electron in eV (VASP LOCPOT sign convention:
            strongly negative at the nuclei), shape (nx, ny, nz).
    """

    lattice: np.ndarray
    data: np.ndarray

    def planar_average(self, axis: int) -> np.ndarray:
        """Average over the two other axes; one value per grid plane along ``axis``."""
        other = tuple(i for i in range(3) if i != axis)
        return self.data.mean(axis=other)


@dataclass
class CalcRecord:
    """What one finished DFT calculation contributes to a study.

    Attributes:
        engine: engine name ("cp2k", "vasp", ...).
        engine_version: version string as printed by the engine itself.
        energy: final total energy in eV.
        charge: net charge of the cell in units of e (+1 = one electron removed).
        scf_converged: True when the last SCF cycle reached its threshold.
        geometry_converged: True/False for optimisations, None for single points.
        structure: final structure as a pymatgen ``Structure.as_dict()``.
        nelect: number of valence electrons in the calculation.
        vbm: highest occupied eigenvalue in eV (None when the engine gave none).
        cbm: lowest unoccupied eigenvalue in eV (None when no empty state was computed).
        potential_file: path to the electrostatic potential grid (cube or LOCPOT),
            relative to ``run_dir``, or None.
        site_potential_file: file with the engine's own potentials at the atomic sites
            (VASP: OUTCAR core-level potentials, for eFNV), relative to ``run_dir``, or
            None when the engine has none (CP2K: they come from the grid instead).
        run_dir: folder that holds the engine's output files.
        source_files: output files that the numbers were read from (relative to ``run_dir``).
        settings: engine settings that determine the numbers (cutoffs, basis, k-points...).
        extra: anything else an engine wants to keep (e.g. spin, SCF steps, timings).
        forces: forces on the atoms of the final structure (eV/Å, one row per atom), for
            runs that asked for them (``CalcSpec.forces``), else None.
        initial_energy: total energy (eV) of the first geometry of an optimisation, the
            structure as the inputs gave it: for a defect relaxed at fixed cell, its
            vertical (unrelaxed, ideal-site) energy. None for single points, and when the
            outputs no longer hold the first step.
    """

    engine: str
    engine_version: str
    energy: float
    charge: int
    scf_converged: bool
    geometry_converged: bool | None
    structure: dict[str, Any]
    nelect: float | None = None
    vbm: float | None = None
    cbm: float | None = None
    potential_file: str | None = None
    site_potential_file: str | None = None
    run_dir: str = "."
    source_files: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    forces: list[list[float]] | None = None
    initial_energy: float | None = None

    @property
    def converged(self) -> bool:
        """True when SCF and (if any) geometry optimisation converged."""
        return self.scf_converged and self.geometry_converged is not False

    @property
    def relaxation_energy(self) -> float | None:
        """energy - initial_energy (eV, <= 0 for a converged relaxation); None without
        an initial energy."""
        if self.initial_energy is None:
            return None
        return self.energy - self.initial_energy

    @property
    def band_gap(self) -> float | None:
        if self.vbm is None or self.cbm is None:
            return None
        return self.cbm - self.vbm

    def pmg_structure(self):  # -> pymatgen Structure (import kept local: pymatgen is slow)
        from pymatgen.core import Structure

        return Structure.from_dict(self.structure)

    def require_converged(self) -> CalcRecord:
        """Return self, or raise EngineError naming the run folder if not converged."""
        if not self.scf_converged:
            raise EngineError(f"{self.run_dir}: SCF did not converge; not a result")
        if self.geometry_converged is False:
            raise EngineError(f"{self.run_dir}: geometry optimisation did not converge")
        return self

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=1, default=_json_default))

    @classmethod
    def from_json(cls, path: str | Path) -> CalcRecord:
        p = Path(path)
        if not p.is_file():
            raise EngineError(f"{p}: record file is missing")
        try:
            data = json.loads(p.read_text())
        except json.JSONDecodeError as err:
            raise EngineError(f"{p}: record file is not valid JSON ({err})") from err
        return cls(**data)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj)!r}")


# --------------------------------------------------------------------------- engine interface

CALC_KINDS = ("relax_cell", "relax_ions", "static")
"""relax_cell: variable-cell optimisation (host unit cell, competing phases);
relax_ions: fixed-cell optimisation (defects); static: single point (bulk supercell)."""

ROLES = ("host", "phase", "bulk", "defect")


@dataclass(frozen=True)
class CalcSpec:
    """What one calculation is, independent of the engine that runs it.

    Attributes:
        kind: one of :data:`CALC_KINDS`.
        role: "host" (unit cell), "phase" (competing phase), "bulk" (pristine supercell)
            or "defect" (defect supercell). Engines derive role-specific settings from it,
            e.g. symmetry off and the electrostatic potential written for supercells.
        charge: net charge of the cell in e (+1 = one electron removed).
        band_edges: the run must give the band edges of the host (bulk supercell).
        keep_symmetry: crystal system to keep during a cell relaxation (e.g. "CUBIC").
        fixed_atoms: 0-based indices (in the structure passed) of atoms held fixed.
        forces: a static run must also give the forces on the atoms (finite-displacement
            phonons); they land in ``CalcRecord.forces``.
    """

    kind: str
    role: str
    charge: int = 0
    band_edges: bool = False
    keep_symmetry: str | None = None
    fixed_atoms: tuple[int, ...] = ()
    forces: bool = False

    def __post_init__(self) -> None:
        if self.kind not in CALC_KINDS:
            raise ValueError(f"calc kind must be one of {CALC_KINDS}, got {self.kind!r}")
        if self.role not in ROLES:
            raise ValueError(f"calc role must be one of {ROLES}, got {self.role!r}")

    @property
    def is_supercell(self) -> bool:
        return self.role in ("bulk", "defect")


class Engine(abc.ABC):
    """One DFT engine: settings, input writing, running and parsing to :class:`CalcRecord`.

    Adding an engine (e.g. Quantum ESPRESSO) means one module with a subclass of this and
    one line in :data:`perovskite_defects.engines.ENGINES`; the workflow steps and the
    analysis only see :class:`CalcSpec` going in and :class:`CalcRecord` coming out.
    The settings object an engine returns must have ``relax_radius`` (Å; 0 = unrelaxed
    ideal-site defects) and ``phase_cell_relax`` (bool), which the workflow steps use to
    choose the calculation kind.
    """

    name: str = ""
    # True when recovery.py can resume this engine's runs and climb the SCF ladder (it
    # edits the engine's input files); other engines run once per attempt.
    resumable: bool = False
    # The dataclass :meth:`settings` returns: the workflow passes its fields to the jobs
    # as plain data (rule params) and :meth:`settings_from` makes it again.
    settings_type: type = object

    @abc.abstractmethod
    def settings(self, config: Mapping[str, Any]) -> Any:
        """Numerical settings from the validated study config (raises ValueError if bad)."""

    def settings_from(self, values: Mapping[str, Any]) -> Any:
        """The settings object of :meth:`settings` from its fields (``dataclasses.asdict``)."""
        return self.settings_type(**values)

    @abc.abstractmethod
    def write_input(self, structure: Any, spec: CalcSpec, settings: Any, run_dir: Path) -> Path:
        """Write the input files of ``spec`` for ``structure`` (pymatgen) into ``run_dir``.

        Must also write ``calc.json`` (the run rule's input) describing the calculation.
        """

    @abc.abstractmethod
    def command(self, config: Mapping[str, Any], run_dir: Path, nprocs: int) -> list[str]:
        """The command line a rule runs in ``run_dir`` (validated, no shell involved)."""

    @abc.abstractmethod
    def run(self, config: Mapping[str, Any], run_dir: Path, nprocs: int) -> CalcRecord:
        """Run the engine in a prepared ``run_dir`` and return the parsed record.

        Raises EngineError if the engine fails; convergence is checked by the caller.
        """

    @abc.abstractmethod
    def parse(self, run_dir: Path) -> CalcRecord:
        """Parse a finished run folder into a :class:`CalcRecord` (eV, Å)."""


def validate_command(command: str, key: str) -> list[str]:
    """Split a configured run command into arguments, refusing anything a shell would expand.

    Commands are run without a shell, so metacharacters would not work anyway; refusing
    them (instead of passing them on literally) makes a typo or an injection attempt a
    clear error naming the config key.
    """
    import re

    if not command.strip():
        raise EngineError(f"config key '{key}': the run command is empty")
    bad = sorted(set(re.findall(r"[^A-Za-z0-9_./=+:,@% \t-]", command)))
    if bad:
        raise EngineError(
            f"config key '{key}': {command!r} contains shell metacharacters "
            f"({' '.join(repr(c) for c in bad)}); "
            "give a plain command such as 'srun vasp_std' (no ;, |, &, $, quotes, ...)"
        )
    return command.split()


def mpi_command(launcher: Sequence[str], nprocs: int) -> list[str]:
    """Add the rank count to mpirun/mpiexec launchers (srun takes it from the allocation)."""
    import os

    words = list(launcher)
    if not words or os.path.basename(words[0]) not in ("mpirun", "mpiexec"):
        return words
    extra = []
    if os.geteuid() == 0 and "--allow-run-as-root" not in words:
        extra.append("--allow-run-as-root")
    if not {"-np", "-n", "--np"} & set(words):
        extra += ["-np", str(max(1, nprocs))]
    return [words[0], *extra, *words[1:]]
