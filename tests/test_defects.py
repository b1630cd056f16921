"""Host prototype and defect supercells."""

from __future__ import annotations

import numpy as np
import pytest

from perovskite_defects import config as cfg
from perovskite_defects.defects.distinct_sites import DefectCell, make_defect_cell
from perovskite_defects.hosts.perovskite import cubic_prototype, min_image_distance, supercell


@pytest.fixture(scope="module")
def unit():
    return cubic_prototype("Cs", "Pb", "I", 6.4)


def test_prototype_geometry(unit) -> None:
    assert unit.composition.reduced_formula == "CsPbI3"
    assert unit.get_space_group_info()[0] == "Pm-3m"
    # Pb-I bond is half the lattice constant in the ideal cubic perovskite
    pb = [i for i, s in enumerate(unit) if s.specie.symbol == "Pb"][0]
    i_site = [i for i, s in enumerate(unit) if s.specie.symbol == "I"][0]
    assert unit.get_distance(pb, i_site) == pytest.approx(3.2)


def test_supercell_and_image_distance(unit) -> None:
    sc = supercell(unit, [2, 2, 2])
    assert len(sc) == 40
    assert min_image_distance(sc) == pytest.approx(12.8)
    with pytest.raises(ValueError):
        supercell(unit, [2, 0, 2])
    with pytest.raises(ValueError):
        cubic_prototype("Cs", "Pb", "I", 40.0)


@pytest.mark.parametrize(
    ("name", "charges", "n_atoms", "formula_change", "multiplicity"),
    [
        ("V_I", [1, 0, -1], 39, {"I": -1}, 3),
        ("Na_Cs", [0], 40, {"Na": 1, "Cs": -1}, 1),
        ("Na_Pb", [0, -1], 40, {"Na": 1, "Pb": -1}, 1),
        ("Na_i", [1, 0], 41, {"Na": 1}, 3),
        ("V_Pb", [-2], 39, {"Pb": -1}, 1),
        ("V_Cs", [-1], 39, {"Cs": -1}, 1),
    ],
)
def test_defect_cells(unit, name, charges, n_atoms, formula_change, multiplicity) -> None:
    spec = cfg.parse_defect({"name": name, "charges": charges})
    cell = make_defect_cell(unit, spec, [2, 2, 2])
    structure = cell.pmg_structure()
    assert len(structure) == n_atoms
    host = supercell(unit, [2, 2, 2]).composition
    for element, change in formula_change.items():
        assert structure.composition[element] - host[element] == change
    assert cell.atoms_added == formula_change
    # Multiplicity per unit cell: 3 I sites; 1 Cs, 1 Pb; the Voronoi interstitial site
    # at the cube-edge midpoint (1/2, 0, 0) has 3 equivalents.
    assert cell.multiplicity == multiplicity
    # No two atoms closer than 2 Å (shortest bond here: Na-I ~3 Å)
    dist = structure.distance_matrix + np.eye(len(structure)) * 100
    assert dist.min() > 2.0


def test_defect_is_placed_near_the_supercell_centre(unit) -> None:
    cell = make_defect_cell(unit, cfg.parse_defect({"name": "Na_Cs", "charges": [0]}), [2, 2, 2])
    assert np.allclose(cell.frac_coords, [0.5, 0.5, 0.5])
    structure = cell.pmg_structure()
    na = [s for s in structure if s.specie.symbol == "Na"][0]
    assert np.allclose(na.frac_coords, cell.frac_coords)


def test_atoms_beyond_radius_for_local_relaxation(unit) -> None:
    cell = make_defect_cell(unit, cfg.parse_defect({"name": "V_I", "charges": [0]}), [2, 2, 2])
    # Within 3.3 Å of a removed iodine: its two Pb neighbours (3.2 Å) and no other atom.
    moving = set(range(39)) - set(cell.atoms_beyond(3.3))
    assert sorted(cell.pmg_structure()[i].specie.symbol for i in moving) == ["Pb", "Pb"]


def test_defect_cell_json_round_trip(unit, tmp_path) -> None:
    cell = make_defect_cell(unit, cfg.parse_defect({"name": "Na_i", "charges": [1, 0]}), [2, 2, 2])
    cell.to_json(tmp_path / "d.json")
    back = DefectCell.from_json(tmp_path / "d.json")
    assert back.name == cell.name and back.charges == cell.charges
    assert back.multiplicity == cell.multiplicity and back.atoms_added == cell.atoms_added
    assert np.allclose(back.frac_coords, cell.frac_coords)
    assert back.pmg_structure() == cell.pmg_structure()


def test_bad_site_index_is_explained(unit) -> None:
    spec = cfg.parse_defect({"name": "V_I", "charges": [0], "site_index": 3})
    with pytest.raises(ValueError, match="only 1 symmetry-distinct"):
        make_defect_cell(unit, spec, [2, 2, 2])
