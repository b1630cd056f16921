"""Steps of workflow/rules/defects.smk: the defect manifest and each defect's inputs."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from perovskite_defects import config as cfg
from perovskite_defects.defects.distinct_sites import DefectCell
from perovskite_defects.defects.manifest import read_manifest, write_manifest
from perovskite_defects.defects.names import B_SET, HALIDE_SET, unbuilt_names
from perovskite_defects.defects.site_classes import build_defect_set
from perovskite_defects.engines.base import CalcSpec
from perovskite_defects.hosts.any_structure import build_structure_defect_set
from perovskite_defects.hosts.perovskite import HostStructure
from perovskite_defects.steps.common import DEFECT_CELL, write_inputs, write_structure_files
from perovskite_defects.study import defect_requests

log = logging.getLogger("perovskite_defects")


def write_manifest_files(
    host_json: str | Path,
    out_dir: str | Path,
    *,
    defects: Sequence[Mapping[str, Any]],
    site_classes: Mapping[str, Any],
) -> None:
    """The checkpoint: manifest.tsv/json of the host's defects and one POSCAR + CIF + JSON
    per defect structure under the host's structures/ folder (``defects``: config key
    ``defects``; ``site_classes``: representatives and interstitial_min_distance)."""

    host = HostStructure.from_json(host_json)
    if host.metadata.get("framework", "perovskite") != "perovskite":
        entries, built = build_structure_defect_set(
            host,
            defect_requests(defects),
            min_distance=site_classes["interstitial_min_distance"],
        )
    else:
        _log_unbuilt(defects, host)
        entries, built = build_defect_set(
            host,
            defect_requests(defects),
            representatives=site_classes["representatives"],
            seed=int(host.metadata.get("seed", 0)),
            min_distance=site_classes["interstitial_min_distance"],
        )
    structures_dir = Path(host_json).parent
    for entry, structure in built:
        write_structure_files(structure, structures_dir, entry.id)
        payload = {"entry": entry.__dict__, "structure": structure.as_dict()}
        (structures_dir / f"{entry.id}.json").write_text(json.dumps(payload, indent=1))
    write_manifest(entries, out_dir)
    log.info("%s: %d defect structures", host.name, len(entries))


def _log_unbuilt(defects: Sequence[Mapping[str, Any]], host: Any) -> None:
    """Name the role-name defects this host leaves out (A_i, A_B with FA/MA)."""

    symbols = {s.specie.symbol for s in host.structure}
    a = host.metadata["composition_requested"]["A"]
    b = [s for s in B_SET if s in symbols]
    x = [s for s in HALIDE_SET if s in symbols]
    for entry in defects:
        left = unbuilt_names(entry["name"], a, b, x)
        if left:
            log.warning(
                "%s: %s gives %s, not built (a molecular A cation on an interstitial or B "
                "site needs an orientation)",
                host.name,
                entry["name"],
                ", ".join(left),
            )


def prepare_defect(
    manifest_dir: str | Path,
    bulk_dir: str | Path,
    defect_id: str,
    charge: int,
    calc_dir: str | Path,
    *,
    engine: Mapping[str, Any],
) -> None:
    """Inputs of one defect of the manifest in one charge state, built in the bulk supercell."""
    structure, cell = defect_cell(manifest_dir, bulk_dir, defect_id, charge)
    write_defect_inputs(structure, cell, charge, Path(calc_dir), engine)
    # a start.json left by an earlier run with the ground-state search on would be read
    # as this run's start (steps/search.py, steps/tables.py)
    (Path(calc_dir) / "start.json").unlink(missing_ok=True)


def defect_cell(
    manifest_dir: str | Path, bulk_dir: str | Path, defect_id: str, charge: int
) -> tuple[Any, DefectCell]:
    """The defect supercell of ``defect_id`` (a manifest entry) built in the bulk supercell,
    and its :class:`DefectCell` record; ``charge`` must be one of the entry's."""
    from pymatgen.core import Structure

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
        # sites this structure stands for (concentrations): an equal share of its class
        multiplicity=entry.multiplicity / entry.n_representatives,  # type: ignore[arg-type]
        frac_coords=list(entry.frac_coords),
        structure=structure.as_dict(),
        site_index=entry.representative - 1,
        n_distinct_sites=entry.n_representatives,
    )
    return structure, cell


def write_defect_inputs(
    structure: Any, cell: DefectCell, charge: int, calc_dir: Path, engine: Mapping[str, Any]
) -> None:
    """Structure files, defect.json and the engine's inputs of a defect calculation:
    a relaxation of the atoms within relax_radius of the defect, or a single point when
    relax_radius is 0. ``structure`` is where it starts (the ideal cell, or a trial of
    the ground-state search); ``cell`` keeps the ideal one."""
    write_structure_files(structure, calc_dir)
    cell.to_json(calc_dir / DEFECT_CELL)
    relax_radius = float(engine["settings"]["relax_radius"])
    if relax_radius > 0:
        fixed = tuple(cell.atoms_beyond(relax_radius))
        calc = CalcSpec("relax_ions", "defect", charge=charge, fixed_atoms=fixed)
    else:
        calc = CalcSpec("static", "defect", charge=charge)
    write_inputs(engine, structure, calc, calc_dir)
