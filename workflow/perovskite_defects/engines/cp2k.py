"""CP2K (Quickstep, GPW) engine: input writer and runner (the parser is in
:mod:`perovskite_defects.engines.cp2k_output`).

The embedded default engine. Debian's ``cp2k`` package (2023.1) with ``cp2k-data``
provides GTH-PBE pseudopotentials and MOLOPT basis sets for every element of the
tin-lead halide perovskites and their dopants.

Choices measured on a 2-core machine (39-atom charged CsPbI3 cell, Gamma, 250 Ry):
diagonalisation + Fermi-Dirac smearing + Broyden mixing converges reliably; restricted
(RKS) runs cost ~60 % of unrestricted ones for even electron counts with the same energy
to 0.4 meV, so the ``fast`` level uses spin polarisation only where the electron count is
odd (``spin: auto``), and ``accurate`` always does (``spin: always``). The minimal SZV
basis (32 s per SCF against 57 s for DZVP) cannot be used: metallic Cs and Na (9 valence
electrons in 5 SZV functions) have no empty orbitals for smearing, and host and competing
phases must share one basis.

The settings, levels and GTH valences are in :mod:`perovskite_defects.engines.cp2k_settings`.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from perovskite_defects.engines.base import CALC_KINDS, CalcRecord, CalcSpec, Engine, EngineError
from perovskite_defects.engines.cp2k_output import (  # noqa: F401 (re-exported)
    BOHR_TO_ANGSTROM,
    HARTREE_TO_EV,
    INPUT_NAME,
    OUTPUT_NAME,
    PROJECT,
    parse,
)
from perovskite_defects.engines.cp2k_settings import VALENCE, Cp2kSettings

log = logging.getLogger(__name__)

EV_PER_ANGSTROM_TO_HA_PER_BOHR = BOHR_TO_ANGSTROM / HARTREE_TO_EV


def monkhorst_pack_points(mesh: Sequence[int]) -> list[tuple[tuple[float, float, float], float]]:
    """Monkhorst-Pack points (fractions of the reciprocal vectors) reduced by time reversal.

    Returns (k, weight) pairs: k and -k are one point of weight 2 unless k = -k. The
    convention is CP2K's own MONKHORST-PACK one (even meshes shifted off Gamma).
    """
    axes = [[(2 * i - n - 1) / (2 * n) for i in range(1, n + 1)] for n in mesh]
    kept: dict[tuple[float, float, float], float] = {}
    for k in ((a, b, c) for a in axes[0] for b in axes[1] for c in axes[2]):
        minus = (_wrap(-k[0]), _wrap(-k[1]), _wrap(-k[2]))
        key = (_wrap(k[0]), _wrap(k[1]), _wrap(k[2]))
        if minus in kept:
            kept[minus] += 1.0
        else:
            kept[key] = kept.get(key, 0.0) + 1.0
    return [(k, w) for k, w in kept.items()]


def _wrap(x: float) -> float:
    """Fold a fractional coordinate into (-1/2, 1/2], rounded to kill float noise."""
    y = round(x - math.floor(x + 0.5), 10)
    return 0.5 if y == -0.5 else y


def kpoint_mesh(lattice_lengths: Sequence[float], length: float) -> tuple[int, int, int]:
    """Monkhorst-Pack divisions from a real-space length: n_i = max(1, ceil(length / a_i))."""
    return tuple(max(1, math.ceil(length / a - 1e-6)) for a in lattice_lengths)  # type: ignore[return-value]


def electron_count(species: Sequence[str], charge: int) -> int:
    """Valence electrons of the cell with the GTH pseudopotentials, for charge ``charge``."""
    missing = sorted({el for el in species if el not in VALENCE})
    if missing:
        raise EngineError(f"no GTH-PBE pseudopotential valence known for {', '.join(missing)}")
    return sum(VALENCE[el] for el in species) - charge


def write_input(
    structure,
    calc_kind: str,
    charge: int,
    settings: Cp2kSettings,
    run_dir: str | Path,
    *,
    is_supercell: bool = False,
    keep_symmetry: str | None = None,
    fixed_atoms: Sequence[int] = (),
    band_edges: bool = False,
    forces: bool = False,
) -> Path:
    """Write ``cp2k.inp`` for ``structure`` (a pymatgen Structure) into ``run_dir``.

    Args:
        calc_kind: one of CALC_KINDS.
        charge: net charge of the cell (+1 = one electron removed).
        is_supercell: use ``settings.supercell_kpoints`` instead of the k-point length.
        keep_symmetry: CP2K cell symmetry to keep during cell optimisation (e.g. "CUBIC").
        fixed_atoms: 0-based indices of atoms held fixed during optimisation.
        band_edges: add the supercell's Gamma point at zero weight to a shifted mesh, for
            band edges (the bulk needs it; defect cells do not, and without it their 4
            k-points of a 2x2x2 mesh split evenly over 2 MPI ranks: measured ~30 % faster).
        forces: a static run computes and prints the forces on the atoms (ENERGY_FORCE).
    """
    if calc_kind not in CALC_KINDS:
        raise ValueError(f"calc_kind must be one of {CALC_KINDS}, got {calc_kind!r}")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    species = [site.specie.symbol for site in structure]
    n_electrons = electron_count(species, charge)
    spin_polarised = settings.spin == "always" or n_electrons % 2 == 1
    multiplicity = 2 if n_electrons % 2 else 1

    if is_supercell and settings.supercell_kpoints == "gamma":
        mesh = (1, 1, 1)
    else:
        mesh = kpoint_mesh(structure.lattice.abc, settings.kpoint_length)

    run_type = {"relax_cell": "CELL_OPT", "relax_ions": "GEO_OPT", "static": "ENERGY"}[calc_kind]
    if forces and calc_kind == "static":
        run_type = "ENERGY_FORCE"
    lines: list[str] = []
    add = lines.append
    add("&GLOBAL")
    add(f"  PROJECT {PROJECT}")
    add(f"  RUN_TYPE {run_type}")
    add("  PRINT_LEVEL MEDIUM")
    add("&END GLOBAL")
    add("&FORCE_EVAL")
    add("  METHOD Quickstep")
    if calc_kind == "relax_cell":
        add("  STRESS_TENSOR ANALYTICAL")
    add("  &DFT")
    add("    BASIS_SET_FILE_NAME BASIS_MOLOPT")
    add("    POTENTIAL_FILE_NAME GTH_POTENTIALS")
    add(f"    CHARGE {charge}")
    if spin_polarised:
        add("    UKS T")
        add(f"    MULTIPLICITY {multiplicity}")
    # A restart file from an earlier, interrupted attempt is picked up when present.
    uses_kpoints = mesh != (1, 1, 1) or (
        is_supercell and settings.supercell_kpoints == "mean_value"
    )
    wfn = run_dir / f"{PROJECT}-RESTART.{'kp' if uses_kpoints else 'wfn'}"
    if wfn.exists():
        add(f"    WFN_RESTART_FILE_NAME {wfn.name}")
    add("    &MGRID")
    add(f"      CUTOFF {settings.cutoff_ry:g}")
    add(f"      REL_CUTOFF {settings.rel_cutoff_ry:g}")
    add("    &END MGRID")
    add("    &QS")
    add("      EPS_DEFAULT 1.0E-10")
    add("    &END QS")
    if is_supercell and settings.supercell_kpoints == "mean_value":
        # One point, (1/4, 1/4, 1/4): Baldereschi's mean-value point of a simple cubic cell.
        mesh = (1, 1, 1)
        points = [((0.25, 0.25, 0.25), 1.0)]
    elif mesh != (1, 1, 1) and is_supercell:
        points = monkhorst_pack_points(mesh)
    else:
        points = []
    if points:
        # Explicit list: the mesh, plus Gamma at zero weight for the band edges.
        if band_edges and not any(k == (0.0, 0.0, 0.0) for k, _ in points):
            points.append(((0.0, 0.0, 0.0), 0.0))
        add("    &KPOINTS")
        add("      SCHEME GENERAL")
        add("      UNITS B_VECTOR")
        add("      SYMMETRY F")
        add("      FULL_GRID F")
        if band_edges:
            # CP2K prints the eigenvalues of the k-points of the first k-point group only;
            # one group holding all ranks makes it print every point (measured: with the
            # default, 2 ranks and 2 points, Gamma was missing and the gap came out 2.8 eV
            # instead of 1.4 eV).
            add("      PARALLEL_GROUP_SIZE 0")
        for (ka, kb, kc), weight in points:
            add(f"      KPOINT {ka:.10f} {kb:.10f} {kc:.10f} {weight:.1f}")
        add("    &END KPOINTS")
    elif mesh != (1, 1, 1):
        add("    &KPOINTS")
        add(f"      SCHEME MONKHORST-PACK {mesh[0]} {mesh[1]} {mesh[2]}")
        add("    &END KPOINTS")
    add("    &SCF")
    add(f"      EPS_SCF {settings.eps_scf:.1E}")
    add(f"      MAX_SCF {settings.max_scf}")
    # Small cells have few basis functions; ask only for what they can hold.
    add(f"      ADDED_MOS {max(4, min(settings.added_mos, 4 * len(structure)))}")
    add("      SCF_GUESS " + ("RESTART" if wfn.exists() else "ATOMIC"))
    add("      &SMEAR ON")
    add("        METHOD FERMI_DIRAC")
    add(f"        ELECTRONIC_TEMPERATURE {settings.smearing_kelvin:g}")
    add("      &END SMEAR")
    add("      &DIAGONALIZATION")
    add("        ALGORITHM STANDARD")
    add("      &END DIAGONALIZATION")
    add("      &MIXING")
    if is_supercell and calc_kind == "static" and settings.supercell_mixing == "pulay":
        add("        METHOD PULAY_MIXING")
        add("        ALPHA 0.2")
        add("        NPULAY 10")
    else:
        add("        METHOD BROYDEN_MIXING")
        add(f"        ALPHA {settings.mixing_alpha:g}")
        add("        NBROYDEN 8")
    add("      &END MIXING")
    add("      &PRINT")
    add("        &RESTART")
    add("          BACKUP_COPIES 0")
    add("        &END RESTART")
    add("      &END PRINT")
    add("    &END SCF")
    add("    &XC")
    add("      &XC_FUNCTIONAL PBE")
    add("      &END XC_FUNCTIONAL")
    add("    &END XC")
    add("    &PRINT")
    # Eigenvalues and the Hartree potential only for the final geometry.
    for section in ("MO", "V_HARTREE_CUBE"):
        add(f"      &{section}")
        if section == "MO":
            add("        EIGENVALUES T")
            add("        OCCUPATION_NUMBERS T")
        add("        &EACH")
        add("          QS_SCF 0")
        add("          GEO_OPT 0")
        add("          CELL_OPT 0")
        add("        &END EACH")
        add("        ADD_LAST NUMERIC")
        add(f"      &END {section}")
    add("    &END PRINT")
    add("  &END DFT")
    if run_type == "ENERGY_FORCE":
        add("  &PRINT")
        add("    &FORCES ON")
        add("    &END FORCES")
        add("  &END PRINT")
    add("  &SUBSYS")
    add("    &CELL")
    for label, vec in zip("ABC", structure.lattice.matrix, strict=True):
        add(f"      {label} {vec[0]:.10f} {vec[1]:.10f} {vec[2]:.10f}")
    if keep_symmetry:
        add(f"      SYMMETRY {keep_symmetry}")
    add("    &END CELL")
    add("    &COORD")
    for site in structure:
        x, y, z = site.coords
        add(f"      {site.specie.symbol} {x:.10f} {y:.10f} {z:.10f}")
    add("    &END COORD")
    for el in sorted(set(species)):
        add(f"    &KIND {el}")
        add(f"      BASIS_SET {settings.basis}")
        add(f"      POTENTIAL GTH-PBE-q{VALENCE[el]}")
        add("    &END KIND")
    add("  &END SUBSYS")
    add("&END FORCE_EVAL")
    if calc_kind != "static":
        max_force = settings.max_force * EV_PER_ANGSTROM_TO_HA_PER_BOHR
        section = "CELL_OPT" if calc_kind == "relax_cell" else "GEO_OPT"
        add("&MOTION")
        add(f"  &{section}")
        if calc_kind == "relax_cell":
            add("    TYPE DIRECT_CELL_OPT")
            add("    KEEP_ANGLES T")
            if keep_symmetry:
                add("    KEEP_SYMMETRY T")
            add(f"    PRESSURE_TOLERANCE {settings.pressure_tolerance_bar:g}")
        add("    OPTIMIZER BFGS")
        add(f"    MAX_ITER {settings.geo_max_iter}")
        add(f"    MAX_FORCE {max_force:.3E}")
        add(f"    RMS_FORCE {max_force * 2 / 3:.3E}")
        # Displacement criteria loose (bohr): forces and pressure decide convergence, and
        # cell steps would otherwise count as displacements for many extra iterations.
        add("    MAX_DR 3.0E-02")
        add("    RMS_DR 1.5E-02")
        add(f"  &END {section}")
        add("  &PRINT")
        add("    &RESTART")
        add("      BACKUP_COPIES 0")
        add("    &END RESTART")
        add("    &RESTART_HISTORY OFF")
        add("    &END RESTART_HISTORY")
        add("  &END PRINT")
        if fixed_atoms:
            add("  &CONSTRAINT")
            add("    &FIXED_ATOMS")
            for start in range(0, len(fixed_atoms), 20):
                chunk = fixed_atoms[start : start + 20]
                add("      LIST " + " ".join(str(i + 1) for i in chunk))
            add("    &END FIXED_ATOMS")
            add("  &END CONSTRAINT")
        add("&END MOTION")
    path = run_dir / INPUT_NAME
    path.write_text("\n".join(lines) + "\n")
    meta = {
        "engine": "cp2k",
        "calc_kind": calc_kind,
        "charge": charge,
        "n_electrons": n_electrons,
        "spin_polarised": spin_polarised,
        "multiplicity": multiplicity,
        "kpoint_mesh": list(mesh),
        "settings": asdict(settings),
    }
    (run_dir / "calc.json").write_text(_dumps(meta))
    return path


def _dumps(obj: Any) -> str:
    import json

    return json.dumps(obj, indent=1)


# --------------------------------------------------------------------------- running


def find_executable(preferred: str | None = None) -> str:
    """Path of the CP2K binary; raise EngineError with the install command if none."""
    names = [preferred] if preferred and preferred != "auto" else ["cp2k.psmp", "cp2k.popt", "cp2k"]
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise EngineError(
        f"no CP2K binary found (looked for {', '.join(names)}); install it with: "
        "sudo apt-get install -y cp2k cp2k-data   (or set cp2k.executable in config.yaml)"
    )


def command(run_dir: str | Path, nprocs: int, executable: str, mpi_launcher: str) -> list[str]:
    """Command line that runs CP2K on ``nprocs`` MPI ranks in ``run_dir``."""
    base = [executable, "-i", INPUT_NAME, "-o", OUTPUT_NAME]
    if nprocs <= 1 or not mpi_launcher:
        return base
    launcher = mpi_launcher.split()
    if os.path.basename(launcher[0]) in ("mpirun", "mpiexec") and os.geteuid() == 0:
        launcher.append("--allow-run-as-root")
    if os.path.basename(launcher[0]) in ("mpirun", "mpiexec"):
        launcher += ["-np", str(nprocs)]
    elif os.path.basename(launcher[0]) == "srun":
        # Explicit: Snakemake's SLURM job step clears SLURM_NTASKS, and srun would start 1.
        launcher += ["-n", str(nprocs)]
    return launcher + base


def run(
    run_dir: str | Path,
    nprocs: int = 1,
    executable: str | None = None,
    mpi_launcher: str = "mpirun",
) -> CalcRecord:
    """Run CP2K in ``run_dir`` (which holds cp2k.inp) and return its parsed record.

    Raises EngineError when the binary is missing, CP2K exits with an error, or the
    output is missing or truncated. Convergence is *not* checked here: callers decide
    (see :meth:`CalcRecord.require_converged`).
    """
    run_dir = Path(run_dir)
    if not (run_dir / INPUT_NAME).is_file():
        raise EngineError(f"{run_dir / INPUT_NAME}: CP2K input is missing")
    exe = find_executable(executable)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = command(run_dir, nprocs, exe, mpi_launcher)
    with open(run_dir / "engine.stdout", "w") as out:
        proc = subprocess.run(cmd, cwd=run_dir, stdout=out, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        tail = _tail(run_dir / OUTPUT_NAME) or _tail(run_dir / "engine.stdout")
        raise EngineError(
            f"{run_dir}: CP2K exited with code {proc.returncode} ({' '.join(cmd)}); "
            f"last output lines:\n{tail}"
        )
    return parse(run_dir)


def _tail(path: Path, n: int = 15) -> str:
    if not path.is_file():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:])


# --------------------------------------------------------------------------- parsing


class Cp2kEngine(Engine):
    """The embedded CP2K engine behind the common :class:`Engine` interface.

    A thin wrapper: the physics lives in :func:`write_input`, :func:`run` and :func:`parse`.
    """

    name = "cp2k"
    settings_type = Cp2kSettings
    resumable = True

    def settings(self, config: Mapping[str, Any]) -> Cp2kSettings:
        return Cp2kSettings.for_level(config["level"], config["cp2k"].get("settings"))

    def write_input(
        self, structure: Any, spec: CalcSpec, settings: Cp2kSettings, run_dir: Path
    ) -> Path:
        return write_input(
            structure,
            spec.kind,
            spec.charge,
            settings,
            run_dir,
            is_supercell=spec.is_supercell,
            keep_symmetry=spec.keep_symmetry,
            fixed_atoms=spec.fixed_atoms,
            band_edges=spec.band_edges,
            forces=spec.forces,
        )

    def command(self, config: Mapping[str, Any], run_dir: Path, nprocs: int) -> list[str]:
        options = config["cp2k"]
        return command(
            run_dir, nprocs, find_executable(options["executable"]), options["mpi_launcher"]
        )

    def run(self, config: Mapping[str, Any], run_dir: Path, nprocs: int) -> CalcRecord:
        options = config["cp2k"]
        return run(
            run_dir,
            nprocs=max(1, nprocs),
            executable=options["executable"],
            mpi_launcher=options["mpi_launcher"],
        )

    def parse(self, run_dir: Path) -> CalcRecord:
        return parse(run_dir)
