"""TEST-ONLY engine ``replay-recorded-test-only``: replays recorded real DFT outputs.

VASP cannot run here, yet the VASP path of the workflow (inputs written by the VASP rules,
the run rule, the VASP parser, convergence rules, corrections) must be tested end to end.
This engine stands in for the *execution* only: it wraps a real engine (normally
:class:`~.vasp.VaspEngine`), whose input writer and parser are used unchanged, and in
place of running the DFT binary it copies the output files of a recorded real run
(vasprun.xml, OUTCAR, LOCPOT, ...) into the job folder. Before the copied outputs are
accepted it checks that the recording is a run of the prepared inputs: same atoms at the
same positions (any order), same charge, and the same physics-defining INCAR tags and
k-mesh. A recording of something else is an :class:`EngineError`, never a result.

A prepared *relaxation* (e.g. a defect relaxed at fixed cell) is replayed by a recording
of its end point: a run at the relaxed geometry. Then the atoms the inputs let move may
sit up to :data:`MAX_RELAX_DISPLACEMENT` from their prepared positions (relaxation near
a defect moves atoms by tenths of an Å; a wrong site or species is Å away), while atoms
held fixed (selective dynamics) must still sit where prepared; the record notes
``replayed_relaxation_end_point``.

How it can never be selected by accident in production:

- ``replay-recorded-test-only`` is not a value of the config key ``engine`` (not in the
  schema's enum, not in :data:`perovskite_defects.engines.ENGINES`), so no config file
  can name it; ``get_engine`` refuses it.
- It is switched on only by the environment variable
  :data:`perovskite_defects.engines.REPLAY_ENV`, holding the path of a replay plan, which
  the tests set for the Snakemake process they start; the constructor refuses to work
  without it.
- Every record it produces carries ``extra["replayed_from"]`` with the recording's path,
  and the log says "REPLAYED", so a replayed number is visible in provenance.

The plan is JSON: ``{"recordings": {"<job folder as the rule names it>": "<recorded
folder>"}}``, e.g. ``{"results/cdte/CdTe/bulk": "/data/cdte_vcd_m2/bulk_vasp_gam"}``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from perovskite_defects.engines import REPLAY_ENV
from perovskite_defects.engines.base import CalcRecord, CalcSpec, Engine, EngineError

NAME = "replay-recorded-test-only"

#: Output files copied from a recording (whichever exist).
OUTPUT_FILES = (
    "vasprun.xml", "vasprun.xml.gz", "OUTCAR", "OUTCAR.gz", "LOCPOT", "LOCPOT.gz",
)  # fmt: skip

#: INCAR tags that define the physics of a run: prepared and recorded values must agree.
CHECKED_TAGS = (
    "ENCUT", "ISPIN", "LHFCALC", "HFSCREEN", "AEXX", "ISMEAR", "SIGMA",
    "LSORBIT", "LVHAR", "ISYM", "GGA",
)  # fmt: skip

#: Å: how far a free atom of a prepared relaxation may sit from its prepared position in
#: the recording (see the module docstring); fixed atoms and single points: SITE_TOLERANCE.
MAX_RELAX_DISPLACEMENT = 0.5
SITE_TOLERANCE = 0.02

log = logging.getLogger("perovskite_defects")


class ReplayRecordedEngine(Engine):
    """Wraps ``inner`` (writes inputs, parses) and replays recorded outputs instead of running."""

    name = NAME

    def __init__(self, inner: Engine, plan_path: str | Path) -> None:
        if not os.environ.get(REPLAY_ENV):
            raise EngineError(
                f"the {NAME} engine is for tests only and needs the environment variable "
                f"{REPLAY_ENV}; it cannot be selected from a config file"
            )
        self.inner = inner
        self.plan_path = Path(plan_path)
        if not self.plan_path.is_file():
            raise EngineError(f"{self.plan_path}: replay plan ({REPLAY_ENV}) does not exist")
        plan = json.loads(self.plan_path.read_text())
        self.recordings: dict[str, str] = dict(plan.get("recordings", {}))

    def settings(self, config: Mapping[str, Any]) -> Any:
        return self.inner.settings(config)

    def write_input(self, structure: Any, spec: CalcSpec, settings: Any, run_dir: Path) -> Path:
        return self.inner.write_input(structure, spec, settings, run_dir)

    def command(self, config: Mapping[str, Any], run_dir: Path, nprocs: int) -> list[str]:
        return ["replay", str(self._recording(Path(run_dir)))]

    def parse(self, run_dir: Path) -> CalcRecord:
        return self.inner.parse(run_dir)

    def run(self, config: Mapping[str, Any], run_dir: Path, nprocs: int) -> CalcRecord:
        run_dir = Path(run_dir)
        source = self._recording(run_dir)
        copied = []
        for name in OUTPUT_FILES:
            if (source / name).is_file():
                shutil.copyfile(source / name, run_dir / name)
                copied.append(name)
        if not copied:
            raise EngineError(f"{source}: recording holds none of {OUTPUT_FILES}")
        log.warning("REPLAYED (test only): %s <- %s (%s)", run_dir, source, ", ".join(copied))
        record = self.inner.parse(run_dir)
        moved = check_matches_inputs(record, run_dir, source)
        record.extra["replayed_from"] = str(source)
        if moved is not None:
            record.extra["replayed_relaxation_end_point"] = {"max_displacement_A": moved}
        return record

    def _recording(self, run_dir: Path) -> Path:
        key = os.path.relpath(run_dir, Path.cwd()) if run_dir.is_absolute() else str(run_dir)
        key = Path(key).as_posix()
        if key not in self.recordings:
            raise EngineError(
                f"{run_dir}: no recording for this job in the replay plan {self.plan_path} "
                f"(has: {sorted(self.recordings)})"
            )
        return Path(self.recordings[key])


def check_matches_inputs(record: CalcRecord, run_dir: Path, source: Path) -> float | None:
    """Refuse a recording that is not a run of the inputs prepared in ``run_dir``.

    Returns the largest displacement (Å) of a free atom when the inputs are an ionic
    relaxation (replayed by its end point), else None.
    """
    from pymatgen.io.vasp.inputs import Incar, Poscar

    meta = json.loads((run_dir / "calc.json").read_text())
    if "charge" in meta and record.charge != int(meta["charge"]):
        raise EngineError(
            f"{run_dir}: recording {source} has charge {record.charge}, inputs {meta['charge']}"
        )
    prepared = Poscar.from_file(str(run_dir / "POSCAR")).structure
    recorded = record.pmg_structure()
    relaxation = meta.get("calc_kind") == "relax_ions"
    moved = _check_same_sites(prepared, recorded, run_dir, source, relaxation)
    ours = Incar.from_file(str(run_dir / "INCAR"))
    # NELECT against what the run used (vasprun), as a recorded INCAR may leave it implicit
    if "NELECT" in ours and not _same(float(ours["NELECT"]), record.nelect):
        raise EngineError(
            f"{run_dir}: NELECT {ours['NELECT']} but recording {source} ran with {record.nelect}"
        )
    theirs = Incar.from_file(str(source / "INCAR")) if (source / "INCAR").is_file() else None
    if theirs is not None:
        differ = [
            f"{tag} {ours.get(tag)!r} vs {theirs.get(tag)!r}"
            for tag in CHECKED_TAGS
            if not _same(ours.get(tag), theirs.get(tag))
        ]
        if differ:
            raise EngineError(
                f"{run_dir}: recording {source} was run with other settings: " + "; ".join(differ)
            )
    mesh = meta.get("kpoint_mesh")
    recorded_mesh = record.settings.get("kpoints", {}).get("divisions")
    if mesh and recorded_mesh and [int(x) for x in recorded_mesh] != list(mesh):
        raise EngineError(f"{run_dir}: k-mesh {mesh} but recording {source} used {recorded_mesh}")
    return moved if relaxation else None


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) or isinstance(b, str):
        return str(a).strip().upper() == str(b).strip().upper()
    return bool(np.isclose(float(a), float(b), rtol=1e-6, atol=1e-9))


def _check_same_sites(
    prepared: Any, recorded: Any, run_dir: Path, source: Path, relaxation: bool = False
) -> float:
    """Same lattice and the same species at the same positions, in any order: within
    SITE_TOLERANCE, or for the free atoms of a relaxation MAX_RELAX_DISPLACEMENT.
    Returns the largest displacement of a free atom (Å)."""
    if len(prepared) != len(recorded) or prepared.composition != recorded.composition:
        raise EngineError(
            f"{run_dir}: recording {source} is {recorded.composition.formula}, "
            f"inputs are {prepared.composition.formula}"
        )
    if not np.allclose(prepared.lattice.matrix, recorded.lattice.matrix, atol=1e-3):
        raise EngineError(f"{run_dir}: recording {source} has another cell than the inputs")
    dists = prepared.lattice.get_all_distances(prepared.frac_coords, recorded.frac_coords)
    same_species = np.array(
        [[a.specie == b.specie for b in recorded] for a in prepared], dtype=bool
    )
    dists = np.where(same_species, dists, np.inf)
    nearest = dists.min(axis=1)
    flags = prepared.site_properties.get("selective_dynamics")
    free = np.array(
        [relaxation and (flags is None or any(flags[i])) for i in range(len(prepared))],
        dtype=bool,
    )
    allowed = np.where(free, MAX_RELAX_DISPLACEMENT, SITE_TOLERANCE)
    if (nearest > allowed).any():
        i = int(np.argmax(nearest - allowed))
        raise EngineError(
            f"{run_dir}: recording {source} does not hold the prepared structure (atom "
            f"{i + 1}, {prepared[i].specie}, {'free' if free[i] else 'fixed'}, is "
            f"{nearest[i]:.3f} Å from any recorded atom of its species; allowed "
            f"{allowed[i]} Å)"
        )
    return float(nearest[free].max()) if free.any() else 0.0
