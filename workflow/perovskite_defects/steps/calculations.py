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

log = logging.getLogger("perovskite_defects")


def run_calculation(calc_dir: str | Path, *, run: Mapping[str, Any], nprocs: int) -> CalcRecord:
    """Run the engine in ``calc_dir`` and write record.json only for a converged result.

    Killed runs resume and unconverged SCFs climb the retry ladder (``recovery``); every
    failure is listed in ``results/<study>/failures.csv``. ``run``: the engine's name and
    run keys and ``scf_retries`` (steps/params.py ``run_params``; on SLURM its
    ``cp2k.mpi_launcher`` is srun); ``nprocs``: MPI ranks.
    """
    calc_dir = Path(calc_dir)
    engine = engines.engine_for_run(run)

    def run_once() -> CalcRecord:
        return engine.run(run, calc_dir, max(1, nprocs))

    if engine.resumable:
        return recovery.finish(run, calc_dir, run_once, RECORD)
    return recovery.finish_without_recovery(run, calc_dir, run_once, RECORD)
