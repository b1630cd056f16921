"""Host structures: the cubic ABX3 prototype, user structures, supercells, and the hosts of
any composition ASn(x)Pb(1-x)X3 (SQS disorder, molecular A cations)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Lattice, Structure

from perovskite_defects.hosts import molecules as mol
from perovskite_defects.hosts import sqs

# Pm-3m ABX3: A at the cube corner, B at the body centre, X at the face centres.
PROTOTYPE_FRAC_COORDS = {
    "A": [(0.0, 0.0, 0.0)],
    "B": [(0.5, 0.5, 0.5)],
    "X": [(0.5, 0.5, 0.0), (0.5, 0.0, 0.5), (0.0, 0.5, 0.5)],
}


def cubic_prototype(a_site: str, b_site: str, x_site: str, lattice_constant: float) -> Structure:
    """The 5-atom cubic perovskite cell with lattice constant ``lattice_constant`` (Å)."""
    if not 3.0 < lattice_constant < 10.0:
        raise ValueError(f"lattice constant {lattice_constant} Å is outside (3, 10) Å")
    species, coords = [], []
    for role, element in (("A", a_site), ("B", b_site), ("X", x_site)):
        for frac in PROTOTYPE_FRAC_COORDS[role]:
            species.append(element)
            coords.append(frac)
    return Structure(Lattice.cubic(lattice_constant), species, coords)


def supercell(unit_cell: Structure, multiples: Sequence[int]) -> Structure:
    """Diagonal supercell; sites keep the unit cell's species order."""
    if len(multiples) != 3 or any(int(m) < 1 for m in multiples):
        raise ValueError(f"supercell multiples must be three positive integers, got {multiples}")
    return unit_cell.make_supercell(np.diag([int(m) for m in multiples]), in_place=False)


def min_image_distance(structure: Structure) -> float:
    """Shortest distance between a point and its own periodic images (Å)."""
    lattice = structure.lattice
    best = np.inf
    for n in np.ndindex(3, 3, 3):
        shift = np.array(n) - 1
        if not shift.any():
            continue
        best = min(best, float(np.linalg.norm(shift @ lattice.matrix)))
    return best


# --------------------------------------------------------------------------- composition hosts

# Placeholder species of the ordered parent: the A sublattice is Cs during the SQS search
# (the molecules replace it afterwards), B is Pb, X the first halide.
PARENT_A = "Cs"


@dataclass
class HostStructure:
    """A host supercell for one composition, ready for defects.

    Attributes:
        name: host name (e.g. CsSn0.5Pb0.5I3).
        structure: the supercell (pymatgen), at the starting lattice constant.
        a_sites: for every A site, the indices of its atoms (one for Cs, a whole molecule
            for FA/MA) and its fractional centre; the order of ``structure`` is A atoms
            first (site by site), then B, then X.
        metadata: composition (requested and achieved), lattice constant and its source,
            supercell multiples and image distance, SQS seed and quality, molecule
            orientations; written with the structure as JSON.
    """

    name: str
    structure: Structure
    a_sites: list[dict[str, Any]]
    metadata: dict[str, Any]

    def sublattice(self, role: str) -> list[int]:
        """Indices of the atoms on sublattice "B" or "X"."""
        species = ("Pb", "Sn") if role == "B" else ("I", "Br", "Cl")
        return [i for i, s in enumerate(self.structure) if s.specie.symbol in species]

    def to_files(self, directory: str | Path, stem: str = "host") -> None:
        """POSCAR, CIF and JSON (structure + metadata) of the host."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.structure.to(filename=str(directory / f"{stem}.cif"))
        self.structure.to(filename=str(directory / f"{stem}.vasp"), fmt="poscar")
        payload = {
            "name": self.name,
            "a_sites": self.a_sites,
            "metadata": self.metadata,
            "structure": self.structure.as_dict(),
        }
        (directory / f"{stem}.json").write_text(json.dumps(payload, indent=1, default=_jsonable))

    @classmethod
    def from_json(cls, path: str | Path) -> HostStructure:
        data = json.loads(Path(path).read_text())
        return cls(
            data["name"], Structure.from_dict(data["structure"]), data["a_sites"], data["metadata"]
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f"{type(value)} is not JSON serialisable")


def load_user_structure(path: str | Path, key: str) -> Structure:
    """A user's parent structure (CIF or POSCAR) with A, B and X sublattices.

    The file gives the ordered parent of any composition: one A species (Cs, or a
    placeholder for the molecular cation, which is replaced by the molecule), B atoms of
    Pb or Sn (all are treated as the B sublattice) and X atoms of I, Br or Cl, in the
    ABX3 ratio. Raises ValueError naming the key and the file when this is not so.
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"config key '{key}': structure file {p} does not exist")
    try:
        structure = Structure.from_file(p)
    except Exception as err:  # pymatgen raises many kinds for unreadable files
        raise ValueError(f"config key '{key}': {p} is not a readable CIF/POSCAR ({err})") from err
    symbols = [s.specie.symbol for s in structure]
    n_b = sum(s in ("Pb", "Sn") for s in symbols)
    n_x = sum(s in ("I", "Br", "Cl") for s in symbols)
    a_species = sorted({s for s in symbols if s not in ("Pb", "Sn", "I", "Br", "Cl")})
    n_a = len(symbols) - n_b - n_x
    if n_b == 0 or n_x != 3 * n_b or n_a != n_b or len(a_species) != 1:
        raise ValueError(
            f"config key '{key}': {p} lacks the expected ABX3 sublattices (found {n_a} A "
            f"atoms of {a_species}, {n_b} B (Pb/Sn), {n_x} X (I/Br/Cl); need one A species "
            "and A:B:X = 1:1:3, molecular cations as one placeholder atom)"
        )
    return structure


def parent_cell(structure: Structure, halide: str) -> Structure:
    """The ordered parent of a user structure: A -> Cs, B -> Pb, X -> ``halide``."""
    parent = structure.copy()
    for i, site in enumerate(parent):
        symbol = site.specie.symbol
        if symbol in ("Pb", "Sn"):
            parent.replace(i, "Pb")
        elif symbol in ("I", "Br", "Cl"):
            parent.replace(i, halide)
        else:
            parent.replace(i, PARENT_A)
    return parent


def build_host(
    comp: Any,
    lattice_constant: float,
    multiples: Sequence[int],
    counts: dict[str, int],
    *,
    user_structure: Structure | None = None,
    seed: int = 0,
    orientation: str = "random",
    sqs_cutoffs: Sequence[float] = (1.75, 1.45),
    sqs_steps: int | None = None,
) -> HostStructure:
    """Host supercell of composition ``comp`` (a composition.Composition).

    Ordered parent (cubic prototype at ``lattice_constant``, or the user's structure scaled
    to the same volume per formula unit) -> supercell -> SQS decoration of the B and X
    sublattices with the exact ``counts`` (icet; only when a sublattice is mixed) ->
    molecules on the A sites (FA/MA), oriented by ``orientation`` with ``seed``.
    """

    halide = comp.halides[0][0]
    if user_structure is None:
        prim = cubic_prototype(PARENT_A, "Pb", halide, lattice_constant)
    else:
        prim = parent_cell(user_structure, halide)
        n_fu = len(prim) // 5
        prim.scale_lattice(n_fu * lattice_constant**3)
    parent = supercell(prim, multiples)
    parent = parent.get_sorted_structure(key=lambda s: _ROLE_ORDER[_role(s.specie.symbol)])
    metadata: dict[str, Any] = {
        "composition_requested": comp.as_dict(),
        "lattice_constant": lattice_constant,
        "supercell": list(multiples),
        "min_image_distance": min_image_distance(parent),
        "prototype": "user structure" if user_structure is not None else "cubic Pm-3m",
        "seed": seed,
        # The ordered parent cell (A = Cs, B = Pb) the supercell repeats: interstitial
        # candidates come from its symmetry (defects.site_classes._interstitial_types).
        "parent_cell": prim.as_dict(),
    }
    allowed: dict[str, list[str]] = {}
    if comp.x > 0:
        allowed["Pb"] = ["Pb", "Sn"] if comp.x < 1 else ["Sn"]
    if comp.mixed_halide:
        allowed[halide] = list(comp.x_species)
    if comp.is_alloy:
        cutoffs = tuple(c * lattice_constant for c in sqs_cutoffs)
        sqs_counts = {k: v for k, v in counts.items() if k not in ("Cs", "FA", "MA")}
        decorated, quality = sqs.decorate(
            prim, parent, allowed, sqs_counts, seed, cutoffs, n_steps=sqs_steps
        )
        metadata["sqs"] = {"method": "icet generate_sqs_from_supercells", **quality.as_dict()}
    else:
        decorated = parent.copy()
        for i, site in enumerate(decorated):
            symbol = site.specie.symbol
            if symbol == "Pb" and comp.x == 1:
                decorated.replace(i, "Sn")
        metadata["sqs"] = None
    a_indices = [i for i, s in enumerate(decorated) if s.specie.symbol == PARENT_A]
    a_sites: list[dict[str, Any]] = []
    if comp.a in mol.MOLECULES:
        molecule = mol.molecule(comp.a)
        rotations = mol.orientations(len(a_indices), orientation, seed)
        others = decorated.copy()
        others.remove_sites(a_indices)
        species: list[str] = []
        coords: list[np.ndarray] = []
        for k, idx in enumerate(a_indices):
            centre = decorated[idx].coords
            start = len(species)
            species += list(molecule.species)
            coords += list(mol.placed(molecule, centre, rotations[k]))
            a_sites.append(
                {
                    "atoms": list(range(start, len(species))),
                    "frac_centre": decorated[idx].frac_coords.tolist(),
                    "rotation": rotations[k].tolist(),
                }
            )
        final = Structure(
            decorated.lattice,
            species + [s.specie.symbol for s in others],
            coords + [s.coords for s in others],
            coords_are_cartesian=True,
        )
        metadata["molecule"] = {
            "name": comp.a,
            "orientation_rule": orientation,
            "bonds_angstrom": mol.MA_BONDS if comp.a == "MA" else mol.FA_BONDS,
        }
    else:
        final = decorated.copy()
        for idx in a_indices:
            final.replace(idx, comp.a)
            a_sites.append({"atoms": [idx], "frac_centre": final[idx].frac_coords.tolist()})
    achieved = final.composition.as_dict()
    n_b = sum(achieved.get(b, 0) for b in ("Pb", "Sn"))
    n_x = sum(achieved.get(h, 0) for h in ("I", "Br", "Cl"))
    metadata["composition_achieved"] = {
        "x": achieved.get("Sn", 0) / n_b,
        "X": {h: achieved.get(h, 0) / n_x for h in comp.x_species},
        "counts": {k: int(v) for k, v in achieved.items()},
    }
    return HostStructure(comp.name, final, a_sites, metadata)


_ROLE_ORDER = {"A": 0, "B": 1, "X": 2}


def _role(symbol: str) -> str:
    if symbol in ("Pb", "Sn"):
        return "B"
    if symbol in ("I", "Br", "Cl"):
        return "X"
    return "A"
