"""Steps of workflow/rules/analysis.smk per host and per study: tables, notes, aggregation."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perovskite_defects import config as cfg
from perovskite_defects.engines.base import CalcRecord

if TYPE_CHECKING:  # the science modules are imported lazily by the steps that use them
    from perovskite_defects.thermodynamics.concentrations import LimitResult

from perovskite_defects.steps.common import DEFECT_CELL, RECORD

log = logging.getLogger("perovskite_defects")


def tables(
    config: Mapping[str, Any],
    bulk_record: str | Path,
    chempots_json: str | Path,
    defect_dirs: Sequence[str | Path],
    out_dir: str | Path,
    host: str | None = None,
    soc_shifts: str | Path | None = None,
) -> None:
    """Formation energies, transition levels with trap classes, Fermi level,
    concentrations and local environments (CSV + Markdown) of one host, the plot data and
    provenance. With ``soc_shifts`` (band_edges.soc) the edges get the spin-orbit shifts,
    and spin_orbit_levels compares levels and classes against the edges without them."""
    from perovskite_defects.defects.distinct_sites import DefectCell
    from perovskite_defects.reporting.tables import (
        DEFECT,
        TRANSITION,
        formation_energy_table,
        write_csv,
        write_markdown,
    )
    from perovskite_defects.thermodynamics.band_edges import study_band_edges
    from perovskite_defects.thermodynamics.concentrations import (
        DefectSite,
        band_model,
        concentration_rows,
        dopants_of,
        fermi_rows,
        site_density,
        solve_limits,
        spin_degeneracy,
    )
    from perovskite_defects.thermodynamics.formation import (
        DefectChargeEntry,
        charge_lines,
        transition_levels,
    )
    from perovskite_defects.thermodynamics.phase_limits import ChemicalPotentialLimits
    from perovskite_defects.thermodynamics.trap_classes import DefectStates, transition_level_rows

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
    n_cells = cells_in_supercell(config, bulk.pmg_structure())
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
                keep = {k: data[k] for k in DefectStates.__dataclass_fields__ if k in data}
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
        "The class follows the states (as in pydefect and doped): a level whose q' holds its "
        "extra electron in a donor PHS, or whose q holds its hole in an acceptor PHS, is "
        "shallow wherever its position; 'class by position' is the position-only verdict. "
        "Band filling of a PHS charge state (Lany & Zunger, PRB 78, 235104 (2008)) is "
        "shown, not applied.",
    ]
    if soc_shifts is not None:
        notes.append(soc.soc_note(edges_no_soc, shifts))
        first = lines_by_limit.get(limits.limit_names[0], {})
        soc_lines = {n: (None if levels[n] is None else first.get(n)) for n in names}
        soc.write_level_comparison(
            out_dir, soc_lines, edges_no_soc, edges, threshold, notes, states
        )
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
    from perovskite_defects.defects.local_environment import write_table

    write_table(defect_dirs, out_dir)  # local_environment.csv/.md (issues 11-12)
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


def cells_in_supercell(config: Mapping[str, Any], structure: Any) -> int:
    """Cells the defect multiplicities refer to in the bulk supercell ``structure``.

    Multiplicities are per formula unit ABX3: the supercell holds one per B atom
    (framework any: per formula unit of the reduced formula).
    """
    if config["host"].get("framework", "perovskite") != "perovskite":
        from perovskite_defects.hosts.any_structure import formula_units

        return formula_units(structure)
    return sum(site.specie.symbol in ("Pb", "Sn") for site in structure)


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
    from perovskite_defects.reporting.tables import write_csv, write_markdown
    from perovskite_defects.thermodynamics.concentrations import (
        DOPANT_EFFECT_COLUMNS,
        dopant_effect_rows,
    )

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
    from perovskite_defects.corrections.dielectric import describe as describe_dielectric

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
    from perovskite_defects.reporting.aggregate import aggregate

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
