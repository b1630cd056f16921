"""What relaxation changed: the levels and classes of a relaxed study with its unrelaxed energies.

A defect relaxed at fixed cell keeps the energy of its first geometry, the ideal sites of
the unrelaxed defect (``CalcRecord.initial_energy``; the entry's
``extra["relaxation_energy"]`` = E_relaxed - E_unrelaxed <= 0). Subtracting it from each
formation energy gives the lines the same study would have had without relaxation, from
which this module computes, for every level q/q' of the relaxed table, the crossing of the
same two charge states unrelaxed and its class by position, and lists the defects whose
stable charge states or classes relaxation changed. One relaxed run gives both pictures;
an unrelaxed study costs nothing extra.

Approximation: the finite-size correction of the unrelaxed lines is the relaxed cell's
(computed from its final potential). Its point-charge term does not depend on the
geometry; the potential alignment does, by an amount not measured here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from perovskite_defects.thermodynamics.formation import (
    DefectChargeEntry,
    TransitionLevel,
    charge_lines,
    transition_levels,
)
from perovskite_defects.thermodynamics.rows import DEFECT, LEVEL, TRANSITION
from perovskite_defects.thermodynamics.trap_classes import POSITION_CLASS, classify_level

UNRELAXED_LEVEL = "unrelaxed level above VBM (eV)"
UNRELAXED_CLASS = "unrelaxed class by position"
RELAXATION_KEY = "relaxation_energy"


def is_relaxed(entries: Sequence[DefectChargeEntry]) -> bool:
    """True when any entry carries a relaxation energy (a relaxed study)."""
    return any(e.extra.get(RELAXATION_KEY) is not None for e in entries)


def unrelaxed_lines(
    entries: Sequence[DefectChargeEntry], name: str, limit: str
) -> dict[int, float] | None:
    """Charge -> unrelaxed E_f at E_F = VBM (eV) of one defect at one limit; None when a
    converged charge state of it has no relaxation energy (a single point)."""
    lines = charge_lines(entries, name, limit)
    by_charge = {e.charge: e for e in entries if e.name == name and not e.is_missing}
    out = {}
    for q, value in lines.items():
        relaxation = by_charge[q].extra.get(RELAXATION_KEY)
        if relaxation is None:
            return None
        out[q] = value - float(relaxation)
    return out


def crossing(lines: Mapping[int, float], q: int, q_prime: int) -> float:
    """Fermi level (eV above the VBM) where the lines of charges q and q' cross."""
    return (lines[q_prime] - lines[q]) / (q - q_prime)


def add_unrelaxed_levels(
    rows: list[dict[str, Any]],
    levels: Mapping[str, Sequence[TransitionLevel] | None],
    entries: Sequence[DefectChargeEntry],
    limit: str,
    gap: float,
    shallow_threshold: float,
) -> None:
    """Add the unrelaxed level and its class by position to the rows of
    :func:`~perovskite_defects.thermodynamics.trap_classes.transition_level_rows` (same
    order as ``levels``), in place; nothing when no entry was relaxed."""
    if not is_relaxed(entries):
        return
    flat = iter([(name, lev) for name, lvls in levels.items() for lev in (lvls or [])])
    for row in rows:
        row[UNRELAXED_LEVEL] = row[UNRELAXED_CLASS] = None
        if row[LEVEL] is None:
            continue
        name, lev = next(flat)
        lines = unrelaxed_lines(entries, name, limit)
        if lines is None or lev.q not in lines or lev.q_prime not in lines:
            continue
        level = crossing(lines, lev.q, lev.q_prime)
        row[UNRELAXED_LEVEL] = level
        row[UNRELAXED_CLASS] = classify_level(level, gap, shallow_threshold).trap_class


def relaxation_notes(
    rows: Sequence[Mapping[str, Any]],
    levels: Mapping[str, Sequence[TransitionLevel] | None],
    entries: Sequence[DefectChargeEntry],
    limit: str,
    gap: float,
    shallow_threshold: float,
) -> list[str]:
    """Notes for the level table of a relaxed study: how the unrelaxed levels were
    obtained, the levels whose class relaxation changed, and the defects whose stable
    charge states (unrelaxed envelope) differ. [] for an unrelaxed study."""
    if not is_relaxed(entries):
        return []
    notes = [
        "Unrelaxed level: where the same two charge states cross with the energies of "
        "their first (ideal-site) geometry, E_f - relaxation energy (finite-size "
        "correction of the relaxed cell); its class by position only (defect states are "
        "analysed at the relaxed geometry)."
    ]
    changed = [
        f"{row[DEFECT]} {row[TRANSITION]}: {row[UNRELAXED_CLASS]} -> {row[POSITION_CLASS]}"
        for row in rows
        if row.get(UNRELAXED_CLASS) is not None and row[UNRELAXED_CLASS] != row[POSITION_CLASS]
    ]
    notes.append(
        "Relaxation changed the class by position of: " + "; ".join(changed) + "."
        if changed
        else "Relaxation changed the class by position of no level."
    )
    for name, relaxed in levels.items():
        lines = None if relaxed is None else unrelaxed_lines(entries, name, limit)
        if lines is None or not lines:
            continue
        before = transition_levels(lines, gap)
        if [lv.label for lv in before] == [lv.label for lv in relaxed or []]:
            continue
        notes.append(
            f"{name}: unrelaxed levels "
            + _describe(before, gap, shallow_threshold)
            + "; relaxed "
            + _describe(relaxed or [], gap, shallow_threshold)
            + "."
        )
    return notes


def _describe(levels: Sequence[TransitionLevel], gap: float, threshold: float) -> str:
    if not levels:
        return "none in the gap"
    return ", ".join(
        f"{lv.label} {lv.level:.2f} eV ({classify_level(lv.level, gap, threshold).trap_class})"
        for lv in levels
    )
