"""Alloy-aware defect sets: site classes, representatives, charge rules and the manifest.

For a host supercell (any composition) every defect of the config becomes a list of
*manifest entries*, one per computed structure:

* Candidate sites: the atoms of the site species (vacancies, substitutions), or, for
  interstitials, the Voronoi sites that pymatgen-analysis-defects finds in the ordered
  parent cell (merged by symmetry and a minimum distance there), mapped to every image in
  the supercell and pruned where they come closer than ``min_distance`` to an atom (e.g.
  to the hydrogens of FA/MA).
* Site classes by local environment: an X site by its two B neighbours (``Pb2``, ``PbSn``,
  ``Sn2``) and, in a mixed halide, its own species (the defect name carries it: V_I, V_Br);
  a B site, in a mixed halide, by its six X neighbours (``I4Br2``); an interstitial by its
  Voronoi site type (``i0``, ``i1``...) and its nearest B atoms. A and pure sublattices form
  one class.
* Symmetry: spglib's equivalent atoms (through pymatgen) merge equivalent sites; a class
  holds one or more orbits. ``representatives`` orbits per class are computed (chosen with
  a seeded generator; the member nearest the supercell centre stands for its orbit).
* Multiplicity: sites of the class per formula unit ABX3 (for concentrations).

Charge states follow a rule from the nominal charge q0 of the defect (oxidation states
Cs/FA/MA +1, Pb/Sn +2, X -1, Na +1), as in doped/pydefect-style defaults:
vacancies q0 .. -q0 widened to include -1 .. +1 (V_X {-1,0,+1}, V_B {-2,-1,0,+1},
V_A {-1,0,+1}); substitutions and interstitials from q0 to 0 (Na_A {0}, Na_B {-1,0},
Na_i {0,+1}); complexes q0-1 .. q0+1. A charges list in config overrides the rule.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Structure

OXIDATION = {"Cs": 1, "FA": 1, "MA": 1, "Pb": 2, "Sn": 2, "I": -1, "Br": -1, "Cl": -1, "Na": 1}
ROLE_NAMES = ("V_X", "V_A", "V_B", "Na_A", "Na_B", "Na_i", "Na_B+V_X")
HALIDE_SET = ("I", "Br", "Cl")
B_SET = ("Pb", "Sn")
MOLECULE_FORMULA = {"FA": {"C": 1, "N": 2, "H": 5}, "MA": {"C": 1, "N": 1, "H": 6}}


def nominal_charge(kind: str, species: str | None, site: str | None) -> int:
    """Nominal charge: oxidation state of what is added minus that of what is removed."""
    added = OXIDATION.get(species, 0) if species else 0
    removed = OXIDATION.get(site, 0) if site else 0
    return added - removed


def default_charges(name: str) -> list[int]:
    """Charge states by the documented rule (see the module docstring), highest first."""
    parts = name.split("+")
    if len(parts) > 1:
        q0 = sum(_nominal_of(p) for p in parts)
        low, high = q0 - 1, q0 + 1
    else:
        kind, species, site = _parse(name)
        q0 = nominal_charge(kind, species, site)
        if kind == "vacancy":
            low, high = min(q0, -1), max(q0, 1)
        else:
            low, high = min(q0, 0), max(q0, 0)
    return list(range(high, low - 1, -1))


def _nominal_of(name: str) -> int:
    kind, species, site = _parse(name)
    return nominal_charge(kind, species, site)


_NAME = re.compile(r"^(?:V_([A-Z][a-zA-Z]?)|([A-Z][a-z]?)_([A-Z][a-zA-Z]?|i))$")


def _parse(name: str) -> tuple[str, str | None, str | None]:
    m = _NAME.match(name)
    if not m:
        raise ValueError(f"{name!r} is not a defect name")
    if m.group(1):
        return "vacancy", None, m.group(1)
    if m.group(3) == "i":
        return "interstitial", m.group(2), None
    return "substitution", m.group(2), m.group(3)


def concrete_names(
    name: str, a: str, b_species: Sequence[str], x_species: Sequence[str]
) -> list[str]:
    """Concrete defect names of a config name in a host: role names expand (V_X -> V_I, V_Br;
    Na_B -> Na_Pb, Na_Sn; V_A -> V_FA ...), element names stay as they are."""
    sub = {"X": list(x_species), "B": list(b_species), "A": [a]}
    out = [""]
    for part_i, part in enumerate(name.split("+")):
        head, _, tail = part.partition("_")
        heads = sub.get(head, [head]) if head != "V" else ["V"]
        tails = sub.get(tail, [tail])
        expanded = [f"{h}_{t}" for h in heads for t in tails]
        out = [f"{o}+{e}" if part_i else e for o in out for e in expanded]
    return out


def site_species_missing(name: str, host_species: set[str]) -> list[str]:
    """Species whose sites a concrete defect name needs but the host lacks."""
    missing = []
    for part in name.split("+"):
        _, _, site = _parse(part)
        if site and site not in host_species:
            missing.append(site)
    return missing


def atoms_added(name: str) -> dict[str, int]:
    """n_i of the formation energy (molecular cations expanded into their elements)."""
    out: dict[str, int] = {}

    def add(species: str, n: int) -> None:
        for el, k in MOLECULE_FORMULA.get(species, {species: 1}).items():
            out[el] = out.get(el, 0) + n * k

    for part in name.split("+"):
        _, species, site = _parse(part)
        if species:
            add(species, 1)
        if site:
            add(site, -1)
    return {k: v for k, v in out.items() if v}


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


# --------------------------------------------------------------------------- manifest


@dataclass
class ManifestEntry:
    """One defect structure of a host (all its charge states share it).

    Attributes:
        id: unique name in the host: defect, then site class and representative if any
            (V_I, V_I-PbSn-2, Na_i-i0-Pb2).
        defect: concrete defect name (V_I, Na_Sn, Na_Pb+V_I).
        kind: vacancy, substitution, interstitial or complex.
        site_class: local-environment class ("" when the sublattice is uniform).
        representative: 1-based index of the representative within its class.
        n_representatives: how many representatives of the class are computed.
        multiplicity: sites of this class per formula unit ABX3.
        class_size: sites of this class in the supercell.
        charges: charge states to compute.
        structure: path of the defect's JSON (relative to the host's folder).
        remove: host atom indices removed (a whole molecule for V_FA / V_MA).
        add: species and fractional coordinates added.
        frac_coords: position of the defect (fractional; for corrections).
        atoms_added: n_i of the formation energy.
    """

    id: str
    defect: str
    kind: str
    site_class: str
    representative: int
    n_representatives: int
    multiplicity: float
    class_size: int
    charges: list[int]
    structure: str
    remove: list[int] = field(default_factory=list)
    add: list[tuple[str, list[float]]] = field(default_factory=list)
    frac_coords: list[float] = field(default_factory=list)
    atoms_added: dict[str, int] = field(default_factory=dict)

    def apply(self, host: Structure) -> Structure:
        """The defect structure built from ``host`` (same site order as the manifest's host,
        at any lattice: starting, Vegard or relaxed)."""
        out = host.copy()
        out.remove_sites(sorted(self.remove))
        for species, frac in self.add:
            out.append(species, frac)
        return out


TSV_COLUMNS = (
    "id",
    "defect",
    "kind",
    "site_class",
    "representative",
    "n_representatives",
    "multiplicity",
    "class_size",
    "charges",
    "structure",
)


def write_manifest(entries: Sequence[ManifestEntry], directory: str | Path) -> Path:
    """manifest.tsv (the columns of TSV_COLUMNS) and manifest.json (every field)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "manifest.tsv").open("w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t")
        w.writerow(TSV_COLUMNS)
        for e in entries:
            row = asdict(e)
            row["charges"] = ",".join(str(q) for q in e.charges)
            w.writerow([row[c] for c in TSV_COLUMNS])
    (directory / "manifest.json").write_text(json.dumps([asdict(e) for e in entries], indent=1))
    return directory / "manifest.tsv"


def read_manifest(directory: str | Path) -> list[ManifestEntry]:
    """Entries of a manifest written by :func:`write_manifest` (the TSV and JSON must agree)."""
    directory = Path(directory)
    full = json.loads((directory / "manifest.json").read_text())
    entries = [ManifestEntry(**{**e, "add": [tuple(a) for a in e["add"]]}) for e in full]
    with (directory / "manifest.tsv").open(newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    if [r["id"] for r in rows] != [e.id for e in entries]:
        raise ValueError(f"{directory}: manifest.tsv and manifest.json list different defects")
    for r, e in zip(rows, entries, strict=True):
        if [int(q) for q in r["charges"].split(",")] != e.charges:
            raise ValueError(f"{directory}: charges of {e.id} differ between TSV and JSON")
    return entries


def manifest_jobs(directory: str | Path) -> list[tuple[str, int]]:
    """(defect id, charge) of every DFT job of a host, read from its manifest.tsv."""
    with (Path(directory) / "manifest.tsv").open(newline="") as fh:
        return [
            (r["id"], int(q))
            for r in csv.DictReader(fh, delimiter="\t")
            for q in r["charges"].split(",")
        ]


@dataclass(frozen=True)
class DefectRequest:
    """A defect of the config: name (role or element form), charges (None = rule), options."""

    name: str
    charges: tuple[int, ...] | None = None
    representatives: int | None = None
    site_index: int | None = 0
    all_sites: bool = False
    atom_index: int | None = None  # framework any: the host atom removed or replaced


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
    n_fu = len(host.a_sites)
    centre = np.array([0.5, 0.5, 0.5])
    rng = np.random.default_rng(seed)
    results: list[tuple[ManifestEntry, Structure]] = []

    def centre_distance(frac) -> float:
        return float(structure.lattice.get_all_distances([frac], [centre])[0][0])

    for req in requests:
        for name in concrete_names(req.name, a, b_species, x_species):
            parts = name.split("+")
            kind = "complex" if len(parts) > 1 else _parse(name)[0]
            charges = list(req.charges) if req.charges else default_charges(name)
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
    kind, species, site = _parse(name)
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
    types = _interstitial_types(host, min_distance)
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
    from perovskite_defects.hosts.perovskite import cubic_prototype

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
    kind, _, site = _parse(partner)
    if kind != "vacancy":
        raise ValueError(f"complex partner {partner!r} must be a vacancy")
    idx = [i for i, s in enumerate(structure) if s.specie.symbol == site and i not in remove]
    nearest = _nearest(structure, rep["frac"], idx, 1)[0]
    return remove + [nearest], add
