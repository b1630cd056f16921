"""Where a defect's extra electron or hole sits: per-atom charges and spins against bulk.

From the engine's per-atom analysis (:mod:`engines.atomic_populations`) of the defect cell
and of the bulk cell, atoms paired by position: the change of each atom's charge, its spin
moment, and a verdict: the carrier LOCALISED on one atom (a hole on one Sn: Sn3+-like; an
electron: Sn+-like; the same for Pb; a hole on one halide: I0-like), on a bonded pair of
halides (I2^- -like dimer, a V_k centre), or SPREAD over the cell.

Thresholds (fractions of the total absolute spin Sum_i |m_i| of the cell):

* ``SPIN_PRESENT`` = 0.1: below it the cell has no moment to place. The workflow's CP2K
  runs use Fermi-Dirac smearing with a free moment, so an odd-electron cell whose carrier
  is in a band state ends with no moment (measured: Na_i^0 in 40-atom CsPbI3, total
  |m| = 7e-5); then, and for closed-shell charge states, the verdict falls back to charge
  differences, which is weaker: a neighbour's charge also changes when its bonds change.
* ``ONE_ATOM`` = 0.5: one atom holds at least half of the moment. Measured: a hole in
  the band state of the 10-atom CsSnI3 test cell (tests/data/cp2k/cssni3_2x1x1_hole,
  Mulliken) puts 22 % on the most-held atom (an I; Sn 12 % each, 24 % on Sn in all), and
  with only 10 atoms a band state cannot spread thinner; a carrier trapped on one site
  puts most of its moment there, the rest on the ligands. Half keeps the verdict clear
  of the 2-B-atom cells used in tests, where an even share would be 1/2 per B only if
  the B held everything. No relaxed polaron was at hand to measure the upper side.
* ``PAIR`` = 0.6: two adjacent atoms of the same halide (closer than 1.1 x the shortest
  X-X distance of the bulk) hold together at least 60 %, each at least a fifth.

In cells of a few atoms a carrier cannot spread far, so a verdict there says where the
moment sits in that cell, not whether it would stay there in a large one; ``n_effective``
(the inverse participation number (Sum |m|)^2 / Sum m^2: ~1 for one atom, ~N for N equal
atoms) is given with every verdict to show it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from perovskite_defects.engines.atomic_populations import AtomicPopulations
from perovskite_defects.hosts.composition import B_METALS, HALIDES

if TYPE_CHECKING:
    from pymatgen.core import Structure

SPIN_PRESENT = 0.1
ONE_ATOM = 0.5
PAIR = 0.6
PAIR_EACH = 0.2
PAIR_DISTANCE_FACTOR = 1.1
#: Charge-only verdict: the largest change must reach this (e) and this share of the sum.
CHARGE_MIN = 0.1
CHARGE_ONE_ATOM = 0.5
#: Atoms listed in the JSON: those within this distance of the defect (Å), plus the
#: atoms that hold the moment wherever they are.
LIST_RADIUS = 6.5


@dataclass
class AtomChange:
    """One atom of the defect cell: charge change against the same bulk atom, and spin."""

    index: int
    element: str
    distance: float
    charge_change: float | None
    spin: float | None


@dataclass
class Localisation:
    """Verdict on where the carrier sits (see the module docstring for the thresholds).

    Attributes:
        method: population analysis used ("mulliken", "vasp_spheres", ...).
        basis: "spin" (moments present) or "charge" (no moment: weaker verdict).
        verdict: "localised", "pair" or "spread" (None when nothing to judge).
        label: readable verdict, e.g. "hole on one Sn (Sn3+-like)".
        sites: 0-based defect-cell indices of the atom(s) named by the verdict.
        fraction: share of total |spin| (or of total |charge change|) on those sites.
        total_spin: Sum m_i (Bohr magnetons); None for restricted runs.
        total_abs_spin: Sum |m_i|.
        n_effective: inverse participation number of the moments (or charge changes).
    """

    method: str
    basis: str
    verdict: str | None
    label: str
    sites: list[int]
    fraction: float | None
    total_spin: float | None
    total_abs_spin: float | None
    n_effective: float | None
    atoms: list[AtomChange] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def carrier_localisation(
    defect_pops: AtomicPopulations,
    bulk_pops: AtomicPopulations,
    to_bulk: dict[int, int],
    defect: Structure,
    centre_frac: np.ndarray | list[float],
    bulk: Structure,
) -> Localisation:
    """Charge changes, spins and the verdict of one defect cell.

    Args:
        defect_pops / bulk_pops: the same analysis (method) of defect and bulk cell.
        to_bulk: defect-cell index -> bulk index (:func:`corrections.sites.matched_sites`).
        defect: defect-cell structure (the record's, in the populations' atom order).
        centre_frac: defect site (fractional) for the distances.
        bulk: bulk structure (for the halide-halide distance that defines a pair).
    """
    if len(defect_pops.population) != len(defect) or len(bulk_pops.population) != len(bulk):
        raise ValueError(f"{defect_pops.method} populations do not match the structures' atoms")
    dq = _charge_changes(defect_pops, bulk_pops, to_bulk)
    spin = None if defect_pops.spin is None else np.asarray(defect_pops.spin, dtype=float)
    centre = np.asarray(centre_frac, dtype=float).reshape(1, 3)
    dist = defect.lattice.get_all_distances(centre, defect.frac_coords)[0]
    elements = [site.specie.symbol for site in defect]
    has_moment = spin is not None and float(np.abs(spin).sum()) >= SPIN_PRESENT
    if spin is not None and has_moment:
        verdict, label, sites, fraction = _spin_verdict(spin, dq, defect, bulk, elements)
    else:
        verdict, label, sites, fraction = _charge_verdict(dq, elements)
    keep = {int(i) for i in np.where(dist <= LIST_RADIUS)[0]} | set(sites)
    return Localisation(
        method=defect_pops.method,
        basis="spin" if has_moment else "charge",
        verdict=verdict,
        label=label,
        sites=sites,
        fraction=fraction,
        total_spin=None if spin is None else float(spin.sum()),
        total_abs_spin=None if spin is None else float(np.abs(spin).sum()),
        n_effective=_n_effective(spin if has_moment and spin is not None else dq),
        atoms=[
            AtomChange(
                i,
                elements[i],
                float(dist[i]),
                None if np.isnan(dq[i]) else float(dq[i]),
                None if spin is None else float(spin[i]),
            )
            for i in sorted(keep, key=lambda k: float(dist[k]))
        ],
    )


#: What a verdict function gives: verdict, label, the sites it names, their share.
_Verdict = tuple[str | None, str, list[int], float | None]


def _charge_changes(
    defect_pops: AtomicPopulations, bulk_pops: AtomicPopulations, to_bulk: dict[int, int]
) -> np.ndarray:
    """Charge of each defect-cell atom minus that of its bulk atom (e; NaN where there is
    no bulk atom of the same element). From net charges where the engine gives them, else
    minus the population change (the valence of an element is the same in both cells)."""
    out = np.full(len(defect_pops.population), np.nan)
    for j, i in to_bulk.items():
        if defect_pops.elements[j] != bulk_pops.elements[i]:
            continue
        if defect_pops.net_charge is not None and bulk_pops.net_charge is not None:
            out[j] = defect_pops.net_charge[j] - bulk_pops.net_charge[i]
        else:
            out[j] = bulk_pops.population[i] - defect_pops.population[j]
    return out


def _n_effective(values: np.ndarray) -> float | None:
    values = np.abs(values[~np.isnan(values)])
    square = float((values**2).sum())
    return float(values.sum() ** 2 / square) if square > 0 else None


def _spin_verdict(
    spin: np.ndarray, dq: np.ndarray, defect: Structure, bulk: Structure, elements: list[str]
) -> _Verdict:
    total_abs = float(np.abs(spin).sum())
    order = np.argsort(-np.abs(spin))
    top = int(order[0])
    f1 = float(abs(spin[top]) / total_abs)
    carrier = _carrier(dq, [top])
    if f1 >= ONE_ATOM:
        label = f"{carrier} on one {elements[top]}{_oxidation(elements[top], carrier)}"
        return "localised", label, [top], f1
    if len(order) > 1 and _halide_pair(defect, bulk, top, int(order[1])):
        second = int(order[1])
        f2 = float((abs(spin[top]) + abs(spin[second])) / total_abs)
        each = float(min(abs(spin[top]), abs(spin[second])) / total_abs)
        if f2 >= PAIR and each >= PAIR_EACH:
            carrier = _carrier(dq, [top, second])
            el = elements[top]
            dimer = f" ({el}2^- -like dimer)" if carrier == "hole" else ""
            return "pair", f"{carrier} on a {el}-{el} pair{dimer}", [top, second], f2
    return "spread", f"spread (largest share {f1:.0%} on {elements[top]} {top})", [top], f1


def _charge_verdict(dq: np.ndarray, elements: list[str]) -> _Verdict:
    """Verdict from charge changes alone (no moment): weaker, labelled so."""
    known = np.where(~np.isnan(dq))[0]
    total = float(np.nansum(np.abs(dq)))
    if not len(known) or total == 0.0:
        return None, "no charge change", [], None
    top = int(known[np.argmax(np.abs(dq[known]))])
    share = float(abs(dq[top]) / total)
    if abs(dq[top]) >= CHARGE_MIN and share >= CHARGE_ONE_ATOM:
        sign = "more positive" if dq[top] > 0 else "more negative"
        label = f"{elements[top]} {top} {sign} by {abs(dq[top]):.2f} e (charge only; weaker)"
        return "localised", label, [top], share
    label = (
        f"spread (largest change {dq[top]:+.2f} e on {elements[top]} {top}; charge only, weaker)"
    )
    return "spread", label, [top], share


def _carrier(dq: np.ndarray, sites: list[int]) -> str:
    """'hole' when the sites lost electrons against bulk, 'electron' when they gained."""
    change = float(np.nansum(dq[sites]))
    if abs(change) < 0.02:
        return "carrier"
    return "hole" if change > 0 else "electron"


def _oxidation(element: str, carrier: str) -> str:
    """Formal picture of one carrier on one ion of the host's usual oxidation state."""
    if element in B_METALS:
        return {"hole": f" ({element}3+-like)", "electron": f" ({element}+-like)"}.get(carrier, "")
    if element in HALIDES and carrier == "hole":
        return f" ({element}0-like)"
    return ""


def _halide_pair(defect: Structure, bulk: Structure, a: int, b: int) -> bool:
    """Two atoms of the same halide, adjacent: closer than 1.1 x the bulk's shortest X-X."""
    el = defect[a].specie.symbol
    if el not in HALIDES or defect[b].specie.symbol != el:
        return False
    x_sites = [i for i, s in enumerate(bulk) if s.specie.symbol == el]
    if len(x_sites) < 2:
        return False
    dmat = np.asarray(
        bulk.lattice.get_all_distances(bulk.frac_coords[x_sites], bulk.frac_coords[x_sites])
    )
    np.fill_diagonal(dmat, np.inf)
    return float(defect.get_distance(a, b)) <= PAIR_DISTANCE_FACTOR * float(dmat.min())
