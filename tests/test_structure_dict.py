"""``structure_as_dict`` writes exactly pymatgen's ``Structure.as_dict()`` (the reference)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from perovskite_defects.engines.structure_dict import ELEMENT_SYMBOLS, structure_as_dict


def _pymatgen(lattice: np.ndarray, species: list[str], frac: np.ndarray) -> dict:
    return Structure(Lattice(lattice), species, frac).as_dict()


def _assert_identical(ours: dict, theirs: dict) -> None:
    assert ours == theirs
    assert json.dumps(ours) == json.dumps(theirs)  # same key order and float text as well
    assert Structure.from_dict(ours) == Structure.from_dict(theirs)


@pytest.mark.parametrize("seed", range(5))
def test_random_triclinic_cells_match_pymatgen(seed: int) -> None:
    rng = np.random.default_rng(seed)
    lattice = np.diag(rng.uniform(4, 12, 3)) + rng.uniform(-2, 2, (3, 3))
    frac = rng.uniform(-0.2, 1.2, (7, 3))  # unwrapped coordinates stay as given
    species = [str(s) for s in rng.choice(["Cs", "Pb", "Sn", "I", "Br", "Na", "H"], 7)]
    _assert_identical(structure_as_dict(lattice, species, frac), _pymatgen(lattice, species, frac))


@pytest.mark.reference
def test_cdte_reference_structures_match_pymatgen(cdte_reference: Path) -> None:
    from perovskite_defects.engines.vasprun import read_vasprun

    for folder in ("bulk_vasp_gam", "v_Cd_-2_choppy_changy_vasp_gam"):
        run = read_vasprun(cdte_reference / folder / "vasprun.xml.gz")
        assert run.lattice is not None and run.frac_coords is not None
        _assert_identical(
            structure_as_dict(run.lattice, run.atoms, run.frac_coords),
            _pymatgen(run.lattice, run.atoms, run.frac_coords),
        )


def test_non_elements_are_left_to_pymatgen() -> None:
    lattice, frac = np.eye(3) * 5.0, np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]])
    from pymatgen.core import Element

    assert {e.symbol for e in Element} == ELEMENT_SYMBOLS  # pymatgen's elements, no others
    assert "X0+" not in ELEMENT_SYMBOLS
    _assert_identical(
        structure_as_dict(lattice, ["Cs", "X0+"], frac), _pymatgen(lattice, ["Cs", "X0+"], frac)
    )
