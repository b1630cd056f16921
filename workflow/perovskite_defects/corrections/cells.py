"""The periodic cell as the corrections read it: lattice, fractional coordinates, species.

The corrections need no more of a structure than this and periodic distances, so they
take a pymatgen ``Structure`` or its ``as_dict()`` (what a
:class:`~perovskite_defects.engines.base.CalcRecord` stores) and read it here without
building a ``Structure``: ``perovskite-defects correct`` then never imports pymatgen,
~0.2 s of CPU per call (``bench/bench_cdte.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from perovskite_defects.corrections.sampling import inscribed_sphere_radius, lattice_points

if TYPE_CHECKING:
    from pymatgen.core import Structure

#: Largest number of (vector, image) pairs held at once when searching periodic images.
_CHUNK = 2_000_000


@dataclass(frozen=True, eq=False)  # holds arrays
class Cell:
    """Lattice rows (Å), fractional coordinates (n, 3) and one species key per site.

    Two sites hold the same species when their keys are equal (element, oxidation state
    and occupancy, as in the structure's dictionary).
    """

    lattice: np.ndarray
    frac_coords: np.ndarray
    species: tuple[str, ...]

    @classmethod
    def of(cls, structure: Structure | dict[str, Any] | Cell) -> Cell:
        """The cell of a pymatgen ``Structure``, of its ``as_dict()``, or itself."""
        if isinstance(structure, Cell):
            return structure
        data = structure if isinstance(structure, dict) else structure.as_dict(verbosity=0)
        try:
            sites = data["sites"]
            lattice = np.array(data["lattice"]["matrix"], dtype=float).reshape(3, 3)
            frac = np.array([site["abc"] for site in sites], dtype=float).reshape(-1, 3)
            species = tuple(_species_key(site["species"]) for site in sites)
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"not a structure dictionary (pymatgen as_dict): {err}") from err
        return cls(lattice, frac, species)

    def __len__(self) -> int:
        return len(self.species)

    def distances(self, frac_a: np.ndarray, frac_b: np.ndarray) -> np.ndarray:
        """Minimum-image distances (Å), shape (len(frac_a), len(frac_b)), for any cell shape.

        A wrapped difference vector no longer than half the shortest lattice vector is
        already the shortest of its images; the others are compared with every image
        that could be shorter (lattice vectors up to twice their length).
        """
        a = np.atleast_2d(np.asarray(frac_a, dtype=float))
        b = np.atleast_2d(np.asarray(frac_b, dtype=float))
        diff = b[None, :, :] - a[:, None, :]
        diff -= np.round(diff)
        cart = diff @ self.lattice
        dist = np.sqrt(np.einsum("ijk,ijk->ij", cart, cart))
        unsure = dist > inscribed_sphere_radius(self.lattice)
        if unsure.any():
            vectors = cart[unsure]
            images = lattice_points(self.lattice, np.eye(3), 2.0 * float(dist[unsure].max()))
            step = max(1, _CHUNK // max(1, len(images)))
            shortest = np.empty(len(vectors))
            for start in range(0, len(vectors), step):
                chunk = vectors[start : start + step, None, :] + images[None, :, :]
                shortest[start : start + step] = np.einsum("ijk,ijk->ij", chunk, chunk).min(1)
            dist[unsure] = np.minimum(dist[unsure], np.sqrt(shortest))
        return dist

    def shortest_distance(self) -> float:
        """Shortest distance (Å) between two atoms; the shortest lattice vector for one atom."""
        if len(self) < 2:
            return float(np.linalg.norm(self.lattice, axis=1).min())
        dmat = self.distances(self.frac_coords, self.frac_coords)
        np.fill_diagonal(dmat, np.inf)
        return float(dmat.min())


def _species_key(species: list[dict[str, Any]]) -> str:
    """One string per site occupancy: each species' dictionary (without ``occu``) and amount."""
    parts = []
    for entry in species:
        rest = {k: v for k, v in entry.items() if k != "occu"}
        parts.append(f"{json.dumps(rest, sort_keys=True)}*{float(entry.get('occu', 1.0))!r}")
    return "|".join(sorted(parts))
