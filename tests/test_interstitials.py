"""Na interstitial candidates come from the host's own ordered parent cell.

The non-cubic case is a tilted CsPbI3 built here from its space group: the a0a0c+ tilt
pattern in P4/mbm (No. 127, sqrt(2) x sqrt(2) x 1 cell, Pb 2a, Cs 2c, apical I 2b,
equatorial I 4g (x, x + 1/2, 0)). x = 0.21 instead of the untilted 1/4 rotates the
octahedra about c by about 9 degrees; the geometry is a constructed test case, not a
published structure, and nothing below depends on its exact numbers.
"""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from perovskite_defects.defects.manifest import DefectRequest
from perovskite_defects.defects.site_classes import (
    _interstitial_types,
    build_defect_set,
    parent_cell_of,
)
from perovskite_defects.hosts.composition import choose_supercell, parse_composition
from perovskite_defects.hosts.perovskite import HostStructure, build_host, cubic_prototype

MIN_DISTANCE = 1.5


def tilted_cspbi3(x: float = 0.21, a0: float = 6.3) -> Structure:
    return Structure.from_spacegroup(
        "P4/mbm",
        Lattice.tetragonal(np.sqrt(2) * a0, a0),
        ["Pb", "Cs", "I", "I"],
        [[0, 0, 0], [0, 0.5, 0.5], [0, 0, 0.5], [x, x + 0.5, 0]],
    )


def tilted_host(multiples=(1, 1, 2)) -> HostStructure:
    comp = parse_composition({"A": "Cs", "X": "I", "x": 0}, "host")
    user = tilted_cspbi3()
    lengths = [user.lattice.a, user.lattice.b, user.lattice.c]
    choice = choose_supercell(
        comp, lengths, list(multiples), 12.0, 1000, 0.05, "host", formula_units_per_cell=2
    )
    a = comp.literature_lattice()
    return build_host(comp, a, choice.multiples, choice.counts, user_structure=user)


def _orbit(parent: Structure, frac: np.ndarray) -> list[np.ndarray]:
    """Distinct images of ``frac`` under the parent's space-group operations (spglib)."""
    ops = SpacegroupAnalyzer(parent, symprec=1e-3).get_symmetry_operations(cartesian=False)
    orbit: list[np.ndarray] = []
    for op in ops:
        image = np.mod(op.operate(frac), 1.0)
        if not any(_same_point(parent.lattice, image, q) for q in orbit):
            orbit.append(image)
    return orbit


def _same_point(lattice: Lattice, a: np.ndarray, b: np.ndarray, tol: float = 1e-3) -> bool:
    return lattice.get_all_distances([a], [b])[0, 0] < tol


def test_tilted_parent_is_what_the_generator_sees() -> None:
    host = tilted_host()
    parent = parent_cell_of(host)
    assert host.metadata["prototype"] == "user structure"
    assert SpacegroupAnalyzer(parent, symprec=1e-3).get_space_group_number() == 127
    assert parent.composition.reduced_formula == "CsPbI3"
    # the supercell repeats that parent
    expected = np.diag(host.metadata["supercell"]) @ parent.lattice.matrix
    assert np.allclose(host.structure.lattice.matrix, expected)


def test_tilted_candidates_are_inside_far_from_atoms_and_symmetry_distinct() -> None:
    host = tilted_host()
    parent = parent_cell_of(host)
    types = _interstitial_types(host, MIN_DISTANCE)
    assert len(types) >= 2, "a tilted cell has more than one kind of hole"
    for t, fracs in enumerate(types):
        assert np.all((fracs >= 0) & (fracs < 1)), f"type {t}: outside the cell"
        d = parent.lattice.get_all_distances(fracs, parent.frac_coords)
        assert d.min() >= MIN_DISTANCE, f"type {t}: {d.min():.2f} Å from an atom"
        # the listed equivalent positions are exactly the orbit that spglib's operations
        # generate (its size is the Wyckoff multiplicity of the site)
        orbit = _orbit(parent, fracs[0])
        assert len(fracs) == len(orbit)
        for p in fracs:
            assert any(_same_point(parent.lattice, p, q) for q in orbit)
        # and no other type lies on that orbit
        for u, others in enumerate(types):
            if u != t:
                assert not any(_same_point(parent.lattice, q, p) for q in orbit for p in others), (
                    f"types {t} and {u} are symmetry-equivalent"
                )


def test_tilted_supercell_candidates_follow_the_parent() -> None:
    host = tilted_host()
    types = _interstitial_types(host, MIN_DISTANCE)
    n_cells = int(np.prod(host.metadata["supercell"]))
    entries, built = build_defect_set(
        host,
        [DefectRequest("Na_i", all_sites=True)],
        representatives=1,
        min_distance=MIN_DISTANCE,
    )
    by_type = {e.site_class: e for e in entries}
    assert sorted(by_type) == sorted(f"i{t}" for t in range(len(types)))
    n_fu = len(host.structure) / 5
    for t, fracs in enumerate(types):
        entry = by_type[f"i{t}"]
        # every image of every equivalent parent position is a site of this class
        assert entry.class_size == len(fracs) * n_cells
        assert entry.multiplicity == pytest.approx(len(fracs) * n_cells / n_fu)
    for entry, structure in built:
        na = [i for i, s in enumerate(structure) if s.specie.symbol == "Na"]
        assert len(na) == 1
        d = np.delete(structure.distance_matrix[na[0]], na[0])
        assert d.min() >= MIN_DISTANCE, entry.id


def test_cubic_host_keeps_the_prototype_sites() -> None:
    comp = parse_composition({"A": "Cs", "X": "I", "x": 0}, "host")
    a = 6.4
    choice = choose_supercell(comp, [a] * 3, [2, 2, 2], 12.0, 1000, 0.05, "host")
    host = build_host(comp, a, choice.multiples, choice.counts)
    parent = parent_cell_of(host)
    prototype = cubic_prototype("Cs", "Pb", "I", a)
    assert np.allclose(parent.lattice.matrix, prototype.lattice.matrix)
    assert np.allclose(parent.frac_coords, prototype.frac_coords)
    types = _interstitial_types(host, MIN_DISTANCE)
    # the same sites as the generator finds in the prototype itself, in the same order
    from pymatgen.analysis.defects.generators import VoronoiInterstitialGenerator

    reference = [
        np.mod([s.frac_coords for s in d.equivalent_sites], 1.0)
        for d in VoronoiInterstitialGenerator().generate(prototype, ["Na"])
    ]
    assert len(types) == len(reference)
    for mine, theirs in zip(types, reference, strict=True):
        assert np.allclose(mine, theirs)
    # Pm-3m: the first (default) type is a 3-fold site
    assert len(types[0]) == 3 == len(_orbit(parent, types[0][0]))


def test_old_host_file_without_parent_of_a_user_structure_is_refused() -> None:
    host = tilted_host()
    host.metadata.pop("parent_cell")
    with pytest.raises(ValueError, match="no parent_cell"):
        parent_cell_of(host)
    cubic = HostStructure(
        host.name,
        host.structure,
        host.a_sites,
        {**host.metadata, "prototype": "cubic Pm-3m"},
    )
    assert SpacegroupAnalyzer(parent_cell_of(cubic)).get_space_group_number() == 221
