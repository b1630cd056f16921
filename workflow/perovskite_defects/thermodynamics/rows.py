"""Table rows of formation energies and transition levels: one dictionary per row.

Rows are plain dictionaries (column -> value) so the same rows feed the CSV and Markdown
writers of :mod:`perovskite_defects.reporting.tables`. A value of ``None`` is an empty cell:
missing calculations keep their row, with empty numbers and ``converged`` set to "missing",
rather than disappearing from the table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from perovskite_defects.thermodynamics.formation import DefectChargeEntry, TransitionLevel

Row = dict[str, Any]

DEFECT = "defect"
CHARGE = "charge"
CORRECTION = "correction (eV)"
RELAXATION = "relaxation energy (eV)"
LOCAL_GEOMETRY = "local geometry (Å)"
CONVERGED = "converged"
TRANSITION = "q/q'"
LEVEL = "level above VBM (eV)"
DEPTH = "depth below CBM (eV)"
MISSING = "missing"
NO_LEVEL = "none"


def formation_energy_column(limit: str) -> str:
    """Column name of the formation energy at E_F = VBM for one chemical-potential limit."""
    return f"E_f[{limit}] (eV)"


def formation_energy_table(
    rows: Sequence[DefectChargeEntry], limits: Sequence[str] | None = None
) -> list[Row]:
    """One row per defect charge state.

    Columns: defect, charge, ``E_f[<limit>] (eV)`` per limit (E_F at the VBM), correction,
    converged (True, False, or "missing" for a calculation that is absent or failed). When
    any entry was relaxed, also: relaxation energy (E_relaxed - E_unrelaxed of the defect
    cell, the entry's ``extra["relaxation_energy"]``) and local geometry (its
    ``extra["local_geometry"]``: the key distance against the host's).

    Args:
        rows: the entries, in the order they should appear.
        limits: limit columns to show, in order; default all limits found in ``rows`` in
            first-seen order.
    """
    if limits is None:
        seen: dict[str, None] = {}
        for entry in rows:
            seen.update(dict.fromkeys(entry.formation_energies))
        limits = list(seen)
    relaxed = any(entry.extra.get("relaxation_energy") is not None for entry in rows)
    table = []
    for entry in rows:
        row: Row = {DEFECT: entry.name, CHARGE: int(entry.charge)}
        for limit in limits:
            value = None if entry.is_missing else entry.formation_energies.get(limit)
            row[formation_energy_column(limit)] = value
        row[CORRECTION] = None if entry.is_missing else entry.correction
        if relaxed:
            row[RELAXATION] = entry.extra.get("relaxation_energy")
            row[LOCAL_GEOMETRY] = entry.extra.get("local_geometry")
        if entry.is_missing:
            # "failed: <reason>" when the entry says why, else "missing".
            row[CONVERGED] = entry.note if entry.note.startswith("failed") else MISSING
        else:
            row[CONVERGED] = entry.converged
        table.append(row)
    return table


def transition_level_table(
    levels: Mapping[str, Sequence[TransitionLevel] | None],
) -> list[Row]:
    """One row per transition level; columns defect, q/q', level above VBM, depth below CBM.

    Args:
        levels: defect name -> its levels (e.g. from ``thermo.transition_levels``). A defect
            with no level (one stable charge state) gets one row with q/q' = "none"; a defect
            whose levels could not be computed (``None``) gets one row with q/q' = "missing".
            Both have empty numbers, so no defect silently disappears.
    """
    table: list[Row] = []
    for name, defect_levels in levels.items():
        if not defect_levels:
            label = MISSING if defect_levels is None else NO_LEVEL
            table.append({DEFECT: name, TRANSITION: label, LEVEL: None, DEPTH: None})
            continue
        for lev in defect_levels:
            table.append({DEFECT: name, TRANSITION: lev.label, LEVEL: lev.level, DEPTH: lev.depth})
    return table
