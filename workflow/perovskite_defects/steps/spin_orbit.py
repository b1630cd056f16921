"""Step of workflow/rules/spin_orbit.smk: spin-orbit shifts of a host's band edges."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perovskite_defects.engines import gpaw as gpaw_engine
from perovskite_defects.engines.base import CalcRecord, CalcSpec
from perovskite_defects.thermodynamics.spin_orbit_edges import shifts_from_record

if TYPE_CHECKING:
    from perovskite_defects.thermodynamics.spin_orbit_edges import SocShifts

log = logging.getLogger("perovskite_defects")


def compute_shifts(
    structure_record: str | Path, run_dir: str | Path, *, gpaw: Mapping[str, Any]
) -> SocShifts:
    """Run GPAW on the final structure of ``structure_record`` (the host unit cell, or
    the bulk supercell of hosts without one) and write ``record.json`` and
    ``soc_shifts.json`` into ``run_dir``. ``gpaw``: the fields of its GpawSettings
    (steps/params.py)."""

    source = CalcRecord.from_json(structure_record).require_converged()
    settings = gpaw_engine.GpawSettings(**gpaw)
    run_dir = Path(run_dir)
    spec = CalcSpec("static", "host", band_edges=True)
    gpaw_engine.write_input(source.pmg_structure(), spec, settings, run_dir)
    record = gpaw_engine.run(settings, run_dir)
    record.to_json(run_dir / "record.json")
    shifts = shifts_from_record(record, structure_record)
    shifts.to_json(run_dir / "soc_shifts.json")
    log.info(
        "%s: spin-orbit shifts VBM %+.4f, CBM %+.4f eV (gap %.3f -> %.3f eV; %s, k-mesh %s, "
        "SCF %.0f s)",
        structure_record,
        shifts.vbm_shift,
        shifts.cbm_shift,
        shifts.gap_without,
        shifts.gap_with,
        shifts.engine_version,
        shifts.kpoint_mesh,
        shifts.timings_s.get("scf", float("nan")),
    )
    return shifts
