"""Everything one host's tables say, computed from records: no file is read or written here.

The tables step (:mod:`perovskite_defects.steps.tables`) reads the defect folders into
:class:`DefectRun` objects, calls :func:`host_results`, and writes what comes back, the
tables and ``tables/host_results.json`` (:meth:`HostResults.to_json`). Keeping the physics
apart from the files lets it be tested with hand-made records in milliseconds
(``tests/test_host_results.py``); the aggregation across hosts and the Python API read the
JSON back as a :class:`HostResults` rather than parsing the tables.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from perovskite_defects.engines.base import CalcRecord
from perovskite_defects.thermodynamics.band_edges import BandEdges
from perovskite_defects.thermodynamics.carriers import BandModel
from perovskite_defects.thermodynamics.concentrations import (
    DefectSite,
    LimitResult,
    concentration_rows,
    dopant_effect_rows,
    dopants_of,
    fermi_rows,
    site_density,
    solve_limits,
    spin_degeneracy,
)
from perovskite_defects.thermodynamics.fermi_solver import FermiSolution
from perovskite_defects.thermodynamics.formation import (
    DefectChargeEntry,
    TransitionLevel,
    charge_lines,
    transition_levels,
)
from perovskite_defects.thermodynamics.phase_limits import ChemicalPotentialLimits
from perovskite_defects.thermodynamics.quenched import QuenchedSolution
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

#: Shape of ``tables/host_results.json``; raised when a field changes meaning or shape, so
#: that an older file is refused with its name rather than misread.
SCHEMA_VERSION = 1
HOST_RESULTS_JSON = "host_results.json"


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
        limit_names: the chemical-potential limits, in the study's order.
        band_edges: the edges the energies and levels refer to (spin-orbit shifts included).
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
    limit_names: list[str]
    band_edges: BandEdges
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

    def fermi_rows(self) -> list[dict[str, Any]]:
        """Rows of fermi_level (every defect, per limit)."""
        return fermi_rows(self.with_dopants)

    def concentration_rows(self) -> list[dict[str, Any]]:
        """Rows of concentrations (every defect, per limit and charge)."""
        return concentration_rows(self.with_dopants)

    def dopant_effect_rows(self) -> list[dict[str, Any]]:
        """Rows of dopant_effect: none without a dopant defect."""
        if not self.dopant_elements:
            return []
        return dopant_effect_rows(
            self.native_only, self.with_dopants, self.dopant_elements, self.deep_defects
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form with ``schema_version`` (charges used as keys become strings);
        :meth:`from_dict` reads it back to an equal object."""
        return {
            "schema_version": SCHEMA_VERSION,
            "limit_names": list(self.limit_names),
            "band_edges": asdict(self.band_edges),
            "entries": [entry.to_dict() for entry in self.entries],
            "levels": {
                name: None if lvls is None else [asdict(lv) for lv in lvls]
                for name, lvls in self.levels.items()
            },
            "lines_by_limit": {
                limit: {name: _str_keys(lines) for name, lines in by_name.items()}
                for limit, by_name in self.lines_by_limit.items()
            },
            "formation_rows": [dict(row) for row in self.formation_rows],
            "level_rows": [dict(row) for row in self.level_rows],
            "level_notes": list(self.level_notes),
            "sites": {
                name: asdict(site) | {"spin_degeneracy": _str_keys(site.spin_degeneracy)}
                for name, site in self.sites.items()
            },
            "dopants": {name: list(els) for name, els in self.dopants.items()},
            "with_dopants": [_limit_result_dict(r) for r in self.with_dopants],
            "native_only": [_limit_result_dict(r) for r in self.native_only],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HostResults:
        """Inverse of :meth:`to_dict`; refuses another ``schema_version``."""
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"schema_version {version!r}; this code reads {SCHEMA_VERSION}")
        return cls(
            entries=[DefectChargeEntry.from_dict(e) for e in data["entries"]],
            levels={
                name: None if lvls is None else [TransitionLevel(**lv) for lv in lvls]
                for name, lvls in data["levels"].items()
            },
            lines_by_limit={
                limit: {name: _int_keys(lines) for name, lines in by_name.items()}
                for limit, by_name in data["lines_by_limit"].items()
            },
            formation_rows=[dict(row) for row in data["formation_rows"]],
            level_rows=[dict(row) for row in data["level_rows"]],
            level_notes=list(data.get("level_notes", [])),
            sites={
                name: DefectSite(**(site | {"spin_degeneracy": _int_keys(site["spin_degeneracy"])}))
                for name, site in data["sites"].items()
            },
            dopants={name: list(els) for name, els in data["dopants"].items()},
            limit_names=list(data["limit_names"]),
            band_edges=BandEdges(**data["band_edges"]),
            with_dopants=[_limit_result(r) for r in data["with_dopants"]],
            native_only=[_limit_result(r) for r in data["native_only"]],
        )

    def to_json(self, path: str | Path) -> None:
        """Write :meth:`to_dict` to ``path`` (floats at full precision)."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1, default=_plain))

    @classmethod
    def from_json(cls, path: str | Path) -> HostResults:
        """Read a file written by :meth:`to_json`; a bad file raises ValueError naming it."""
        try:
            text = Path(path).read_text()
        except OSError as err:
            raise ValueError(f"{path}: cannot be read ({err.strerror})") from err
        try:
            return cls.from_dict(json.loads(text))
        except (AttributeError, KeyError, TypeError, ValueError) as err:  # bad JSON: ValueError
            reason = f"no key {err}" if isinstance(err, KeyError) else str(err)
            raise ValueError(f"{path}: not a host_results file ({reason})") from err


def _str_keys(by_charge: Mapping[int, float]) -> dict[str, float]:
    return {str(q): value for q, value in by_charge.items()}


def _int_keys(by_charge: Mapping[str | int, float]) -> dict[int, float]:
    return {int(q): value for q, value in by_charge.items()}


def _plain(value: Any) -> Any:
    """numpy scalars as Python numbers (json.dumps calls this for what it cannot write)."""
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _fermi_dict(solution: FermiSolution) -> dict[str, Any]:
    by_defect = {name: _str_keys(by_q) for name, by_q in solution.concentrations.items()}
    return asdict(solution) | {"concentrations": by_defect}


def _fermi_solution(data: Mapping[str, Any]) -> FermiSolution:
    by_defect = {name: _int_keys(by_q) for name, by_q in data["concentrations"].items()}
    return FermiSolution(**(dict(data) | {"concentrations": by_defect}))


def _limit_result_dict(result: LimitResult) -> dict[str, Any]:
    sol = result.solution
    if isinstance(sol, QuenchedSolution):
        quenched = {
            "synthesis": _fermi_dict(sol.synthesis),
            "room": _fermi_dict(sol.room),
            "frozen_totals": dict(sol.frozen_totals),
        }
        return {"limit": result.limit, "quenched": quenched}
    return {"limit": result.limit, "equilibrium": _fermi_dict(sol)}


def _limit_result(data: Mapping[str, Any]) -> LimitResult:
    if "quenched" in data:
        q = data["quenched"]
        solution: FermiSolution | QuenchedSolution = QuenchedSolution(
            _fermi_solution(q["synthesis"]), _fermi_solution(q["room"]), dict(q["frozen_totals"])
        )
    else:
        solution = _fermi_solution(data["equilibrium"])
    return LimitResult(data["limit"], solution)


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
        limit_names=list(limits.limit_names),
        band_edges=edges,
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
