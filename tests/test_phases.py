"""Competing-phase structure files and the symmetry test for single points."""

from __future__ import annotations

import pytest
from pymatgen.core import Lattice, Structure

from perovskite_defects.config import PHASES_DIR
from perovskite_defects.phases import has_free_internal_coordinates, load_phase

ALL = sorted(p.stem for p in PHASES_DIR.glob("*.cif"))


def test_default_phases_are_shipped() -> None:
    assert {"Cs", "Pb", "I2", "Na", "CsI", "PbI2", "NaI"} <= set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_every_phase_names_its_source_and_is_physical(name: str) -> None:
    phase = load_phase(name)
    assert len(phase.source) > 20 and any(ch.isdigit() for ch in phase.source)
    assert phase.relax in ("cell", "ions")
    s = phase.structure
    if len(s) > 1:
        # shortest interatomic distance (periodic images included) against the known bond
        dmin = min(n.nn_distance for site in s for n in s.get_neighbors(site, 4.0))
        assert dmin == pytest.approx(SHORTEST_BOND[name], abs=0.03)


# Shortest bonds of the experimental structures (Å): diatomic r_e from Huber & Herzberg
# (1979); graphite a/sqrt(3); alpha-Sn a*sqrt(3)/4; CsCl type a*sqrt(3)/2; rock salt a/2;
# solid iodine 2.72; bcc a*sqrt(3)/2, fcc a/sqrt(2); cotunnite-type: shortest M-X of PbCl2
# (2.86, Sass et al. 1963) at the lattice constants of each compound; CdI2-type PbI2 3.21.
SHORTEST_BOND = {
    "H2": 0.741, "N2": 1.098, "Cl2": 1.988, "Br2": 2.281, "C": 1.423, "I2": 2.72,
    "Sn": 2.810, "Cs": 5.24, "Na": 3.66, "Pb": 3.50,
    "CsI": 3.955, "CsBr": 3.720, "CsCl": 3.571, "NaI": 3.237, "NaBr": 2.989, "NaCl": 2.820,
    "PbI2": 3.21, "PbCl2": 2.858, "PbBr2": 3.019, "SnCl2": 2.864,
}  # fmt: skip


def test_every_shipped_phase_has_a_known_bond() -> None:
    assert set(ALL) == set(SHORTEST_BOND)


def test_molecules_sit_in_a_box_and_relax_their_bond_only() -> None:
    for name in ("H2", "N2", "Cl2", "Br2"):
        phase = load_phase(name)
        assert len(phase.structure) == 2 and min(phase.structure.lattice.abc) >= 12.0
        assert phase.relax == "ions" and has_free_internal_coordinates(phase.structure)


def test_iodine_keeps_its_molecular_bond() -> None:
    s = load_phase("I2").structure
    dmin = min(s.get_distance(i, j) for i in range(len(s)) for j in range(i + 1, len(s)))
    assert dmin == pytest.approx(2.72, abs=0.02)  # I-I in the solid at 110 K
    assert load_phase("I2").relax == "ions"


@pytest.mark.parametrize(
    ("name", "free"),
    [("Cs", False), ("Na", False), ("Pb", False), ("CsI", False), ("NaI", False),
     ("PbI2", True), ("I2", True), ("Sn", False), ("C", False), ("CsBr", False),
     ("NaCl", False), ("PbCl2", True), ("H2", True)],
)  # fmt: skip
def test_free_internal_coordinates(name: str, free: bool) -> None:
    assert has_free_internal_coordinates(load_phase(name).structure) is free


def test_free_coordinates_found_in_low_symmetry_cell() -> None:
    s = Structure(Lattice.orthorhombic(4, 5, 6), ["Na", "Cl"], [[0, 0, 0], [0.3, 0.1, 0.2]])
    assert has_free_internal_coordinates(s)


def test_missing_phase_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="Xy.cif"):
        load_phase("Xy")
    (tmp_path / "Q.cif").write_text("data_Q\n")
    with pytest.raises(ValueError, match="header must give"):
        load_phase("Q", tmp_path)
