"""Step of workflow/rules/calculations.smk: run one DFT job (with recovery) and record it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perovskite_defects import engines
from perovskite_defects.engines.base import CalcRecord

if TYPE_CHECKING:  # the science modules are imported lazily by the steps that use them
    pass

from perovskite_defects.steps.common import RECORD

log = logging.getLogger("perovskite_defects")


def run_calculation(
    config: Mapping[str, Any],
    calc_dir: str | Path,
    nprocs: int,
    mpi_launcher: str | None = None,
) -> CalcRecord:
    """Run the engine in ``calc_dir`` and write record.json only for a converged result.

    Killed runs resume and unconverged SCFs climb the retry ladder (``recovery``); every
    failure is listed in ``results/<study>/failures.csv``. ``mpi_launcher`` (the rule's
    ``mpi`` resource: srun on SLURM) overrides ``cp2k.mpi_launcher``.
    """
    from perovskite_defects.engines import recovery

    calc_dir = Path(calc_dir)
    engine = engines.engine_for_run(config)
    if mpi_launcher is not None and "cp2k" in config:
        config = {**config, "cp2k": {**config["cp2k"], "mpi_launcher": mpi_launcher}}

    def run_once() -> CalcRecord:
        return engine.run(config, calc_dir, max(1, nprocs))

    if engine.resumable:
        return recovery.finish(config, calc_dir, run_once, RECORD)
    return recovery.finish_without_recovery(config, calc_dir, run_once, RECORD)
