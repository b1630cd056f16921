"""Step of workflow/rules/calculations.smk: run one DFT job (with recovery) and record it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from perovskite_defects import engines
from perovskite_defects.engines import recovery
from perovskite_defects.engines.base import CalcRecord
from perovskite_defects.steps.common import RECORD

#: Marker of a ground-state-search trial left out (steps/search.py writes it).
OMITTED = "omitted.json"

log = logging.getLogger("perovskite_defects")


def run_calculation(calc_dir: str | Path, *, run: Mapping[str, Any], nprocs: int) -> CalcRecord:
    """Run the engine in ``calc_dir`` and write record.json only for a converged result.

    Killed runs resume and unconverged SCFs climb the retry ladder (``recovery``); every
    failure is listed in ``results/<study>/failures.csv``. ``run``: the engine's name and
    run keys and ``scf_retries`` (steps/params.py ``run_params``; on SLURM its
    ``cp2k.mpi_launcher`` is srun); ``nprocs``: MPI ranks.
    """
    calc_dir = Path(calc_dir)
    if (calc_dir / OMITTED).is_file():
        return _omitted_trial(calc_dir, run)
    engine = engines.engine_for_run(run)

    def run_once() -> CalcRecord:
        return engine.run(run, calc_dir, max(1, nprocs))

    if engine.resumable:
        return recovery.finish(run, calc_dir, run_once, RECORD)
    return recovery.finish_without_recovery(run, calc_dir, run_once, RECORD)


def _omitted_trial(calc_dir: Path, run: Mapping[str, Any]) -> CalcRecord:
    """A trial of the ground-state search whose structure has two atoms closer than 1 Å is
    not run; its record says so (energy NaN), so the search summary lists it as omitted."""
    import json
    import math

    info = json.loads((calc_dir / OMITTED).read_text())
    record = CalcRecord(
        engine=str(run["engine"]),
        engine_version="not run",
        energy=math.nan,
        charge=int(info["charge"]),
        scf_converged=False,
        geometry_converged=None,
        structure={},
        extra={"failure": f"omitted: {info['omitted']}"},
    )
    record.to_json(calc_dir / RECORD)
    log.warning("%s: trial omitted (%s), not run", calc_dir, info["omitted"])
    return record
