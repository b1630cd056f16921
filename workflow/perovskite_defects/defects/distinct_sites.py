"""Defect supercells: symmetry-distinct sites from pymatgen-analysis-defects, placed in a supercell.

The generators of pymatgen-analysis-defects find the symmetry-distinct sites and their
multiplicities (spglib underneath); this module only places the chosen site near the
supercell centre and records what the analysis needs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import PeriodicSite, Structure

from perovskite_defects.config import DefectSpec
from perovskite_defects.hosts.perovskite import supercell


@dataclass
class DefectCell:
    """One defect in a supercell (all charge states share the structure).

    Attributes:
        name: defect name (V_I, Na_Cs, Na_i, ...).
        kind: "vacancy", "substitution" or "interstitial".
        charges: charge states to compute.
        atoms_added: n_i of the formation energy (+1 added, -1 removed).
        multiplicity: equivalent sites per unit cell (for concentrations).
        frac_coords: defect position in the supercell (fractional).
        structure: the defect supercell as a pymatgen dict.
        site_index: which symmetry-distinct site of the generator was used.
        n_distinct_sites: how many symmetry-distinct sites the generator found.
    """

    name: str
    kind: str
    charges: list[int]
    atoms_added: dict[str, int]
    multiplicity: float
    frac_coords: list[float]
    structure: dict = field(repr=False)
    site_index: int = 0
    n_distinct_sites: int = 1

    def pmg_structure(self) -> Structure:
        return Structure.from_dict(self.structure)

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def from_json(cls, path: str | Path) -> DefectCell:
        return cls(**json.loads(Path(path).read_text()))

    def atoms_beyond(self, radius: float) -> list[int]:
        """Indices of atoms farther than ``radius`` (Å) from the defect (periodic distance)."""
        structure = self.pmg_structure()
        dists = structure.lattice.get_all_distances([self.frac_coords], structure.frac_coords)[0]
        return [int(i) for i in np.where(dists > radius)[0]]


def _distinct_sites(unit_cell: Structure, spec: DefectSpec) -> list[Any]:
    """Symmetry-distinct defects of pymatgen-analysis-defects for ``spec``."""
    from pymatgen.analysis.defects.generators import (
        SubstitutionGenerator,
        VacancyGenerator,
        VoronoiInterstitialGenerator,
    )

    found: list[Any]
    species, site = str(spec.species), str(spec.site)
    if spec.kind == "vacancy":
        found = [
            d for d in VacancyGenerator().generate(unit_cell) if d.site.specie.symbol == spec.site
        ]
    elif spec.kind == "substitution":
        found = [
            d
            for d in SubstitutionGenerator().generate(unit_cell, {site: species})
            if unit_cell[d.defect_site_index].specie.symbol == spec.site
        ]
    else:
        found = list(VoronoiInterstitialGenerator().generate(unit_cell, [species]))
    if not found:
        raise ValueError(f"{spec.name}: no {spec.kind} site found in {unit_cell.formula}")
    return found


def _image_nearest_centre(frac: np.ndarray, multiples: Sequence[int]) -> np.ndarray:
    """Of the supercell images of a unit-cell position, the one nearest the centre."""
    m = np.array(multiples, dtype=float)
    best, best_d = None, np.inf
    for shift in np.ndindex(*[int(x) for x in multiples]):
        candidate = (np.mod(frac, 1.0) + np.array(shift)) / m
        d = float(np.linalg.norm(candidate - 0.5))
        if d < best_d - 1e-9:
            best, best_d = candidate, d
    assert best is not None
    return best


def make_defect_cell(
    unit_cell: Structure, spec: DefectSpec, multiples: Sequence[int]
) -> DefectCell:
    """Build the supercell of defect ``spec`` from the relaxed host ``unit_cell``."""
    sites = _distinct_sites(unit_cell, spec)
    if spec.site_index >= len(sites):
        raise ValueError(
            f"{spec.name}: site_index {spec.site_index} requested but only {len(sites)} "
            "symmetry-distinct site(s) exist"
        )
    defect = sites[spec.site_index]
    host_sc = supercell(unit_cell, multiples)
    target = _image_nearest_centre(np.asarray(defect.site.frac_coords), multiples)
    structure = host_sc.copy()
    if spec.kind in ("vacancy", "substitution"):
        dists = structure.lattice.get_all_distances([target], structure.frac_coords)[0]
        index = int(np.argmin(dists))
        if dists[index] > 1e-3 or structure[index].specie.symbol != spec.site:
            raise RuntimeError(
                f"{spec.name}: could not locate the {spec.site} site in the supercell"
            )
        frac = structure[index].frac_coords.copy()
        if spec.kind == "vacancy":
            structure.remove_sites([index])
        else:
            structure.replace(index, str(spec.species))
    else:
        frac = target
        structure.append(str(spec.species), frac)
        _check_no_overlap(structure, len(structure) - 1, spec.name)
    return DefectCell(
        name=spec.name,
        kind=spec.kind,
        charges=list(spec.charges),
        atoms_added=spec.atoms_added,
        multiplicity=int(defect.multiplicity),
        frac_coords=[float(x) for x in frac],
        structure=structure.as_dict(),
        site_index=spec.site_index,
        n_distinct_sites=len(sites),
    )


def _check_no_overlap(
    structure: Structure, index: int, name: str, min_distance: float = 1.0
) -> None:
    site: PeriodicSite = structure[index]
    neighbours = structure.get_neighbors(site, min_distance)
    if neighbours:
        raise RuntimeError(f"{name}: interstitial lies within {min_distance} Å of another atom")
