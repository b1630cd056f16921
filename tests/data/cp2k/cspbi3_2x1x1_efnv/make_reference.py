"""pydefect's eFNV on the stored 2x1x1 CsPbI3 CP2K runs: the reference numbers of
tests/test_efnv_elongated.py. Not run by CI (pydefect is not a project dependency).

Run from the repository root, in a venv holding pydefect (recorded: pydefect 0.10.1, vise
0.9.6, pymatgen 2026.10.24, numpy 2.4.6, installed with ``pip install pydefect``):

    python -m venv /tmp/pydefect_venv && /tmp/pydefect_venv/bin/pip install pydefect
    PYTHONPATH=workflow /tmp/pydefect_venv/bin/python \
        tests/data/cp2k/cspbi3_2x1x1_efnv/make_reference.py | grep -v INFO

(pydefect/vise print their settings as INFO lines on stdout; the rest is one JSON object.)

The structures and site potentials are read with this package's CP2K parser and its
1 Å sphere averages of the Hartree cube (what ``correction()`` feeds eFNV), then handed to
pydefect's ``make_efnv_correction`` with pydefect's sign (potential acting on a positive
charge: minus the electron potential energy, as pydefect's own OUTCAR reader does).
"""

from __future__ import annotations

import gzip
import json
import shutil
import tempfile
from importlib.metadata import version
from pathlib import Path

import numpy as np
from pydefect.analyzer.calc_results import CalcResults
from pydefect.cli.vasp.make_efnv_correction import make_efnv_correction
from pydefect.corrections.defect_region import FixedDistanceDefectRegion
from pymatgen.core import IStructure

from perovskite_defects.corrections.sampling import ON_SPHERE_TOL, inscribed_sphere_radius
from perovskite_defects.engines import cp2k
from perovskite_defects.engines.potentials import read_potential_grid, site_potentials

HERE = Path(__file__).resolve().parent
EPS = np.diag([8.0, 8.0, 12.0])  # arbitrary anisotropic test tensor
SITE_RADIUS = 1.0  # Å, the workflow's default site_radius
DEFECTS = {"v_i_q1": 1, "na_i_q1": 1}


def calc_results(run: str, tmp: Path) -> CalcResults:
    """Unpack one stored run and give pydefect its structure and site potentials."""
    folder = tmp / run
    shutil.copytree(HERE / run, folder)
    (folder / "cp2k.out").write_bytes(gzip.decompress((folder / "cp2k.out.gz").read_bytes()))
    record = cp2k.parse(folder)
    structure = record.pmg_structure()
    grid = read_potential_grid(folder / str(record.potential_file))
    pots = site_potentials(grid, structure.frac_coords, SITE_RADIUS)
    return CalcResults(
        structure=IStructure.from_sites(structure),
        energy=record.energy,
        magnetization=0.0,
        potentials=[-float(p) for p in pots],
    )


def summary(corr) -> dict:
    sampled = [s for s in corr.sites if s.distance > corr.defect_region_radius]
    return {
        "total": corr.correction_energy,
        "point_charge": corr.point_charge_correction,
        "alignment": -corr.alignment_correction,  # pydefect's sign: -q dV; ours: q dV
        "radius": corr.defect_region_radius,
        "n_sampled": len(sampled),
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        perfect = calc_results("bulk", tmp)
        lattice = perfect.structure.lattice.matrix
        out: dict = {"pydefect": version("pydefect"), "eps": EPS.tolist()}
        for run, charge in DEFECTS.items():
            defect = calc_results(run, tmp)
            default = make_efnv_correction(charge, defect, perfect, EPS)
            radius = default.defect_region_radius
            regions = {
                # pydefect as it comes: HalfMaxFaceDistanceDefectRegion(1.0)
                "pydefect_default": default,
                # the same radius, atoms on the sphere left out (this package's rule)
                "half_max_face_distance": make_efnv_correction(
                    charge, defect, perfect, EPS,
                    defect_region=FixedDistanceDefectRegion(radius + ON_SPHERE_TOL),
                ),
                # the sphere inscribed in the Wigner-Seitz cell, same on-sphere rule
                "ws_inscribed_sphere": make_efnv_correction(
                    charge, defect, perfect, EPS,
                    defect_region=FixedDistanceDefectRegion(
                        inscribed_sphere_radius(lattice) + ON_SPHERE_TOL
                    ),
                ),
            }  # fmt: skip
            out[run] = {name: summary(corr) for name, corr in regions.items()}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
