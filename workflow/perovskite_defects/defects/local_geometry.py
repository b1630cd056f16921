"""Local geometry of a defect cell against its bulk cell: who moved where, in Å.

What it measures, all with the host value of the same atoms beside it:

* the first neighbour shell of the defect (per element: distances to the defect atom, or
  to the empty site of a vacancy);
* for a vacancy, the distances across it between opposite first-shell atoms (the two B
  atoms that bordered a removed halide: B-B across V_X);
* the B-X bonds (Sn-I, Pb-I, ...) of the B atoms in the first B shell around the defect,
  against the average of all B-X bonds of that element in the bulk;
* the displacement of the defect's own atom from its ideal site (off-centring) and the
  largest displacement of any other atom.

Atoms are paired with the bulk by position (:func:`corrections.sites.matched_sites`),
never by index. Every defect-cell vector is written as the bulk vector (with its periodic
image, from pymatgen's neighbour search) plus the displacements of its two ends from
their bulk sites, so distances stay right when a relaxed atom crosses the cell boundary
and in cells shorter than twice a bond along some axis (an atom and its image are
different neighbours). Written here rather than taken from pymatgen's local-environment
tools, which work on one structure and cannot pair a defect cell with its host.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from perovskite_defects.corrections.sites import matched_sites
from perovskite_defects.hosts.composition import B_METALS, HALIDES

if TYPE_CHECKING:
    from pymatgen.core import Structure

#: Atoms within (1 + SHELL_TOL) x the nearest distance form the first shell. In a cubic
#: perovskite the shells around an X site are 2 B at a/2 then A and X at a/sqrt(2) (41 %
#: further); around an A site 12 X at a/sqrt(2) then 8 B at a*sqrt(3)/2 (22 % further).
SHELL_TOL = 0.2
#: Two first-shell atoms are "across" the defect when their angle at it is at least this.
ACROSS_ANGLE_DEG = 135.0
#: B-X bonds: X within (1 + BOND_TOL) x the shortest B-X distance of the bulk (next X
#: shell of a B atom is at ~1.7 x the bond).
BOND_TOL = 0.25
#: Atoms closer than this to their bulk site (Å) count as not moved.
MOVED = 1e-3
#: How far to look for neighbours (Å).
SEARCH_RADIUS = 8.0


@dataclass
class ShellDistances:
    """First-shell atoms of one element: distances to the defect (Å), defect and host."""

    element: str
    count: int
    defect_mean: float
    host_mean: float
    defect_min: float
    defect_max: float


@dataclass
class PairDistance:
    """Distance (Å) between two atoms on opposite sides of a vacancy, defect and host."""

    label: str
    defect: float
    host: float


@dataclass
class BondSummary:
    """B-X bonds of the B atoms of one element in the first B shell around the defect."""

    pair: str
    n_b_atoms: int
    n_bonds: int
    defect_mean: float
    host_mean: float
    host_average: float
    defect_min: float
    defect_max: float


@dataclass
class LocalGeometry:
    """Local geometry of one defect cell (Å); see the module docstring.

    Attributes:
        kind: "vacancy", "substitution", "interstitial" (as found by position), or
            "complex", or "none" when no site changed (then only ``max_displacement``
            is given).
        species: the defect's own atom (Na of Na_i) or the removed one (I of V_I).
        centre_frac: ideal defect site (fractional, defect cell).
        defect_index: 0-based index of the defect's own atom in the defect cell, or None.
        displacement: distance of the defect's own atom from its ideal site (None for
            vacancies).
        max_displacement: largest distance of any other atom from its bulk site.
        max_displaced: element and 0-based defect-cell index of that atom.
    """

    kind: str
    species: str | None
    centre_frac: list[float]
    defect_index: int | None
    displacement: float | None
    max_displacement: float
    max_displaced: tuple[str, int] | None
    first_shell: list[ShellDistances] = field(default_factory=list)
    across: list[PairDistance] = field(default_factory=list)
    bonds: list[BondSummary] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Frame:
    """Bulk and defect cells paired site by site, with displacements in Cartesian Å."""

    bulk: Structure
    defect: Structure
    to_bulk: dict[int, int]  # defect index -> bulk index
    to_defect: dict[int, int]  # bulk index -> defect index
    shift: dict[int, np.ndarray]  # bulk index -> displacement of its defect-cell atom

    def moved(self, bulk_index: int, bulk_vector: np.ndarray) -> np.ndarray | None:
        """Vector to ``bulk_index`` in the defect cell given the bulk vector; None when the
        site is empty in the defect cell."""
        if bulk_index not in self.shift:
            return None
        return bulk_vector + self.shift[bulk_index]


def local_geometry(
    bulk: Structure, defect: Structure, ideal_frac: np.ndarray | list[float] | None = None
) -> LocalGeometry:
    """Local geometry of ``defect`` (any atom order, relaxed or not) against ``bulk``.

    Args:
        bulk: the host supercell (relaxed bulk record).
        defect: the defect supercell on the same lattice.
        ideal_frac: ideal site of an interstitial (fractional; the generator's site, i.e.
            ``DefectCell.frac_coords``); vacancies and substitutions use their bulk site.
            Without it an interstitial's own relaxed position is taken as ideal.
    """
    frame = _pair(bulk, defect)
    vacant = [i for i in range(len(bulk)) if i not in frame.to_defect]
    added = [j for j in range(len(defect)) if j not in frame.to_bulk]
    swapped = [j for j, i in frame.to_bulk.items() if bulk[i].species != defect[j].species]
    centre_shift = np.zeros(3)
    defect_index: int | None = None
    if len(vacant) == 1 and not added and not swapped:
        kind, species, centre = (
            "vacancy",
            bulk[vacant[0]].specie.symbol,
            bulk.frac_coords[vacant[0]],
        )
    elif len(swapped) == 1 and not vacant and not added:
        defect_index = swapped[0]
        kind, species = "substitution", defect[defect_index].specie.symbol
        centre = bulk.frac_coords[frame.to_bulk[defect_index]]
    elif len(added) == 1 and not vacant and not swapped:
        defect_index = added[0]
        kind, species = "interstitial", defect[defect_index].specie.symbol
        centre = defect.frac_coords[defect_index] if ideal_frac is None else ideal_frac
    else:  # several changed sites, or none (a cell with only an extra carrier)
        changed = vacant or added or swapped
        kind, species, centre = "complex" if changed else "none", None, np.zeros(3)
    if defect_index is not None:
        frac = np.asarray(defect.frac_coords[defect_index]) - np.asarray(centre)
        centre_shift = defect.lattice.get_cartesian_coords(frac - np.round(frac))
    own = frame.to_bulk.get(defect_index) if defect_index is not None else None
    others = {i: float(np.linalg.norm(v)) for i, v in frame.shift.items() if i != own}
    worst = max(others, key=others.__getitem__) if others else None
    if worst is not None and others[worst] < MOVED:
        worst = None  # nothing moved (unrelaxed cell): no atom to name
    geometry = LocalGeometry(
        kind=kind,
        species=species,
        centre_frac=[float(x) % 1.0 for x in centre],
        defect_index=defect_index,
        displacement=None if defect_index is None else float(np.linalg.norm(centre_shift)),
        max_displacement=others[worst] if worst is not None else 0.0,
        max_displaced=None
        if worst is None
        else (bulk[worst].specie.symbol, frame.to_defect[worst]),
    )
    if kind in ("complex", "none"):
        return geometry
    shell = _first_shell(bulk, np.asarray(centre, dtype=float), exclude=own)
    geometry.first_shell = _shell_distances(frame, shell, centre_shift)
    if kind == "vacancy":
        geometry.across = _across(frame, shell, species or "")
    geometry.bonds = _bonds_near(frame, np.asarray(centre, dtype=float), own)
    return geometry


def _pair(bulk: Structure, defect: Structure) -> _Frame:
    to_bulk = matched_sites(bulk, defect)
    shift: dict[int, np.ndarray] = {}
    for j, i in to_bulk.items():
        frac = np.asarray(defect.frac_coords[j]) - np.asarray(bulk.frac_coords[i])
        shift[i] = defect.lattice.get_cartesian_coords(frac - np.round(frac))
    return _Frame(bulk, defect, to_bulk, {i: j for j, i in to_bulk.items()}, shift)


def _neighbours(
    bulk: Structure, centre_frac: np.ndarray, radius: float
) -> list[tuple[int, np.ndarray]]:
    """(bulk index, Cartesian vector from the centre) of every bulk atom and periodic
    image within ``radius`` of the centre, nearest first."""
    lattice = bulk.lattice
    found = lattice.get_points_in_sphere(
        bulk.frac_coords, lattice.get_cartesian_coords(centre_frac), radius
    )
    out = [
        (int(idx), lattice.get_cartesian_coords(np.asarray(fc) - centre_frac))
        for fc, _dist, idx, _image in found
    ]
    return sorted(out, key=lambda item: float(np.linalg.norm(item[1])))


def _first_shell(
    bulk: Structure, centre: np.ndarray, exclude: int | None
) -> list[tuple[int, np.ndarray]]:
    """Bulk atoms (with images) of the first shell around ``centre``, any element."""
    near = [
        (i, v)
        for i, v in _neighbours(bulk, centre, SEARCH_RADIUS)
        if not (i == exclude and np.linalg.norm(v) < 1e-3) and np.linalg.norm(v) > 1e-3
    ]
    if not near:
        return []
    limit = (1 + SHELL_TOL) * float(np.linalg.norm(near[0][1]))
    return [(i, v) for i, v in near if np.linalg.norm(v) <= limit]


def _shell_distances(
    frame: _Frame, shell: list[tuple[int, np.ndarray]], centre_shift: np.ndarray
) -> list[ShellDistances]:
    by_element: dict[str, tuple[list[float], list[float]]] = {}
    for i, vector in shell:
        moved = frame.moved(i, vector)
        if moved is None:
            continue
        host, now = by_element.setdefault(frame.bulk[i].specie.symbol, ([], []))
        host.append(float(np.linalg.norm(vector)))
        now.append(float(np.linalg.norm(moved - centre_shift)))
    return [
        ShellDistances(el, len(now), float(np.mean(now)), float(np.mean(host)), min(now), max(now))
        for el, (host, now) in by_element.items()
    ]


def _across(frame: _Frame, shell: list[tuple[int, np.ndarray]], species: str) -> list[PairDistance]:
    """Pairs of first-shell atoms on opposite sides of the empty site (angle >= 135 deg)."""
    pairs = []
    cos_max = np.cos(np.radians(ACROSS_ANGLE_DEG))
    for a, (i, u) in enumerate(shell):
        for j, v in shell[a + 1 :]:
            cos = float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)))
            mu, mv = frame.moved(i, u), frame.moved(j, v)
            if cos > cos_max or mu is None or mv is None:
                continue
            label = (
                f"{frame.bulk[i].specie.symbol}-{frame.bulk[j].specie.symbol} across V_{species}"
            )
            pairs.append(
                PairDistance(label, float(np.linalg.norm(mu - mv)), float(np.linalg.norm(u - v)))
            )
    return pairs


def _bonds_near(frame: _Frame, centre: np.ndarray, own: int | None) -> list[BondSummary]:
    """B-X bonds of the first-shell B atoms (per B element) around the defect."""
    bulk = frame.bulk
    b_near = [
        (i, v)
        for i, v in _neighbours(bulk, centre, SEARCH_RADIUS)
        if bulk[i].specie.symbol in B_METALS and i != own and i in frame.to_defect
    ]
    bond_max = _bond_length_limit(bulk)
    if not b_near or bond_max is None:
        return []
    limit = (1 + SHELL_TOL) * float(np.linalg.norm(b_near[0][1]))
    shell: list[tuple[int, np.ndarray]] = []
    for i, v in b_near:  # each atom once (nearest image): its bonds are the same in any image
        if np.linalg.norm(v) <= limit and all(i != k for k, _ in shell):
            shell.append((i, v))
    summaries = []
    for element in sorted({bulk[i].specie.symbol for i, _ in shell}):
        atoms = [(i, v) for i, v in shell if bulk[i].specie.symbol == element]
        host, now = [], []
        for i, to_b in atoms:
            for x, bond in _neighbours(bulk, bulk.frac_coords[i], bond_max):
                moved_x = frame.moved(x, to_b + bond)
                if bulk[x].specie.symbol not in HALIDES or moved_x is None:
                    continue
                host.append(float(np.linalg.norm(bond)))
                now.append(float(np.linalg.norm(moved_x - frame.moved(i, to_b))))  # type: ignore[operator]
        if not now:
            continue
        x_el = sorted({bulk[x].specie.symbol for x in range(len(bulk))} & set(HALIDES))
        summaries.append(
            BondSummary(
                pair=f"{element}-{'/'.join(x_el)}",
                n_b_atoms=len(atoms),
                n_bonds=len(now),
                defect_mean=float(np.mean(now)),
                host_mean=float(np.mean(host)),
                host_average=_host_bond_average(bulk, element, bond_max),
                defect_min=min(now),
                defect_max=max(now),
            )
        )
    return summaries


def _bond_length_limit(bulk: Structure) -> float | None:
    """Longest distance that still counts as a B-X bond; None when the host has no B-X."""
    b_sites = [i for i, s in enumerate(bulk) if s.specie.symbol in B_METALS]
    x_sites = [i for i, s in enumerate(bulk) if s.specie.symbol in HALIDES]
    if not b_sites or not x_sites:
        return None
    dist = bulk.lattice.get_all_distances(bulk.frac_coords[b_sites], bulk.frac_coords[x_sites])
    return (1 + BOND_TOL) * float(np.min(dist))


def _host_bond_average(bulk: Structure, element: str, bond_max: float) -> float:
    """Mean of all B-X bonds of B atoms of ``element`` in the bulk supercell."""
    lengths = [
        float(np.linalg.norm(v))
        for i, site in enumerate(bulk)
        if site.specie.symbol == element
        for x, v in _neighbours(bulk, bulk.frac_coords[i], bond_max)
        if bulk[x].specie.symbol in HALIDES
    ]
    return float(np.mean(lengths))
