"""Step 1 of the ShakeNBreak reference: defect cells of the default host, built by this
package (run with the project's venv; see README.md in this folder)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pymatgen.core import Structure

from perovskite_defects.config import DefectSpec
from perovskite_defects.defects.distinct_sites import make_defect_cell
from perovskite_defects.defects.names import atoms_added, default_charges, parse_name
from perovskite_defects.hosts.composition import end_member_lattice
from perovskite_defects.hosts.perovskite import cubic_prototype, supercell

HERE = Path(__file__).parent
NAMES = ("V_I", "I_i", "Na_i", "Na_Pb")
MULTIPLES = (2, 2, 2)


def main() -> None:
    a, _ = end_member_lattice("Cs", "Pb", "I")
    unit = cubic_prototype("Cs", "Pb", "I", a)
    supercell(unit, MULTIPLES).to(filename=str(HERE / "bulk.POSCAR"), fmt="poscar")
    index = {}
    for name in NAMES:
        kind, species, site = parse_name(name)
        charges = tuple(default_charges(name, ("Cs", "Pb", "I")))
        spec = DefectSpec(name, kind, species, site, charges)
        assert spec.atoms_added == atoms_added(name)
        cell = make_defect_cell(unit, spec, MULTIPLES)
        structure = cell.pmg_structure()
        structure.to(filename=str(HERE / f"{name}.POSCAR"), fmt="poscar")
        site_index = None
        if kind != "vacancy":
            dists = structure.lattice.get_all_distances([cell.frac_coords], structure.frac_coords)
            site_index = int(dists[0].argmin())
        index[name] = {
            "kind": kind,
            "charges": list(charges),
            "frac_coords": cell.frac_coords,
            "site_index": site_index,
        }
    # near-degenerate neighbour shells: the ideal cells with every atom moved by a seeded
    # Gaussian draw (0.03 Å per component), so ordering by rounded distance and index matters
    rng = np.random.default_rng(2026)
    for name in ("V_I", "I_i"):
        structure = Structure.from_file(HERE / f"{name}.POSCAR")
        moved = Structure(
            structure.lattice,
            structure.species,
            structure.cart_coords + rng.normal(0.0, 0.03, (len(structure), 3)),
            coords_are_cartesian=True,
        )
        moved.to(filename=str(HERE / f"{name}_perturbed.POSCAR"), fmt="poscar")
        index[f"{name}_perturbed"] = dict(index[name])
    record = {"lattice_constant": a, "defects": index}
    (HERE / "cells.json").write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
