"""Everything one host's tables say, computed from records: no file is read or written here.

The tables step (:mod:`perovskite_defects.steps.tables`) reads the defect folders into
:class:`DefectRun` objects, calls :func:`host_results`, and writes what comes back. Keeping
the physics apart from the files lets it be tested with hand-made records in milliseconds
(``tests/test_host_results.py``) and reused by the Python API.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from perovskite_defects.engines.base import CalcRecord
from perovskite_defects.thermodynamics.band_edges import BandEdges
from perovskite_defects.thermodynamics.carriers import BandModel
from perovskite_defects.thermodynamics.concentrations import (
    DefectSite,
    LimitResult,
    dopants_of,
    site_density,
    solve_limits,
    spin_degeneracy,
)
from perovskite_defects.thermodynamics.formation import (
    DefectChargeEntry,
    TransitionLevel,
    charge_lines,
    transition_levels,
)
from perovskite_defects.thermodynamics.phase_limits import ChemicalPotentialLimits
from perovskite_defects.thermodynamics.relaxation import (
    RELAXATION_KEY,
    add_unrelaxed_levels,
    relaxation_notes,
)
from perovskite_defects.thermodynamics.rows import DEFECT, formation_energy_table
from perovskite_defects.thermodynamics.trap_classes import (
    TRAP_CLASS,
    DefectStates,
    transition_level_rows,
)


@dataclass(frozen=True)
class DefectRun:
    """One defect in one charge state, as its folder holds it.

    Attributes:
        name: defect name (e.g. "V_I").
        record: the engine record of the defect supercell (charge inside).
        atoms_added: element -> atoms added (negative: removed) against the bulk.
        multiplicity: equivalent sites per supercell from the defect generator.
        correction: finite-size correction (eV) added to the energy; None for a failed run.
        states: character of the defect states, None where not analysed.
        local_geometry: one-line summary of the cell's local geometry against the host
            (``defects.local_environment.geometry_summary``), None where not analysed.
    """

    name: str
    record: CalcRecord
    atoms_added: Mapping[str, int]
    multiplicity: float
    correction: float | None
    states: DefectStates | None = None
    local_geometry: str | None = None

    @property
    def charge(self) -> int:
        return int(self.record.charge)

    @property
    def failure(self) -> str | None:
        """Why the run failed for good (recovery gave up), None for a finished run."""
        reason = self.record.extra.get("failure")
        return f"failed: {reason}" if reason else None


@dataclass
class HostResults:
    """Formation energies, levels with classes and neutral states of one host.

    Attributes:
        entries: one formation-energy entry per defect and charge (missing ones kept).
        levels: defect -> transition levels, None where a failed charge state could hide one.
        lines_by_limit: limit -> defect -> {q: E_f at E_F = VBM} (eV), for the plots.
        formation_rows, level_rows: the rows of formation_energies and transition_levels
            (a relaxed study adds each cell's relaxation energy and local geometry, and each
            level's unrelaxed position and class: thermodynamics/relaxation.py).
        level_notes: notes of the level table (what relaxation changed), [] if unrelaxed.
        sites: defect -> site density and degeneracies for the concentrations.
        dopants: defect -> the foreign elements it adds ([] for a native defect).
        with_dopants: neutral state at each limit with every defect (fermi_level table).
        native_only: the same with the native defects alone (dopant_effect table).
    """

    entries: list[DefectChargeEntry]
    levels: dict[str, list[TransitionLevel] | None]
    lines_by_limit: dict[str, dict[str, dict[int, float]]]
    formation_rows: list[dict[str, Any]]
    level_rows: list[dict[str, Any]]
    sites: dict[str, DefectSite]
    dopants: dict[str, list[str]]
    with_dopants: list[LimitResult] = field(default_factory=list)
    native_only: list[LimitResult] = field(default_factory=list)
    level_notes: list[str] = field(default_factory=list)

    @property
    def deep_defects(self) -> list[str]:
        """Defects with at least one deep level (class after the state analysis)."""
        return sorted({row[DEFECT] for row in self.level_rows if row[TRAP_CLASS] == "deep"})

    @property
    def dopant_elements(self) -> list[str]:
        return sorted({el for els in self.dopants.values() for el in els})


def host_results(
    runs: Sequence[DefectRun],
    bulk: CalcRecord,
    edges: BandEdges,
    limits: ChemicalPotentialLimits,
    *,
    n_cells: int,
    shallow_threshold: float,
    concentrations: Mapping[str, Any],
    bands: BandModel | None,
) -> HostResults:
    """Formation energies, levels, classes and (with ``bands``) the neutral states.

    Args:
        runs: every defect charge state of the host (failed ones included).
        bulk: the converged bulk supercell record.
        edges: the study's band edges (VBM, gap).
        limits: chemical-potential limits.
        n_cells: cells per supercell the multiplicities refer to.
        shallow_threshold: config ``trap_levels.shallow_threshold`` (eV).
        concentrations: config ``concentrations`` (temperatures, limits, degeneracies).
        bands: carrier model of the host; None skips the charge-neutrality solution.
    """
    structure = bulk.pmg_structure()
    volume = structure.volume
    host_elements = {el.symbol for el in structure.composition.elements}
    orientational = concentrations["orientational_degeneracy"]
    entries: list[DefectChargeEntry] = []
    sites: dict[str, DefectSite] = {}
    spins: dict[str, dict[int, float]] = {}
    states: dict[tuple[str, int], DefectStates] = {}
    dopants: dict[str, list[str]] = {}
    for run in runs:
        dopants[run.name] = dopants_of(dict(run.atoms_added), host_elements)
        if run.failure or run.correction is None:  # kept as a row, never as a number
            reason = run.failure or "no finite-size correction"
            entries.append(
                DefectChargeEntry.missing(run.name, run.charge, limits.limit_names, reason)
            )
            continue
        entry = DefectChargeEntry.from_records(
            run.name,
            run.record,
            bulk,
            dict(run.atoms_added),
            limits.limits,
            correction=run.correction,
            vbm=edges.vbm,
        )
        if run.record.relaxation_energy is not None:
            entry.extra[RELAXATION_KEY] = run.record.relaxation_energy
            entry.extra["local_geometry"] = run.local_geometry
        entries.append(entry)
        spins.setdefault(run.name, {})[run.charge] = spin_degeneracy(run.record.nelect)
        sites[run.name] = DefectSite(
            run.name,
            site_density(run.multiplicity, n_cells, volume),
            spins[run.name],
            float(orientational.get(run.name, 1.0)),
        )
        if run.states is not None:
            states[(run.name, run.charge)] = run.states
    levels, lines_by_limit = _levels(entries, limits.limit_names, edges.gap)
    level_rows = transition_level_rows(levels, edges.gap, shallow_threshold, states)
    first = limits.limit_names[0]  # levels do not depend on the limit
    add_unrelaxed_levels(level_rows, levels, entries, first, edges.gap, shallow_threshold)
    results = HostResults(
        entries=entries,
        levels=levels,
        lines_by_limit=lines_by_limit,
        formation_rows=formation_energy_table(entries, limits.limit_names),
        level_rows=level_rows,
        sites=sites,
        dopants=dopants,
        level_notes=relaxation_notes(
            level_rows, levels, entries, first, edges.gap, shallow_threshold
        ),
    )
    if bands is not None:
        results.with_dopants = solve_limits(
            concentrations, entries, sites, limits.limit_names, bands
        )
        native_sites = {n: site for n, site in sites.items() if not dopants[n]}
        results.native_only = solve_limits(
            concentrations, entries, native_sites, limits.limit_names, bands
        )
    return results


def _levels(
    entries: Sequence[DefectChargeEntry], limit_names: Sequence[str], gap: float
) -> tuple[dict[str, list[TransitionLevel] | None], dict[str, dict[str, dict[int, float]]]]:
    """Transition levels per defect (limit-independent) and the lines at every limit."""
    names = list(dict.fromkeys(e.name for e in entries))
    failed = {e.name for e in entries if e.is_missing}
    levels: dict[str, list[TransitionLevel] | None] = {}
    lines_by_limit: dict[str, dict[str, dict[int, float]]] = {}
    for limit in limit_names:
        for name in names:
            if name in failed:
                # A failed charge state could hold a level: report none rather than a
                # level between the states that happen to be left.
                levels[name] = None
                continue
            lines = charge_lines(entries, name, limit)
            lines_by_limit.setdefault(limit, {})[name] = lines
            levels.setdefault(name, transition_levels(lines, gap) if len(lines) else None)
    return levels, lines_by_limit
