"""Run the computed dielectric tensor of one host and read it back for the corrections.

``dielectric: {source: computed}`` in config.yaml makes the workflow call
:func:`run_host_dielectric` on every host's relaxed unit cell (rule ``host_dielectric``);
:func:`effective_dielectric` turns the written JSON into the ``dielectric`` mapping that
:mod:`perovskite_defects.corrections.dielectric` validates and the corrections use, so the cited and
the computed routes share one code path from there on.

Also a command line for users' own host files::

    python -m perovskite_defects.hosts.dielectric_run host.cif --supercell 2 2 2 \
        --workdir runs/ --out dielectric.json
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Structure

from perovskite_defects.corrections.dielectric import COMPUTED as COMPUTED
from perovskite_defects.corrections.dielectric import (
    ComputedDielectricError as ComputedDielectricError,
)
from perovskite_defects.corrections.dielectric import (
    effective_dielectric as effective_dielectric,
)
from perovskite_defects.corrections.dielectric import is_computed as is_computed
from perovskite_defects.engines.base import CalcRecord
from perovskite_defects.engines.cp2k import find_executable
from perovskite_defects.engines.cp2k_response import DEFAULT_FIELD, Cp2kResponseRunner
from perovskite_defects.engines.cp2k_settings import Cp2kSettings
from perovskite_defects.hosts.dielectric_tensor import DielectricResult, compute_dielectric
from perovskite_defects.hosts.phonons import DEFAULT_DISPLACEMENT
from perovskite_defects.hosts.stability_run import (
    EngineCalculator,
    stability_engine,
    standalone_engine,
)

log = logging.getLogger(__name__)


def run_host_dielectric(
    structure: Structure,
    settings: Cp2kSettings,
    workdir: str | Path,
    out_json: str | Path,
    supercell: Sequence[int] | Sequence[Sequence[int]],
    field: float = DEFAULT_FIELD,
    displacement: float = DEFAULT_DISPLACEMENT,
    nprocs: int = 1,
    executable: str | None = None,
    mpi_launcher: str = "mpirun",
    phonon_engine: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None,
) -> DielectricResult:
    """Compute eps_inf, Z*, Gamma phonons and eps_ion of ``structure`` with CP2K; write JSON.

    ``phonon_engine`` (engine, run options; ``steps/params.py`` forms) computes the forces
    of the Gamma phonons in the unit cell with the engine's symmetric k-mesh (the stability
    check's :func:`~perovskite_defects.hosts.stability_run.stability_engine`); None uses
    the Gamma-only response supercell, which :func:`compute_dielectric` says is too coarse.
    """
    runner = Cp2kResponseRunner(settings, Path(workdir), executable, mpi_launcher, nprocs)
    phonon_forces = None
    if phonon_engine is not None:
        calculator = EngineCalculator(stability_engine(phonon_engine[0]), phonon_engine[1], nprocs)

        def phonon_forces(cell: Structure, label: str) -> np.ndarray:
            return calculator.forces(cell, Path(workdir) / "phonons" / label)[0]

    result = compute_dielectric(
        structure, supercell, runner.field_run, field, displacement, phonon_forces=phonon_forces
    )
    summary = result.summary()
    summary["engine"] = "cp2k"
    summary["route"] = (
        "finite Berry-phase field (CP2K PERIODIC_EFIELD), Gamma-only supercell: Z* from "
        "forces, eps_inf from the Berry-phase dipole; phonopy Gamma phonons from "
        + ("the unit cell with the engine's k-mesh" if phonon_engine else "the same supercell")
    )
    summary["cp2k_settings"] = {
        k: getattr(settings, k) for k in ("basis", "cutoff_ry", "rel_cutoff_ry")
    }
    Path(out_json).parent.mkdir(parents=True, exist_ok=True)
    Path(out_json).write_text(json.dumps(summary, indent=1))
    if result.refusal:
        log.warning("ionic dielectric part not computed: %s", result.refusal)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: dielectric tensor of a structure file with CP2K."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("structure", help="unit cell (any format pymatgen reads)")
    parser.add_argument(
        "--supercell",
        type=int,
        nargs="+",
        required=True,
        help="3 integers or 9 (row-major 3x3): the Gamma-only response cell",
    )
    parser.add_argument("--workdir", default="dielectric_runs")
    parser.add_argument("--out", default="dielectric.json")
    parser.add_argument("--field", type=float, default=DEFAULT_FIELD, help="V/Å")
    parser.add_argument("--displacement", type=float, default=DEFAULT_DISPLACEMENT, help="Å")
    parser.add_argument("--cutoff", type=float, default=Cp2kSettings.cutoff_ry, help="Ry")
    parser.add_argument("--nprocs", type=int, default=1)
    args = parser.parse_args(argv)
    if len(args.supercell) not in (3, 9):
        parser.error("--supercell takes 3 or 9 integers")
    matrix = (
        args.supercell
        if len(args.supercell) == 3
        else [args.supercell[0:3], args.supercell[3:6], args.supercell[6:9]]
    )
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    result = run_host_dielectric(
        Structure.from_file(args.structure),
        Cp2kSettings(cutoff_ry=args.cutoff),
        args.workdir,
        args.out,
        matrix,
        field=args.field,
        displacement=args.displacement,
        nprocs=args.nprocs,
        phonon_engine=standalone_engine("fast", {"cutoff_ry": args.cutoff}, find_executable()),
    )
    print(json.dumps({k: v for k, v in result.summary().items() if k != "phonons"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def host_dielectric_step(
    unitcell_record: str | Path,
    out_json: str | Path,
    *,
    engine: Mapping[str, Any],
    dielectric: Mapping[str, Any],
    run: Mapping[str, Any],
    nprocs: int,
) -> None:
    """Workflow step: dielectric tensor of a host's relaxed unit cell (rule host_dielectric).

    ``engine``: CP2K and its settings; ``dielectric``: the response ``supercell`` and
    ``field`` (config key ``dielectric``); ``run``, ``nprocs``: how CP2K runs
    (steps/params.py)."""

    record = CalcRecord.from_json(unitcell_record)
    options = run["cp2k"]
    run_host_dielectric(
        record.pmg_structure(),
        Cp2kSettings(**engine["settings"]),
        Path(out_json).parent / "runs",
        out_json,
        dielectric.get("supercell") or [2, 2, 2],
        field=float(dielectric.get("field") or DEFAULT_FIELD),
        nprocs=nprocs,
        executable=options["executable"],
        mpi_launcher=options["mpi_launcher"],
        phonon_engine=(engine, run),
    )
