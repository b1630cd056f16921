"""Shared by the steps: engine and input writers, structure files, host plans."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from perovskite_defects import config as cfg
from perovskite_defects import engines
from perovskite_defects.engines.base import CalcSpec, Engine

log = logging.getLogger("perovskite_defects")

RECORD = "record.json"
DEFECT_CELL = "defect.json"


def engine_and_settings(engine: Mapping[str, Any]) -> tuple[Engine, Any]:
    """The engine and its settings object from ``engine`` (rule param, see
    :func:`perovskite_defects.steps.params.engine_inputs`)."""
    chosen = engines.get_engine(engine["engine"])
    return chosen, chosen.settings_from(engine["settings"])


def write_inputs(engine: Mapping[str, Any], structure, spec: CalcSpec, calc_dir: Path) -> None:
    """Input files of ``spec`` for ``structure`` with the engine and settings of ``engine``."""
    chosen, settings = engine_and_settings(engine)
    chosen.write_input(structure, spec, settings, calc_dir)


def write_structure_files(structure, directory: Path, stem: str = "structure") -> None:
    directory.mkdir(parents=True, exist_ok=True)
    structure.to(filename=str(directory / f"{stem}.cif"))
    structure.to(filename=str(directory / f"{stem}.vasp"), fmt="poscar")


def host_plan(config: Mapping[str, Any], name: str):
    """The plan of one host of the study (sweep entry or end member) by its name."""
    # why: study loads pymatgen.core; the run jobs import this module
    from perovskite_defects.study import end_member_plans, plan_hosts

    hosts = {h.name: h for h in plan_hosts(config, cfg.PROJECT_ROOT)}
    if name in hosts:
        return hosts[name]
    ends = end_member_plans(config, list(hosts.values()))
    if name in ends:
        return ends[name]
    raise cfg.ConfigError(f"host {name!r} is not in the study (hosts: {sorted(hosts)})")
