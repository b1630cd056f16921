"""CP2K output parser: a finished run folder -> the engine-neutral CalcRecord (eV, Å).

Split from :mod:`perovskite_defects.engines.cp2k` (input writer and runner) so that each
module has one job; the engine class there calls :func:`parse`.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from perovskite_defects.engines.atomic_populations import cp2k_record_populations
from perovskite_defects.engines.base import CalcRecord, EngineError
from perovskite_defects.engines.eigenvalues import parse_cp2k_eigenvalues
from perovskite_defects.engines.recovery import RESTART_DIR

log = logging.getLogger(__name__)

HARTREE_TO_EV = 27.211386245988
BOHR_TO_ANGSTROM = 0.529177210903
INPUT_NAME = "cp2k.inp"
OUTPUT_NAME = "cp2k.out"
PROJECT = "cp2k"


_ENERGY_RE = re.compile(r"ENERGY\| Total FORCE_EVAL \( QS \) energy \[a\.u\.\]:\s+(-?\d+\.\d+)")
_VERSION_RE = re.compile(r"CP2K\| version string:\s+(.+)")


def parse(run_dir: str | Path) -> CalcRecord:
    """Parse a finished CP2K run folder into a :class:`CalcRecord` (eV, Å)."""
    run_dir = Path(run_dir)
    out_path = run_dir / OUTPUT_NAME
    if not out_path.is_file():
        raise EngineError(f"{out_path}: CP2K output file is missing")
    text = out_path.read_text(errors="replace")
    if not text.strip():
        raise EngineError(f"{out_path}: CP2K output file is empty")
    if "CP2K|" not in text:
        raise EngineError(f"{out_path}: not a CP2K output file (no 'CP2K|' header lines)")
    if "PROGRAM ENDED AT" not in text:
        raise EngineError(f"{out_path}: CP2K output is truncated (no 'PROGRAM ENDED AT' line)")
    energies = _ENERGY_RE.findall(text)
    if not energies:
        raise EngineError(f"{out_path}: no final total energy found")
    version = _VERSION_RE.search(text)
    meta_path = run_dir / "calc.json"
    meta = _loads(meta_path) if meta_path.is_file() else {}
    calc_kind = meta.get("calc_kind")

    scf_converged = "SCF run NOT converged" not in text and "SCF run converged" in text
    geometry_converged: bool | None = None
    initial_energy: float | None = None
    if calc_kind in ("relax_cell", "relax_ions") or "STARTING GEOMETRY OPTIMIZATION" in text:
        geometry_converged = "GEOMETRY OPTIMIZATION COMPLETED" in text
        initial_energy = _initial_energy(run_dir, text)

    structure = _final_structure(run_dir, text)
    vbm, cbm = _band_edges(text)
    cubes = sorted(run_dir.glob(f"{PROJECT}-v_hartree-1_*.cube*"), key=_cube_index)
    charge = int(meta.get("charge", _input_charge(run_dir)))
    return CalcRecord(
        engine="cp2k",
        engine_version=version.group(1).strip() if version else "unknown",
        energy=float(energies[-1]) * HARTREE_TO_EV,
        charge=charge,
        scf_converged=scf_converged,
        geometry_converged=geometry_converged,
        structure=structure.as_dict(),
        nelect=meta.get("n_electrons"),
        vbm=vbm,
        cbm=cbm,
        potential_file=cubes[-1].name if cubes else None,
        forces=_forces(text),
        initial_energy=initial_energy,
        run_dir=str(run_dir),
        source_files=[OUTPUT_NAME, INPUT_NAME],
        settings={k: meta[k] for k in ("settings", "kpoint_mesh", "spin_polarised") if k in meta},
        extra={
            "calc_kind": calc_kind,
            "n_scf_cycles": text.count("SCF run converged") + text.count("SCF run NOT converged"),
            "atomic_populations": cp2k_record_populations(text, out_path),
        },
    )


def _initial_energy(run_dir: Path, text: str) -> float | None:
    """Energy (eV) of the starting geometry of an optimisation: the first energy this
    output printed after a converged SCF (the optimiser evaluates the input geometry
    first), unless the run resumed from an earlier attempt's geometry (``&EXT_RESTART``,
    engines/recovery.py). Then it is the first such energy of the earliest attempt output
    (``restart/attempt-N.out``) that printed one: an attempt without one wrote no geometry
    restart either, so the next one started from the input geometry again. Such a value
    can come from a lower rung of the SCF ladder, whose smearing may be lower (well under
    1 meV for the gapped perovskites, see recovery.LADDER). None when those outputs are
    gone."""
    inp = run_dir / INPUT_NAME
    if not (inp.is_file() and re.search(r"^\s*&EXT_RESTART\b", inp.read_text(), re.M | re.I)):
        return _first_converged_energy(text)
    attempts = sorted(
        (run_dir / RESTART_DIR).glob("attempt-*.out"),
        key=lambda path: int(re.sub(r"\D", "", path.stem) or -1),
    )
    for path in attempts:
        energy = _first_converged_energy(path.read_text(errors="replace"))
        if energy is not None:
            return energy
    log.warning(
        "%s: resumed optimisation without its first step's output: no initial energy", run_dir
    )
    return None


def _first_converged_energy(text: str) -> float | None:
    """First total energy of an output (eV), if the SCF before it converged."""
    found = _ENERGY_RE.search(text)
    if not found:
        return None
    before = text[: found.start()]
    if "SCF run NOT converged" in before or "SCF run converged" not in before:
        return None
    return float(found.group(1)) * HARTREE_TO_EV


_FORCES_RE = re.compile(r"ATOMIC FORCES in \[a\.u\.\]\s*\n\s*\n\s*# Atom.*?\n(.*?)SUM OF", re.S)


def _forces(text: str) -> list[list[float]] | None:
    """Forces of the last printed block (eV/Å), or None when none was printed."""
    blocks = _FORCES_RE.findall(text)
    if not blocks:
        return None
    scale = HARTREE_TO_EV / BOHR_TO_ANGSTROM
    rows = [line.split() for line in blocks[-1].strip().splitlines() if line.strip()]
    return [[float(v) * scale for v in row[3:6]] for row in rows]


def _loads(path: Path) -> dict[str, Any]:

    return json.loads(path.read_text())


def _cube_index(path: Path) -> int:
    match = re.search(r"_(\d+)\.cube(\.gz)?$", path.name)
    return int(match.group(1)) if match else -1


def _input_charge(run_dir: Path) -> int:
    inp = run_dir / INPUT_NAME
    if inp.is_file():
        match = re.search(r"^\s*CHARGE\s+(-?\d+)", inp.read_text(), re.M)
        if match:
            return int(match.group(1))
    return 0


def _band_edges(text: str) -> tuple[float | None, float | None]:
    """VBM and CBM (eV) from the last set of MO eigenvalue blocks, over every k-point.

    A state counts as occupied when its occupation exceeds half the maximum occupation
    (2 for restricted, 1 for unrestricted runs), so smearing tails do not shift the edges.
    None when nothing was printed, or when CP2K printed only some of its k-points (the
    first k-point group's): band edges from that subset would be silently wrong.
    """

    try:
        eigenvalues = parse_cp2k_eigenvalues(text)
    except EngineError:
        return None, None  # no (complete) MO blocks printed
    if not eigenvalues.complete:
        log.warning(
            "eigenvalues printed for %d of %d k-points: no band edges taken from this run",
            eigenvalues.energies.shape[1],
            eigenvalues.n_listed,
        )
        return None, None
    return eigenvalues.edges()


def _final_structure(run_dir: Path, text: str):
    """Final structure: from the restart file of an optimisation, else the input."""
    from pymatgen.core import Lattice, Structure

    for candidate in (run_dir / f"{PROJECT}-1.restart", run_dir / INPUT_NAME):
        if candidate.is_file():
            src = candidate.read_text()
            cell = re.search(r"&CELL\b(.*?)&END CELL", src, re.S)
            coord = re.search(r"&COORD\b(.*?)&END COORD", src, re.S)
            if not cell or not coord:
                continue
            vectors = {}
            for line in cell.group(1).splitlines():
                parts = line.split()
                if len(parts) >= 4 and parts[0] in ("A", "B", "C"):
                    vectors[parts[0]] = [float(v) for v in parts[-3:]]
            species, coords = [], []
            for line in coord.group(1).splitlines():
                parts = line.split()
                if len(parts) >= 4 and not parts[0].startswith(("UNIT", "SCALED")):
                    species.append(re.sub(r"\d+$", "", parts[0]))
                    coords.append([float(v) for v in parts[1:4]])
            if "SCALED T" in coord.group(1).upper():
                raise EngineError(f"{candidate}: scaled coordinates are not supported")
            lattice = Lattice([vectors["A"], vectors["B"], vectors["C"]])
            return Structure(lattice, species, coords, coords_are_cartesian=True)
    raise EngineError(f"{run_dir}: no CP2K input or restart file with a structure")


# --------------------------------------------------------------------------- interface
