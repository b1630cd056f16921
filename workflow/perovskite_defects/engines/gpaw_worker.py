"""GPAW run of one cell: scalar-relativistic PBE SCF, then spin-orbit coupling on top.

This file is a stand-alone script, run by the interpreter that has GPAW (Debian's
``/usr/bin/python3`` with the ``gpaw`` and ``gpaw-data`` packages), never imported by the
workflow: it uses only the standard library, numpy, ASE and GPAW, so the project's own
virtual environment needs neither GPAW nor its compiled extensions (see
:mod:`perovskite_defects.engines.gpaw` for why). Usage::

    python3 gpaw_worker.py RUN_DIR

It reads ``RUN_DIR/gpaw_input.json`` (written by ``GpawEngine.write_input``) and writes
``RUN_DIR/gpaw_result.json`` and GPAW's own log ``RUN_DIR/gpaw.txt``.

Spin-orbit coupling is GPAW's non-self-consistent routine
(:func:`gpaw.spinorbit.soc_eigenstates`): the SOC Hamiltonian inside the PAW spheres is
diagonalised in a basis of converged scalar-relativistic Kohn-Sham states, on the full
Brillouin zone. The basis: with ``soc_bands`` > 0 the lowest ``soc_bands`` eigenstates of
a full (dense) diagonalisation of the converged PW Hamiltonian (GPAW's
``diagonalize_full_hamiltonian``), else the SCF's own bands. Adding basis states can only
lower each sorted eigenvalue (Cauchy interlacing), so a small basis leaves the VBM too
high: its SOC shift is second order, through many bands up to ~40 eV above it. The SOC
edges in the SCF's bands are recorded as well (``soc_scf_basis``) to show the size of
that error. The reference eigenvalues "without SOC" come
from the same routine with the coupling scaled to zero, so both sets are eigenvalues of
one calculation on one k-set and one energy zero: their difference is the SOC shift.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

# Run as a script, Python puts this folder first on sys.path, where the engine module
# gpaw.py would shadow the real GPAW package: take it off.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

INPUT = "gpaw_input.json"
RESULT = "gpaw_result.json"
LOG = "gpaw.txt"


def _atoms(data: dict):
    from ase import Atoms

    return Atoms(
        symbols=data["symbols"],
        scaled_positions=data["frac_coords"],
        cell=data["lattice"],
        pbc=True,
    )


def _edges(eig_km: np.ndarray, n_occ: int, kpts: np.ndarray) -> dict:
    """VBM/CBM (eV) of eigenvalues per k-point (sorted per k) with n_occ filled states,
    and the k-points (fractional) where they are."""
    vb, cb = eig_km[:, n_occ - 1], eig_km[:, n_occ]
    kv, kc = int(np.argmax(vb)), int(np.argmin(cb))
    return {
        "vbm": float(vb[kv]),
        "cbm": float(cb[kc]),
        "k_vbm": [float(x) for x in kpts[kv]],
        "k_cbm": [float(x) for x in kpts[kc]],
    }


def main(run_dir: Path) -> None:
    import ase
    import gpaw
    from gpaw import GPAW, PW, FermiDirac
    from gpaw.spinorbit import soc_eigenstates

    data = json.loads((run_dir / INPUT).read_text())
    s = data["settings"]
    atoms = _atoms(data)
    soc_bands = int(s.get("soc_bands", 0))
    calc = GPAW(
        # complex wave functions everywhere: the full diagonalisation needs them
        mode=PW(s["cutoff"], force_complex_dtype=soc_bands > 0),
        xc=s["xc"],
        kpts={"size": data["kpoint_mesh"], "gamma": True},
        nbands=data["nbands"],
        charge=data["charge"],
        occupations=FermiDirac(s["smearing"]),
        # every band but the top 4 converged: all of them enter the SOC basis
        convergence={"bands": -4, "eigenstates": s["eigenstates"]},
        maxiter=s["max_scf"],
        txt=str(run_dir / LOG),
        parallel={"domain": 1, "band": 1},
    )
    atoms.calc = calc
    start = time.time()
    converged = True
    try:
        energy = atoms.get_potential_energy()
    except gpaw.KohnShamConvergenceError:
        converged, energy = False, float("nan")
    t_scf = time.time() - start
    result: dict = {
        "gpaw_version": gpaw.__version__,
        "ase_version": ase.__version__,
        "scf_converged": converged,
        "energy": float(energy),
        "timings_s": {"scf": round(t_scf, 2)},
    }
    if converged:
        nelect = float(calc.get_number_of_electrons())
        result["nelect"] = nelect
        result["nspins"] = int(calc.get_number_of_spins())
        result["setups"] = sorted(
            {f"{sym}: {str(calc.wfs.setups[i].filename)}" for i, sym in enumerate(atoms.symbols)}
        )
        result.update(_soc_result(calc, soc_eigenstates, nelect, soc_bands))
        result["timings_s"]["soc"] = round(time.time() - start - t_scf, 2)
    (run_dir / RESULT).write_text(json.dumps(result, indent=1))


def _soc_result(calc, soc_eigenstates, nelect: float, soc_bands: int) -> dict:
    """Band edges without and with SOC from the same calculation (eV)."""
    n_occ = int(round(nelect))
    if abs(n_occ - nelect) > 1e-6 or calc.get_number_of_spins() != 1:
        # fractional or spin-polarised filling has no single VBM/CBM: leave them out
        return {"soc": None, "no_soc": None}
    # the scalar-relativistic eigenvalues of the SCF itself (IBZ, spin-degenerate), as a
    # check (taken before any full diagonalisation) that the scale-0 spinor set reproduces them
    scalar = np.array([calc.get_eigenvalues(kpt=k) for k in range(len(calc.get_ibz_k_points()))])
    kpts = np.asarray(calc.wfs.kd.bzk_kc)
    e_scf_basis = np.sort(soc_eigenstates(calc).eigenvalues(), axis=1)
    scf_basis = {"bands": int(calc.get_number_of_bands()), **_edges(e_scf_basis, n_occ, kpts)}
    if soc_bands > 0:
        # never more bands than plane waves at the k-point with fewest
        nbands = min(soc_bands, int(calc.wfs.ng_k.min()))
        calc.diagonalize_full_hamiltonian(nbands=nbands, expert=True)
    with_soc = soc_eigenstates(calc)
    without = soc_eigenstates(calc, scale=0.0)
    e_soc = np.sort(with_soc.eigenvalues(), axis=1)
    e_ref = np.sort(without.eigenvalues(), axis=1)
    half = n_occ // 2
    kc = int(np.argmin(e_ref[:, n_occ]))
    return {
        # the 6 lowest empty spinor states at the CBM k-point without and with SOC (for
        # ABX3 at R: the B-p triplet, split by SOC into j = 1/2 below and j = 3/2 above)
        "cb_manifold": {
            "k": [float(x) for x in kpts[kc]],
            "no_soc": [float(x) for x in e_ref[kc, n_occ : n_occ + 6]],
            "soc": [float(x) for x in e_soc[kc, n_occ : n_occ + 6]],
        },
        "no_soc": _edges(e_ref, n_occ, kpts),
        "soc": _edges(e_soc, n_occ, kpts),
        "scalar_scf_edges": {
            "vbm": float(scalar[:, half - 1].max()),
            "cbm": float(scalar[:, half].min()),
        },
        "n_bz_kpoints": int(len(kpts)),
        "n_ibz_kpoints": int(len(scalar)),
        "soc_basis_bands": int(calc.get_number_of_bands()),
        "soc_basis": "full diagonalisation" if soc_bands > 0 else "SCF bands",
        "soc_scf_basis": scf_basis,
    }


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python3 gpaw_worker.py RUN_DIR")
    main(Path(sys.argv[1]))
