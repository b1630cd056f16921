"""The stable-host check with the study's own engine, and its command line.

:class:`EngineCalculator` runs the relaxations and force calculations of
:func:`perovskite_defects.hosts.stability.check_stability` through the configured engine
(the same input writer, k-points and retry ladder as the bulk supercell: role "bulk"), one
folder per calculation with ``record.json`` written only for a converged result; a folder
that holds one is reused, and a killed run resumes from its saved state
(:mod:`perovskite_defects.engines.recovery`).

``perovskite-defects check-stability <structure> --workdir DIR`` runs the check on any
host file (CIF, POSCAR, ...): see :func:`add_arguments` and :func:`run_cli`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Structure

from perovskite_defects.engines.base import CalcRecord, CalcSpec, EngineError
from perovskite_defects.engines.cp2k_settings import Cp2kSettings
from perovskite_defects.hosts.stability import (
    HostStability,
    StabilityError,
    StabilitySettings,
    check_stability,
    keep_symmetry_name,
)
from perovskite_defects.steps.calculations import run_calculation
from perovskite_defects.steps.common import write_inputs

log = logging.getLogger("perovskite_defects")

RECORD = "record.json"
#: Force threshold (eV/Å) of the check's relaxations (see stability_engine).
RELAX_MAX_FORCE = 0.01


@dataclass
class EngineCalculator:
    """Relaxations (variable cell) and forces (static) with the engine of ``engine``.

    ``engine``: the engine and its settings (steps/params.py ``engine_inputs``); ``run``:
    how it runs (``run_params``: the engine's executable and launcher, ``scf_retries``).
    """

    engine: Mapping[str, Any]
    run: Mapping[str, Any]
    nprocs: int = 1
    runs: list[str] = field(default_factory=list)  # folders run (not reused) by this call

    def relax(
        self, structure: Structure, run_dir: Path, keep_symmetry: bool, vary_cell: bool
    ) -> tuple[Structure, float]:
        if vary_cell:
            keep = keep_symmetry_name(structure) if keep_symmetry else None
            spec = CalcSpec("relax_cell", "bulk", keep_symmetry=keep)
        else:
            spec = CalcSpec("relax_ions", "bulk")
        record = self._run(structure, spec, run_dir)
        return record.pmg_structure(), record.energy

    def forces(self, structure: Structure, run_dir: Path) -> tuple[np.ndarray, float]:
        record = self._run(structure, CalcSpec("static", "bulk", forces=True), run_dir)
        if record.forces is None:
            raise StabilityError(
                f"{run_dir}: engine {record.engine} gave no forces (the stability check "
                "needs an engine that parses them: cp2k)"
            )
        return np.asarray(record.forces, dtype=float), record.energy

    def _run(self, structure: Structure, spec: CalcSpec, run_dir: Path) -> CalcRecord:

        run_dir = Path(run_dir)
        path = run_dir / RECORD
        if path.is_file():
            record = CalcRecord.from_json(path)
            if record.converged:
                return record
        if not (run_dir / "calc.json").is_file():  # a killed run keeps its own input
            write_inputs(self.engine, structure, spec, run_dir)
        self.runs.append(str(run_dir))
        return run_calculation(run_dir, run=self.run, nprocs=self.nprocs)


def stability_engine(engine: Mapping[str, Any]) -> dict[str, Any]:
    """``engine`` (name and settings) with the settings the phonons need (CP2K).

    A study's supercells may use one off-centre k-point ("mean_value"), which lacks the
    point-group symmetry of the crystal: its forces would break the very symmetry
    phonopy reduces the displacements by, so the check uses the "length" mesh
    (Monkhorst-Pack, symmetric) instead. The relaxations stop at :data:`RELAX_MAX_FORCE`
    at most: a soft tilt (k ~ 0.25 eV/Å^2 for 0.7i THz on iodine)
    pushes an atom 0.1 Å off the saddle with only 0.025 eV/Å, below the study's 0.05.
    The SCF threshold stays the study's: measured on 10-atom CsPbI3 (150 Ry, one iodine
    moved 0.01 Å), the forces at EPS_SCF 1e-5 and 1e-6 differ from those at 1e-7 by
    6e-6 and 5e-7 eV/Å, far below the grid's own error (the forces summed to 4e-3 eV/Å
    instead of 0, against 0.019 eV/Å on the moved atom).
    """
    if engine["engine"] != "cp2k":
        return dict(engine)
    settings = dict(engine["settings"])
    if settings["supercell_kpoints"] == "mean_value":
        settings["supercell_kpoints"] = "length"
    settings["max_force"] = min(settings["max_force"], RELAX_MAX_FORCE)
    return {**engine, "settings": settings}


def standalone_engine(
    level: str, overrides: Mapping[str, Any], executable: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Engine (CP2K settings of ``level`` with ``overrides``) and run options of a check
    outside a study; ValueError naming a bad setting."""

    settings = Cp2kSettings.for_level(level, dict(overrides))
    engine = {"engine": "cp2k", "settings": dataclasses.asdict(settings)}
    run = {
        "engine": "cp2k",
        "cp2k": {"executable": executable, "mpi_launcher": "mpirun"},
        "scf_retries": 2,
    }
    return engine, run


def run_check(
    structure: Structure,
    workdir: str | Path,
    engine: Mapping[str, Any],
    run: Mapping[str, Any],
    settings: StabilitySettings,
    nprocs: int = 1,
) -> HostStability:
    """:func:`check_stability` of ``structure`` with ``engine``, run as ``run`` says."""
    calculator = EngineCalculator(stability_engine(engine), run, nprocs)
    return check_stability(structure, calculator, workdir, settings)


# --------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``perovskite-defects check-stability``."""
    defaults = StabilitySettings()
    parser.add_argument("structure", type=Path, help="host supercell file (CIF, POSCAR, ...)")
    parser.add_argument("--workdir", type=Path, required=True, help="folder of the runs")
    parser.add_argument("--level", default="fast", help="CP2K settings level (fast, accurate)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="CP2K setting override, e.g. cutoff_ry=200 (repeatable)",
    )
    parser.add_argument("--executable", default="auto", help="CP2K binary (default: found)")
    parser.add_argument("--nprocs", type=int, default=1, help="MPI ranks per calculation")
    for key, help_text in (
        ("tolerance_thz", "modes below this (THz, <= 0) count as imaginary"),
        ("max_rounds", "relax + phonon rounds at most"),
        ("rattle_amplitude", "random start displacement (Å, std)"),
        ("rattle_seed", "seed of the start displacement"),
        ("modulation_amplitude", "largest displacement along the soft modes (Å)"),
        ("displacement", "phonopy finite displacement (Å)"),
        ("symprec", "spglib tolerance (Å)"),
    ):
        value = getattr(defaults, key)
        parser.add_argument(
            "--" + key.replace("_", "-"),
            dest=key,
            type=type(value),
            default=value,
            help=f"{help_text} (default {value})",
        )
    parser.add_argument(
        "--fixed-cell",
        dest="relax_cell",
        action="store_false",
        help="relax the ions only, at the cell of the file (default: cell and ions)",
    )


def _overrides(pairs: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise StabilityError(f"--set {pair!r}: give KEY=VALUE, e.g. cutoff_ry=200")
        try:
            values[key] = json.loads(text)
        except json.JSONDecodeError:
            values[key] = text
    return values


def run_cli(args: argparse.Namespace) -> HostStability:
    """Run the check from parsed arguments; raises StabilityError/EngineError/ValueError."""
    if not args.structure.is_file():
        raise StabilityError(f"{args.structure}: structure file not found")
    try:
        structure = Structure.from_file(str(args.structure))
    except Exception as err:  # pymatgen raises many kinds for unreadable files
        raise StabilityError(f"{args.structure}: not a readable structure ({err})") from err
    keys = StabilitySettings.__dataclass_fields__
    settings = StabilitySettings(**{k: getattr(args, k) for k in keys})
    engine, run = standalone_engine(args.level, _overrides(args.set), args.executable)
    if args.nprocs < 1:
        raise StabilityError(f"--nprocs {args.nprocs}: must be at least 1")
    return run_check(structure, args.workdir, engine, run, settings, args.nprocs)


def print_summary(result: HostStability) -> None:
    """Human-readable lines of a result."""
    verdict = "stable" if result.stable else f"UNSTABLE ({result.n_imaginary} imaginary)"
    print(f"verdict                {verdict} after {result.rounds} round(s)")
    print(f"lowest frequency       {result.lowest_frequency_thz:.3f} THz")
    print(f"space group            {result.space_group} ({result.space_group_number})")
    print(f"tilt pattern (Glazer)  {result.tilt_pattern or 'not named'}")
    print(
        f"energy vs reference    {1000 * result.energy_per_fu_vs_reference:.1f} meV per "
        f"formula unit ({result.formula_units} f.u.; reference {result.reference_space_group})"
    )


def main_check_stability(args: argparse.Namespace) -> int:
    """The CLI subcommand: 0 = stable, 3 = imaginary modes remain, 1 = error."""
    import sys

    try:
        result = run_cli(args)
    except (StabilityError, EngineError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if getattr(args, "json", False):
        print(json.dumps(result.summary(), indent=1))
    else:
        print_summary(result)
    return 0 if result.stable else 3
