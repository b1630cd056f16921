"""Alloy-aware defect sets: site classes and representatives of every defect of a host.

For a host supercell (any composition) every defect of the config becomes a list of
*manifest entries* (defects/manifest.py), one per computed structure:

* Candidate sites: the atoms of the site species (vacancies, substitutions and antisites),
  or, for interstitials (Na_i and the native I_i, Pb_i, Sn_i, Cs_i), the Voronoi sites
  that pymatgen-analysis-defects finds in the ordered parent cell (merged by symmetry and
  a minimum distance there), mapped to every image in the supercell and pruned where they
  come closer than ``min_distance`` to an atom (e.g. to the hydrogens of FA/MA).
* Site classes by local environment: an X site by its two B neighbours (``Pb2``, ``PbSn``,
  ``Sn2``) and, in a mixed halide, its own species (the defect name carries it: V_I, V_Br);
  a B site, in a mixed halide, by its six X neighbours (``I4Br2``); an interstitial by its
  Voronoi site type (``i0``, ``i1``...) and its nearest B atoms. A and pure sublattices form
  one class. Antisites use the classes of the site they occupy (Pb_I: the X classes).
* Symmetry: spglib's equivalent atoms (through pymatgen) merge equivalent sites; a class
  holds one or more orbits. ``representatives`` orbits per class are computed (chosen with
  a seeded generator; the member nearest the supercell centre stands for its orbit).
* Multiplicity: sites of the class per formula unit ABX3 (for concentrations).

Names, their expansion per host and the charge rule are in defects/names.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pymatgen.core import Structure

from perovskite_defects.defects.manifest import DefectRequest, ManifestEntry
from perovskite_defects.defects.names import (
    B_SET,
    HALIDE_SET,
    MOLECULE_FORMULA,
    atoms_added,
    concrete_names,
    default_charges,
    parse_name,
)
from perovskite_defects.hosts.perovskite import cubic_prototype

# --------------------------------------------------------------------------- site classes


def _label(symbols: Sequence[str]) -> str:
    """Environment label from neighbour species: Pb,Pb -> Pb2; Pb,Sn -> PbSn; 4 I 2 Br -> I4Br2."""
    order = ["Pb", "Sn", "I", "Br", "Cl"]
    counts = {s: list(symbols).count(s) for s in order if s in symbols}
    if len(symbols) == 2 and len(counts) == 2:
        return "".join(counts)
    return "".join(f"{s}{n}" for s, n in counts.items())


def _nearest(structure: Structure, frac: np.ndarray, indices: Sequence[int], k: int) -> list[int]:
    d = structure.lattice.get_all_distances([frac], structure.frac_coords[list(indices)])[0]
    order = np.argsort(d, kind="stable")
    return [int(indices[i]) for i in order[:k]]


def _image_distances(structure: Structure, frac, indices: Sequence[int]) -> list[tuple[float, int]]:
    """(distance, atom index) to every periodic image (-1..1 cells) of the atoms ``indices``.

    Images, not atoms: in a small supercell (e.g. [2, 1, 1]) both B neighbours of a halide
    can be the same atom seen through the boundary, which a minimum-image distance per
    atom would count once (and then wrongly take a farther atom as the second neighbour).
    """
    shifts = np.array([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)])
    out: list[tuple[float, int]] = []
    for idx in indices:
        delta = structure.frac_coords[idx] - np.asarray(frac, dtype=float)
        delta -= np.round(delta)
        cart = structure.lattice.get_cartesian_coords(delta + shifts)
        out += [(float(d), int(idx)) for d in np.linalg.norm(cart, axis=1)]
    return sorted(out)


def environment_class(structure: Structure, frac, role: str, mixed_b: bool, mixed_x: bool) -> str:
    """Site class label of a site of ``role`` ("X", "B", "A", "i") at ``frac``."""
    symbols = [s.specie.symbol for s in structure]
    b_idx = [i for i, s in enumerate(symbols) if s in B_SET]
    x_idx = [i for i, s in enumerate(symbols) if s in HALIDE_SET]
    if role == "X" and mixed_b:
        return _label([symbols[i] for _, i in _image_distances(structure, frac, b_idx)[:2]])
    if role == "B" and mixed_x:
        return _label([symbols[i] for _, i in _image_distances(structure, frac, x_idx)[:6]])
    if role == "i" and mixed_b:
        near = _image_distances(structure, frac, b_idx)
        return _label([symbols[i] for d, i in near if d < near[0][0] * 1.15])
    return ""


_ORBIT_CACHE: dict[int, tuple[Structure, np.ndarray]] = {}


def _orbits(structure: Structure) -> np.ndarray:
    """spglib's equivalent atoms (orbit index of every site), cached per structure object."""
    cached = _ORBIT_CACHE.get(id(structure))
    if cached is not None and cached[0] is structure:
        return cached[1]
    orbits = _spglib_orbits(structure)
    _ORBIT_CACHE[id(structure)] = (structure, orbits)
    return orbits


def _spglib_orbits(structure: Structure) -> np.ndarray:
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        data = SpacegroupAnalyzer(structure, symprec=1e-3).get_symmetry_dataset()
        return np.asarray(data.equivalent_atoms)
    except Exception:  # spglib finds no symmetry (e.g. overlapping candidates): all distinct
        return np.arange(len(structure))


def build_defect_set(
    host: Any,
    requests: Sequence[DefectRequest],
    *,
    representatives: int = 2,
    seed: int = 0,
    min_distance: float = 1.5,
) -> tuple[list[ManifestEntry], list[tuple[ManifestEntry, Structure]]]:
    """Manifest entries (and their structures) of every requested defect in ``host``.

    ``host`` is a hosts.HostStructure. ``representatives`` is the default number of orbits
    per site class (a request can override it); pure hosts have one orbit per class, so
    one structure per defect.
    """
    structure: Structure = host.structure
    comp = host.metadata["composition_requested"]
    symbols = [s.specie.symbol for s in structure]
    b_species = [b for b in B_SET if b in symbols]
    x_species = [h for h in HALIDE_SET if h in symbols]
    a = comp["A"]
    mixed_b, mixed_x = len(b_species) > 1, len(x_species) > 1
    species_names = {a, *b_species, *x_species}
    n_fu = len(host.a_sites)
    centre = np.array([0.5, 0.5, 0.5])
    rng = np.random.default_rng(seed)
    results: list[tuple[ManifestEntry, Structure]] = []

    def centre_distance(frac) -> float:
        return float(structure.lattice.get_all_distances([frac], [centre])[0][0])

    for req in requests:
        for name in concrete_names(req.name, a, b_species, x_species):
            parts = name.split("+")
            kind = "complex" if len(parts) > 1 else parse_name(name)[0]
            charges = list(req.charges) if req.charges else default_charges(name, species_names)
            n_rep = req.representatives or representatives
            candidates = _candidates(host, parts[0], mixed_b, mixed_x, req, min_distance)
            classes: dict[str, list[dict[str, Any]]] = {}
            for cand in candidates:
                classes.setdefault(cand["class"], []).append(cand)
            for cls, members in classes.items():
                by_orbit: dict[Any, list[dict[str, Any]]] = {}
                for cand in members:
                    by_orbit.setdefault(cand["orbit"], []).append(cand)
                keys = sorted(by_orbit, key=str)
                n_pick = min(n_rep, len(keys))
                picked = (
                    [keys[i] for i in sorted(rng.choice(len(keys), n_pick, replace=False))]
                    if len(keys) > 1
                    else keys
                )
                for k, key in enumerate(picked):
                    rep = min(by_orbit[key], key=lambda c: centre_distance(c["frac"]))
                    remove, add = list(rep["remove"]), list(rep["add"])
                    if kind == "complex":
                        remove, add = _complex_partner(structure, rep, parts[1], remove, add)
                    ident = name + (f"-{cls}" if cls else "") + (f"-{k + 1}" if n_pick > 1 else "")
                    entry = ManifestEntry(
                        id=ident,
                        defect=name,
                        kind=kind,
                        site_class=cls,
                        representative=k + 1,
                        n_representatives=n_pick,
                        multiplicity=len(members) / n_fu,
                        class_size=len(members),
                        charges=charges,
                        structure=f"structures/{ident}.json",
                        remove=remove,
                        add=add,
                        frac_coords=[float(v) for v in rep["frac"]],
                        atoms_added=atoms_added(name),
                    )
                    results.append((entry, entry.apply(structure)))
    ids = [e.id for e, _ in results]
    if len(ids) != len(set(ids)):
        raise ValueError(
            f"{host.name}: duplicate defect ids {sorted({i for i in ids if ids.count(i) > 1})}"
        )
    return [e for e, _ in results], results


def _candidates(host, name, mixed_b, mixed_x, req, min_distance) -> list[dict[str, Any]]:
    """Candidate sites of a single defect: class label, orbit key, atoms removed/added."""
    structure: Structure = host.structure
    kind, species, site = parse_name(name)
    orbits = _orbits(structure)
    out: list[dict[str, Any]] = []
    if kind in ("vacancy", "substitution"):
        if site in MOLECULE_FORMULA or site in ("Cs",):
            for k, a_site in enumerate(host.a_sites):
                if structure[a_site["atoms"][0]].specie.symbol not in MOLECULE_FORMULA.get(
                    site, {site: 1}
                ):
                    continue
                frac = np.array(a_site["frac_centre"])
                add = [(species, frac.tolist())] if species else []
                orbit = int(orbits[a_site["atoms"][0]]) if site == "Cs" else k
                out.append(
                    {
                        "class": "",
                        "orbit": orbit,
                        "frac": frac,
                        "remove": a_site["atoms"],
                        "add": add,
                    }
                )
            return out
        role = "X" if site in HALIDE_SET else "B"
        for i, s in enumerate(structure):
            if s.specie.symbol != site:
                continue
            frac = s.frac_coords
            cls = environment_class(structure, frac, role, mixed_b, mixed_x)
            add = [(species, frac.tolist())] if species else []
            out.append(
                {"class": cls, "orbit": int(orbits[i]), "frac": frac, "remove": [i], "add": add}
            )
        return out
    # interstitial: Voronoi sites of the ordered parent cell, mapped to the supercell
    types = _cached_types(host, min_distance)
    chosen = range(len(types)) if req.all_sites else [req.site_index or 0]
    for t in chosen:
        if t >= len(types):
            raise ValueError(
                f"{name}: site_index {t} requested but only {len(types)} distinct interstitial "
                "site(s) exist"
            )
    positions, labels = [], []
    for t in chosen:
        for image in _images(types[t], host.metadata["supercell"]):
            d = structure.lattice.get_all_distances([image], structure.frac_coords)[0]
            if d.min() < min_distance:
                continue  # too close to an atom (e.g. an H of FA/MA): not a site here
            positions.append(image)
            labels.append(t)
    if not positions:
        raise ValueError(
            f"{name}: every interstitial candidate is within {min_distance} Å of an atom"
        )
    probe = structure.copy()
    for position in positions:
        probe.append("He", position)
    orbit_ids = _orbits(probe)[len(structure) :]
    for position, t, orbit in zip(positions, labels, orbit_ids, strict=True):
        env = environment_class(structure, position, "i", mixed_b, mixed_x)
        cls = f"i{t}{env}" if (req.all_sites or env) else ""
        out.append(
            {
                "class": cls,
                "orbit": int(orbit),
                "frac": np.asarray(position),
                "remove": [],
                "add": [(species, list(map(float, position)))],
            }
        )
    return out


_TYPES_CACHE: dict[tuple[int, float], tuple[Any, list[np.ndarray]]] = {}


def _cached_types(host, min_distance: float) -> list[np.ndarray]:
    """``_interstitial_types`` once per host object: every interstitial of a host (Na_i,
    I_i, Pb_i, Cs_i ...) uses the same Voronoi sites, and the generator takes seconds."""
    key = (id(host), float(min_distance))
    cached = _TYPES_CACHE.get(key)
    if cached is None or cached[0] is not host:
        cached = (host, _interstitial_types(host, min_distance))
        _TYPES_CACHE[key] = cached
    return cached[1]


def _interstitial_types(host, min_distance: float = 0.0) -> list[np.ndarray]:
    """Distinct interstitial sites of the host's ordered parent cell (fractional, each with
    all its symmetry-equivalent positions in that cell), in the generator's order.

    The parent is the cell the supercell repeats: the user's structure (e.g. a tilted
    orthorhombic gamma phase) or the cubic prototype, with A = Cs and B = Pb (ordered, so
    its space group is the parent's, not the SQS's). pymatgen-analysis-defects'
    VoronoiInterstitialGenerator finds the Voronoi nodes, clusters them and merges them by
    the parent's symmetry; types closer than ``min_distance`` (Å) to an atom of the parent
    are pruned here (the supercell check in ``_candidates`` also sees molecules' H).
    """
    from pymatgen.analysis.defects.generators import VoronoiInterstitialGenerator

    parent = parent_cell_of(host)
    types = []
    for defect in VoronoiInterstitialGenerator().generate(parent, ["Na"]):
        fracs = np.mod(np.array([site.frac_coords for site in defect.equivalent_sites]), 1.0)
        nearest = parent.lattice.get_all_distances(fracs[:1], parent.frac_coords).min()
        if nearest >= min_distance:
            types.append(fracs)
    return types


def parent_cell_of(host) -> Structure:
    """The ordered parent cell of a host (see ``_interstitial_types``).

    Host files written before the parent cell was recorded fall back to the cubic
    prototype, which is what they were built from unless a user structure was given.
    """

    stored = host.metadata.get("parent_cell")
    if stored is not None:
        return Structure.from_dict(stored)
    if host.metadata.get("prototype", "cubic Pm-3m") != "cubic Pm-3m":
        raise ValueError(
            f"{host.name}: host file has no parent_cell (written by an older version from a "
            "user structure); rebuild the host to place interstitials in that structure"
        )
    halide = host.metadata["composition_requested"]["X"]
    halide = next(iter(halide)) if isinstance(halide, Mapping) else halide
    return cubic_prototype("Cs", "Pb", halide, host.metadata["lattice_constant"])


def _images(fracs_unit: np.ndarray, multiples: Sequence[int]) -> list[list[float]]:
    """Every supercell image of the equivalent unit-cell positions ``fracs_unit``."""
    m = np.array(multiples, dtype=float)
    return [
        list((np.mod(frac, 1.0) + np.array(shift)) / m)
        for frac in np.atleast_2d(fracs_unit)
        for shift in np.ndindex(*[int(x) for x in multiples])
    ]


def _complex_partner(structure: Structure, rep, partner: str, remove, add):
    """Add the nearest vacancy ``partner`` (V_X) to a substitution: the NN complex."""
    kind, _, site = parse_name(partner)
    if kind != "vacancy":
        raise ValueError(f"complex partner {partner!r} must be a vacancy")
    idx = [i for i, s in enumerate(structure) if s.specie.symbol == site and i not in remove]
    nearest = _nearest(structure, rep["frac"], idx, 1)[0]
    return remove + [nearest], add
