"""Steps of workflow/rules/hosts.smk: host structures, their relaxation inputs, the bulk cell."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from perovskite_defects.config import PROJECT_ROOT
from perovskite_defects.engines.base import CalcRecord, CalcSpec, EngineError
from perovskite_defects.hosts.any_structure import (
    build_structure_host,
    bulk_structure,
    load_host_structure,
)
from perovskite_defects.hosts.perovskite import HostStructure, build_host, load_user_structure
from perovskite_defects.steps.common import write_inputs, write_structure_files
from perovskite_defects.study import HostPlan, plan_from_params

log = logging.getLogger("perovskite_defects")


def build_host_files(out_dir: str | Path, *, host: Mapping[str, Any]) -> None:
    """structures/host.{vasp,cif,json}: the host supercell with its metadata (``host``:
    :func:`perovskite_defects.study.plan_params` of its plan)."""

    plan = plan_from_params(host, PROJECT_ROOT)
    name = plan.name
    if not isinstance(plan, HostPlan):  # framework any: a structure-file host
        built = build_structure_host(plan)
        built.to_files(out_dir, "host")
        log.info("%s: %d atoms from %s", name, len(built.structure), plan.user_structure)
        return
    s = plan.settings
    user = (
        load_user_structure(plan.user_structure, "host.structure") if plan.user_structure else None
    )
    cell = build_host(
        plan.composition,
        plan.start_lattice,
        plan.supercell.multiples,
        plan.supercell.counts,
        user_structure=user,
        seed=int(s.get("seed", 0)),
        orientation=s.get("molecule_orientation", "random"),
        sqs_cutoffs=s.get("sqs_cutoffs", (1.75, 1.45)),
        sqs_steps=int(s.get("sqs_steps", 0)) or None,
    )
    meta = cell.metadata
    meta["lattice_mode"] = plan.lattice_mode
    if plan.lattice_mode == "relax":
        # the bulk's lattice comes from this supercell's own relaxation (relax/ folder);
        # lattice_constant above is only where the relaxation starts
        meta["lattice_source"] = "relaxed"
        meta["start_lattice_source"] = plan.lattice_source
    else:
        meta["lattice_source"] = plan.lattice_source
    meta["end_members"] = list(plan.end_members)
    if (s.get("stability") or {}).get("check"):
        # the bulk is this supercell brought to a dynamically stable structure
        meta["lattice_source"] = "relaxed (stability check)"
        meta["stability"] = "stability/stability.json"
    cell.to_files(out_dir, "host")
    log.info("%s: %d atoms, %s", name, len(cell.structure), meta.get("sqs"))


def prepare_host(
    calc_dir: str | Path, *, host: Mapping[str, Any], engine: Mapping[str, Any]
) -> None:
    """Inputs of an end member's unit cell (5 atoms; FA/MA as one molecule): a cell
    relaxation at fixed cubic shape when ``relax`` is true (it gives the lattice constant
    of Vegard's law), otherwise a single point."""

    plan = plan_from_params(host, PROJECT_ROOT)
    if not isinstance(plan, HostPlan):  # framework any: the structure file's cell
        unit = load_host_structure(plan.user_structure)
        write_structure_files(unit, Path(calc_dir), "initial")
        write_inputs(engine, unit, CalcSpec("relax_cell", "host"), Path(calc_dir))
        return
    cell = build_host(
        plan.composition,
        plan.start_lattice,
        (1, 1, 1),
        plan.supercell.counts,
        seed=int(plan.settings.get("seed", 0)),
        orientation="aligned",
    )
    calc_dir = Path(calc_dir)
    write_structure_files(cell.structure, calc_dir, "initial")
    kind = "relax_cell" if plan.settings.get("relax", True) else "static"
    write_inputs(engine, cell.structure, CalcSpec(kind, "host", keep_symmetry="CUBIC"), calc_dir)


def _pseudo_cubic(structure) -> float:
    """Pseudo-cubic lattice constant (Å): (volume per B atom)^(1/3)."""
    n_fu = sum(s.specie.symbol in ("Pb", "Sn") for s in structure)
    return float((structure.volume / n_fu) ** (1 / 3))


def lattice_constant(record_path: str | Path) -> float:
    """Pseudo-cubic lattice constant (Å) of a converged unit-cell record: V^(1/3) per B."""
    return _pseudo_cubic(CalcRecord.from_json(record_path).require_converged().pmg_structure())


def prepare_supercell_relax(
    host_json: str | Path, calc_dir: str | Path, *, engine: Mapping[str, Any]
) -> None:
    """Inputs of the variable-cell relaxation of a host supercell (lattice_mode relax).

    The same calculation kind as the end members' unit cells (CP2K CELL_OPT, VASP ISIF=3)
    with the supercell's k-points and no symmetry: an SQS or a cell with molecules has
    none to keep, and its cell lengths may come out different.
    """

    host = HostStructure.from_json(host_json)
    calc_dir = Path(calc_dir)
    write_structure_files(host.structure, calc_dir, "initial")
    write_inputs(engine, host.structure, CalcSpec("relax_cell", "bulk"), calc_dir)


def check_host_stability(
    host_json: str | Path,
    out_dir: str | Path,
    *,
    stability: Mapping[str, Any],
    engine: Mapping[str, Any],
    run: Mapping[str, Any],
    nprocs: int,
) -> None:
    """stability/: the host supercell brought to a dynamically stable structure
    (host.stability; see hosts/stability.py), result in stability.json. ``run`` and
    ``nprocs``: how its calculations run (steps/params.py run_params)."""
    # why: the stability check loads phonopy: only its own jobs
    from perovskite_defects.hosts.stability import StabilitySettings
    from perovskite_defects.hosts.stability_run import run_check

    host = HostStructure.from_json(host_json)
    settings = StabilitySettings.from_mapping(dict(stability))
    result = run_check(host.structure, out_dir, engine, run, settings, nprocs)
    log.info("%s: %s", host.name, result.summary())


def _stable_bulk(host, stability_json: str | Path) -> tuple[Any, dict[str, Any]]:
    """The phonon-checked host supercell of host.stability (cell and positions)."""
    # why: hosts.stability loads phonopy: only the bulk of a checked host
    from perovskite_defects.hosts.stability import HostStability

    result = HostStability.from_json(stability_json)
    structure = result.final_structure()
    if [s.specie.symbol for s in structure] != [s.specie.symbol for s in host.structure]:
        # the defects of the manifest address atoms by index in the host's order
        raise EngineError(f"{stability_json}: atoms are not those of {host.name}'s host.json")
    if not result.stable:
        log.warning("%s: the host keeps imaginary modes (%s)", host.name, stability_json)
    info = {
        "lattice_constant": _pseudo_cubic(structure),
        "lattice_source": "relaxed (stability check)",
        "stability": {**result.summary(), "file": str(stability_json)},
        "lattice_abc": list(structure.lattice.abc),
        "lattice_angles": list(structure.lattice.angles),
    }
    return structure, info


def _relaxed_bulk(host, record_path: str | Path) -> tuple[Any, dict[str, Any]]:
    """The relaxed host supercell (cell and positions) of lattice_mode relax."""
    record = CalcRecord.from_json(record_path).require_converged()
    structure = record.pmg_structure()
    species = [site.specie.symbol for site in structure]
    if species != [site.specie.symbol for site in host.structure]:
        # the defects of the manifest address atoms by index in the host's order
        raise EngineError(f"{record_path}: atoms are not those of {host.name}'s host.json")
    info = {
        "lattice_constant": _pseudo_cubic(structure),
        "lattice_source": "relaxed",
        "relaxed_record": str(record_path),
        "lattice_abc": list(structure.lattice.abc),
        "lattice_angles": list(structure.lattice.angles),
    }
    return structure, info


def prepare_bulk(
    host_json: str | Path,
    end_member_records: Mapping[str, str | Path],
    calc_dir: str | Path,
    *,
    host: Mapping[str, Any],
    engine: Mapping[str, Any],
) -> None:
    """Pristine supercell at the Vegard lattice constant of the relaxed end members, or
    (lattice_mode relax; ``end_member_records`` is then ``{"relaxed": record}``) the host
    supercell as its own relaxation left it."""

    built = HostStructure.from_json(host_json)
    plan = plan_from_params(host, PROJECT_ROOT)
    if plan.name != built.name:
        raise EngineError(f"{host_json}: host {built.name}, but the params plan {plan.name}")
    calc_dir = Path(calc_dir)
    if not isinstance(plan, HostPlan):  # framework any
        _prepare_structure_bulk(engine, built, plan, end_member_records, calc_dir)
        return
    if "stable" in end_member_records or plan.lattice_mode == "relax":
        if "stable" in end_member_records:
            structure, info = _stable_bulk(built, end_member_records["stable"])
        else:
            structure, info = _relaxed_bulk(built, end_member_records["relaxed"])
        write_structure_files(structure, calc_dir)
        payload = {**info, "structure": structure.as_dict()}
        (calc_dir / "supercell.json").write_text(json.dumps(payload, indent=1))
        write_inputs(engine, structure, CalcSpec("static", "bulk", band_edges=True), calc_dir)
        return
    constants = {
        key: lattice_constant(end_member_records[name])
        for key, name in zip(plan.end_member_keys, plan.end_members, strict=True)
    }
    a = plan.composition.vegard_lattice(constants)
    relaxed_ends = bool(plan.settings.get("relax", True))
    structure = built.structure.copy()
    structure.scale_lattice(structure.volume * (a / built.metadata["lattice_constant"]) ** 3)
    write_structure_files(structure, calc_dir)
    (calc_dir / "supercell.json").write_text(
        json.dumps(
            {
                "lattice_constant": a,
                # Vegard between relaxed end members (or unrelaxed ones: relax false)
                "lattice_source": "vegard" if relaxed_ends else "vegard(unrelaxed)",
                "end_member_lattice_constants": {
                    n: constants[k]
                    for k, n in zip(plan.end_member_keys, plan.end_members, strict=True)
                },
                "structure": structure.as_dict(),
            },
            indent=1,
        )
    )
    write_inputs(engine, structure, CalcSpec("static", "bulk", band_edges=True), calc_dir)


def _prepare_structure_bulk(
    engine: Mapping[str, Any],
    host: Any,
    plan: Any,
    records: Mapping[str, str | Path],
    calc_dir: Path,
) -> None:
    """Pristine supercell of a framework-any host: as built, or of the relaxed cell."""

    relaxed = (
        CalcRecord.from_json(records[plan.name]).require_converged().pmg_structure()
        if plan.relax
        else None
    )
    structure = bulk_structure(host, relaxed)
    write_structure_files(structure, calc_dir)
    (calc_dir / "supercell.json").write_text(
        json.dumps(
            {"source": "relaxed unit cell" if plan.relax else "structure file as given"}
            | {"structure": structure.as_dict()},
            indent=1,
        )
    )
    write_inputs(engine, structure, CalcSpec("static", "bulk", band_edges=True), calc_dir)
