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
        # shortest interatomic distance: the I-I bond of solid iodine, 2.72 Å, is the shortest
        dmin = min(s.get_distance(i, j) for i in range(len(s)) for j in range(i + 1, len(s)))
        assert dmin > 2.6


def test_iodine_keeps_its_molecular_bond() -> None:
    s = load_phase("I2").structure
    dmin = min(s.get_distance(i, j) for i in range(len(s)) for j in range(i + 1, len(s)))
    assert dmin == pytest.approx(2.72, abs=0.02)  # I-I in the solid at 110 K
    assert load_phase("I2").relax == "ions"


@pytest.mark.parametrize(
    ("name", "free"),
    [("Cs", False), ("Na", False), ("Pb", False), ("CsI", False), ("NaI", False),
     ("PbI2", True), ("I2", True)],
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
