"""Workflow steps: one function per Snakemake rule, each reading and writing files only.

Rules call these through ``workflow/scripts/*.py``; every function is usable (and tested)
without Snakemake.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import config as cfg
from . import engines
from .engines.base import CalcRecord, CalcSpec, EngineError

if TYPE_CHECKING:  # the science modules are imported lazily by the steps that use them
    from .concentrations import LimitResult

log = logging.getLogger("perovskite_defects")

RECORD = "record.json"
DEFECT_CELL = "defect.json"


def engine_settings(config: Mapping[str, Any]) -> Any:
    """Numerical settings of the configured engine (CP2K: by level; VASP: vasp.settings)."""
    try:
        return engines.get_engine(config["engine"]).settings(config)
    except EngineError as err:
        raise cfg.ConfigError(str(err)) from err


def _write_inputs(config: Mapping[str, Any], structure, spec: CalcSpec, calc_dir: Path) -> None:
    engine = engines.get_engine(config["engine"])
    engine.write_input(structure, spec, engine_settings(config), calc_dir)


def _write_structure_files(structure, directory: Path, stem: str = "structure") -> None:
    directory.mkdir(parents=True, exist_ok=True)
    structure.to(filename=str(directory / f"{stem}.cif"))
    structure.to(filename=str(directory / f"{stem}.vasp"), fmt="poscar")


# --------------------------------------------------------------------------- inputs


# --------------------------------------------------------------------------- hosts


def host_plan(config: Mapping[str, Any], name: str):
    """The plan of one host of the study (sweep entry or end member) by its name."""
    from .study import end_member_plans, plan_hosts

    hosts = {h.name: h for h in plan_hosts(config, cfg.PROJECT_ROOT)}
    if name in hosts:
        return hosts[name]
    ends = end_member_plans(config, list(hosts.values()))
    if name in ends:
        return ends[name]
    raise cfg.ConfigError(f"host {name!r} is not in the study (hosts: {sorted(hosts)})")


def build_host_files(config: Mapping[str, Any], name: str, out_dir: str | Path) -> None:
    """structures/host.{vasp,cif,json}: the host supercell with its metadata."""
    from .hosts import build_host, load_user_structure

    plan = host_plan(config, name)
    if plan.framework != "perovskite":
        from .generic_hosts import build_structure_host

        host = build_structure_host(plan)
        host.to_files(out_dir, "host")
        log.info("%s: %d atoms from %s", name, len(host.structure), plan.user_structure)
        return
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
    host.metadata["lattice_mode"] = plan.lattice_mode
    if plan.lattice_mode == "relax":
        # the bulk's lattice comes from this supercell's own relaxation (relax/ folder);
        # lattice_constant above is only where the relaxation starts
        host.metadata["lattice_source"] = "relaxed"
        host.metadata["start_lattice_source"] = plan.lattice_source
    else:
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
    if host.metadata.get("framework", "perovskite") != "perovskite":
        from .generic_hosts import build_structure_defect_set

        entries, built = build_structure_defect_set(
            host,
            defect_requests(config),
            min_distance=config["site_classes"]["interstitial_min_distance"],
        )
    else:
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


# --------------------------------------------------------------------------- inputs


def prepare_host(config: Mapping[str, Any], name: str, calc_dir: str | Path) -> None:
    """Inputs of an end member's unit cell (5 atoms; FA/MA as one molecule): a cell
    relaxation at fixed cubic shape when ``relax`` is true (it gives the lattice constant
    of Vegard's law), otherwise a single point."""
    from .hosts import build_host

    plan = host_plan(config, name)
    if plan.framework != "perovskite":  # the structure file's cell, any shape
        from .generic_hosts import load_host_structure

        unit = load_host_structure(plan.user_structure)
        _write_structure_files(unit, Path(calc_dir), "initial")
        _write_inputs(config, unit, CalcSpec("relax_cell", "host"), Path(calc_dir))
        return
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
    _write_inputs(config, host.structure, CalcSpec(kind, "host", keep_symmetry="CUBIC"), calc_dir)


def prepare_phase(
    config: Mapping[str, Any], phase: str, calc_dir: str | Path, cif: str | Path | None = None
) -> None:
    """Inputs of a competing phase.

    Cells relax when the engine settings ask for it (``phase_cell_relax``) and the phase is
    not a molecular crystal; otherwise only the ions relax, at the experimental cell, and
    not even they when symmetry pins every atom (a single point then gives the same energy).
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
    _write_inputs(config, entry.structure, CalcSpec(kind, "phase"), calc_dir)
    (calc_dir / "source.txt").write_text(entry.source + "\n")


def _pseudo_cubic(structure) -> float:
    """Pseudo-cubic lattice constant (Å): (volume per B atom)^(1/3)."""
    n_fu = sum(s.specie.symbol in ("Pb", "Sn") for s in structure)
    return float((structure.volume / n_fu) ** (1 / 3))


def lattice_constant(record_path: str | Path) -> float:
    """Pseudo-cubic lattice constant (Å) of a converged unit-cell record: V^(1/3) per B."""
    return _pseudo_cubic(CalcRecord.from_json(record_path).require_converged().pmg_structure())


def prepare_supercell_relax(
    config: Mapping[str, Any], host_json: str | Path, calc_dir: str | Path
) -> None:
    """Inputs of the variable-cell relaxation of a host supercell (lattice_mode relax).

    The same calculation kind as the end members' unit cells (CP2K CELL_OPT, VASP ISIF=3)
    with the supercell's k-points and no symmetry: an SQS or a cell with molecules has
    none to keep, and its cell lengths may come out different.
    """
    from .hosts import HostStructure

    host = HostStructure.from_json(host_json)
    calc_dir = Path(calc_dir)
    _write_structure_files(host.structure, calc_dir, "initial")
    _write_inputs(config, host.structure, CalcSpec("relax_cell", "bulk"), calc_dir)


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
    config: Mapping[str, Any],
    host_json: str | Path,
    end_member_records: Mapping[str, str | Path],
    calc_dir: str | Path,
) -> None:
    """Pristine supercell at the Vegard lattice constant of the relaxed end members, or
    (lattice_mode relax; ``end_member_records`` is then ``{"relaxed": record}``) the host
    supercell as its own relaxation left it."""
    from .hosts import HostStructure

    host = HostStructure.from_json(host_json)
    plan = host_plan(config, host.name)
    calc_dir = Path(calc_dir)
    if plan.framework != "perovskite":
        _prepare_structure_bulk(config, host, plan, end_member_records, calc_dir)
        return
    if plan.lattice_mode == "relax":
        structure, info = _relaxed_bulk(host, end_member_records["relaxed"])
        _write_structure_files(structure, calc_dir)
        payload = {**info, "structure": structure.as_dict()}
        (calc_dir / "supercell.json").write_text(json.dumps(payload, indent=1))
        _write_inputs(config, structure, CalcSpec("static", "bulk", band_edges=True), calc_dir)
        return
    constants = {
        key: lattice_constant(end_member_records[name])
        for key, name in zip(plan.end_member_keys, plan.end_members, strict=True)
    }
    a = plan.composition.vegard_lattice(constants)
    relaxed_ends = bool(plan.settings.get("relax", True))
    structure = host.structure.copy()
    structure.scale_lattice(structure.volume * (a / host.metadata["lattice_constant"]) ** 3)
    _write_structure_files(structure, calc_dir)
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
    _write_inputs(config, structure, CalcSpec("static", "bulk", band_edges=True), calc_dir)


def prepare_defect(
    config: Mapping[str, Any],
    manifest_dir: str | Path,
    bulk_dir: str | Path,
    defect_id: str,
    charge: int,
    calc_dir: str | Path,
) -> None:
    """Inputs of one defect of the manifest in one charge state, built in the bulk supercell."""
    from pymatgen.core import Structure

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
        # sites this structure stands for (concentrations): an equal share of its class
        multiplicity=entry.multiplicity / entry.n_representatives,  # type: ignore[arg-type]
        frac_coords=list(entry.frac_coords),
        structure=structure.as_dict(),
        site_index=entry.representative - 1,
        n_distinct_sites=entry.n_representatives,
    )
    calc_dir = Path(calc_dir)
    _write_structure_files(structure, calc_dir)
    cell.to_json(calc_dir / DEFECT_CELL)
    settings = engine_settings(config)
    if settings.relax_radius > 0:
        fixed = tuple(cell.atoms_beyond(settings.relax_radius))
        calc = CalcSpec("relax_ions", "defect", charge=charge, fixed_atoms=fixed)
    else:
        calc = CalcSpec("static", "defect", charge=charge)
    _write_inputs(config, structure, calc, calc_dir)


def _prepare_structure_bulk(
    config: Mapping[str, Any],
    host: Any,
    plan: Any,
    records: Mapping[str, str | Path],
    calc_dir: Path,
) -> None:
    """Pristine supercell of a framework-any host: as built, or of the relaxed cell."""
    from .generic_hosts import bulk_structure

    relaxed = (
        CalcRecord.from_json(records[plan.name]).require_converged().pmg_structure()
        if plan.relax
        else None
    )
    structure = bulk_structure(host, relaxed)
    _write_structure_files(structure, calc_dir)
    (calc_dir / "supercell.json").write_text(
        json.dumps(
            {"source": "relaxed unit cell" if plan.relax else "structure file as given"}
            | {"structure": structure.as_dict()},
            indent=1,
        )
    )
    _write_inputs(config, structure, CalcSpec("static", "bulk", band_edges=True), calc_dir)


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
    engine = engines.engine_for_run(config)
    if mpi_launcher is not None and "cp2k" in config:
        config = {**config, "cp2k": {**config["cp2k"], "mpi_launcher": mpi_launcher}}

    def run_once() -> CalcRecord:
        return engine.run(config, calc_dir, max(1, nprocs))

    if engine.resumable:
        return recovery.finish(config, calc_dir, run_once, RECORD)
    return recovery.finish_without_recovery(config, calc_dir, run_once, RECORD)


# --------------------------------------------------------------------------- analysis


def host_phases(config: Mapping[str, Any], name: str, plan: Any = None) -> list[str]:
    """Competing phases that bear on a host: those made of its elements and its dopants.

    ``plan`` (the host's study.HostPlan) spares planning the whole study again, which
    the workflow would otherwise do once per host while building the DAG.
    """
    from .study import check_defects

    if config.get("chemical_potentials"):
        return []  # limits given in config: no competing phase is computed
    plan = plan or host_plan(config, name)
    allowed = plan.elements | check_defects(config, [plan])
    return [p for p in config["competing_phases"] if cfg._element_set(p) <= allowed]


def chemical_potentials(
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
    if config.get("chemical_potentials"):
        from .user_chempots import limits_from_config

        given = limits_from_config(
            config["chemical_potentials"],
            host.pmg_structure().composition.as_dict(),
            host.energy,
            dopants,
            host_label=name,
        )
        given.write_json(out_json)
        for note in given.notes[1:]:
            log.warning(note)
        return
    limits = compute_chemical_potential_limits(
        host.pmg_structure().composition.as_dict(),
        host.energy,
        phases,
        extrinsic_elements=dopants,
        rich_element=plan.composition.majority_halide if plan.framework == "perovskite" else None,
        host_label=name,
    )
    unlisted = cfg.unlisted_phases(plan.elements | set(dopants), list(config["competing_phases"]))
    if unlisted:
        limits.notes.append(
            f"Competing phases made of these elements but not computed (shipped in "
            f"structures/phases/): {unlisted}; the limits may be too wide without them."
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
    from .corrections.kumagai import ERROR_WARN_EV
    from .defects import DefectCell
    from .dielectric import correction_argument, total_tensor
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
        eps = correction_argument(total_tensor(config["dielectric"]))
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
        if scheme == "fnv" and result["error"] > ERROR_WARN_EV:  # eFNV warns by itself
            log.warning(
                "%s: %s correction %.3f eV has an error estimate of %.3f eV (> %.2f eV): "
                "the potential is not flat where it is aligned (supercell too small?)",
                defect_dir,
                scheme,
                result["total"],
                result["error"],
                ERROR_WARN_EV,
            )
    result["dielectric"] = config["dielectric"]
    result["dielectric_tensor"] = total_tensor(config["dielectric"]).tolist()
    Path(out_json).write_text(json.dumps(result, indent=1))
    return result


def defect_states(
    config: Mapping[str, Any], bulk_dir: str | Path, defect_dir: str | Path, out_json: str | Path
) -> dict[str, Any]:
    """Character of the defect cell's states near the gap (localized trap or perturbed host),
    from eigenvalues aligned by the far-field potential; written as JSON (eV)."""
    from .defects import DefectCell
    from .eigenvalues import read_eigenvalues
    from .engines.potentials import read_potential_grid
    from .trap_classes import defect_state_character, far_potential_shift

    bulk_dir, defect_dir = Path(bulk_dir), Path(defect_dir)
    bulk = CalcRecord.from_json(bulk_dir / RECORD)
    defect = CalcRecord.from_json(defect_dir / RECORD)
    cell = DefectCell.from_json(defect_dir / DEFECT_CELL)
    result: dict[str, Any] = {"defect": cell.name, "charge": defect.charge}
    try:
        for rec, where in ((bulk, bulk_dir), (defect, defect_dir)):
            if not rec.potential_file:
                raise EngineError(f"{where}: no electrostatic potential file in the record")
        shift = far_potential_shift(
            read_potential_grid(bulk_dir / str(bulk.potential_file)),
            read_potential_grid(defect_dir / str(defect.potential_file)),
            defect.pmg_structure(),
            cell.frac_coords,
            config["site_radius"],
        )
        settings = config["trap_levels"]
        bulk_eig = read_eigenvalues(bulk_dir)
        if not bulk_eig.complete:  # its edges could miss the gap's k-point
            raise EngineError(f"{bulk_dir}: eigenvalues printed for only some k-points")
        states = defect_state_character(
            bulk_eig,
            read_eigenvalues(defect_dir),
            shift,
            tolerance=settings["shallow_threshold"],
        )
        result.update(states.to_dict())
    except EngineError as err:  # no eigenvalues printed: the table says so, empty cell
        log.warning("%s: defect states not analysed: %s", defect_dir, err)
        result.update(character=None, reason=str(err))
    Path(out_json).write_text(json.dumps(result, indent=1))
    return result


def defect_analysis(
    config: Mapping[str, Any],
    bulk_dir: str | Path,
    defect_dir: str | Path,
    correction_json: str | Path,
    states_json: str | Path,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both analyses of one converged defect run (one workflow job, see analysis.smk): its
    finite-size correction and the character of its states near the gap."""
    return (
        correction(config, bulk_dir, defect_dir, correction_json),
        defect_states(config, bulk_dir, defect_dir, states_json),
    )


def tables(
    config: Mapping[str, Any],
    bulk_record: str | Path,
    chempots_json: str | Path,
    defect_dirs: Sequence[str | Path],
    out_dir: str | Path,
    host: str | None = None,
    soc_shifts: str | Path | None = None,
) -> None:
    """Formation energies, transition levels with trap classes, Fermi level and
    concentrations (CSV + Markdown) of one host, the plot data and provenance.
    With ``soc_shifts`` (band_edges.soc) the edges get the spin-orbit shifts, and
    spin_orbit_levels compares levels and classes against the edges without them."""
    from .band_edges import study_band_edges
    from .chempots import ChemicalPotentialLimits
    from .concentrations import (
        DefectSite,
        band_model,
        concentration_rows,
        dopants_of,
        fermi_rows,
        site_density,
        solve_limits,
        spin_degeneracy,
    )
    from .defects import DefectCell
    from .tables import DEFECT, TRANSITION, formation_energy_table, write_csv, write_markdown
    from .thermo import DefectChargeEntry, charge_lines, transition_levels
    from .trap_classes import DefectStates, transition_level_rows

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bulk = CalcRecord.from_json(bulk_record).require_converged()
    bulk_dir = Path(bulk_record).parent
    edges = edges_no_soc = study_band_edges(config["band_edges"], bulk, bulk_dir)
    if soc_shifts is not None:
        from perovskite_defects.thermodynamics import spin_orbit_edges as soc

        shifts = soc.SocShifts.from_json(soc_shifts)
        edges = soc.apply_shifts(edges_no_soc, shifts, soc_shifts)
    limits = ChemicalPotentialLimits.from_json(chempots_json)
    entries: list[DefectChargeEntry] = []
    provenance: list[dict[str, Any]] = [_provenance(bulk, bulk_record)]
    states: dict[tuple[str, int], DefectStates] = {}
    sites: dict[str, DefectSite] = {}
    # Multiplicities are per formula unit ABX3: the supercell holds one per B atom
    # (framework any: per formula unit of the reduced formula).
    if config["host"].get("framework", "perovskite") != "perovskite":
        from .generic_hosts import formula_units

        n_cells = formula_units(bulk.pmg_structure())
    else:
        n_cells = sum(site.specie.symbol in ("Pb", "Sn") for site in bulk.pmg_structure())
    volume = bulk.pmg_structure().volume
    orientational = config["concentrations"]["orientational_degeneracy"]
    spins: dict[str, dict[int, float]] = {}
    host_elements = {el.symbol for el in bulk.pmg_structure().composition.elements}
    dopants: dict[str, list[str]] = {}
    for directory in map(Path, defect_dirs):
        cell = DefectCell.from_json(directory / DEFECT_CELL)
        record = CalcRecord.from_json(directory / RECORD)
        dopants[cell.name] = dopants_of(cell.atoms_added, host_elements)
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
            vbm=edges.vbm,
        )
        entries.append(entry)
        spins.setdefault(cell.name, {})[record.charge] = spin_degeneracy(record.nelect)
        sites[cell.name] = DefectSite(
            cell.name,
            site_density(cell.multiplicity, n_cells, volume),
            spins[cell.name],
            float(orientational.get(cell.name, 1.0)),
        )
        states_file = directory / "defect_states.json"
        if states_file.is_file():
            data = json.loads(states_file.read_text())
            if data.get("character"):
                data.pop("deepest_state_depth", None)
                keep = {k: data[k] for k in DefectStates.__dataclass_fields__}
                keep["in_gap_states"] = [tuple(x) for x in keep["in_gap_states"]]
                states[(cell.name, record.charge)] = DefectStates(**keep)
        provenance.append(_provenance(record, directory / RECORD) | {"correction": corr})
    gap = edges.gap
    names = list(dict.fromkeys(e.name for e in entries))
    levels: dict[str, list[Any] | None] = {}
    lines_by_limit: dict[str, dict[str, dict[int, float]]] = {}
    for limit in limits.limit_names:
        for name in names:
            if any(e.name == name and e.is_missing for e in entries):
                # A failed charge state could hold a level: report none rather than a
                # level between the states that happen to be left.
                levels[name] = None
                continue
            lines = charge_lines(entries, name, limit)
            lines_by_limit.setdefault(limit, {})[name] = lines
            levels.setdefault(name, transition_levels(lines, gap) if len(lines) else None)
    fe_rows = formation_energy_table(entries, limits.limit_names)
    threshold = config["trap_levels"]["shallow_threshold"]
    tl_rows = transition_level_rows(levels, gap, threshold, states)
    external = edges_no_soc.source != "bulk"
    notes = _notes(config, bulk, limits, edges_no_soc.gap) + [
        f"Band edges from {edges.source}: VBM {edges.vbm:.4f} eV, gap {gap:.3f} eV"
        + (f" (potential alignment {edges.offset:+.4f} eV)." if external else "."),
        f"Levels within {threshold} eV of a band edge are shallow, further inside the gap "
        "deep, outside the gap resonant. 'states of q': localized = a defect state inside "
        "the bulk gap; donor/acceptor PHS = carriers in perturbed host (band-like) states.",
    ]
    if soc_shifts is not None:
        notes.append(soc.soc_note(edges_no_soc, shifts))
        first = lines_by_limit.get(limits.limit_names[0], {})
        soc_lines = {n: (None if levels[n] is None else first.get(n)) for n in names}
        soc.write_level_comparison(out_dir, soc_lines, edges_no_soc, edges, threshold, notes)
    write_csv(fe_rows, out_dir / "formation_energies.csv")
    write_markdown(
        fe_rows, out_dir / "formation_energies.md", "Defect formation energies at E_F = VBM", notes
    )
    write_csv(tl_rows, out_dir / "transition_levels.csv")
    write_markdown(tl_rows, out_dir / "transition_levels.md", "Charge-transition levels", notes)

    conc = config["concentrations"]
    bulk_edges = (float(bulk.vbm), float(bulk.cbm))  # type: ignore[arg-type]  # checked above
    bands, carrier_note = band_model(conc, bulk_dir, volume, bulk_edges, (edges.vbm, edges.cbm))
    results = solve_limits(conc, entries, sites, limits.limit_names, bands)
    conc_notes = [
        carrier_note + ".",
        "Degeneracy: site multiplicity from the defect generator, spin 2 for odd electron "
        "counts, orientational from config (default 1). Dilute, non-interacting defects; no "
        "vibrational entropy.",
    ]
    if conc["synthesis_temperature"] is not None:
        conc_notes.append(
            f"Defects equilibrated at {conc['synthesis_temperature']} K and quenched to "
            f"{conc['temperature']} K (totals frozen, charge states re-equilibrated)."
        )
    fermi = fermi_rows(results)
    write_csv(fermi, out_dir / "fermi_level.csv")
    write_markdown(fermi, out_dir / "fermi_level.md", "Self-consistent Fermi level", conc_notes)
    conc_rows = concentration_rows(results)
    write_csv(conc_rows, out_dir / "concentrations.csv")
    write_markdown(conc_rows, out_dir / "concentrations.md", "Defect concentrations", conc_notes)
    _write_dopant_effect(
        out_dir,
        results,
        solve_limits(
            conc,
            entries,
            {n: site for n, site in sites.items() if not dopants[n]},
            limits.limit_names,
            bands,
        ),
        sorted({el for els in dopants.values() for el in els}),
        sorted({row[DEFECT] for row in tl_rows if row["class"] == "deep"}),
        conc_notes,
    )
    plot_data = {
        "host": host or cfg.host_name(config),
        "gap": gap,
        "vbm": edges.vbm,
        "lines": lines_by_limit,
        "levels": {
            name: [{"q": lv.q, "q_prime": lv.q_prime, "level": lv.level} for lv in lvls or []]
            for name, lvls in levels.items()
        },
        "fermi_levels": {r["limit"]: r["Fermi level above VBM (eV)"] for r in fermi},
        "classes": {
            f"{row[DEFECT]} {row[TRANSITION]}": row["class"] for row in tl_rows if row["class"]
        },
    }
    (out_dir / "levels.json").write_text(json.dumps(plot_data, indent=1))
    (out_dir / "provenance.json").write_text(
        json.dumps(
            {
                "config": dict(config),
                "band_gap": gap,
                "vbm": edges.vbm,
                "band_edges": edges.to_dict(),
                "band_edges_without_soc": edges_no_soc.to_dict() if soc_shifts else None,
                "spin_orbit_shifts": str(soc_shifts) if soc_shifts else None,
                "fermi": [r.room.summary() for r in results],
                "lattice": _lattice_info(bulk_dir),
                "records": provenance,
            },
            indent=1,
            default=str,
        )
    )


def _write_dopant_effect(
    out_dir: Path,
    with_dopants: Sequence[LimitResult],
    native_only: Sequence[LimitResult],
    dopants: Sequence[str],
    deep: Sequence[str],
    conc_notes: Sequence[str],
) -> None:
    """dopant_effect.csv/.md: the neutral state without and with the dopant defects (how
    Na changes the Fermi level and the deep-trap density). Written for every study; without
    a dopant defect it has no rows and its note says so."""
    from .concentrations import DOPANT_EFFECT_COLUMNS, dopant_effect_rows
    from .tables import write_csv, write_markdown

    rows = dopant_effect_rows(native_only, with_dopants, dopants, deep) if dopants else []
    notes = [
        "Native only: charge neutrality with the native defects alone; with dopants: every "
        "defect of the study (as in fermi_level). Dopant chemical potentials are those of the "
        "limit (their solubility limit).",
        "Deep-trap density: summed concentration, all charge states, of the defects with a deep "
        "transition level (transition_levels table)."
        + ("" if deep else " No defect of this study has a deep level."),
        *conc_notes,
    ]
    if not dopants:
        notes.insert(0, "The study has no dopant defect: nothing to compare.")
    write_csv(rows, out_dir / "dopant_effect.csv", columns=DOPANT_EFFECT_COLUMNS)
    title = "Fermi level and deep traps without and with dopants"
    write_markdown(rows, out_dir / "dopant_effect.md", title, notes, columns=DOPANT_EFFECT_COLUMNS)


def _lattice_info(bulk_dir: str | Path) -> dict[str, Any] | None:
    """Lattice constant of the bulk supercell and where it came from ("vegard": relaxed
    end members; "relaxed": the supercell's own relaxation); None for a bulk folder
    prepared by hand without supercell.json."""
    path = Path(bulk_dir) / "supercell.json"
    if not path.is_file():
        return None
    info = json.loads(path.read_text())
    return {k: v for k, v in info.items() if k != "structure"}


def _provenance(record: CalcRecord, path: str | Path) -> dict[str, Any]:
    return {
        "file": str(path),
        "engine": record.engine,
        "engine_version": record.engine_version,
        "energy_eV": record.energy,
        "charge": record.charge,
        "converged": record.converged,
        "settings": record.settings,
    } | (  # a replayed recording (tests only) is never mistaken for a run
        {"replayed_from": record.extra["replayed_from"]} if "replayed_from" in record.extra else {}
    )


def _notes(config: Mapping[str, Any], bulk: CalcRecord, limits, gap: float) -> list[str]:
    from .dielectric import describe as describe_dielectric

    settings = bulk.settings.get("settings", {})
    functional = str(settings.get("functional", "pbe")).upper()
    soc = "with" if settings.get("soc") else "no"
    mesh = bulk.settings.get("kpoint_mesh")
    if bulk.engine == "cp2k":
        engine = (
            f"level '{config['level']}' (basis {settings.get('basis')}, cutoff "
            f"{settings.get('cutoff_ry')} Ry, supercell k-mesh {mesh})"
        )
    else:  # VASP: the settings of vasp.settings
        engine = f"{functional}, ENCUT {settings.get('encut')} eV, supercell k-mesh {mesh}"
    notes = [
        f"Engine: {bulk.engine} {bulk.engine_version}; {engine}.",
        f"Bulk VBM {bulk.vbm:.4f} eV, band gap {gap:.3f} eV ({functional}, {soc} spin-orbit "
        "coupling).",
        f"Correction: {config['correction']} with dielectric constant "
        f"{describe_dielectric(config['dielectric'])} ({config['dielectric']['source']}).",
        "Chemical potentials (eV, relative to the elemental phases): "
        + "; ".join(
            f"{name}: " + ", ".join(f"{el} {mu:+.3f}" for el, mu in limits.delta_mu(name).items())
            for name in limits.limit_names
        ),
    ]
    if not all(limits.delta_mu(name) for name in limits.limit_names):
        notes.pop()  # given absolute values without elemental references: the next note
    notes += list(limits.notes)
    notes.append("Every number traces to results/<study>/tables/provenance.json.")
    return notes


def aggregate_tables(
    config: Mapping[str, Any],
    host_names: Sequence[str],
    results_dir: str | Path,
    out_dir: str | Path,
) -> None:
    """Tables across compositions (CSV + Markdown) and provenance.json."""
    from .aggregate import aggregate

    results_dir = Path(results_dir)
    hosts: list[dict[str, Any]] = []
    for name in host_names:
        meta = json.loads((results_dir / name / "structures" / "host.json").read_text())
        achieved = meta["metadata"]["composition_achieved"]
        if meta["metadata"].get("framework", "perovskite") != "perovskite":
            hosts.append(
                {
                    "name": name,
                    "composition": {"formula": meta["metadata"]["formula"]},
                    "tables": results_dir / name / "tables",
                    "manifest": results_dir / name / "defects" / "manifest.json",
                }
            )
            continue
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
                "lattice": _lattice_info(results_dir / h["name"] / "bulk"),
                "provenance": str(Path(h["tables"]) / "provenance.json"),
            }
            for h in hosts
        },
    }
    (Path(out_dir) / "provenance.json").write_text(json.dumps(provenance, indent=1, default=str))
