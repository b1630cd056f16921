"""SOC band-edge shifts of cubic CsPbI3 against the size of the SOC basis (issue 14).

Run by Debian's interpreter that has GPAW (``/usr/bin/python3``), not the project venv::

    nice -n 10 /usr/bin/python3 bench/soc_band_convergence.py --a 6.388 --cutoff 300 \
        --kpts 2 --nbands 400 --out soc_conv.json

One scalar-relativistic PBE SCF, then GPAW's full diagonalisation of the PW Hamiltonian
(``diagonalize_full_hamiltonian``) for ``--nbands`` exact Kohn-Sham states, then
``soc_eigenstates`` with the basis cut at n2 = 30 ... nbands bands. The edges are at R
(on every even Gamma-centred mesh). Prints and writes a table of n2, VBM/CBM shifts and
gaps (eV). Uses only numpy, ASE and GPAW.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def cspbi3(a: float):
    from ase import Atoms

    pos = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    return Atoms("CsPbI3", scaled_positions=pos, cell=[a, a, a], pbc=True)


def edges(eig_km: np.ndarray, n_occ: int) -> tuple[float, float]:
    return float(eig_km[:, n_occ - 1].max()), float(eig_km[:, n_occ].min())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--a", type=float, default=6.388)
    p.add_argument("--cutoff", type=float, default=300.0)
    p.add_argument("--kpts", type=int, default=2)
    p.add_argument("--nbands", type=int, default=400)
    p.add_argument("--cuts", default="30,46,70,100,150,200,300,400,600,800")
    p.add_argument("--out", default="soc_conv.json")
    args = p.parse_args()

    from gpaw import GPAW, PW, FermiDirac
    from gpaw.spinorbit import soc_eigenstates

    t0 = time.time()
    atoms = cspbi3(args.a)
    calc = GPAW(
        mode=PW(args.cutoff, force_complex_dtype=True),
        xc="PBE",
        kpts={"size": [args.kpts] * 3, "gamma": True},
        occupations=FermiDirac(0.01),
        convergence={"eigenstates": 1e-8},
        txt=args.out + ".gpaw.txt",
        parallel={"domain": 1, "band": 1},
    )
    atoms.calc = calc
    atoms.get_potential_energy()
    t_scf = time.time() - t0
    npw = int(calc.wfs.ng_k.min())
    nb = min(args.nbands, npw)
    calc.diagonalize_full_hamiltonian(nbands=nb, expert=True)  # lowest nb only
    t_diag = time.time() - t0 - t_scf
    n_occ = int(round(calc.get_number_of_electrons()))  # spinor states
    rows = []
    for n2 in [int(x) for x in args.cuts.split(",")] + [nb]:
        if n2 > nb or any(r["bands"] == n2 for r in rows):
            continue
        t1 = time.time()
        e_ref = np.sort(soc_eigenstates(calc, n2=n2, scale=0.0).eigenvalues(), axis=1)
        e_soc = np.sort(soc_eigenstates(calc, n2=n2).eigenvalues(), axis=1)
        v0, c0 = edges(e_ref, n_occ)
        v1, c1 = edges(e_soc, n_occ)
        row = {
            "bands": n2,
            "vbm_shift": v1 - v0,
            "cbm_shift": c1 - c0,
            "gap_pbe": c0 - v0,
            "gap_soc": c1 - v1,
            "lowest_shift": float(e_soc[:, 0].min() - e_ref[:, 0].min()),
            "top_band_eV": float(e_ref[:, -1].min() - v0),
            "t_s": round(time.time() - t1, 1),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    out = {
        "a": args.a,
        "cutoff": args.cutoff,
        "kpts": args.kpts,
        "n_plane_waves_min": npw,
        "n_occ_spinor": n_occ,
        "timings_s": {"scf": round(t_scf, 1), "full_diag": round(t_diag, 1)},
        "rows": rows,
    }
    with open(args.out, "w") as fh:
        json.dump(out, fh, indent=1)
    print(json.dumps(out["timings_s"]), "npw", npw)


if __name__ == "__main__":
    main()
