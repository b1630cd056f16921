"""Hosts outside the perovskite family (``host.framework: any``).

A host given by any crystal structure file (CIF or POSCAR), e.g. CdTe, GaN or a
perovskite-derived phase that fits no ABX3 sublattice model. It is taken as it is: no SQS,
no Vegard's law, no molecules, no site classes. The supercell is the file's cell times
``host.supercell``; with ``host.relax`` the file's cell is relaxed first (variable cell,
ions too) and the supercell is built from the relaxed cell.

Defects are named with elements only: V_<S> (vacancy of S), <D>_<S> (D on an S site),
<D>_i (interstitial), with their charge states given in the config (no charge rule: the
ionic picture of an arbitrary host is ambiguous). The site:

* vacancies and substitutions: the atoms of S in the supercell, grouped into
  symmetry-distinct sites (spglib's equivalent atoms, through pymatgen); ``site_index``
  picks one (ordered by their first atom in the supercell), and the atom of that site
  nearest the supercell centre is used, unless ``atom_index`` names the atom (0-based
  index in ``structures/host.vasp``), e.g. to reproduce an earlier calculation;
* interstitials: the Voronoi sites of pymatgen-analysis-defects in the file's cell,
  ``site_index`` picks the type, and its image nearest the supercell centre is used.

``all_sites`` computes every symmetry-distinct site (ids get ``-s0``, ``-s1``... ).
Multiplicities are sites per formula unit of the reduced formula (for concentrations).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from perovskite_defects.defects.names import atoms_added, parse_name
from perovskite_defects.hosts.composition import CompositionError
from perovskite_defects.hosts.structure_checks import StructureError, check_overlaps, load_structure

FRAMEWORK_ANY = "any"
PEROVSKITE = "perovskite"
_NAME_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.")


def framework(config: Mapping[str, Any]) -> str:
    """The host framework of a (validated or raw) config: perovskite or any."""
    return str((config.get("host") or {}).get("framework", PEROVSKITE))


@dataclass(frozen=True)
class StructureHostPlan:
    """The plan of a host given by a structure file (see the module docstring).

    Attributes:
        name: host name (folder under results/<study>/).
        settings: the ``host`` keys of the config.
        user_structure: absolute path of the structure file.
        multiples: supercell multiples of the file's cell along a, b, c.
        relax: relax the file's cell (variable cell) before building the supercell.
        formula: reduced formula of the host.
        species: elements of the host, in the order of the file.
        n_atoms: atoms of the supercell.
    """

    name: str
    settings: dict[str, Any]
    user_structure: str
    multiples: tuple[int, int, int]
    relax: bool
    formula: str
    species: tuple[str, ...]
    n_atoms: int
    framework: str = FRAMEWORK_ANY
    end_member_keys: tuple[Any, ...] = field(default=())

    @property
    def end_members(self) -> tuple[str, ...]:
        """The host itself when its cell is relaxed first (results/<study>/<host>/unitcell)."""
        return (self.name,) if self.relax else ()

    @property
    def is_end_member(self) -> bool:
        return self.relax

    @property
    def lattice_mode(self) -> str:
        """Always "vegard": the supercell repeats the file's (optionally relaxed) cell; the
        relax mode (relaxing the supercell itself) is refused for this framework."""
        return "vegard"

    @property
    def energy_from_unitcell(self) -> bool:
        """The host energy for chemical potentials is the bulk supercell's."""
        return False

    @property
    def elements(self) -> set[str]:
        return set(self.species)


def load_host_structure(path: str | Path, key: str = "host.structure"):
    """The host's structure file, ordered and without overlapping atoms (one-line errors)."""

    try:
        structure = load_structure(path)
        check_overlaps(structure, path)
    except StructureError as err:
        raise CompositionError(f"config key '{key}': {err}") from err
    if not structure.is_ordered:
        raise CompositionError(
            f"config key '{key}': {path} has partial occupancies; framework any needs an "
            "ordered structure (make a supercell with the disorder resolved, e.g. an SQS)"
        )
    return structure


def auto_multiples(structure, min_distance: float) -> tuple[int, int, int]:
    """Smallest diagonal multiples whose periodic images are ``min_distance`` Å apart
    (per axis: the spacing of the lattice planes, so it also holds for oblique cells)."""
    recip = structure.lattice.reciprocal_lattice_crystallographic.abc
    return tuple(max(1, math.ceil(min_distance * r - 1e-9)) for r in recip)  # type: ignore[return-value]


def plan_structure_host(
    host: Mapping[str, Any], sweep: Mapping[str, Any] | None, project_root: Path | None
) -> StructureHostPlan:
    """Plan of the one host of a ``framework: any`` study; CompositionError naming the key."""
    if sweep and (sweep.get("compositions") or sweep.get("grid")):
        raise CompositionError(
            "config key 'sweep': a composition sweep needs host.framework perovskite; a "
            "framework any study has one host (its structure file)"
        )
    if host.get("lattice_mode", "vegard") != "vegard":
        raise CompositionError(
            "config key 'host.lattice_mode': relax is for perovskite hosts; a framework any "
            "host relaxes the cell of its structure file with host.relax"
        )
    raw = host.get("structure") or ""
    if not raw:
        raise CompositionError(
            "config key 'host.structure': required for host.framework any (the CIF or POSCAR "
            "of the host)"
        )
    path = Path(raw)
    if not path.is_absolute() and project_root is not None:
        path = project_root / path
    structure = load_host_structure(path)
    supercell = host.get("supercell", "auto")
    if supercell == "auto":
        multiples = auto_multiples(structure, float(host.get("min_image_distance", 12.0)))
    else:
        multiples = tuple(int(m) for m in supercell)  # type: ignore[assignment]
    n_atoms = len(structure) * int(np.prod(multiples))
    max_atoms = int(host.get("max_atoms", 400))
    if n_atoms > max_atoms:
        raise CompositionError(
            f"config key 'host.supercell': {list(multiples)} of {path.name} holds {n_atoms} "
            f"atoms, above max_atoms = {max_atoms}"
        )
    formula = structure.composition.reduced_formula
    name = host.get("name") or formula
    if not set(name) <= _NAME_CHARS:
        raise CompositionError(
            f"config key 'host.name': the reduced formula {formula!r} of {path.name} cannot "
            "name a folder; set host.name (letters, digits and dots)"
        )
    species = tuple(dict.fromkeys(site.specie.symbol for site in structure))
    return StructureHostPlan(
        name=name,
        settings=dict(host),
        user_structure=str(path),
        multiples=multiples,  # type: ignore[arg-type]
        relax=bool(host.get("relax", True)),
        formula=formula,
        species=species,
        n_atoms=n_atoms,
    )


def formula_units(structure) -> int:
    """Formula units of the reduced formula in ``structure``."""
    return int(round(structure.composition.get_reduced_composition_and_factor()[1]))


def cells_in_supercell(framework: str, structure: Any) -> int:
    """Cells the defect multiplicities refer to in the bulk supercell ``structure``.

    Multiplicities are per formula unit ABX3: the supercell holds one per B atom
    (``framework`` any, config key host.framework: per formula unit of the reduced
    formula). Here, not in the tables step, because the pymatgen exports count the same.
    """
    if framework != PEROVSKITE:
        return formula_units(structure)
    return sum(site.specie.symbol in ("Pb", "Sn") for site in structure)


def build_structure_host(plan: StructureHostPlan):
    """The host supercell (hosts.HostStructure) of the structure file, with its metadata."""
    # why: hosts.perovskite loads pymatgen.core; config (every job) imports this module
    from perovskite_defects.hosts.perovskite import HostStructure, min_image_distance, supercell

    unit = load_host_structure(plan.user_structure)
    structure = supercell(unit, plan.multiples)
    metadata: dict[str, Any] = {
        "framework": FRAMEWORK_ANY,
        "structure_file": plan.user_structure,
        "formula": plan.formula,
        "supercell": list(plan.multiples),
        "min_image_distance": min_image_distance(structure),
        "formula_units": formula_units(structure),
        "unit_cell": unit.as_dict(),
        "prototype": "user structure (framework any)",
        "lattice_source": "structure file",
        "composition_achieved": {
            "counts": {k: int(v) for k, v in structure.composition.as_dict().items()}
        },
        "seed": int(plan.settings.get("seed", 0)),
    }
    return HostStructure(plan.name, structure, [], metadata)


def unit_cell(host_metadata: Mapping[str, Any]):
    """The file's cell the supercell was built from."""
    from pymatgen.core import Structure

    return Structure.from_dict(host_metadata["unit_cell"])


def bulk_structure(host, relaxed_unit_cell=None):
    """The pristine supercell: the host as built, or (relax) the same supercell of the
    relaxed unit cell, in the same site order (the manifest's atom indices refer to it)."""
    # why: hosts.perovskite loads pymatgen.core; config (every job) imports this module
    from perovskite_defects.hosts.perovskite import supercell

    if relaxed_unit_cell is None:
        return host.structure.copy()
    bulk = supercell(relaxed_unit_cell, host.metadata["supercell"])
    ours = [s.specie.symbol for s in host.structure]
    if [s.specie.symbol for s in bulk] != ours:
        raise ValueError(
            f"{host.name}: the relaxed unit cell lists its atoms in another order than "
            "host.structure; cannot map the defect sites"
        )
    return bulk


# --------------------------------------------------------------------------- defects


def check_structure_defects(
    defects: Sequence[Mapping[str, Any]], plan: StructureHostPlan
) -> set[str]:
    """Every defect of the config fits the host; returns the dopant species.

    One-line CompositionError naming the key: a role name or non-element, a site species
    absent from the host, missing charges, a complex (not supported here), or an
    ``atom_index`` out of range or on another species.
    """
    from pymatgen.core.periodic_table import Element

    host_species = sorted(plan.elements)
    dopants: set[str] = set()
    for i, entry in enumerate(defects):
        name = entry["name"]
        where = f"config key 'defects.{i}"
        if "+" in name:
            raise CompositionError(
                f"{where}.name': complex {name!r} is only available for perovskite hosts"
            )
        kind, species, site = parse_name(name)
        for el in (species, site):
            if el is not None and not Element.is_valid_symbol(el):
                raise CompositionError(
                    f"{where}.name': {el!r} in {name!r} is not an element (role names such "
                    f"as V_X, Na_B are for perovskite hosts; host {plan.name} has "
                    f"{host_species})"
                )
        if site is not None and site not in plan.elements:
            raise CompositionError(
                f"{where}.name': {name!r} uses the site of {site}, which is not in the host "
                f"{plan.name} (host species: {host_species})"
            )
        if not entry.get("charges"):
            raise CompositionError(
                f"{where}.charges': required for host.framework any (no charge rule outside "
                f"the perovskite family), e.g. charges: [0, -1, -2] for {name}"
            )
        atom = entry.get("atom_index")
        if atom is not None:
            if kind == "interstitial":
                raise CompositionError(
                    f"{where}.atom_index': an interstitial removes no atom; use site_index"
                )
            if atom >= plan.n_atoms:
                raise CompositionError(
                    f"{where}.atom_index': {atom} is beyond the {plan.n_atoms} atoms of the "
                    f"host supercell"
                )
        if species is not None and species not in plan.elements:
            dopants.add(species)
    return dopants


def build_structure_defect_set(
    host, requests: Sequence[Any], *, min_distance: float = 1.0
) -> tuple[list[Any], list[tuple[Any, Any]]]:
    """Manifest entries (defects.manifest.ManifestEntry) and structures of every requested
    defect in a framework-any host (see the module docstring for the site choice)."""
    # why: manifest and site_classes load pymatgen.core; config (every job) imports this module
    from perovskite_defects.defects.manifest import ManifestEntry
    from perovskite_defects.defects.site_classes import _orbits

    structure = host.structure
    n_fu = int(host.metadata["formula_units"])
    centre = np.array([0.5, 0.5, 0.5])
    results: list[tuple[ManifestEntry, Any]] = []
    for req in requests:
        kind, species, site = parse_name(req.name)
        if not req.charges:
            raise ValueError(f"{req.name}: charges are required for host.framework any")
        if kind == "interstitial":
            sites = _interstitial_sites(host, str(species), min_distance)
        else:
            sites = _lattice_sites(structure, str(site), _orbits(structure))
        chosen = range(len(sites)) if req.all_sites else [req.site_index or 0]
        for k in chosen:
            if k >= len(sites):
                raise ValueError(
                    f"{req.name}: site_index {k} requested but {host.name} has only "
                    f"{len(sites)} symmetry-distinct site(s) for it"
                )
            members = sites[k]
            atom = getattr(req, "atom_index", None)
            if atom is not None and kind != "interstitial":
                if structure[atom].specie.symbol != site:
                    raise ValueError(
                        f"{req.name}: atom_index {atom} of {host.name} is "
                        f"{structure[atom].specie.symbol}, not {site}"
                    )
                owner = next(j for j, m in enumerate(sites) if atom in m["atoms"])
                if req.all_sites or owner != k:
                    if req.all_sites:
                        raise ValueError(f"{req.name}: atom_index and all_sites exclude each other")
                    if req.site_index not in (None, 0):
                        raise ValueError(
                            f"{req.name}: atom_index {atom} belongs to site {owner}, not to "
                            f"site_index {req.site_index}"
                        )
                    members = sites[owner]
                frac = structure[atom].frac_coords
                remove = [atom]
            elif kind == "interstitial":
                frac = min(members["positions"], key=lambda f: _distance(structure, f, centre))
                remove = []
            else:
                atom = min(
                    members["atoms"],
                    key=lambda j: _distance(structure, structure[j].frac_coords, centre),
                )
                frac = structure[atom].frac_coords
                remove = [atom]
            add = [(str(species), [float(x) for x in frac])] if species else []
            suffix = f"-s{k}" if (req.all_sites or len(sites) > 1) else ""
            ident = req.name + suffix
            entry = ManifestEntry(
                id=ident,
                defect=req.name,
                kind=kind,
                site_class=f"s{k}" if suffix else "",
                representative=1,
                n_representatives=1,
                multiplicity=members["count"] / n_fu,
                class_size=members["count"],
                charges=list(req.charges),
                structure=f"structures/{ident}.json",
                remove=remove,
                add=add,
                frac_coords=[float(v) for v in frac],
                atoms_added=atoms_added(req.name),
            )
            results.append((entry, entry.apply(structure)))
    ids = [e.id for e, _ in results]
    if len(ids) != len(set(ids)):
        raise ValueError(f"{host.name}: duplicate defect ids {ids}")
    return [e for e, _ in results], results


def _distance(structure, frac, point) -> float:
    return float(structure.lattice.get_all_distances([frac], [point])[0][0])


def _lattice_sites(structure, site: str, orbits: np.ndarray) -> list[dict[str, Any]]:
    """Symmetry-distinct sites of ``site`` atoms: their atoms, ordered by the first one."""
    groups: dict[int, list[int]] = {}
    for i, s in enumerate(structure):
        if s.specie.symbol == site:
            groups.setdefault(int(orbits[i]), []).append(i)
    ordered = sorted(groups.values(), key=lambda atoms: atoms[0])
    return [{"atoms": atoms, "count": len(atoms)} for atoms in ordered]


def _interstitial_sites(host, species: str, min_distance: float) -> list[dict[str, Any]]:
    """Voronoi interstitial types of the file's cell (pymatgen-analysis-defects' order),
    each with its images in the supercell that keep ``min_distance`` from every atom."""
    from pymatgen.analysis.defects.generators import VoronoiInterstitialGenerator

    # why: site_classes loads pymatgen.core; config (every job) imports this module
    from perovskite_defects.defects.site_classes import _images

    structure = host.structure
    out = []
    for defect in VoronoiInterstitialGenerator().generate(unit_cell(host.metadata), [species]):
        fracs = np.array([s.frac_coords for s in defect.equivalent_sites])
        images = [
            np.asarray(p)
            for p in _images(fracs, host.metadata["supercell"])
            if structure.lattice.get_all_distances([p], structure.frac_coords).min() >= min_distance
        ]
        if images:
            out.append({"positions": images, "count": len(images)})
    if not out:
        raise ValueError(
            f"{species}_i: every interstitial candidate in {host.name} is within "
            f"{min_distance} Å of an atom"
        )
    return out
