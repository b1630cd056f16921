"""Compositions ASn(x)Pb(1-x)X3 of a sweep: parsing, names, Vegard lattice constants, supercells.

Everything here is arithmetic on the config, so that every bad composition (x outside
[0, 1], an unknown A or X, halide fractions not summing to 1, a fraction the supercell
cannot hold) is a one-line :class:`CompositionError` before any job starts.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

A_CATIONS = ("Cs", "FA", "MA")
MOLECULAR_A = ("FA", "MA")
HALIDES = ("I", "Br", "Cl")
B_METALS = ("Pb", "Sn")

# Pseudo-cubic lattice constants (Å) of the end members: starting values for the engine's
# relaxation, and the Vegard end points when relax is false. Experimental cubic (or
# pseudo-cubic) phases, rounded to 0.01 Å:
#   CsPbI3 6.29: cubic phase at 634 K, Trots & Myagkota, J. Phys. Chem. Solids 69, 2520 (2008).
#   CsPbBr3 5.87: cubic phase above 403 K, Stoumpos et al., Cryst. Growth Des. 13, 2722 (2013).
#   CsPbCl3 5.61: cubic phase above 320 K, C. K. Møller, Nature 182, 1436 (1958).
#   CsSnI3 6.22: cubic alpha phase at 500 K, Chung et al., J. Am. Chem. Soc. 134, 8579 (2012).
#   CsSnBr3 5.80: cubic at room temperature, and CsSnCl3 5.56: cubic high-temperature
#       phase, Scaife, Weller & Wiebe, J. Solid State Chem. 9, 308 (1974).
#   MAPbI3 6.33, MAPbBr3 5.90, MAPbCl3 5.68: cubic phases, Poglitsch & Weber,
#       J. Chem. Phys. 87, 6373 (1987).
#   MASnI3 6.23: pseudo-cubic, Stoumpos et al., Inorg. Chem. 52, 9019 (2013).
#   FAPbI3 6.36: cubic alpha phase at 298 K, Weller et al., Chem. Commun. 51, 4180 (2015).
#   FASnI3 6.32: pseudo-cubic, Stoumpos et al., Inorg. Chem. 52, 9019 (2013).
# They are starting points only (relax: true replaces them by the engine's values).
# The remaining end members (MASnBr3, MASnCl3, FAPbBr3, FAPbCl3, FASnBr3, FASnCl3) are
# estimated by additivity: a(A,B,X) = a(Cs,B,X) + [a(A,Pb,X') - a(Cs,Pb,X')] with the A
# increment taken from the nearest documented halide X' (written out in _estimate()).
END_MEMBER_LATTICE: dict[tuple[str, str, str], float] = {
    ("Cs", "Pb", "I"): 6.29,
    ("Cs", "Pb", "Br"): 5.87,
    ("Cs", "Pb", "Cl"): 5.61,
    ("Cs", "Sn", "I"): 6.22,
    ("Cs", "Sn", "Br"): 5.80,
    ("Cs", "Sn", "Cl"): 5.56,
    ("MA", "Pb", "I"): 6.33,
    ("MA", "Pb", "Br"): 5.90,
    ("MA", "Pb", "Cl"): 5.68,
    ("MA", "Sn", "I"): 6.23,
    ("FA", "Pb", "I"): 6.36,
    ("FA", "Sn", "I"): 6.32,
}


class CompositionError(ValueError):
    """A composition of the sweep is invalid; the message is one line naming the key."""


def end_member_lattice(a: str, b: str, x: str) -> tuple[float, str]:
    """Lattice constant (Å) of end member ABX3 and whether it is "literature" or "estimated"."""
    if (a, b, x) in END_MEMBER_LATTICE:
        return END_MEMBER_LATTICE[(a, b, x)], "literature"
    return _estimate(a, b, x), "estimated"


def _estimate(a: str, b: str, x: str) -> float:
    # The A increment is measured on the Pb compounds; for FA only the iodide is
    # documented, so its increment for Br/Cl is the iodide one scaled by a(Cs,Pb,X)/a(Cs,Pb,I).
    if (a, "Pb", x) in END_MEMBER_LATTICE:
        increment = END_MEMBER_LATTICE[(a, "Pb", x)] - END_MEMBER_LATTICE[("Cs", "Pb", x)]
    else:
        increment = (END_MEMBER_LATTICE[(a, "Pb", "I")] - END_MEMBER_LATTICE[("Cs", "Pb", "I")]) * (
            END_MEMBER_LATTICE[("Cs", "Pb", x)] / END_MEMBER_LATTICE[("Cs", "Pb", "I")]
        )
    return round(END_MEMBER_LATTICE[("Cs", b, x)] + increment, 3)


def _fmt(value: float) -> str:
    """Shortest clean decimal for names (0.5 -> "0.5", 1.5 -> "1.5", 2.0 -> "2")."""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return text or "0"


@dataclass(frozen=True)
class Composition:
    """One host composition A Sn(x) Pb(1-x) X3 (X possibly a halide mixture).

    Attributes:
        a: A-site cation: Cs, FA (formamidinium) or MA (methylammonium).
        x: Sn fraction on the B sublattice, 0 (pure Pb) to 1 (pure Sn).
        halides: halide -> fraction on the X sublattice (fractions sum to 1), in config order.
    """

    a: str
    x: float
    halides: tuple[tuple[str, float], ...]

    @property
    def name(self) -> str:
        """Host name used in paths: CsPbI3, CsSnI3, CsSn0.5Pb0.5I3, FAPbI1.5Br1.5."""
        if self.x == 0:
            b = "Pb"
        elif self.x == 1:
            b = "Sn"
        else:
            b = f"Sn{_fmt(self.x)}Pb{_fmt(1 - self.x)}"
        xs = "".join(f"{h}{_fmt(3 * f)}" for h, f in self.halides) if self.mixed_halide else ""
        return f"{self.a}{b}{xs or self.halides[0][0] + '3'}"

    @property
    def b_species(self) -> list[str]:
        """B metals present (Pb first)."""
        return [b for b, f in (("Pb", 1 - self.x), ("Sn", self.x)) if f > 0]

    @property
    def x_species(self) -> list[str]:
        return [h for h, f in self.halides if f > 0]

    @property
    def mixed_halide(self) -> bool:
        return len(self.x_species) > 1

    @property
    def is_alloy(self) -> bool:
        """True when a sublattice is disordered (needs an SQS)."""
        return 0 < self.x < 1 or self.mixed_halide

    @property
    def majority_halide(self) -> str:
        return max(self.halides, key=lambda hf: hf[1])[0]

    def end_members(self) -> list[tuple[str, str, str]]:
        """The (A, B, X) end members spanning this composition."""
        return [(self.a, b, h) for b in self.b_species for h in self.x_species]

    def vegard_weights(self) -> dict[tuple[str, str, str], float]:
        """Weight of each end member in the (multi)linear Vegard interpolation."""
        fb = {"Pb": 1 - self.x, "Sn": self.x}
        fx = dict(self.halides)
        return {(a, b, h): fb[b] * fx[h] for a, b, h in self.end_members()}

    def vegard_lattice(self, end_member_constants: Mapping[tuple[str, str, str], float]) -> float:
        """Vegard's law: the fraction-weighted mean of the end members' lattice constants."""
        return sum(w * end_member_constants[em] for em, w in self.vegard_weights().items())

    def literature_lattice(self) -> float:
        return self.vegard_lattice({em: end_member_lattice(*em)[0] for em in self.end_members()})

    def as_dict(self) -> dict[str, Any]:
        return {"A": self.a, "x": self.x, "X": dict(self.halides), "name": self.name}


def end_member_name(a: str, b: str, x: str) -> str:
    return f"{a}{b}{x}3"


def parse_composition(entry: Mapping[str, Any], key: str) -> Composition:
    """Composition from a config mapping {A, X, x} (or the legacy {A, B, X}).

    ``X`` is a halide name or a mapping halide -> fraction; ``x`` the Sn fraction; a legacy
    single-host config gives ``B: Pb|Sn`` instead (x = 0 or 1).
    """
    a = entry.get("A", "Cs")
    if a not in A_CATIONS:
        raise CompositionError(f"config key '{key}.A': {a!r} is not one of {list(A_CATIONS)}")
    if entry.get("x") is not None:
        x = entry["x"]
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise CompositionError(f"config key '{key}.x': {x!r} is not a number")
        x = float(x)
        if not 0.0 <= x <= 1.0:
            raise CompositionError(f"config key '{key}.x': Sn fraction {x} is outside [0, 1]")
    else:
        b = entry.get("B", "Pb")
        if b not in B_METALS:
            raise CompositionError(f"config key '{key}.B': {b!r} is not one of {list(B_METALS)}")
        x = 1.0 if b == "Sn" else 0.0
    raw_x = entry.get("X", "I")
    if isinstance(raw_x, str):
        fractions = {raw_x: 1.0}
    elif isinstance(raw_x, Mapping) and raw_x:
        fractions = dict(raw_x)
    else:
        raise CompositionError(
            f"config key '{key}.X': {raw_x!r} must be a halide or a mapping halide -> fraction"
        )
    for halide, frac in fractions.items():
        if halide not in HALIDES:
            raise CompositionError(
                f"config key '{key}.X': {halide!r} is not one of {list(HALIDES)}"
            )
        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 <= frac <= 1:
            raise CompositionError(
                f"config key '{key}.X.{halide}': fraction {frac!r} is not a number in [0, 1]"
            )
    total = sum(float(f) for f in fractions.values())
    if abs(total - 1.0) > 1e-6:
        raise CompositionError(
            f"config key '{key}.X': halide fractions {fractions} sum to {total:g}, not 1"
        )
    halides = tuple((h, float(f)) for h, f in fractions.items() if f > 0)
    return Composition(a, round(x, 6), halides)


def expand_sweep(host: Mapping[str, Any], sweep: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The host settings of every composition of the sweep, each with its config key.

    ``sweep.compositions`` lists compositions (each may override any host key);
    ``sweep.grid`` gives lists of A, X and x whose product is taken. Without a sweep the
    ``host`` itself is the only composition.
    """
    entries: list[dict[str, Any]] = []
    if sweep:
        for i, comp in enumerate(sweep.get("compositions") or []):
            merged = {k: v for k, v in host.items() if k not in ("B", "x", "X", "A")}
            merged.update(comp)
            merged["_key"] = f"sweep.compositions.{i}"
            entries.append(merged)
        grid = sweep.get("grid")
        if grid:
            for a, xh, xb in itertools.product(grid["A"], grid["X"], grid["x"]):
                merged = {k: v for k, v in host.items() if k not in ("B", "x", "X", "A")}
                merged.update({"A": a, "X": xh, "x": xb, "_key": "sweep.grid"})
                entries.append(merged)
    if not entries:
        entries.append(dict(host, _key="host"))
    return entries


@dataclass(frozen=True)
class SupercellChoice:
    """Supercell multiples of the cubic cell and the sublattice counts they give."""

    multiples: tuple[int, int, int]
    n_formula_units: int
    min_image_distance: float
    n_atoms: int
    counts: dict[str, int] = field(default_factory=dict)  # species -> number in the supercell
    achieved_x: float = 0.0
    achieved_halides: dict[str, float] = field(default_factory=dict)


ATOMS_PER_A = {"Cs": 1, "FA": 8, "MA": 8}  # CH(NH2)2: C, 2 N, 5 H; CH3NH3: C, N, 6 H


def choose_supercell(
    comp: Composition,
    lattice: Sequence[float],
    setting: Any,
    min_distance: float,
    max_atoms: int,
    tolerance: float,
    key: str,
    formula_units_per_cell: int = 1,
) -> SupercellChoice:
    """Supercell multiples (given, or the smallest diagonal one with every periodic image at
    least ``min_distance`` away) and the exact species counts it can hold.

    ``lattice`` holds the cell lengths a, b, c (Å) of the (pseudo-)cubic or user cell.
    Raises CompositionError when the atom count exceeds ``max_atoms`` or the nearest
    achievable x or halide fraction misses the requested one by more than ``tolerance``.
    """
    if setting in (None, "auto"):
        multiples = tuple(max(1, math.ceil(min_distance / length - 1e-9)) for length in lattice)
    else:
        multiples = tuple(int(m) for m in setting)
    n_fu = multiples[0] * multiples[1] * multiples[2] * formula_units_per_cell
    n_atoms = n_fu * (ATOMS_PER_A[comp.a] + 4)
    dist = min(m * length for m, length in zip(multiples, lattice, strict=True))
    if n_atoms > max_atoms:
        raise CompositionError(
            f"config key '{key}': {comp.name} needs a {'x'.join(map(str, multiples))} supercell "
            f"of {n_atoms} atoms (min image distance {min_distance} Å), above max_atoms "
            f"= {max_atoms}"
        )
    n_sn = round(comp.x * n_fu)
    achieved_x = n_sn / n_fu
    if abs(achieved_x - comp.x) > tolerance + 1e-9:
        raise CompositionError(
            f"config key '{key}': {comp.name}: x = {comp.x:g} cannot be held by the "
            f"{n_fu} B sites of the {'x'.join(map(str, multiples))} supercell (nearest "
            f"{n_sn}/{n_fu} = {achieved_x:.4f}, tolerance {tolerance})"
        )
    counts = {"Pb": n_fu - n_sn, "Sn": n_sn, comp.a: n_fu}
    n_x = 3 * n_fu
    achieved_halides = {}
    remaining = n_x
    for i, (halide, frac) in enumerate(comp.halides):
        n = remaining if i == len(comp.halides) - 1 else round(frac * n_x)
        remaining -= n
        counts[halide] = n
        achieved_halides[halide] = n / n_x
        if abs(n / n_x - frac) > tolerance + 1e-9:
            raise CompositionError(
                f"config key '{key}': {comp.name}: halide fraction {halide} = {frac:g} cannot "
                f"be held by the {n_x} X sites (nearest {n}/{n_x} = {n / n_x:.4f}, "
                f"tolerance {tolerance})"
            )
    counts = {k: v for k, v in counts.items() if v > 0}
    return SupercellChoice(
        multiples,  # type: ignore[arg-type]
        n_fu,
        dist,
        n_atoms,
        counts,
        achieved_x,
        achieved_halides,
    )
