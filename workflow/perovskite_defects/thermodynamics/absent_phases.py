"""What a competing phase left out of the calculation could do to the chemical-potential limits.

A phase P with n_i atoms of element i per formula unit and formation energy ΔH_P (eV per
formula unit, from the elemental references) forbids every point of the host's stability
region where

    S_P(Δmu) = sum_i n_i Δmu_i  >  ΔH_P .

Without P's energy, ΔH_P is unknown, but its effect can still be bounded from the region
that was computed without it. S_P is linear, so over the region it takes its extreme values
at the vertices: with S_max and S_min the largest and smallest S_P over the vertices,

* ΔH_P >= S_max: P cuts nothing; the limits stand;
* S_min <= ΔH_P < S_max: P cuts off every vertex with S_P > ΔH_P; a named limit (X-rich,
  X-poor) moves exactly when ΔH_P < S_P(limit);
* ΔH_P < S_min: the host itself is unstable against P (and the other phases).

A moved limit is still a point of the old region (adding a phase only shrinks it), so each
Δmu_i at that limit can change at most to the extreme values Δmu_i takes over the old
vertices: that is the "by how much" bound written in the notes. It is loose when P barely
cuts the region; it is exact in the sense that no ΔH_P can move the limit further.

The phases listed in :data:`UNSOURCED_PHASES` are known compounds of Cs-Sn-Pb-halide systems
(docs/sweeps.md, "Not shipped") for which no structure from a citable source is shipped;
SnI2, SnI4, SnBr2, PbCl2 and PbBr2 left this list when their sourced files were added
(structures/phases/, tests/test_phases.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pymatgen.core import Composition

#: Known phases of the Cs/Sn/Pb-halide systems without a shipped, sourced structure file.
UNSOURCED_PHASES: tuple[str, ...] = (
    "SnBr4", "SnCl2", "SnCl4",
    "Cs2SnBr6", "Cs2SnCl6", "Cs4PbI6", "Cs4PbBr6", "Cs4PbCl6",
    "CsPb2I5", "CsPb2Br5", "CsPb2Cl5",
)  # fmt: skip


@dataclass(frozen=True)
class AbsentPhaseBound:
    """How far an absent phase could move the limits (energies in eV per formula unit).

    Attributes:
        phase: the phase's formula as named (its formula unit is the one energies refer to).
        cuts_below: S_max; the phase changes the region only if its ΔH is below this.
        host_unstable_below: S_min; below this the host would decompose.
        limit_thresholds: named limit -> S at that limit: it moves if ΔH is below this.
        max_shift: named limit -> element -> largest possible change of Δmu (eV/atom).
    """

    phase: str
    cuts_below: float
    host_unstable_below: float
    limit_thresholds: dict[str, float]
    max_shift: dict[str, dict[str, float]]


def absent_phase_bound(limits: Any, phase: str) -> AbsentPhaseBound | None:
    """Bound for ``phase`` on ``limits`` (a ChemicalPotentialLimits); None if not in its system.

    Only phases made of the host's own elements are bounded here (a phase with a dopant
    bounds that dopant's chemical potential, not the host region).
    """
    comp = Composition(phase)
    counts = {el.symbol: float(comp[el]) for el in comp.elements}
    if not set(counts) <= set(limits.elements) or not limits.all_vertices_relative:
        return None

    def s_value(dmu: Mapping[str, float]) -> float:
        return sum(n * dmu[el] for el, n in counts.items())

    vertices = list(limits.all_vertices_relative.values())
    values = [s_value(v) for v in vertices]
    low = {el: min(v[el] for v in vertices) for el in limits.elements}
    high = {el: max(v[el] for v in vertices) for el in limits.elements}
    thresholds: dict[str, float] = {}
    shifts: dict[str, dict[str, float]] = {}
    for name in limits.limit_names:
        dmu = limits.delta_mu(name)
        thresholds[name] = s_value(dmu)
        shifts[name] = {el: max(dmu[el] - low[el], high[el] - dmu[el]) for el in limits.elements}
    return AbsentPhaseBound(phase, max(values), min(values), thresholds, shifts)


def absent_phase_notes(limits: Any, absent: Mapping[str, str]) -> list[str]:
    """One note per absent phase of the host's system: which limits it could move, how far.

    ``absent`` maps phase formula -> why it is not in the calculation.
    """
    notes = []
    for phase, reason in absent.items():
        bound = absent_phase_bound(limits, phase)
        if bound is None:
            continue
        per_limit = "; ".join(
            f"{name} moves if ΔH({phase}) < {value:.3f} eV (Δmu could change by up to "
            + ", ".join(f"{el} {d:.3f}" for el, d in bound.max_shift[name].items())
            + " eV)"
            for name, value in bound.limit_thresholds.items()
        )
        notes.append(
            f"{phase} is not in the calculation ({reason}): it would narrow the stability "
            f"region only if its formation energy ΔH({phase}) were below "
            f"{bound.cuts_below:.3f} eV per formula unit; {per_limit}; below "
            f"{bound.host_unstable_below:.3f} eV the host would be unstable. Compute it to "
            "know."
        )
    return notes


def unsourced_phases(elements: set[str], available: Sequence[str]) -> list[str]:
    """Known phases of ``elements`` for which no structure file is available."""
    return [
        p
        for p in UNSOURCED_PHASES
        if p not in available and {e.symbol for e in Composition(p).elements} <= elements
    ]
