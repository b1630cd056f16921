"""Workflow steps: one function per Snakemake rule, each reading and writing files only.

Rules call these through ``workflow/scripts/*.py``; every function is usable (and tested)
without Snakemake.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from . import config as cfg
from .engines import cp2k
from .engines.base import CalcRecord, EngineError

log = logging.getLogger("perovskite_defects")

RECORD = "record.json"
DEFECT_CELL = "defect.json"


def engine_settings(config: Mapping[str, Any]) -> cp2k.Cp2kSettings:
    if config["engine"] != "cp2k":
        raise cfg.ConfigError(f"config key 'engine': {config['engine']!r} is not supported yet")
    return cp2k.Cp2kSettings.for_level(config["level"], config["cp2k"].get("settings"))


def _write_structure_files(structure, directory: Path, stem: str = "structure") -> None:
    directory.mkdir(parents=True, exist_ok=True)
    structure.to(filename=str(directory / f"{stem}.cif"))
    structure.to(filename=str(directory / f"{stem}.vasp"), fmt="poscar")


# --------------------------------------------------------------------------- inputs


def prepare_host(config: Mapping[str, Any], calc_dir: str | Path) -> None:
    """Inputs of the host unit cell: variable-cell relaxation (or a single point)."""
    from .hosts import cubic_prototype

    host = config["host"]
    unit = cubic_prototype(host["A"], host["B"], host["X"], host["lattice_constant"])
    calc_dir = Path(calc_dir)
    _write_structure_files(unit, calc_dir, "initial")
    kind = "relax_cell" if host["relax"] else "static"
    cp2k.write_input(unit, kind, 0, engine_settings(config), calc_dir, keep_symmetry="CUBIC")


def prepare_phase(
    config: Mapping[str, Any], phase: str, calc_dir: str | Path, cif: str | Path | None = None
) -> None:
    """Inputs of a competing phase.

    Cells relax when the level asks for it (``phase_cell_relax``) and the phase is not a
    molecular crystal; otherwise only the ions relax, at the experimental cell, and not
    even they when symmetry pins every atom (a single point then gives the same energy).
    """
    from .phases import has_free_internal_coordinates, load_phase

    entry = load_phase(phase, Path(cif).parent) if cif else load_phase(phase)
    settings = engine_settings(config)
    calc_dir = Path(calc_dir)
    _write_structure_files(entry.structure, calc_dir, "initial")
    if entry.relax == "cell" and settings.phase_cell_relax:
        kind = "relax_cell"
    elif has_free_internal_coordinates(entry.structure):
        kind = "relax_ions"
    else:
        kind = "static"
    cp2k.write_input(entry.structure, kind, 0, settings, calc_dir)
    (calc_dir / "source.txt").write_text(entry.source + "\n")


def relaxed_unit_cell(host_record: str | Path):
    record = CalcRecord.from_json(host_record).require_converged()
    return record.pmg_structure()


def prepare_bulk(config: Mapping[str, Any], host_record: str | Path, calc_dir: str | Path) -> None:
    """Inputs of the pristine supercell (single point, with the Hartree potential)."""
    from .hosts import supercell

    bulk = supercell(relaxed_unit_cell(host_record), config["host"]["supercell"])
    calc_dir = Path(calc_dir)
    _write_structure_files(bulk, calc_dir)
    cp2k.write_input(
        bulk, "static", 0, engine_settings(config), calc_dir, is_supercell=True, band_edges=True
    )


def prepare_defect(
    config: Mapping[str, Any],
    host_record: str | Path,
    defect_name: str,
    charge: int,
    calc_dir: str | Path,
) -> None:
    """Inputs of one defect in one charge state."""
    from .defects import make_defect_cell

    specs = {spec.name: spec for spec in cfg.defect_specs(config)}
    if defect_name not in specs:
        raise cfg.ConfigError(f"defect {defect_name!r} is not in config key 'defects'")
    spec = specs[defect_name]
    if charge not in spec.charges:
        raise cfg.ConfigError(f"defect {defect_name}: charge {charge} is not in {spec.charges}")
    cell = make_defect_cell(relaxed_unit_cell(host_record), spec, config["host"]["supercell"])
    calc_dir = Path(calc_dir)
    structure = cell.pmg_structure()
    _write_structure_files(structure, calc_dir)
    cell.to_json(calc_dir / DEFECT_CELL)
    settings = engine_settings(config)
    if settings.relax_radius > 0:
        fixed = cell.atoms_beyond(settings.relax_radius)
        cp2k.write_input(
            structure,
            "relax_ions",
            charge,
            settings,
            calc_dir,
            is_supercell=True,
            fixed_atoms=fixed,
        )
    else:
        cp2k.write_input(structure, "static", charge, settings, calc_dir, is_supercell=True)


# --------------------------------------------------------------------------- running


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
    from . import recovery

    calc_dir = Path(calc_dir)
    options = config["cp2k"]
    launcher = options["mpi_launcher"] if mpi_launcher is None else mpi_launcher

    def run_once() -> CalcRecord:
        return cp2k.run(
            calc_dir, nprocs=max(1, nprocs), executable=options["executable"], mpi_launcher=launcher
        )

    return recovery.finish(config, calc_dir, run_once, RECORD)


# --------------------------------------------------------------------------- analysis


def chemical_potentials(
    config: Mapping[str, Any],
    host_record: str | Path,
    phase_records: Mapping[str, str | Path],
    out_json: str | Path,
) -> None:
    """Chemical-potential limits of the host from the competing phases."""
    from .chempots import compute_chemical_potential_limits

    host = CalcRecord.from_json(host_record).require_converged()
    phases = {}
    for name, path in phase_records.items():
        record = CalcRecord.from_json(path).require_converged()
        phases[name] = (record.pmg_structure().composition.as_dict(), record.energy)
    dopants = sorted(
        {s.species for s in cfg.defect_specs(config) if s.species}
        - set(cfg.host_species(config).values())
    )
    limits = compute_chemical_potential_limits(
        host.pmg_structure().composition.as_dict(),
        host.energy,
        phases,
        extrinsic_elements=dopants,
        rich_element=config["host"]["X"],
        host_label=cfg.host_name(config),
    )
    limits.write_json(out_json)
    for note in limits.notes:
        log.warning(note)


def correction(
    config: Mapping[str, Any],
    bulk_dir: str | Path,
    defect_dir: str | Path,
    out_json: str | Path,
) -> dict[str, Any]:
    """Finite-size correction of one charged defect (FNV or eFNV), written as JSON (eV)."""
    from .corrections import efnv_correction, fnv_correction
    from .defects import DefectCell
    from .engines.potentials import read_potential_grid, site_potentials

    bulk_dir, defect_dir = Path(bulk_dir), Path(defect_dir)
    defect = CalcRecord.from_json(defect_dir / RECORD)
    cell = DefectCell.from_json(defect_dir / DEFECT_CELL)
    scheme = config["correction"]
    result: dict[str, Any] = {"scheme": scheme, "charge": defect.charge}
    if defect.extra.get("failure"):
        # A defect that failed for good has no correction; the tables mark its row.
        result.update(total=None, failure=defect.extra["failure"])
    elif scheme == "none" or defect.charge == 0:
        result.update(total=0.0, reason="neutral defect" if defect.charge == 0 else "disabled")
    else:
        bulk = CalcRecord.from_json(bulk_dir / RECORD)
        for rec, where in ((bulk, bulk_dir), (defect, defect_dir)):
            if not rec.potential_file:
                raise EngineError(f"{where}: no electrostatic potential file in the record")
        files = [bulk_dir / str(bulk.potential_file), defect_dir / str(defect.potential_file)]
        bulk_grid, defect_grid = (read_potential_grid(f) for f in files)
        eps = config["dielectric"]["value"]
        if scheme == "fnv":
            result.update(
                fnv_correction(
                    defect.charge, eps, bulk_grid, defect_grid, cell.frac_coords
                ).summary()
            )
        else:
            bulk_s, defect_s = bulk.pmg_structure(), defect.pmg_structure()
            radius = config["site_radius"]
            efnv = efnv_correction(
                defect.charge,
                eps,
                site_potentials(bulk_grid, bulk_s.frac_coords, radius),
                site_potentials(defect_grid, defect_s.frac_coords, radius),
                bulk_s,
                defect_s,
                cell.frac_coords,
            )
            result.update(efnv.summary(), site_radius=radius)
        result["files"] = [str(f) for f in files]
    result["dielectric"] = config["dielectric"]
    Path(out_json).write_text(json.dumps(result, indent=1))
    return result


def tables(
    config: Mapping[str, Any],
    bulk_record: str | Path,
    chempots_json: str | Path,
    defect_dirs: Sequence[str | Path],
    out_dir: str | Path,
) -> None:
    """Formation-energy and transition-level tables (CSV + Markdown) and provenance."""
    from .chempots import ChemicalPotentialLimits
    from .defects import DefectCell
    from .tables import (
        formation_energy_table,
        transition_level_table,
        write_csv,
        write_markdown,
    )
    from .thermo import DefectChargeEntry, charge_lines, transition_levels

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bulk = CalcRecord.from_json(bulk_record).require_converged()
    if bulk.vbm is None or bulk.cbm is None:
        raise EngineError(f"{bulk_record}: bulk record has no band edges")
    limits = ChemicalPotentialLimits.from_json(chempots_json)
    entries: list[DefectChargeEntry] = []
    provenance: list[dict[str, Any]] = [_provenance(bulk, bulk_record)]
    for directory in map(Path, defect_dirs):
        cell = DefectCell.from_json(directory / DEFECT_CELL)
        record = CalcRecord.from_json(directory / RECORD)
        corr = json.loads((directory / "correction.json").read_text())
        if record.extra.get("failure"):
            # Failed for good (see recovery.py): kept as a row, never as a number.
            reason = f"failed: {record.extra['failure']}"
            entries.append(
                DefectChargeEntry.missing(cell.name, record.charge, limits.limit_names, reason)
            )
            provenance.append(_provenance(record, directory / RECORD) | {"failure": reason})
            continue
        entry = DefectChargeEntry.from_records(
            cell.name,
            record,
            bulk,
            cell.atoms_added,
            limits.limits,
            correction=float(corr["total"]),
            vbm=bulk.vbm,
        )
        entries.append(entry)
        provenance.append(_provenance(record, directory / RECORD) | {"correction": corr})
    gap = bulk.cbm - bulk.vbm
    names = list(dict.fromkeys(e.name for e in entries))
    levels: dict[str, list[Any] | None] = {}
    for limit in limits.limit_names:
        for name in names:
            if any(e.name == name and e.is_missing for e in entries):
                # A failed charge state could hold a level: report none rather than a
                # level between the states that happen to be left.
                levels[name] = None
                continue
            lines = charge_lines(entries, name, limit)
            levels.setdefault(name, transition_levels(lines, gap) if len(lines) else None)
    fe_rows = formation_energy_table(entries, limits.limit_names)
    tl_rows = transition_level_table(levels)
    notes = _notes(config, bulk, limits, gap)
    write_csv(fe_rows, out_dir / "formation_energies.csv")
    write_markdown(
        fe_rows, out_dir / "formation_energies.md", "Defect formation energies at E_F = VBM", notes
    )
    write_csv(tl_rows, out_dir / "transition_levels.csv")
    write_markdown(tl_rows, out_dir / "transition_levels.md", "Charge-transition levels", notes)
    (out_dir / "provenance.json").write_text(
        json.dumps(
            {"config": dict(config), "band_gap": gap, "vbm": bulk.vbm, "records": provenance},
            indent=1,
            default=str,
        )
    )


def _provenance(record: CalcRecord, path: str | Path) -> dict[str, Any]:
    return {
        "file": str(path),
        "engine": record.engine,
        "engine_version": record.engine_version,
        "energy_eV": record.energy,
        "charge": record.charge,
        "converged": record.converged,
        "settings": record.settings,
    }


def _notes(config: Mapping[str, Any], bulk: CalcRecord, limits, gap: float) -> list[str]:
    settings = bulk.settings.get("settings", {})
    notes = [
        f"Engine: {bulk.engine} {bulk.engine_version}; level '{config['level']}' "
        f"(basis {settings.get('basis')}, cutoff {settings.get('cutoff_ry')} Ry, "
        f"supercell k-mesh {bulk.settings.get('kpoint_mesh')}).",
        f"Bulk VBM {bulk.vbm:.4f} eV, band gap {gap:.3f} eV (PBE, no spin-orbit coupling).",
        f"Correction: {config['correction']} with dielectric constant "
        f"{config['dielectric']['value']} ({config['dielectric']['source']}).",
        "Chemical potentials (eV, relative to the elemental phases): "
        + "; ".join(
            f"{name}: " + ", ".join(f"{el} {mu:+.3f}" for el, mu in limits.delta_mu(name).items())
            for name in limits.limit_names
        ),
    ]
    notes += list(limits.notes)
    notes.append("Every number traces to results/<study>/tables/provenance.json.")
    return notes
