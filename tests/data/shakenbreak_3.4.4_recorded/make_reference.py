"""Step 2 of the ShakeNBreak reference: run ShakeNBreak 3.4.4 on the cells of make_cells.py.

Run with the interpreter that has ShakeNBreak (see README.md in this folder):
    /tmp/doped-venv/bin/python tests/data/shakenbreak_3.4.4_recorded/make_reference.py
Writes reference.json: per defect, ShakeNBreak's own neighbour counts, trial labels and
rattle stdev per charge state (Distortions.from_structures + apply_distortions, the path
a user takes) and the
bond-distorted coordinates (of the sites that moved) of
shakenbreak.distortions.distort (no rattle) for every
default bond distortion and neighbour count 1..4.
"""

from __future__ import annotations

import json
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
from pymatgen.core import Structure
from shakenbreak.distortions import distort
from shakenbreak.input import Distortions

HERE = Path(__file__).parent
OXIDATION = {"Cs": 1, "Pb": 2, "I": -1, "Na": 1}
DISTORTIONS = [round(0.1 * k, 1) for k in range(-6, 7)]


def _user_path(structure: Structure, bulk: Structure, where) -> dict:
    """What ShakeNBreak's user path gives per charge state of one defect: the number of
    distorted neighbours, the trial labels, and the rattle stdev it chose."""
    dist = Distortions.from_structures(
        [(structure, where)], bulk=bulk, oxidation_states=dict(OXIDATION)
    )
    trials, meta = dist.apply_distortions(verbose=False)
    ((_, entry),) = meta["defects"].items()
    ((_, by_charge),) = trials.items()
    return {
        "neighbour_counts": {
            str(q): c["num_nearest_neighbours"] for q, c in entry["charges"].items()
        },
        "trial_labels": {
            str(q): list(c["structures"]["distortions"]) for q, c in by_charge["charges"].items()
        },
        "stdev": float(dist.stdev),
    }


def main() -> None:
    cells = json.loads((HERE / "cells.json").read_text())["defects"]
    bulk = Structure.from_file(HERE / "bulk.POSCAR")
    out: dict = {"shakenbreak_version": version("shakenbreak"), "defects": {}}
    for name, info in cells.items():
        structure = Structure.from_file(HERE / f"{name}.POSCAR")
        frac = np.array(info["frac_coords"])
        index = info["site_index"]
        record: dict = {"distorted": {}}
        if not name.endswith("_perturbed"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                record.update(_user_path(structure, bulk, index if index is not None else frac))
        for n in (1, 2, 3, 4):
            for d in DISTORTIONS:
                kwargs = {"site_index": index} if index is not None else {"frac_coords": frac}
                res = distort(structure, n, 1 + d, **kwargs)
                new = res["distorted_structure"]
                shift = [site.distance(old) for site, old in zip(new, structure, strict=True)]
                record["distorted"][f"{n}:{d}"] = {
                    "distorted_atoms": [int(a[0]) for a in res["distorted_atoms"]],
                    # only the sites that moved (> 1e-9 Å); the largest shift of the rest
                    "moved": {
                        str(i): new[i].frac_coords.tolist() for i, s in enumerate(shift) if s > 1e-9
                    },
                    "max_shift_of_others": max((s for s in shift if s <= 1e-9), default=0.0),
                }
        out["defects"][name] = record
    (HERE / "reference.json").write_text(json.dumps(out, indent=0) + "\n")


if __name__ == "__main__":
    main()
