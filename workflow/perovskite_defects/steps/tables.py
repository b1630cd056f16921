"""Steps of workflow/rules/analysis.smk per host and per study: tables, notes, aggregation."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from perovskite_defects.corrections.dielectric import describe as describe_dielectric
from perovskite_defects.corrections.dielectric import effective_dielectric
from perovskite_defects.defects.distinct_sites import DefectCell
from perovskite_defects.defects.local_environment import FILE_NAME as LOCAL_ENVIRONMENT
from perovskite_defects.defects.local_environment import geometry_summary
from perovskite_defects.defects.local_environment import (
    write_table as write_local_environment_table,
)
from perovskite_defects.engines.base import CalcRecord
from perovskite_defects.hosts.any_structure import cells_in_supercell
from perovskite_defects.reporting.aggregate import aggregate
from perovskite_defects.reporting.tables import write_csv, write_markdown
from perovskite_defects.steps.common import DEFECT_CELL, RECORD
from perovskite_defects.thermodynamics import spin_orbit_edges as soc
from perovskite_defects.thermodynamics.band_edges import study_band_edges
from perovskite_defects.thermodynamics.concentrations import DOPANT_EFFECT_COLUMNS, band_model
from perovskite_defects.thermodynamics.host_results import (
    HOST_RESULTS_JSON,
    DefectRun,
    HostResults,
    host_results,
)
from perovskite_defects.thermodynamics.phase_limits import ChemicalPotentialLimits
from perovskite_defects.thermodynamics.rows import DEFECT, TRANSITION
from perovskite_defects.thermodynamics.trap_classes import DefectStates

log = logging.getLogger("perovskite_defects")
#: start.json of steps/search.py (not imported: that module loads the distortion code)
SEARCH_START = "start.json"


def read_defect_runs(defect_dirs: Sequence[str | Path]) -> list[DefectRun]:
    """The defect charge states of a host from their folders (record, cell, correction,
    defect states, local geometry), failed ones included."""
    runs = []
    for directory in map(Path, defect_dirs):
        cell = DefectCell.from_json(directory / DEFECT_CELL)
        correction = json.loads((directory / "correction.json").read_text())
        states = None
        states_file = directory / "defect_states.json"
        if states_file.is_file():
            data = json.loads(states_file.read_text())
            if data.get("character"):
                keep = {k: data[k] for k in DefectStates.__dataclass_fields__ if k in data}
                keep["in_gap_states"] = [tuple(x) for x in keep["in_gap_states"]]
                states = DefectStates(**keep)
        geometry = None
        if (directory / LOCAL_ENVIRONMENT).is_file():
            local = json.loads((directory / LOCAL_ENVIRONMENT).read_text())
            geometry = geometry_summary(local["geometry"]) if "geometry" in local else None
        runs.append(
            DefectRun(
                name=cell.name,
                record=_with_search_start(CalcRecord.from_json(directory / RECORD), directory),
                atoms_added=cell.atoms_added,
                multiplicity=cell.multiplicity,
                # a failed run's correction.json holds no total
                correction=None if correction.get("total") is None else float(correction["total"]),
                states=states,
                local_geometry=geometry,
            )
        )
    return runs


def _with_search_start(record: CalcRecord, directory: Path) -> CalcRecord:
    """A relaxation that started from a ground-state-search trial (its start.json, written
    only with ground_state_search on) began away from the ideal site: its vertical energy
    is the first step of the Unperturbed trial (same SCF settings), so the relaxation
    energy stays E_relaxed - E_ideal site (none when that first step is unknown)."""
    path = directory / SEARCH_START
    if path.is_file():
        start = json.loads(path.read_text())
        if start["start"] != "ideal site":  # unknown vertical energy: no relaxation energy
            vertical = start.get("vertical_energy_eV")
            record.initial_energy = None if vertical is None else float(vertical)
    return record


def tables(
    bulk_record: str | Path,
    chempots_json: str | Path,
    defect_dirs: Sequence[str | Path],
    out_dir: str | Path,
    host: str,
    soc_shifts: str | Path | None = None,
    dielectric_json: str | Path | None = None,
    *,
    band_edges: Mapping[str, Any],
    shallow_threshold: float,
    concentrations: Mapping[str, Any],
    dielectric: Mapping[str, Any],
    scheme: str,
    level: str,
    framework: str,
) -> None:
    """Formation energies, transition levels with trap classes, Fermi level,
    concentrations and local environments (CSV + Markdown) of one host, the plot data and
    provenance. With ``soc_shifts`` (band_edges.soc) the edges get the spin-orbit shifts,
    and spin_orbit_levels compares levels and classes against the edges without them.
    The numbers come from :func:`~perovskite_defects.thermodynamics.host_results.host_results`;
    this function reads the folders and writes the files, among them host_results.json
    (the same numbers, typed) for the aggregation and the Python API. The keyword arguments
    are the config values they read (steps/params.py ``tables_params``); with
    ``dielectric.source: computed`` the host's ``dielectric_json`` gives the tensor."""

    dielectric = effective_dielectric(dielectric, dielectric_json, host)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bulk = CalcRecord.from_json(bulk_record).require_converged()
    bulk_dir = Path(bulk_record).parent
    edges = edges_no_soc = study_band_edges(band_edges, bulk, bulk_dir)
    if soc_shifts is not None:
        shifts = soc.SocShifts.from_json(soc_shifts)
        edges = soc.apply_shifts(edges_no_soc, shifts, soc_shifts)
    limits = ChemicalPotentialLimits.from_json(chempots_json)
    runs = read_defect_runs(defect_dirs)
    conc = concentrations
    volume = bulk.pmg_structure().volume
    bulk_edges = (float(bulk.vbm), float(bulk.cbm))  # type: ignore[arg-type]  # checked above
    bands, carrier_note = band_model(conc, bulk_dir, volume, bulk_edges, (edges.vbm, edges.cbm))
    threshold = shallow_threshold
    res = host_results(
        runs,
        bulk,
        edges,
        limits,
        n_cells=cells_in_supercell(framework, bulk.pmg_structure()),
        shallow_threshold=threshold,
        concentrations=conc,
        bands=bands,
    )
    notes = _notes(level, scheme, dielectric, bulk, limits, edges_no_soc.gap) + _level_notes(
        edges, edges_no_soc, threshold
    )
    if soc_shifts is not None:
        notes.append(soc.soc_note(edges_no_soc, shifts))
        first = res.lines_by_limit.get(limits.limit_names[0], {})
        soc_lines = {n: (None if lv is None else first.get(n)) for n, lv in res.levels.items()}
        states = {(r.name, r.charge): r.states for r in runs if r.states is not None}
        soc.write_level_comparison(
            out_dir, soc_lines, edges_no_soc, edges, threshold, notes, states
        )
    write_csv(res.formation_rows, out_dir / "formation_energies.csv")
    title = "Defect formation energies at E_F = VBM"
    write_markdown(res.formation_rows, out_dir / "formation_energies.md", title, notes)
    write_csv(res.level_rows, out_dir / "transition_levels.csv")
    title = "Charge-transition levels"
    write_markdown(res.level_rows, out_dir / "transition_levels.md", title, notes + res.level_notes)
    conc_notes = _concentration_notes(conc, carrier_note)
    fermi = res.fermi_rows()
    write_csv(fermi, out_dir / "fermi_level.csv")
    write_markdown(fermi, out_dir / "fermi_level.md", "Self-consistent Fermi level", conc_notes)
    conc_rows = res.concentration_rows()
    write_csv(conc_rows, out_dir / "concentrations.csv")
    write_markdown(conc_rows, out_dir / "concentrations.md", "Defect concentrations", conc_notes)
    _write_dopant_effect(out_dir, res, conc_notes)
    write_local_environment_table(defect_dirs, out_dir)  # local_environment.csv/.md
    res.to_json(out_dir / HOST_RESULTS_JSON)
    _write_plot_data(out_dir, host, edges, res, fermi)
    # the config keys these tables read, in the config's own shape (api.Study.config)
    read = {
        "host": {"framework": framework},
        "level": level,
        "correction": scheme,
        "dielectric": dielectric,
        "band_edges": dict(band_edges),
        "trap_levels": {"shallow_threshold": shallow_threshold},
        "concentrations": dict(concentrations),
    }
    (out_dir / "provenance.json").write_text(
        json.dumps(
            {
                "config": read,
                "band_gap": edges.gap,
                "vbm": edges.vbm,
                "band_edges": edges.to_dict(),
                "band_edges_without_soc": edges_no_soc.to_dict() if soc_shifts else None,
                "spin_orbit_shifts": str(soc_shifts) if soc_shifts else None,
                "fermi": [r.room.summary() for r in res.with_dopants],
                "lattice": _lattice_info(bulk_dir),
                "records": [_provenance(bulk, bulk_record)]
                + [_run_provenance(run, Path(d)) for run, d in zip(runs, defect_dirs, strict=True)],
            },
            indent=1,
            default=str,
        )
    )


def _run_provenance(run: DefectRun, directory: Path) -> dict[str, Any]:
    info = _provenance(run.record, directory / RECORD)
    if (directory / SEARCH_START).is_file():  # ground-state search: where the run started
        info["search_start"] = json.loads((directory / SEARCH_START).read_text())
    if run.failure:
        return info | {"failure": run.failure}
    return info | {"correction": json.loads((directory / "correction.json").read_text())}


def _level_notes(edges: Any, edges_no_soc: Any, threshold: float) -> list[str]:
    external = edges_no_soc.source != "bulk"
    return [
        f"Band edges from {edges.source}: VBM {edges.vbm:.4f} eV, gap {edges.gap:.3f} eV"
        + (f" (potential alignment {edges.offset:+.4f} eV)." if external else "."),
        f"Levels within {threshold} eV of a band edge are shallow, further inside the gap "
        "deep, outside the gap resonant. 'states of q': localized = a defect state inside "
        "the bulk gap; donor/acceptor PHS = carriers in perturbed host (band-like) states.",
        "The class follows the states (as in pydefect and doped): a level whose q' holds its "
        "extra electron in a donor PHS, or whose q holds its hole in an acceptor PHS, is "
        "shallow wherever its position; 'class by position' is the position-only verdict. "
        "Band filling of a PHS charge state (Lany & Zunger, PRB 78, 235104 (2008)) is "
        "shown, not applied.",
    ]


def _concentration_notes(conc: Mapping[str, Any], carrier_note: str) -> list[str]:
    notes = [
        carrier_note + ".",
        "Degeneracy: site multiplicity from the defect generator, spin 2 for odd electron "
        "counts, orientational from config (default 1). Dilute, non-interacting defects; no "
        "vibrational entropy.",
    ]
    if conc["synthesis_temperature"] is not None:
        notes.append(
            f"Defects equilibrated at {conc['synthesis_temperature']} K and quenched to "
            f"{conc['temperature']} K (totals frozen, charge states re-equilibrated)."
        )
    return notes


def _write_plot_data(
    out_dir: Path, host: str, edges: Any, res: HostResults, fermi: Sequence[Mapping[str, Any]]
) -> None:
    """levels.json: what the plots read."""
    plot_data = {
        "host": host,
        "gap": edges.gap,
        "vbm": edges.vbm,
        "lines": res.lines_by_limit,
        "levels": {
            name: [{"q": lv.q, "q_prime": lv.q_prime, "level": lv.level} for lv in lvls or []]
            for name, lvls in res.levels.items()
        },
        "fermi_levels": {r["limit"]: r["Fermi level above VBM (eV)"] for r in fermi},
        "classes": {
            f"{row[DEFECT]} {row[TRANSITION]}": row["class"]
            for row in res.level_rows
            if row["class"]
        },
    }
    (out_dir / "levels.json").write_text(json.dumps(plot_data, indent=1))


def _write_dopant_effect(out_dir: Path, res: HostResults, conc_notes: Sequence[str]) -> None:
    """dopant_effect.csv/.md: the neutral state without and with the dopant defects (how
    Na changes the Fermi level and the deep-trap density). Written for every study; without
    a dopant defect it has no rows and its note says so."""

    rows = res.dopant_effect_rows()
    notes = [
        "Native only: charge neutrality with the native defects alone; with dopants: every "
        "defect of the study (as in fermi_level). Dopant chemical potentials are those of the "
        "limit (their solubility limit).",
        "Deep-trap density: summed concentration, all charge states, of the defects with a deep "
        "transition level (transition_levels table)."
        + ("" if res.deep_defects else " No defect of this study has a deep level."),
        *conc_notes,
    ]
    if not res.dopant_elements:
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


def _notes(
    level: str,
    scheme: str,
    dielectric: Mapping[str, Any],
    bulk: CalcRecord,
    limits: ChemicalPotentialLimits,
    gap: float,
) -> list[str]:

    settings = bulk.settings.get("settings", {})
    functional = str(settings.get("functional", "pbe")).upper()
    soc = "with" if settings.get("soc") else "no"
    mesh = bulk.settings.get("kpoint_mesh")
    if bulk.engine == "cp2k":
        engine = (
            f"level '{level}' (basis {settings.get('basis')}, cutoff "
            f"{settings.get('cutoff_ry')} Ry, supercell k-mesh {mesh})"
        )
    else:  # VASP: the settings of vasp.settings
        engine = f"{functional}, ENCUT {settings.get('encut')} eV, supercell k-mesh {mesh}"
    notes = [
        f"Engine: {bulk.engine} {bulk.engine_version}; {engine}.",
        f"Bulk VBM {bulk.vbm:.4f} eV, band gap {gap:.3f} eV ({functional}, {soc} spin-orbit "
        "coupling).",
        f"Correction: {scheme} with dielectric constant "
        f"{describe_dielectric(dielectric)} ({dielectric['source']}).",
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
    results_dir: str | Path,
    out_dir: str | Path,
    *,
    host_names: Sequence[str],
    temperature: float,
) -> None:
    """Tables across compositions (CSV + Markdown) and provenance.json."""

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
    aggregate(hosts, temperature, out_dir)
    provenance = {
        "config": {"aggregate": {"temperature": temperature}},  # the config keys read
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
