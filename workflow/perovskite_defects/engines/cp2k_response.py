"""CP2K runs for the dielectric response: forces and Berry-phase dipoles under a field.

Route chosen (measured on Debian's CP2K 2023.1, rock-salt NaCl, PBE, DZVP-MOLOPT-SR):

- ``&PERIODIC_EFIELD`` (finite homogeneous field, Berry-phase coupling) with
  ``RUN_TYPE ENERGY_FORCE``: the forces under +/-E give the Born effective charges of
  every atom at once (Z*_k,ab = dF_k,b / dE_a), and the Berry-phase dipole of the same
  runs (``&MOMENTS PERIODIC``) gives eps_inf with the ions clamped. Six runs, whatever the
  number of atoms. Measured in the 8-atom NaCl cube (250 Ry, smoothed XC grid):
  Z*(Na) = +1.061, Z*(Cl) = -1.016 before the acoustic sum rule (sum over the cell
  0.18 e), +/-1.038 after; eps_inf = 1.667 (experiment: Z* 1.10, eps_inf 2.33).
- Not used: ``&LINRES &DCDR`` (APT) in 2023.1 differentiates the dipole of the local
  position operator (``apt_dR`` builds it from the r matrix about a reference point),
  which is meaningless for a bulk crystal; CP2K's own tests use it for molecules only.
  ``&LINRES &POLAR`` with the Berry operator gives eps_inf alone (no Z*), and the
  measured linear-response solver diverged for NaCl (residual growing from 1e-2 to 3e-1
  in 14 steps).
- Restrictions measured or read in the 2023.1 sources: moments (dipoles) are not
  implemented with k-points ("Moments not implemented for k-point calculations!"), and
  the Berry-phase field aborts for non-uniform occupations (no smearing). So these runs
  are Gamma-only, insulating, orbital-transformation (OT) SCF: the cell must be a
  supercell large enough for Gamma sampling. The single-point Berry phase also
  discretises the k-derivative over 2 pi / L, which lowers both Z* and eps_inf in small
  cells (NaCl: eps_inf 1.67 in the 8-atom cell, 2.01 along the long axis of a 16-atom
  2x1x1 cell); the cell size is a convergence parameter the result records.
- Known problem (measured, not solved): with the semicore GTH-q9 potentials (Na, and
  likely Cs, K, Rb) at 250 Ry the energy is not smooth where such an atom sits on a
  grid point: moving the Na at the origin of the NaCl cube by 0.01 Å lowered the energy
  by 64 meV and gave a 12 eV/Å force along the displacement (3e-3 Ha/bohr noise on the
  grid-point Na remains at 500 Ry). Born charges and eps_inf (ions on their symmetric
  sites) are not affected; finite-displacement phonons are, so check the acoustic sum
  and the Gamma frequencies before trusting the ionic part.

Public units: Å, eV/Å (forces), e Å (dipoles), V/Å (fields).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pymatgen.core import Structure

from .base import EngineError
from .cp2k import (
    BOHR_TO_ANGSTROM,
    HARTREE_TO_EV,
    INPUT_NAME,
    OUTPUT_NAME,
    PROJECT,
    electron_count,
)
from .cp2k import run as run_cp2k
from .cp2k_settings import VALENCE, Cp2kSettings

#: 1 atomic unit of electric field in V/Å (Hartree / (e bohr)).
FIELD_AU_IN_V_PER_ANGSTROM = HARTREE_TO_EV / BOHR_TO_ANGSTROM
#: 1 Debye in e Å (CP2K prints dipoles in Debye).
DEBYE_IN_E_ANGSTROM = 0.20819433622
#: Default field (V/Å): 0.001 a.u., far below Zener breakdown (gap / cell length ~ 0.5-1
#: V/Å for a 5 eV gap in a 6-12 Å cell) and large enough that the force response
#: (~Z* x 0.05 eV/Å) stands far above the SCF noise (1e-6 a.u.).
DEFAULT_FIELD = 0.001 * FIELD_AU_IN_V_PER_ANGSTROM
#: SCF threshold of response runs (OT gradient). 1e-7 is below the grid-noise floor of a
#: displaced NaCl cell (the gradient stalled at 2e-6 for 1000 steps); 1e-6 leaves force
#: errors ~1e-6 a.u., far below the 1e-3 a.u. responses.
EPS_SCF = 1.0e-6


@dataclass(frozen=True)
class ResponseRecord:
    """What one response run gives: energy (eV), forces (eV/Å), Berry dipole (e Å)."""

    energy: float
    forces: np.ndarray
    dipole: np.ndarray
    run_dir: str


def write_input(
    structure: Structure,
    settings: Cp2kSettings,
    run_dir: str | Path,
    field: Sequence[float] | np.ndarray | None = None,
) -> Path:
    """Gamma-only ENERGY_FORCE input with the Berry-phase dipole and an optional field.

    ``field`` is the field vector in V/Å (None or zero: no field).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    species = [site.specie.symbol for site in structure]
    n_electrons = electron_count(species, 0)
    if n_electrons % 2:
        raise EngineError(
            f"{run_dir}: {n_electrons} electrons; the dielectric response needs a "
            "closed-shell insulator (even electron count)"
        )
    lines = [
        "&GLOBAL",
        f"  PROJECT {PROJECT}",
        "  RUN_TYPE ENERGY_FORCE",
        "  PRINT_LEVEL MEDIUM",
        "&END GLOBAL",
        "&FORCE_EVAL",
        "  METHOD Quickstep",
        "  &DFT",
        "    BASIS_SET_FILE_NAME BASIS_MOLOPT",
        "    POTENTIAL_FILE_NAME GTH_POTENTIALS",
        "    &MGRID",
        f"      CUTOFF {settings.cutoff_ry:g}",
        f"      REL_CUTOFF {settings.rel_cutoff_ry:g}",
        "    &END MGRID",
        "    &QS",
        "      EPS_DEFAULT 1.0E-12",
        "    &END QS",
        "    &SCF",
        f"      EPS_SCF {EPS_SCF:.1E}",
        "      MAX_SCF 50",
        "      SCF_GUESS ATOMIC",
        "      &OT",
        "        MINIMIZER DIIS",
        "        PRECONDITIONER FULL_SINGLE_INVERSE",
        "      &END OT",
        "      &OUTER_SCF",
        "        MAX_SCF 5",
        f"        EPS_SCF {EPS_SCF:.1E}",
        "      &END OUTER_SCF",
        "    &END SCF",
        "    &XC",
        "      &XC_FUNCTIONAL PBE",
        "      &END XC_FUNCTIONAL",
        # Smoothed XC density and derivatives on the grid. Measured on NaCl (8 atoms,
        # 250 Ry): without them the zero-field forces on Na (semicore q9) carry grid noise
        # of up to 3e-3 Ha/bohr (0.15 eV/Å; at 500 Ry still 3e-3 on the Na sitting on a
        # grid point) and a 0.01 Å displacement gave a spurious -60 THz Gamma mode; with
        # them every force of the perfect cell is below 1e-7 Ha/bohr.
        "      &XC_GRID",
        "        XC_SMOOTH_RHO NN10",
        "        XC_DERIV SPLINE2_SMOOTH",
        "      &END XC_GRID",
        "    &END XC",
    ]
    vector = np.zeros(3) if field is None else np.asarray(field, dtype=float)
    strength = float(np.linalg.norm(vector))
    if strength > 0.0:
        direction = vector / strength
        lines += [
            "    &PERIODIC_EFIELD",
            "      POLARISATION " + " ".join(f"{x:.10f}" for x in direction),
            f"      INTENSITY {strength / FIELD_AU_IN_V_PER_ANGSTROM:.10E}",
            "    &END PERIODIC_EFIELD",
        ]
    lines += ["    &PRINT", "      &MOMENTS", "        PERIODIC T", "      &END MOMENTS"]
    lines += ["    &END PRINT", "  &END DFT", "  &PRINT", "    &FORCES ON", "    &END FORCES"]
    lines += ["  &END PRINT", "  &SUBSYS", "    &CELL"]
    for label, vec in zip("ABC", structure.lattice.matrix, strict=True):
        lines.append(f"      {label} {vec[0]:.10f} {vec[1]:.10f} {vec[2]:.10f}")
    lines += ["    &END CELL", "    &COORD"]
    for site in structure:
        x, y, z = site.coords
        lines.append(f"      {site.specie.symbol} {x:.10f} {y:.10f} {z:.10f}")
    lines.append("    &END COORD")
    for el in sorted(set(species)):
        lines += [f"    &KIND {el}", f"      BASIS_SET {settings.basis}"]
        lines += [f"      POTENTIAL GTH-PBE-q{VALENCE[el]}", "    &END KIND"]
    lines += ["  &END SUBSYS", "&END FORCE_EVAL"]
    path = run_dir / INPUT_NAME
    path.write_text("\n".join(lines) + "\n")
    meta = {
        "engine": "cp2k",
        "calc_kind": "response",
        "charge": 0,
        "n_electrons": n_electrons,
        "field_v_per_angstrom": vector.tolist(),
    }
    (run_dir / "calc.json").write_text(json.dumps(meta, indent=1))
    return path


_FORCE_BLOCK_RE = re.compile(
    r"ATOMIC FORCES in \[a\.u\.\]\s*\n\s*\n\s*# Atom.*?\n(.*?)SUM OF", re.S
)
_DIPOLE_RE = re.compile(
    r"Dipole moment \[Debye\]\s*\n\s*X=\s*(\S+)\s+Y=\s*(\S+)\s+Z=\s*(\S+)", re.S
)
_ENERGY_RE = re.compile(r"ENERGY\| Total FORCE_EVAL \( QS \) energy \[a\.u\.\]:\s+(-?\d+\.\d+)")


def parse(run_dir: str | Path) -> ResponseRecord:
    """Forces (eV/Å), Berry-phase dipole (e Å) and energy (eV) of a finished run."""
    path = Path(run_dir) / OUTPUT_NAME
    if not path.is_file():
        raise EngineError(f"{path}: CP2K output file is missing")
    text = path.read_text(errors="replace")
    if "PROGRAM ENDED AT" not in text:
        raise EngineError(f"{path}: CP2K output is truncated (no 'PROGRAM ENDED AT' line)")
    if "SCF run NOT converged" in text or "outer SCF loop FAILED" in text:
        raise EngineError(f"{path}: SCF did not converge; forces and dipole are unusable")
    blocks = _FORCE_BLOCK_RE.findall(text)
    dipoles = _DIPOLE_RE.findall(text)
    energies = _ENERGY_RE.findall(text)
    if not blocks or not dipoles or not energies:
        found = (("forces", blocks), ("Berry-phase dipole", dipoles), ("energy", energies))
        raise EngineError(f"{path}: no {', '.join(n for n, v in found if not v)} printed")
    rows = [line.split() for line in blocks[-1].strip().splitlines() if line.strip()]
    forces = np.array([[float(v) for v in row[3:6]] for row in rows])
    forces *= HARTREE_TO_EV / BOHR_TO_ANGSTROM
    dipole = np.array([float(v) for v in dipoles[-1]]) * DEBYE_IN_E_ANGSTROM
    return ResponseRecord(
        energy=float(energies[-1]) * HARTREE_TO_EV,
        forces=forces,
        dipole=dipole,
        run_dir=str(run_dir),
    )


@dataclass
class Cp2kResponseRunner:
    """Runs (or reuses) one CP2K response calculation per label under ``workdir``.

    A folder whose output already parses is not run again, so an interrupted dielectric
    calculation resumes where it stopped.
    """

    settings: Cp2kSettings
    workdir: Path
    executable: str | None = None
    mpi_launcher: str = "mpirun"
    nprocs: int = 1

    def __call__(
        self, structure: Structure, label: str, field: Sequence[float] | np.ndarray | None = None
    ) -> ResponseRecord:
        run_dir = Path(self.workdir) / label
        try:
            return parse(run_dir)
        except EngineError:
            pass
        write_input(structure, self.settings, run_dir, field)
        run_cp2k(run_dir, self.nprocs, self.executable, self.mpi_launcher)
        return parse(run_dir)

    def forces(self, structure: Structure, label: str) -> np.ndarray:
        """Zero-field forces (eV/Å): the :data:`ForcesFunction` of the phonon module."""
        return self(structure, label).forces

    def field_run(
        self, structure: Structure, label: str, field: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(forces eV/Å, dipole e Å) under ``field`` (V/Å): the dielectric module's FieldRun."""
        record = self(structure, label, field)
        return record.forces, record.dipole
