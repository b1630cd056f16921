"""Shared by the steps: engine settings, input and structure writers, host plans."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perovskite_defects import config as cfg
from perovskite_defects import engines
from perovskite_defects.engines.base import CalcSpec, EngineError

if TYPE_CHECKING:  # the science modules are imported lazily by the steps that use them
    pass

log = logging.getLogger("perovskite_defects")

RECORD = "record.json"
DEFECT_CELL = "defect.json"


def engine_settings(config: Mapping[str, Any]) -> Any:
    """Numerical settings of the configured engine (CP2K: by level; VASP: vasp.settings)."""
    try:
        return engines.get_engine(config["engine"]).settings(config)
    except EngineError as err:
        raise cfg.ConfigError(str(err)) from err


def write_inputs(config: Mapping[str, Any], structure, spec: CalcSpec, calc_dir: Path) -> None:
    engine = engines.get_engine(config["engine"])
    engine.write_input(structure, spec, engine_settings(config), calc_dir)


def write_structure_files(structure, directory: Path, stem: str = "structure") -> None:
    directory.mkdir(parents=True, exist_ok=True)
    structure.to(filename=str(directory / f"{stem}.cif"))
    structure.to(filename=str(directory / f"{stem}.vasp"), fmt="poscar")


def host_plan(config: Mapping[str, Any], name: str):
    """The plan of one host of the study (sweep entry or end member) by its name."""
    from perovskite_defects.study import end_member_plans, plan_hosts

    hosts = {h.name: h for h in plan_hosts(config, cfg.PROJECT_ROOT)}
    if name in hosts:
        return hosts[name]
    ends = end_member_plans(config, list(hosts.values()))
    if name in ends:
        return ends[name]
    raise cfg.ConfigError(f"host {name!r} is not in the study (hosts: {sorted(hosts)})")
