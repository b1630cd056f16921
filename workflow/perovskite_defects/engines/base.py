"""The engine-neutral calculation record: the one contract between engines and analysis.

Every engine parser turns a finished run folder into a :class:`CalcRecord`; everything
downstream (corrections, chemical potentials, thermodynamics, tables) reads only records.
Units are eV and Å throughout; engines convert at their parser.
"""

from __future__ import annotations

import json
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
        run_dir: folder that holds the engine's output files.
        source_files: output files that the numbers were read from (relative to ``run_dir``).
        settings: engine settings that determine the numbers (cutoffs, basis, k-points...).
        extra: anything else an engine wants to keep (e.g. spin, SCF steps, timings).
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
    run_dir: str = "."
    source_files: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def converged(self) -> bool:
        """True when SCF and (if any) geometry optimisation converged."""
        return self.scf_converged and self.geometry_converged is not False

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
