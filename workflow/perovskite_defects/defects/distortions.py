"""Trial structures of a defect for a ground-state search (the ShakeNBreak method).

The method (Mosquera-Lois, Kavanagh, Walsh, Scanlon, npj Comput. Mater. 9, 25 (2023);
J. Open Source Softw. 7, 4817 (2022)): in charge state q, the N nearest neighbours of the
defect have their distances to the defect scaled by (1 + d) for bond distortions d from
-0.6 to +0.6 in steps of 0.1; then the other atoms are rattled (Gaussian displacements,
moves that bring two atoms closer than d_min refused). Each trial is relaxed cheaply and
the lowest relaxed fully. N follows from the valence-electron change of the neutral
defect against the host and the charge (:func:`distorted_neighbour_count`).

Why our own code and not ShakeNBreak: ShakeNBreak 3.4.4 depends on doped and with it
~340 MB of packages (mp-api, pyarrow, deltalake ...) that this project does not install;
what is needed here is a few hundred lines of geometry. The definitions follow ShakeNBreak
3.4.4 exactly where they fix a result, and tests/test_distortions.py checks the distorted
coordinates (to 1e-6 Å) and neighbour counts against a recorded ShakeNBreak run:

* neighbours: every atom other than the defect, ordered by (periodic distance to the
  defect rounded to 0.01 Å the way numpy rounds, site index); the first N are
  distorted. ShakeNBreak 3.4.4 documents a re-ordering that prefers neighbours close to
  each other (cis over trans), but its trigger compares a count that is never below N
  with N - 1, so it never acts; we follow what the code does.
* a vacancy is distorted about its former position; other defects about their atom.
  Each neighbour moves along the minimum-image line from the defect, which stays fixed.
  Distances are computed with ASE's minimum-image routine, as ShakeNBreak does: in ideal
  cells many sit on a 0.01 Å rounding boundary (3.145 Å in CsPbI3 with a = 6.29 Å),
  where the last bit of the arithmetic decides which of two equidistant atoms comes first.
* N from n = q - q0 (q0 the nominal charge of :mod:`.names`, i.e. ShakeNBreak's
  "missing electrons" with the opposite sign): N = |n| for |n| <= 4, else 8 - |n|.
* rattle stdev: 10 % of the shortest interatomic distance of the bulk (0.25 Å if that
  gives less than 0.02 or more than 0.4 Å); d_min: 80 % of the shortest distance among
  the rattled atoms (2.25 Å if that is below 1 Å); the defect and its distorted
  neighbours are not rattled; trials with two atoms closer than 1 Å are left out;
  the seed of a trial is 100 x (1 + d) (ShakeNBreak's documented rule).

Not implemented: ShakeNBreak's extra "Dimer" trial of vacancies (two neighbours set to a
dimer bond length). The rattle differs in detail: ShakeNBreak (through hiphive) accepts a
move that comes closer than d_min with an error-function probability of width 0.1 Å; here
such a move is always refused, so no pair ends closer than d_min (random streams differ
as well, so rattled coordinates are compared by their statistics, not atom by atom).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from ase.geometry import find_mic
from pymatgen.core import Structure

from perovskite_defects.defects.names import OXIDATION, parse_name

#: ShakeNBreak's default bond distortions: -0.6 .. +0.6 in steps of 0.1.
FULL_DISTORTIONS = tuple(round(0.1 * k, 1) for k in range(-6, 7))
#: The cheaper screen of config ``ground_state_search: screen``.
SCREEN_DISTORTIONS = (-0.4, -0.2, 0.0, 0.2, 0.4)
#: Trials with two atoms closer than this (Å) are left out (explosive forces).
MIN_TRIAL_DISTANCE = 1.0


def distortion_label(distortion: float) -> str:
    """ShakeNBreak's label of a bond distortion: -0.3 -> "Bond_Distortion_-30.0%"."""
    if not -1.0 < distortion < 1.0:
        raise ValueError(f"distortion {distortion} is outside (-1, 1)")
    return f"Bond_Distortion_{round(distortion * 100, 1) + 0:.1f}%"


def neighbour_count_rule(electron_change: int) -> int:
    """Neighbours to distort for a change of ``electron_change`` valence electrons
    (an octet rule: |n| up to 4, else 8 - |n|)."""
    n = abs(int(electron_change))
    return abs(8 - n) if n > 4 else n


def nominal_charge_of(name: str, oxidation: Mapping[str, int] = OXIDATION) -> int:
    """Nominal charge q0 of a single (not complex) defect name: oxidation state of what is
    added minus that of what is removed (an empty interstitial site counts 0)."""
    if "+" in name:
        raise ValueError(f"defect {name!r}: complexes have no single distorted site")
    _, species, site = parse_name(name)
    for element in (species, site):
        if element is not None and element not in oxidation:
            raise ValueError(f"defect {name!r}: no oxidation state for {element}")
    added = oxidation[species] if species else 0
    removed = oxidation[site] if site else 0
    return added - removed


def distorted_neighbour_count(
    name: str, charge: int, oxidation: Mapping[str, int] = OXIDATION
) -> int:
    """N of the method for defect ``name`` in charge state ``charge``: from n = q - q0
    (electrons missing against the nominal defect) by :func:`neighbour_count_rule`."""
    return neighbour_count_rule(int(charge) - nominal_charge_of(name, oxidation))


@dataclass(frozen=True)
class DefectCentre:
    """Where a defect sits: its atom (``site_index``) or, for a vacancy, the former
    fractional position (``vacancy_frac``). Exactly one is given."""

    site_index: int | None = None
    vacancy_frac: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        if (self.site_index is None) == (self.vacancy_frac is None):
            raise ValueError("defect site: give either site_index or vacancy_frac, not both")

    def frac(self, structure: Structure) -> np.ndarray:
        """Fractional coordinates of the centre in ``structure``."""
        if self.site_index is not None:
            if not 0 <= self.site_index < len(structure):
                raise ValueError(
                    f"defect site index {self.site_index} is not a site of the "
                    f"{len(structure)}-atom structure"
                )
            return np.asarray(structure[self.site_index].frac_coords, dtype=float)
        frac = np.asarray(self.vacancy_frac, dtype=float)
        if frac.shape != (3,) or not np.all(np.isfinite(frac)):
            raise ValueError(f"vacancy_frac {self.vacancy_frac} is not three finite numbers")
        return frac


@dataclass
class BondDistortion:
    """A bond-distorted structure and what was moved.

    Attributes:
        structure: the distorted structure (sites in the input order).
        distortion: d, the relative change of the neighbour distances.
        neighbours: indices of the distorted neighbours, nearest first.
        distances_before: their distances to the defect (Å) before the distortion.
        distances_after: the same after it (Å).
    """

    structure: Structure
    distortion: float
    neighbours: list[int]
    distances_before: list[float]
    distances_after: list[float]


def nearest_neighbours(
    structure: Structure, centre: DefectCentre, count: int
) -> tuple[list[int], np.ndarray]:
    """The ``count`` atoms nearest the defect (ties by site index, distances to 0.01 Å)
    and the minimum-image vectors (Å, Cartesian) from the defect to every atom."""
    frac0 = centre.frac(structure)
    cart = np.asarray(structure.cart_coords, dtype=float)
    # Cartesian differences reduced by ASE's find_mic, as ShakeNBreak computes them: in
    # ideal cells distances such as 3.145 Å sit on the 0.01 Å rounding boundary, where
    # the last bit of the arithmetic decides the order.
    matrix = structure.lattice.matrix
    origin = cart[centre.site_index] if centre.site_index is not None else np.dot(frac0, matrix)
    vectors, dists = find_mic(cart - origin, matrix, pbc=True)
    candidates = [i for i in range(len(structure)) if i != centre.site_index]
    if count > len(candidates):
        raise ValueError(f"{count} neighbours requested but the structure has {len(candidates)}")
    # numpy's rounding (x 100, round half to even), as ShakeNBreak's round() of a numpy
    # float does: 3.145 -> 3.14, where Python's round(3.145, 2) on a float gives 3.15
    rounded = np.round(dists, 2)
    order = sorted(candidates, key=lambda i: (float(rounded[i]), i))
    return order[:count], vectors


def bond_distort(
    structure: Structure, centre: DefectCentre, n_neighbours: int, distortion: float
) -> BondDistortion:
    """Scale the distances of the ``n_neighbours`` nearest atoms to the defect by
    (1 + ``distortion``); the defect and every other atom stay where they are."""
    if not -1.0 < distortion < 1.0:
        raise ValueError(f"distortion {distortion} is outside (-1, 1)")
    if n_neighbours < 0:
        raise ValueError(f"n_neighbours {n_neighbours} is negative")
    neighbours, vectors = nearest_neighbours(structure, centre, n_neighbours)
    cart = np.array(structure.cart_coords, dtype=float)
    for i in neighbours:
        # along the defect-neighbour line, keeping the neighbour's own periodic image
        cart[i] += distortion * vectors[i]
    out = Structure(
        structure.lattice,
        structure.species,
        cart,
        coords_are_cartesian=True,
        site_properties=structure.site_properties,
    )
    before = [float(np.linalg.norm(vectors[i])) for i in neighbours]
    return BondDistortion(
        structure=out,
        distortion=float(distortion),
        neighbours=list(neighbours),
        distances_before=before,
        distances_after=[d * (1.0 + distortion) for d in before],
    )


def _shortest_distance(structure: Structure, atoms: Sequence[int] | None, floor: float) -> float:
    """Shortest interatomic distance above ``floor`` (Å) among ``atoms`` (all if None)."""
    matrix = structure.distance_matrix
    if atoms is not None:
        matrix = matrix[np.ix_(list(atoms), list(atoms))]
    above = matrix[matrix > floor]
    if above.size == 0:
        raise ValueError("no interatomic distance to set the rattle from")
    return float(above.min())


def default_stdev(bulk: Structure) -> float:
    """Rattle stdev (Å): 10 % of the bulk's shortest interatomic distance; 0.25 Å where
    that is outside [0.02, 0.4] Å (a bond-length detection gone wrong)."""
    stdev = 0.1 * _shortest_distance(bulk, None, 0.5)
    return stdev if 0.02 <= stdev <= 0.4 else 0.25


def default_d_min(structure: Structure, active: Sequence[int] | None = None) -> float:
    """d_min (Å): 80 % of the shortest distance among the ``active`` (rattled) atoms;
    2.25 Å where that is below 1 Å."""
    d_min = 0.8 * _shortest_distance(structure, active, 0.8)
    return d_min if d_min >= 1.0 else 2.25


@dataclass
class Rattled:
    """A rattled structure with the parameters that made it (Å)."""

    structure: Structure
    stdev: float
    d_min: float
    seed: int
    displacements: np.ndarray = field(repr=False)


def rattle(
    structure: Structure,
    stdev: float,
    d_min: float,
    seed: int,
    active: Sequence[int] | None = None,
    max_attempts: int = 5000,
    max_displacement: float = 2.0,
) -> Rattled:
    """Displace each ``active`` atom (all if None) once by a Gaussian draw of ``stdev`` per
    Cartesian component, redrawing while the atom would come closer than ``d_min`` to any
    other atom (periodic) or move more than ``max_displacement``. Atoms are taken in index
    order, each against the already rattled ones. If an atom finds no place in
    ``max_attempts`` draws, d_min is lowered in steps of 10 % (the value used is returned)."""
    if stdev <= 0 or d_min <= 0:
        raise ValueError(f"rattle: stdev {stdev} and d_min {d_min} must be positive")
    atoms = list(range(len(structure))) if active is None else [int(i) for i in active]
    for step in range(10):
        used = d_min * (1.0 - step / 10)
        result = _rattle_once(structure, stdev, used, seed, atoms, max_attempts, max_displacement)
        if result is not None:
            return result
    raise RuntimeError(f"rattle: no placement found down to d_min {d_min * 0.1:.2f} Å")


def _rattle_once(
    structure: Structure,
    stdev: float,
    d_min: float,
    seed: int,
    atoms: Sequence[int],
    max_attempts: int,
    max_displacement: float,
) -> Rattled | None:
    rng = np.random.default_rng(seed)
    lattice = structure.lattice
    cart = np.array(structure.cart_coords, dtype=float)
    start = cart.copy()
    others = np.ones(len(structure), dtype=bool)
    for i in atoms:
        others[:] = True
        others[i] = False
        for _ in range(max_attempts):
            trial = start[i] + rng.normal(0.0, stdev, 3)
            if np.linalg.norm(trial - start[i]) > max_displacement:
                continue
            frac = lattice.get_fractional_coords(trial)
            dists = lattice.get_all_distances([frac], lattice.get_fractional_coords(cart[others]))
            if dists.min() >= d_min:
                cart[i] = trial
                break
        else:
            return None
    out = Structure(lattice, structure.species, cart, coords_are_cartesian=True)
    return Rattled(out, float(stdev), float(d_min), int(seed), cart - start)


@dataclass
class Trial:
    """One trial structure of the search, with what was done to it."""

    label: str
    distortion: float | None
    structure: Structure
    neighbours: list[int]
    distances_before: list[float]
    distances_after: list[float]
    stdev: float
    d_min: float
    seed: int

    def metadata(self) -> dict[str, object]:
        """JSON-ready record (no structure)."""
        return {
            "label": self.label,
            "distortion": self.distortion,
            "distorted_neighbours": self.neighbours,
            "distances_before": self.distances_before,
            "distances_after": self.distances_after,
            "rattle_stdev": self.stdev,
            "rattle_d_min": self.d_min,
            "rattle_seed": self.seed,
        }


@dataclass
class TrialSet:
    """The trials of one defect in one charge state; ``omitted`` maps the label of a trial
    left out to its shortest interatomic distance (Å)."""

    n_neighbours: int
    trials: list[Trial]
    omitted: dict[str, float]


def trial_structures(
    structure: Structure,
    centre: DefectCentre,
    n_neighbours: int,
    distortions: Sequence[float] = FULL_DISTORTIONS,
    stdev: float | None = None,
    d_min: float | None = None,
    bulk: Structure | None = None,
) -> TrialSet:
    """Bond-distorted and rattled trials: one per distortion ("Bond_Distortion_-30.0%"),
    or, with no neighbour to distort, one "Rattled" trial. ``stdev`` defaults from
    ``bulk`` (else from ``structure``), d_min from each distorted structure. Seeds follow
    ShakeNBreak's rule (100 x (1 + d), 100 for "Rattled"), so a trial is reproducible."""
    labels = [distortion_label(d) for d in distortions]
    if len(set(labels)) != len(labels):
        raise ValueError(f"distortions {list(distortions)} repeat a value")
    stdev = default_stdev(bulk if bulk is not None else structure) if stdev is None else stdev
    plan: list[tuple[str, float | None]] = list(zip(labels, distortions, strict=True))
    if n_neighbours == 0:
        plan = [("Rattled", None)]
    trials, omitted = [], {}
    for label, d in plan:
        distorted = bond_distort(structure, centre, n_neighbours, d or 0.0)
        fixed = set(distorted.neighbours)
        if centre.site_index is not None:
            fixed.add(centre.site_index)
        active = [i for i in range(len(structure)) if i not in fixed]
        seed = int(round(100 * (1.0 + (d or 0.0))))
        used_d_min = default_d_min(distorted.structure, active) if d_min is None else d_min
        shaken = rattle(distorted.structure, stdev, used_d_min, seed, active)
        shortest = _shortest_distance(shaken.structure, None, 0.0)
        if shortest < MIN_TRIAL_DISTANCE:
            omitted[label] = shortest
            continue
        trials.append(
            Trial(
                label=label,
                distortion=d,
                structure=shaken.structure,
                neighbours=distorted.neighbours,
                distances_before=distorted.distances_before,
                distances_after=distorted.distances_after,
                stdev=shaken.stdev,
                d_min=shaken.d_min,
                seed=seed,
            )
        )
    return TrialSet(n_neighbours=n_neighbours, trials=trials, omitted=omitted)
