"""Kohn-Sham eigenvalues, occupations and k-point weights of a finished run.

The :class:`~perovskite_defects.engines.base.CalcRecord` keeps only the band edges; the
carrier densities (bulk DOS) and the perturbed-host check of defect states need every
eigenvalue, so this reads them from the engine's output on demand:

- CP2K: the last printed set of ``MO| ... EIGENVALUES AND OCCUPATION NUMBERS`` blocks (one
  per k-point and spin) of ``cp2k.out``, with the weights of the ``BRILLOUIN|`` k-point list
  (Gamma-only runs: weight 1).
- VASP: ``vasprun.xml(.gz)`` through pymatgen's ``Vasprun`` (eigenvalues, occupations and
  ``actual_kpoints_weights``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perovskite_defects.engines.base import EngineError
from perovskite_defects.engines.folders import detect_engine
from perovskite_defects.engines.vasp_output import _first_existing
from perovskite_defects.engines.vasprun import read_vasprun


@dataclass(frozen=True, eq=False)
class Eigenvalues:
    """Eigenvalues (eV) and occupations, shape (n_spins, n_kpoints, n_bands).

    Attributes:
        energies: eigenvalues in eV.
        occupations: electrons per state as printed (0..2 restricted, 0..1 per spin channel).
        weights: k-point weights, shape (n_kpoints,), normalised to sum to 1 (zero-weight
            points, e.g. CP2K's band-edge Gamma point, keep weight 0).
        n_listed: k-points the run used (CP2K's list; 0 when the output gives none).
        spin_degeneracy: electrons per listed state when full: 2 restricted, 1 spin-polarised.
    """

    energies: np.ndarray
    occupations: np.ndarray
    weights: np.ndarray
    spin_degeneracy: float
    kpoints: np.ndarray | None = None  # (n_kpoints, 3) as the engine lists them, if known
    complete: bool = True  # False when the output printed only some of the run's k-points
    n_listed: int = 0

    @property
    def occupied(self) -> np.ndarray:
        """True where a state holds more than half of a full occupation."""
        return self.occupations > 0.5 * self.spin_degeneracy

    def edges(self) -> tuple[float | None, float | None]:
        """VBM and CBM over every printed k-point, zero-weight ones included (eV)."""
        occ = self.occupied
        vbm = float(self.energies[occ].max()) if occ.any() else None
        cbm = float(self.energies[~occ].min()) if (~occ).any() else None
        return vbm, cbm

    def weighted_edges(self) -> tuple[float, float]:
        """VBM and CBM over the k-points of non-zero weight only (eV)."""
        keep = self.weights > 0.0
        e, occ = self.energies[:, keep, :], self.occupied[:, keep, :]
        return float(e[occ].max()), float(e[~occ].min())


_HEADER = re.compile(
    r"MO\|\s+(ALPHA |BETA )?EIGENVALUES AND OCCUPATION NUMBERS(?:.*K POINT\s+(\d+))?"
)
_LINE = re.compile(r"MO\|\s+\d+\s+-?\d+\.\d+\s+(-?\d+\.\d+)\s+(\d+\.\d+)\s*$")
_KPOINT = re.compile(
    r"BRILLOUIN\|\s+(\d+)\s+(\d+\.\d+)\s+(-?\d+\.\d+)\s+(-?\d+\.\d+)\s+(-?\d+\.\d+)"
)


def read_cp2k_eigenvalues(run_dir: str | Path) -> Eigenvalues:
    """Eigenvalues of the final SCF of a CP2K run (needs ``&PRINT &MO`` output, as ours have)."""
    # why: cp2k imports this module (through cp2k_output): a cycle
    from perovskite_defects.engines.cp2k import OUTPUT_NAME

    path = Path(run_dir) / OUTPUT_NAME
    if not path.is_file():
        raise EngineError(f"{path}: CP2K output file is missing")
    return parse_cp2k_eigenvalues(path.read_text(errors="replace"), str(path))


def parse_cp2k_eigenvalues(text: str, path: str = "cp2k.out") -> Eigenvalues:
    """Eigenvalues of the final SCF in the text of a CP2K output (``path`` names it in errors).

    The one reader of CP2K's MO blocks: the engine parser takes its band edges from it too.
    """
    lines = text.splitlines()
    headers = [i for i, line in enumerate(lines) if _HEADER.search(line)]
    if not headers:
        raise EngineError(f"{path}: no MO eigenvalue blocks printed")
    # the last set of blocks: walk back while no SCF/optimisation step separates them
    start = headers[-1]
    for i in reversed(headers[:-1]):
        if any("SCF run" in line or "OPTIMIZATION STEP" in line for line in lines[i:start]):
            break
        start = i
    blocks: dict[tuple[str, int], list[tuple[float, float]]] = {}
    key: tuple[str, int] | None = None
    for line in lines[start:]:
        header = _HEADER.search(line)
        if header:
            key = ((header.group(1) or "").strip(), int(header.group(2) or 1))
            if key in blocks:  # a later repeat of the same block: keep the last one
                blocks[key] = []
            blocks.setdefault(key, [])
            continue
        match = _LINE.search(line)
        if match and key is not None:
            blocks[key].append((float(match.group(1)), float(match.group(2))))
    spins = sorted({s for s, _ in blocks}, key=lambda s: ("", "ALPHA", "BETA").index(s))
    kpoints = sorted({k for _, k in blocks})
    n_bands = {len(v) for v in blocks.values()}
    if len(n_bands) != 1 or 0 in n_bands:
        raise EngineError(f"{path}: MO blocks have different or no band counts {n_bands}")
    data = np.array([[blocks[(s, k)] for k in kpoints] for s in spins], dtype=float)
    weights = np.zeros(len(kpoints))
    listed = {int(m.group(1)): m.groups()[1:] for m in map(_KPOINT.search, lines) if m}
    coords = None
    if listed:
        weights = np.array([float(listed[k][0]) for k in kpoints])
        coords = np.array([[float(v) for v in listed[k][1:]] for k in kpoints])
    else:  # Gamma-only run: no k-point list
        weights[:] = 1.0 / len(kpoints)
        coords = np.zeros((len(kpoints), 3))
    if not weights.sum() > 0.0:
        raise EngineError(f"{path}: the printed k-points all have zero weight")
    spin_degeneracy = 1.0 if spins != [""] else 2.0
    # Parallel runs without PARALLEL_GROUP_SIZE 0 print only the k-points of the first
    # k-point group: the weights are renormalised over those printed, and ``complete`` says
    # so (band edges and a DOS need every k-point; the defect-state check does not).
    complete = not listed or len(listed) == len(kpoints)
    return Eigenvalues(
        data[..., 0],
        data[..., 1],
        weights / weights.sum(),
        spin_degeneracy,
        coords,
        complete,
        len(listed),
    )


def read_vasp_eigenvalues(run_dir: str | Path) -> Eigenvalues:
    """Eigenvalues from vasprun.xml(.gz), through the streaming reader."""

    folder = Path(run_dir)
    path = _first_existing(folder, ("vasprun.xml", "vasprun.xml.gz"))
    if path is None:
        raise EngineError(f"{folder}: no vasprun.xml(.gz)")
    vrun = read_vasprun(path)
    if not vrun.eigenvalues:
        raise EngineError(f"{path}: no eigenvalues in the last ionic step")
    arrays = [np.asarray(vrun.eigenvalues[spin]) for spin in sorted(vrun.eigenvalues)]
    data = np.stack(arrays)  # (spins, k, bands, 2)
    weights = np.asarray(vrun.kpoints["weights"], dtype=float)
    params = {**vrun.parameters, **vrun.incar}
    noncollinear = bool(params.get("LNONCOLLINEAR") or params.get("LSORBIT"))
    spin_degeneracy = 1.0 if (len(arrays) == 2 or noncollinear) else 2.0
    # vasprun occupations are fractions (0..1); scale to electrons per listed state
    return Eigenvalues(
        data[..., 0],
        data[..., 1] * spin_degeneracy,
        weights / weights.sum(),
        spin_degeneracy,
        np.asarray(vrun.kpoints["kpoints"], dtype=float),
    )


def read_eigenvalues(run_dir: str | Path) -> Eigenvalues:
    """Eigenvalues of a CP2K or VASP run folder (engine detected from its files)."""

    folder = Path(run_dir)
    if detect_engine(folder) == "vasp":
        return read_vasp_eigenvalues(folder)
    return read_cp2k_eigenvalues(folder)
