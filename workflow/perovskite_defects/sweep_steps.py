"""Workflow steps of a composition sweep: host structures, the defect manifest (checkpoint),
end-member unit cells, Vegard-scaled bulk supercells, defect inputs from the manifest,
per-host chemical potentials and the aggregated tables. Each reads and writes files only."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pymatgen.core import Structure

from . import config as cfg
from .engines import cp2k
from .engines.base import CalcRecord
from .steps import _write_structure_files, engine_settings

log = logging.getLogger("perovskite_defects")


def _plans(config: Mapping[str, Any]):
    from .study import end_member_plans, plan_hosts

    hosts = plan_hosts(config, cfg.PROJECT_ROOT)
    return {h.name: h for h in hosts}, end_member_plans(config, hosts)


def host_plan(config: Mapping[str, Any], name: str):
    hosts, ends = _plans(config)
    if name in hosts:
        return hosts[name]
    if name in ends:
        return ends[name]
    raise cfg.ConfigError(f"host {name!r} is not in the study (hosts: {sorted(hosts)})")


def build_host_files(config: Mapping[str, Any], name: str, out_dir: str | Path) -> None:
    """structures/host.{vasp,cif,json}: the host supercell with its metadata."""
    from .hosts import build_host, load_user_structure

    plan = host_plan(config, name)
    s = plan.settings
    user = (
        load_user_structure(plan.user_structure, "host.structure") if plan.user_structure else None
    )
    host = build_host(
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
    host.metadata["lattice_source"] = plan.lattice_source
    host.metadata["end_members"] = list(plan.end_members)
    host.to_files(out_dir, "host")
    log.info("%s: %d atoms, %s", name, len(host.structure), host.metadata.get("sqs"))


def write_manifest_files(
    config: Mapping[str, Any], host_json: str | Path, out_dir: str | Path
) -> None:
    """The checkpoint: manifest.tsv/json of the host's defects and one POSCAR + CIF + JSON
    per defect structure under the host's structures/ folder."""
    from .defect_sets import build_defect_set, write_manifest
    from .hosts import HostStructure
    from .study import defect_requests

    host = HostStructure.from_json(host_json)
    entries, built = build_defect_set(
        host,
        defect_requests(config),
        representatives=config["site_classes"]["representatives"],
        seed=int(host.metadata.get("seed", 0)),
        min_distance=config["site_classes"]["interstitial_min_distance"],
    )
    structures_dir = Path(host_json).parent
    for entry, structure in built:
        _write_structure_files(structure, structures_dir, entry.id)
        payload = {"entry": entry.__dict__, "structure": structure.as_dict()}
        (structures_dir / f"{entry.id}.json").write_text(json.dumps(payload, indent=1))
    write_manifest(entries, out_dir)
    log.info("%s: %d defect structures", host.name, len(entries))


def prepare_unit_cell(config: Mapping[str, Any], name: str, calc_dir: str | Path) -> None:
    """Unit cell of an end member (5 atoms; FA/MA as one molecule), relaxed at fixed cubic
    cell shape when ``relax`` is true: it gives the lattice constant."""
    from .hosts import build_host

    plan = host_plan(config, name)
    host = build_host(
        plan.composition,
        plan.start_lattice,
        (1, 1, 1),
        plan.supercell.counts,
        seed=int(plan.settings.get("seed", 0)),
        orientation="aligned",
    )
    calc_dir = Path(calc_dir)
    _write_structure_files(host.structure, calc_dir, "initial")
    kind = "relax_cell" if plan.settings.get("relax", True) else "static"
    cp2k.write_input(
        host.structure, kind, 0, engine_settings(config), calc_dir, keep_symmetry="CUBIC"
    )


def lattice_constant(record_path: str | Path) -> float:
    """Pseudo-cubic lattice constant (Å) of a converged unit-cell record: V^(1/3)."""
    structure = CalcRecord.from_json(record_path).require_converged().pmg_structure()
    n_fu = sum(s.specie.symbol in ("Pb", "Sn") for s in structure)
    return float((structure.volume / n_fu) ** (1 / 3))


def prepare_bulk_supercell(
    config: Mapping[str, Any],
    host_json: str | Path,
    end_member_records: Mapping[str, str | Path],
    calc_dir: str | Path,
) -> None:
    """Pristine supercell at the Vegard lattice constant of the relaxed end members."""
    from .hosts import HostStructure

    host = HostStructure.from_json(host_json)
    plan = host_plan(config, host.name)
    constants = {
        key: lattice_constant(end_member_records[name])
        for key, name in zip(plan.end_member_keys, plan.end_members, strict=True)
    }
    a = plan.composition.vegard_lattice(constants)
    structure = host.structure.copy()
    structure.scale_lattice(structure.volume * (a / host.metadata["lattice_constant"]) ** 3)
    calc_dir = Path(calc_dir)
    _write_structure_files(structure, calc_dir)
    (calc_dir / "supercell.json").write_text(
        json.dumps(
            {
                "lattice_constant": a,
                "end_member_lattice_constants": {
                    n: constants[k]
                    for k, n in zip(plan.end_member_keys, plan.end_members, strict=True)
                },
                "structure": structure.as_dict(),
            },
            indent=1,
        )
    )
    cp2k.write_input(
        structure,
        "static",
        0,
        engine_settings(config),
        calc_dir,
        is_supercell=True,
        band_edges=True,
    )


def prepare_manifest_defect(
    config: Mapping[str, Any],
    manifest_dir: str | Path,
    bulk_dir: str | Path,
    defect_id: str,
    charge: int,
    calc_dir: str | Path,
) -> None:
    """Inputs of one defect of the manifest in one charge state, built in the bulk supercell."""
    from .defect_sets import read_manifest
    from .defects import DefectCell

    entries = {e.id: e for e in read_manifest(manifest_dir)}
    if defect_id not in entries:
        raise cfg.ConfigError(f"defect {defect_id!r} is not in {manifest_dir}/manifest.tsv")
    entry = entries[defect_id]
    if charge not in entry.charges:
        raise cfg.ConfigError(f"defect {defect_id}: charge {charge} is not in {entry.charges}")
    bulk = Structure.from_dict(
        json.loads((Path(bulk_dir) / "supercell.json").read_text())["structure"]
    )
    structure = entry.apply(bulk)
    cell = DefectCell(
        name=entry.id,
        kind=entry.kind,
        charges=list(entry.charges),
        atoms_added=dict(entry.atoms_added),
        multiplicity=entry.multiplicity,  # type: ignore[arg-type]
        frac_coords=list(entry.frac_coords),
        structure=structure.as_dict(),
        site_index=entry.representative - 1,
        n_distinct_sites=entry.n_representatives,
    )
    calc_dir = Path(calc_dir)
    _write_structure_files(structure, calc_dir)
    cell.to_json(calc_dir / "defect.json")
    settings = engine_settings(config)
    if settings.relax_radius > 0:
        cp2k.write_input(
            structure,
            "relax_ions",
            charge,
            settings,
            calc_dir,
            is_supercell=True,
            fixed_atoms=cell.atoms_beyond(settings.relax_radius),
        )
    else:
        cp2k.write_input(structure, "static", charge, settings, calc_dir, is_supercell=True)


def host_phases(config: Mapping[str, Any], name: str) -> list[str]:
    """Competing phases that bear on a host: those made of its elements and its dopants."""
    from .study import check_defects

    plan = host_plan(config, name)
    allowed = plan.elements | check_defects(config, [plan])
    return [p for p in config["competing_phases"] if cfg._element_set(p) <= allowed]


def host_chemical_potentials(
    config: Mapping[str, Any],
    name: str,
    host_record: str | Path,
    phase_records: Mapping[str, str | Path],
    out_json: str | Path,
) -> None:
    """Chemical-potential limits of one host of the sweep."""
    from .chempots import compute_chemical_potential_limits
    from .study import check_defects

    plan = host_plan(config, name)
    host = CalcRecord.from_json(host_record).require_converged()
    phases = {}
    for label, path in phase_records.items():
        record = CalcRecord.from_json(path).require_converged()
        phases[label] = (record.pmg_structure().composition.as_dict(), record.energy)
    dopants = sorted(check_defects(config, [plan]))
    limits = compute_chemical_potential_limits(
        host.pmg_structure().composition.as_dict(),
        host.energy,
        phases,
        extrinsic_elements=dopants,
        rich_element=plan.composition.majority_halide,
        host_label=name,
    )
    limits.write_json(out_json)
    for note in limits.notes:
        log.warning(note)


def aggregate_tables(
    config: Mapping[str, Any],
    host_names: Sequence[str],
    results_dir: str | Path,
    out_dir: str | Path,
) -> None:
    """Tables across compositions (CSV + Markdown) and provenance.json."""
    from .aggregate import aggregate

    results_dir = Path(results_dir)
    hosts = []
    for name in host_names:
        meta = json.loads((results_dir / name / "structures" / "host.json").read_text())
        achieved = meta["metadata"]["composition_achieved"]
        hosts.append(
            {
                "name": name,
                "composition": {
                    "A": meta["metadata"]["composition_requested"]["A"],
                    "x": achieved["x"],
                    "X": achieved["X"],
                },
                "tables": results_dir / name / "tables",
                "manifest": results_dir / name / "defects" / "manifest.json",
            }
        )
    aggregate(hosts, config["aggregate"]["temperature"], out_dir)
    provenance = {
        "config": dict(config),
        "hosts": {
            h["name"]: {
                "composition": h["composition"],
                "provenance": str(Path(h["tables"]) / "provenance.json"),
            }
            for h in hosts
        },
    }
    (Path(out_dir) / "provenance.json").write_text(json.dumps(provenance, indent=1, default=str))
