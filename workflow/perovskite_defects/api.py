"""Python API: a finished study as typed objects and pandas tables.

Load the results folder the workflow wrote (``results/<study>``, or one host folder
``results/<study>/<host>``) and work with it in a notebook or another tool::

    from perovskite_defects.api import load_study

    study = load_study("results/default")
    study.formation_energies("I-rich", fermi_level=0.5)  # pandas.DataFrame, eV
    study.transition_levels()
    study.concentrations()
    diagrams = study.to_pmg_formation_energy_diagrams()  # pymatgen-analysis-defects
    thermo = study.to_doped_thermodynamics()  # doped, when installed

What is read, per host (all written by the workflow; eV and Å throughout):

- ``bulk/record.json`` and ``defects/<name>_q<q>/record.json``: the engine records;
- ``defects/<name>_q<q>/defect.json``: the defect cell (atoms added/removed, site,
  multiplicity); ``correction.json``: the finite-size correction;
  ``defect_states.json``: the character of the states near the gap (when analysed);
- ``defects/manifest.tsv``: which defect folders belong to the study;
- ``chemical_potentials.json``: the chemical-potential limits;
- ``tables/provenance.json``: the config of the tables;
- ``tables/host_results.json``: what the tables step computed, typed
  (:class:`~perovskite_defects.thermodynamics.host_results.HostResults`: formation
  energies, transition levels with trap classes, band edges, Fermi levels and
  concentrations), so every number equals the study's tables.

The records, cells and corrections are what the exports to other libraries are built from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perovskite_defects.defects.distinct_sites import DefectCell
from perovskite_defects.engines.base import CalcRecord, EngineError
from perovskite_defects.thermodynamics.band_edges import BandEdges
from perovskite_defects.thermodynamics.formation import (
    DefectChargeEntry,
    TransitionLevel,
    format_charge,
)
from perovskite_defects.thermodynamics.host_results import HOST_RESULTS_JSON, HostResults
from perovskite_defects.thermodynamics.phase_limits import ChemicalPotentialLimits
from perovskite_defects.thermodynamics.rows import DEFECT, TRANSITION
from perovskite_defects.thermodynamics.trap_classes import TRAP_CLASS

if TYPE_CHECKING:
    import pandas as pd
    from pymatgen.analysis.defects.thermo import DefectEntry, FormationEnergyDiagram
    from pymatgen.core import Element

__all__ = ["DefectFolder", "Study", "StudyLoadError", "find_hosts", "load_study"]

RECORD = "record.json"  # the same names as perovskite_defects.steps.common
DEFECT_CELL = "defect.json"
CHEMPOTS = "chemical_potentials.json"
PROVENANCE = "tables/provenance.json"


class StudyLoadError(ValueError):
    """A results folder is incomplete or unreadable (one line naming the file)."""


@dataclass
class DefectFolder:
    """One charge state of one defect as the workflow left it (its folder, cell and
    correction file; the physics input of the tables is
    :class:`~perovskite_defects.thermodynamics.host_results.DefectRun`).

    Attributes:
        name: defect name (V_I, Na_Pb, ...).
        charge: charge q.
        directory: its folder ``defects/<name>_q<q>``.
        record: the engine record (energy, structure, settings).
        cell: the defect cell (atoms added/removed, defect position, multiplicity).
        correction: ``correction.json`` (``total`` in eV; None for a failed run).
        states: ``defect_states.json`` when it was written, else None.
    """

    name: str
    charge: int
    directory: Path
    record: CalcRecord
    cell: DefectCell
    correction: dict[str, Any]
    states: dict[str, Any] | None = None

    @property
    def failure(self) -> str | None:
        """Why the run failed for good (recovery gave up), or None."""
        reason = self.record.extra.get("failure")
        return str(reason) if reason else None

    @property
    def correction_total(self) -> float | None:
        """Finite-size correction included in the formation energy (eV)."""
        total = self.correction.get("total")
        return None if total is None else float(total)


@dataclass
class Study:
    """The results of one host of a study (see the module docstring for the files).

    Attributes:
        path: the host folder ``results/<study>/<host>``.
        study, host: their names.
        config: the validated config the tables were made with.
        bulk: the bulk supercell record.
        runs: every defect charge state of the manifest, in its order.
        limits: chemical-potential limits (absolute mu in ``limits.limits``, eV/atom).
        results: ``tables/host_results.json``, the numbers of the study's tables.
    """

    path: Path
    study: str
    host: str
    config: dict[str, Any]
    bulk: CalcRecord
    runs: list[DefectFolder]
    limits: ChemicalPotentialLimits
    results: HostResults

    # ------------------------------------------------------------------ plain access

    @property
    def band_edges(self) -> BandEdges:
        """VBM and CBM used by the formation energies (eV, bulk energy scale)."""
        return self.results.band_edges

    @property
    def entries(self) -> list[DefectChargeEntry]:
        """Formation energies at E_F = VBM per limit (corrections included), in the order
        of the tables."""
        return self.results.entries

    @property
    def vbm(self) -> float:
        return self.band_edges.vbm

    @property
    def band_gap(self) -> float:
        return self.band_edges.cbm - self.band_edges.vbm

    @property
    def limit_names(self) -> list[str]:
        return self.limits.limit_names

    @property
    def defect_names(self) -> list[str]:
        return list(dict.fromkeys(run.name for run in self.runs))

    @property
    def records(self) -> dict[tuple[str, int], CalcRecord]:
        """(defect, charge) -> engine record."""
        return {(run.name, run.charge): run.record for run in self.runs}

    @property
    def corrections(self) -> dict[tuple[str, int], float | None]:
        """(defect, charge) -> finite-size correction (eV; None for a failed run)."""
        return {(run.name, run.charge): run.correction_total for run in self.runs}

    def entry(self, defect: str, charge: int) -> DefectChargeEntry:
        for entry in self.entries:
            if entry.name == defect and entry.charge == charge:
                return entry
        known = ", ".join(f"{e.name} {format_charge(e.charge)}" for e in self.entries)
        raise KeyError(f"no charge state {defect} {format_charge(charge)}; known: {known}")

    def formation_energy(
        self, defect: str, charge: int, limit: str, fermi_level: float = 0.0
    ) -> float:
        """E_f(q, E_F) = E_f(q, E_F = VBM) + q E_F (eV); E_F in eV above the VBM."""
        self._check_limit(limit)
        entry = self.entry(defect, charge)
        value = entry.formation_energies.get(limit)
        if value is None:
            raise ValueError(f"{defect} {format_charge(charge)}: no energy ({entry.note})")
        return value + charge * fermi_level

    def _check_limit(self, limit: str) -> None:
        if limit not in self.limits.limits:
            raise KeyError(f"unknown limit {limit!r}; limits of the study: {self.limit_names}")

    # ------------------------------------------------------------------ pandas tables

    def formation_energies(
        self, limit: str | None = None, fermi_level: float = 0.0
    ) -> pd.DataFrame:
        """One row per defect, charge state and limit (only ``limit`` when given).

        Columns: defect, charge, limit, fermi_level_eV (above the VBM),
        formation_energy_eV (NaN for a missing run), correction_eV, status
        (converged / unconverged / missing), note.
        """
        if limit is not None:
            self._check_limit(limit)
        rows = []
        for lim in [limit] if limit else self.limit_names:
            for e in self.entries:
                value = e.formation_energies.get(lim)
                rows.append(
                    {
                        "defect": e.name,
                        "charge": e.charge,
                        "limit": lim,
                        "fermi_level_eV": float(fermi_level),
                        "formation_energy_eV": None
                        if value is None
                        else value + e.charge * fermi_level,
                        "correction_eV": e.correction,
                        "status": e.status,
                        "note": e.note,
                    }
                )
        return _frame(rows, FORMATION_COLUMNS)

    def transition_levels(self) -> pd.DataFrame:
        """One row per level (eV above the VBM) with its trap class, as the tables classed
        it (the class follows the defect states where they were analysed).

        Columns: defect, q, q_prime, transition ("+1/0"), level_eV, depth_below_cbm_eV,
        in_gap, class (shallow/deep/resonant as the tables classed it). A defect with one
        stable charge state has one row with transition "none"; one with a failed charge
        state "missing" (its levels are not computed); both with NaN numbers.
        """
        rows: list[dict[str, Any]] = []
        classes = {(r[DEFECT], r[TRANSITION]): r[TRAP_CLASS] for r in self.results.level_rows}
        for name in self.defect_names:
            found = self.computed_levels(name)
            if not found:
                label = "none" if found is not None else "missing"
                rows.append({"defect": name, "transition": label})
                continue
            for lev in found:
                rows.append(
                    {
                        "defect": name,
                        "q": lev.q,
                        "q_prime": lev.q_prime,
                        "transition": lev.label,
                        "level_eV": lev.level,
                        "depth_below_cbm_eV": lev.depth,
                        "in_gap": lev.in_gap,
                        "class": classes.get((name, lev.label)),
                    }
                )
        return _frame(rows, LEVEL_COLUMNS)

    def computed_levels(self, defect: str) -> list[TransitionLevel] | None:
        """Transition levels of one defect as the tables computed them (limit-independent);
        None if a charge state failed or the defect has no converged charge state."""
        return self.results.levels.get(defect)

    def fermi_levels(self) -> pd.DataFrame:
        """Self-consistent Fermi level per limit (the rows of ``tables/fermi_level.csv``).

        Columns: limit, temperature_K, fermi_level_eV (above the VBM), n_cm3, p_cm3,
        synthesis_temperature_K, synthesis_fermi_level_eV.
        """
        return _renamed(self.results.fermi_rows(), FERMI_NAMES)

    def concentrations(self) -> pd.DataFrame:
        """Defect concentrations per limit and charge (the rows of
        ``tables/concentrations.csv``).

        Columns: limit, defect, charge, concentration_cm3, defect_total_cm3.
        """
        return _renamed(self.results.concentration_rows(), CONCENTRATION_NAMES)

    # ------------------------------------------------------------------ other libraries

    def to_pmg_defect_entries(self, include_unconverged: bool = False) -> list[DefectEntry]:
        """pymatgen-analysis-defects ``DefectEntry`` of every converged charge state."""
        from perovskite_defects.reporting.exports import pmg_defect_entries

        return pmg_defect_entries(self, include_unconverged)

    def to_pmg_formation_energy_diagrams(self) -> dict[str, FormationEnergyDiagram]:
        """One pymatgen-analysis-defects ``FormationEnergyDiagram`` per defect; evaluate
        it at a limit of the study with :meth:`pmg_chempots`."""
        from perovskite_defects.reporting.exports import pmg_formation_energy_diagrams

        return pmg_formation_energy_diagrams(self)

    def pmg_chempots(self, limit: str) -> dict[Element, float]:
        """Chemical potentials of ``limit`` relative to the elemental references of the
        exported diagrams (what ``FormationEnergyDiagram.get_formation_energy`` takes)."""
        from perovskite_defects.reporting.exports import pmg_chempots

        self._check_limit(limit)
        return pmg_chempots(self, limit)

    def to_doped_thermodynamics(self) -> Any:
        """doped ``DefectThermodynamics`` of the converged charge states, with the
        study's limits, VBM and gap (needs doped installed: ``pip install doped``)."""
        from perovskite_defects.reporting.exports import doped_thermodynamics

        return doped_thermodynamics(self)


FORMATION_COLUMNS = [
    "defect",
    "charge",
    "limit",
    "fermi_level_eV",
    "formation_energy_eV",
    "correction_eV",
    "status",
    "note",
]
LEVEL_COLUMNS = [
    "defect",
    "q",
    "q_prime",
    "transition",
    "level_eV",
    "depth_below_cbm_eV",
    "in_gap",
    "class",
]
FERMI_NAMES = {
    "limit": "limit",
    "temperature (K)": "temperature_K",
    "Fermi level above VBM (eV)": "fermi_level_eV",
    "n (cm^-3)": "n_cm3",
    "p (cm^-3)": "p_cm3",
    "synthesis temperature (K)": "synthesis_temperature_K",
    "synthesis Fermi level (eV)": "synthesis_fermi_level_eV",
}
CONCENTRATION_NAMES = {
    "limit": "limit",
    "defect": "defect",
    "charge": "charge",
    "concentration (cm^-3)": "concentration_cm3",
    "defect total (cm^-3)": "defect_total_cm3",
}


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    import pandas as pd  # a dependency; imported here to keep the module quick to import

    return pd.DataFrame(rows, columns=columns)


def _renamed(rows: list[dict[str, Any]], names: dict[str, str]) -> pd.DataFrame:
    """Table rows with the API's column names."""
    return _frame([{names[k]: row[k] for k in names} for row in rows], list(names.values()))


# --------------------------------------------------------------------------- loading


def find_hosts(results_dir: str | Path) -> list[str]:
    """Hosts of a study folder whose tables are written (``<host>/tables/provenance.json``
    beside ``<host>/bulk/record.json``)."""
    return sorted(p.name for p in Path(results_dir).iterdir() if _is_host(p))


def _is_host(path: Path) -> bool:
    return (path / PROVENANCE).is_file() and (path / "bulk" / RECORD).is_file()


def load_study(results_dir: str | Path, host: str | None = None) -> Study:
    """Load a finished study.

    Args:
        results_dir: ``results/<study>`` or one host folder ``results/<study>/<host>``.
        host: which host of a study with several (a composition sweep); may be left out
            when the study has one host or ``results_dir`` is a host folder.

    Raises:
        StudyLoadError: a file is missing or unreadable (the message names it).
    """
    path = Path(results_dir)
    if not path.is_dir():
        raise StudyLoadError(f"{path}: no such results folder")
    if host is None and not _is_host(path):
        hosts = find_hosts(path)
        if len(hosts) != 1:
            found = f"hosts with tables: {hosts}" if hosts else f"no {PROVENANCE} found"
            raise StudyLoadError(f"{path}: pass host= ({found})")
        host = hosts[0]
    if host is not None:
        path = path / host
    if not (path / PROVENANCE).is_file():
        raise StudyLoadError(f"{path / PROVENANCE}: missing (run the workflow's tables step)")
    return _load_host(path)


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise StudyLoadError(f"{path}: missing")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise StudyLoadError(f"{path}: not valid JSON ({err})") from err


def _record(path: Path) -> CalcRecord:
    try:
        return CalcRecord.from_json(path)
    except (EngineError, TypeError) as err:
        raise StudyLoadError(f"{path}: not a calculation record ({err})") from err


def _load_host(path: Path) -> Study:
    from perovskite_defects.defects.manifest import manifest_jobs

    provenance = _read_json(path / PROVENANCE)
    try:
        limits = ChemicalPotentialLimits.from_dict(_read_json(path / CHEMPOTS))
    except (TypeError, KeyError) as err:
        raise StudyLoadError(f"{path / CHEMPOTS}: not chemical-potential limits ({err})") from err
    bulk = _record(path / "bulk" / RECORD)
    manifest = path / "defects" / "manifest.tsv"
    if not manifest.is_file():
        raise StudyLoadError(f"{manifest}: missing")
    runs = [_load_run(path / "defects" / f"{d}_q{q}") for d, q in manifest_jobs(manifest.parent)]
    return Study(
        path=path,
        study=path.parent.name,
        host=path.name,
        config=dict(provenance.get("config", {})),
        bulk=bulk,
        runs=runs,
        limits=limits,
        results=_load_results(path, runs),
    )


def _load_results(path: Path, runs: list[DefectFolder]) -> HostResults:
    """tables/host_results.json, checked against the defect folders of the manifest."""
    file = path / "tables" / HOST_RESULTS_JSON
    if not file.is_file():
        target = f"results/{path.parent.name}/{path.name}/tables/{HOST_RESULTS_JSON}"
        raise StudyLoadError(
            f"{file}: missing (tables written before it existed); rerun the tables step: "
            f"snakemake {target} --rerun-triggers mtime (with the study's --configfile)"
        )
    try:
        results = HostResults.from_json(file)
    except ValueError as err:
        raise StudyLoadError(str(err)) from err
    computed = {(e.name, e.charge) for e in results.entries}
    listed = {(run.name, run.charge) for run in runs}
    if computed != listed:
        odd = sorted(computed ^ listed)[0]
        raise StudyLoadError(
            f"{file}: {odd[0]} {format_charge(odd[1])} is in only one of it and "
            "defects/manifest.tsv (tables older than the manifest: rerun the tables step)"
        )
    return results


def _load_run(directory: Path) -> DefectFolder:
    record = _record(directory / RECORD)
    cell_file = directory / DEFECT_CELL
    try:
        cell = DefectCell(**_read_json(cell_file))
    except TypeError as err:
        raise StudyLoadError(f"{cell_file}: not a defect cell ({err})") from err
    states_file = directory / "defect_states.json"
    return DefectFolder(
        name=cell.name,
        charge=int(record.charge),
        directory=directory,
        record=record,
        cell=cell,
        correction=_read_json(directory / "correction.json"),
        states=_read_json(states_file) if states_file.is_file() else None,
    )
