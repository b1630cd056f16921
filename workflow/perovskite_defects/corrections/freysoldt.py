"""Freysoldt-Neugebauer-Van de Walle (FNV) finite-size correction for charged defects.

Two backends give the same numbers (tests: within 1e-5 eV). The default, ``native``,
evaluates pymatgen-analysis-defects' FNV formulas (its Gaussian model charge, constants,
alignment window and sign convention) here with numpy, because importing that library
costs ~2.9 s per process, more than the correction itself (``bench/bench_cdte.py``).
``library`` calls its ``get_freysoldt_correction`` with the planar averages of our
:class:`PotentialGrid` objects (a dict of planar averages plus a lattice: no Locpot, no slow
I/O). Both reproduce the CdTe V_Cd^-2 reference (eps = 9.13): total 0.72777 eV (reference
0.7278), point-charge part 0.683895 eV (reference 0.6839, analytic Madelung 0.68389). The
alignment is the mean of (dV_DFT - V_model) over a 1 Å window half a cell away from the
defect along each axis, as in the library.

Two details of the library (pymatgen-analysis-defects 2026.10.24) are handled here; the
planar averages are prepared the same way for both backends:

- for dict input it builds its axis grid with ``np.linspace(0, L, n)`` (endpoint included,
  spacing L/(n-1)), which misplaces the defect by up to one grid plane when it rolls the
  averages; we roll the planar averages so the defect sits on plane 0 and pass the origin.
- its model potential uses a G-vector list that is wrong for an odd number of grid points
  (it raises "imaginary part found", e.g. for n = 25); odd-length planar averages are
  Fourier-resampled to n + 1 points first, which is exact for data on an FFT grid.

Sign convention: the returned ``total`` is ADDED to the formation energy,
``E_f = E_def - E_bulk - sum(n_i mu_i) + q (E_VBM + E_F) + total``, with
``total = point_charge - alignment`` (``alignment = q * dV``, ``dV`` the electrostatic
potential offset far from the defect, in V).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

    from perovskite_defects.engines.base import PotentialGrid

#: Relative tolerance for treating bulk and defect cells as the same supercell.
LATTICE_RTOL = 1e-4


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class FNVAxisData:
    """Planar averages along one lattice axis, defect at x = 0, for plotting.

    All potentials are electron potential energies in eV (LOCPOT sign).
    """

    x: np.ndarray  # distance from the defect plane along the axis, Å
    dft_diff: np.ndarray  # planar average of V_defect - V_bulk
    model: np.ndarray  # long-range model potential of the screened model charge
    short_range: np.ndarray  # dft_diff - model; flat far from the defect when converged
    window: tuple[int, int]  # [start, stop) indices of the sampling region


@dataclass(frozen=True)
class FNVResult:
    """FNV correction for one defect in one charge state; energies in eV.

    Attributes:
        total: the correction, to be ADDED to the formation energy
            (= point_charge - alignment).
        point_charge: lattice (Madelung-like) energy E_lat of the screened model charge.
        alignment: q * dV, the potential-alignment term subtracted from ``point_charge``.
        axis_delta_v: dV (V, electrostatic-potential sign) from each lattice axis; ``dV``
            is their mean.
        error: |q| x the largest standard deviation of the short-range potential over the
            sampling regions of the three axes: how far from flat the alignment region is.
        charge: defect charge q in e.
        defect_frac_coords: defect position used (fractional, defect cell).
        axes: planar-average curves for plotting (kept out of repr).
    """

    total: float
    point_charge: float
    alignment: float
    axis_delta_v: tuple[float, float, float]
    error: float
    charge: int
    defect_frac_coords: tuple[float, float, float]
    axes: tuple[FNVAxisData, ...] = field(default=(), repr=False, compare=False)

    def summary(self) -> dict[str, Any]:
        """The numbers (no plotting arrays) as plain JSON-ready values, energies in eV."""
        return {
            "total": float(self.total),
            "point_charge": float(self.point_charge),
            "alignment": float(self.alignment),
            "axis_delta_v": [float(v) for v in self.axis_delta_v],
            "error": float(self.error),
            "charge": int(self.charge),
            "defect_frac_coords": [float(f) for f in self.defect_frac_coords],
        }


def fnv_correction(
    charge: int,
    dielectric: float | Sequence[float] | np.ndarray,
    bulk: PotentialGrid,
    defect: PotentialGrid,
    defect_frac_coords: Sequence[float] | np.ndarray,
    *,
    energy_cutoff_ev: float = 520.0,
    madelung_tol: float = 1e-4,
    backend: str = "native",
) -> FNVResult:
    """Freysoldt (FNV) correction from bulk and defect potential grids.

    Args:
        charge: defect charge q in e.
        dielectric: total (ionic + electronic) dielectric constant: a scalar, the three
            diagonal values, or a 3x3 tensor. Anisotropic tensors are handled by the library
            as in ``sxdefectalign`` (full tensor for the periodic energy and the per-axis
            model potential, spherical average for the isolated energy and G=0 term).
        bulk: potential grid of the pristine supercell.
        defect: potential grid of the defect supercell (same cell and grid as ``bulk``).
        defect_frac_coords: defect position in fractional coordinates (see
            :func:`~perovskite_defects.corrections.locate_defect`).
        energy_cutoff_ev: plane-wave cutoff for the reciprocal-space sums, eV.
        madelung_tol: convergence threshold for those sums, in Hartree.
        backend: "native" (default: the library's formulas evaluated here with numpy, to
            full convergence, without importing pymatgen-analysis-defects, which costs ~2.9
            s per process) or "library" (pymatgen-analysis-defects itself; the tests check
            that both agree to 1e-5 eV).

    Returns:
        An :class:`FNVResult`; add ``result.total`` to the formation energy.
    """
    eps = _dielectric_argument(dielectric)
    _check_same_cell(bulk, defect)
    frac = tuple(float(f) for f in np.mod(np.asarray(defect_frac_coords, dtype=float), 1.0))
    if len(frac) != 3:
        raise ValueError(f"defect_frac_coords must have 3 components, got {len(frac)}")
    if charge == 0:
        return FNVResult(0.0, 0.0, 0.0, (0.0, 0.0, 0.0), 0.0, 0, frac)  # type: ignore[arg-type]

    shifts = [_plane_index(frac[ax], defect.data.shape[ax]) for ax in range(3)]
    bulk_avg = {ax: _prepare(bulk.planar_average(ax), shifts[ax]) for ax in range(3)}
    defect_avg = {ax: _prepare(defect.planar_average(ax), shifts[ax]) for ax in range(3)}
    if backend == "library":
        result = _run_library(
            charge, eps, bulk_avg, defect_avg, defect.lattice, energy_cutoff_ev, madelung_tol
        )
    elif backend == "native":
        result = _run_native(charge, eps, bulk_avg, defect_avg, defect.lattice)
    else:
        raise ValueError(f"backend must be 'native' or 'library', got {backend!r}")
    return _to_result(result, charge, frac, defect.lattice)


# Constants of pymatgen-analysis-defects (its utils module), kept so that both backends give
# the same numbers: Bohr per Å and eV per Hartree as rounded there.
_ANG_TO_BOHR = 1.8897
_HART_TO_EV = 27.2114
#: Largest |G| (1/bohr) in the native sums: the Gaussian model charge (beta = 1 bohr) gives
#: terms exp(-G^2/2) < 3e-11 beyond it, so the sums are converged far below 1e-6 eV.
_G_MAX_BOHR = 7.0


def _rho_rec(g2: np.ndarray | float) -> np.ndarray | float:
    """Fourier transform of the library's default model charge (QModel(): a Gaussian of
    width beta = 1 bohr, expnorm 0): exp(-g^2/4), normalised to 1 at g = 0."""
    return np.exp(-0.25 * np.asarray(g2))


_RHO_REC_LIMIT0 = -0.25  # lim g->0 of (rho_rec(g^2) - 1) / g^2 for that Gaussian


def _spherical_eps(tensor: np.ndarray) -> float:
    """Spherically averaged dielectric constant, as the library and sxdefectalign define it."""
    if np.array_equal(tensor, tensor[0, 0] * np.eye(3)):
        return float(tensor[0, 0])
    from scipy.special import elliprf

    eigvals = np.linalg.eigvalsh((tensor + tensor.T) / 2)
    return float(np.sqrt(np.prod(eigvals)) / elliprf(*(1 / eigvals)))


def _run_native(
    charge: int,
    eps: float | np.ndarray,
    bulk_avg: dict[int, np.ndarray],
    defect_avg: dict[int, np.ndarray],
    lattice: np.ndarray,
):
    """The library's FNV formulas (point charge + planar alignment), evaluated here.

    Written out because importing pymatgen-analysis-defects for them costs ~2.9 s, more
    than the whole correction. Same model charge, constants, window and sign conventions
    as ``get_freysoldt_correction``; the reciprocal sums are taken to convergence instead of
    the library's 1e-4 Hartree stopping rule (differences below 1e-5 eV on CdTe).
    Returns an object with the library's ``correction_energy`` and ``metadata`` layout.
    """
    from types import SimpleNamespace

    tensor = np.eye(3) * float(eps) if isinstance(eps, float) else np.asarray(eps, dtype=float)
    avg_eps = _spherical_eps(tensor)
    q = float(charge)
    cell = np.asarray(lattice, dtype=float) * _ANG_TO_BOHR
    vol = float(abs(np.linalg.det(cell)))
    recip = 2.0 * np.pi * np.linalg.inv(cell).T  # rows b_i (1/bohr)

    # Point-charge energy: E_iso - E_per of the model charge, screened.
    e_iso = q * q / np.pi * np.sqrt(np.pi / 2.0)  # (q^2/pi) int_0^inf exp(-g^2/2) dg
    # the integer box holds the G-sphere for any cell shape
    bounds = np.floor(_G_MAX_BOHR * np.sqrt(np.diag(np.linalg.inv(recip @ recip.T)))).astype(int)
    axes = [np.arange(-b, b + 1) for b in bounds]
    ints = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    ints = ints[np.any(ints != 0, axis=1)]
    g = ints @ recip
    g2 = np.einsum("ij,ij->i", g, g)
    keep = g2 <= _G_MAX_BOHR**2
    g, g2 = g[keep], g2[keep]
    g_eps_g = np.einsum("ij,jk,ik->i", g, tensor, g)
    e_per = avg_eps * float(np.sum(_rho_rec(g2) ** 2 / g_eps_g))
    e_per *= q * q * 2.0 * np.pi / vol
    e_per += q * q * 4.0 * np.pi * _RHO_REC_LIMIT0 / vol
    es_corr = (e_iso - e_per) / avg_eps * _HART_TO_EV

    alignments: dict[int, float] = {}
    plot_data: dict[int, dict] = {}
    lengths = np.linalg.norm(np.asarray(lattice, dtype=float), axis=1)
    for axis in range(3):
        pure = np.asarray(bulk_avg[axis], dtype=float)
        defect = np.asarray(defect_avg[axis], dtype=float)
        nx = len(pure)
        b_vec = recip[axis]  # only G along b_axis enter a planar average
        eps_axis = float(b_vec @ tensor @ b_vec / (b_vec @ b_vec))
        dg = float(np.linalg.norm(recip[axis]))
        v_g = np.empty(nx, dtype=complex)
        v_g[0] = 4.0 * np.pi * -q / avg_eps * _RHO_REC_LIMIT0
        gg = np.roll(np.arange(-nx // 2, nx // 2, 1, dtype=int), int(nx // 2)) * dg
        gg2 = (gg * gg)[1:]
        v_g[1:] = 4.0 * np.pi / (eps_axis * gg2) * -q * _rho_rec(gg2)
        if nx % 2 == 0:
            v_g[nx // 2] = 0.0
        v_r = np.real(np.fft.fft(v_g)) / vol * _HART_TO_EV
        short = defect - pure - v_r
        # the library's window: +-0.5 Å around the middle, with its grid spacing L/(n-1)
        check = int(0.5 / (lengths[axis] / (nx - 1)))
        mid = nx // 2
        window = short[mid - check : mid + check + 1]
        alignments[axis] = float(np.mean(window))
        plot_data[axis] = {
            "pot_plot_data": {
                "Vr": v_r,
                "dft_diff": defect - pure,
                "short_range": short,
                "check": [mid - check, mid + check + 1],
            }
        }
    pot_corr = float(np.mean(list(alignments.values()))) * q
    return SimpleNamespace(
        correction_energy=es_corr + pot_corr,
        metadata={
            "plot_data": plot_data,
            "electrostatic": es_corr,
            "alignments": alignments,
            "potential": pot_corr,
        },
    )


def _run_library(
    charge: int,
    eps: float | np.ndarray,
    bulk_avg: dict[int, np.ndarray],
    defect_avg: dict[int, np.ndarray],
    lattice: np.ndarray,
    energy_cutoff_ev: float,
    madelung_tol: float,
):  # -> pymatgen.analysis.defects.utils.CorrectionResult
    # Imported here: the library pulls in pymatgen.io.vasp, scipy and matplotlib (~2.7 s).
    from pymatgen.analysis.defects.corrections.freysoldt import get_freysoldt_correction
    from pymatgen.core import Lattice

    return get_freysoldt_correction(
        q=charge,
        dielectric=eps,
        # annotated as Locpot, but dicts of planar averages are handled explicitly
        defect_locpot=defect_avg,  # type: ignore[arg-type]
        bulk_locpot=bulk_avg,  # type: ignore[arg-type]
        defect_frac_coords=[0.0, 0.0, 0.0],  # averages are already rolled: defect on plane 0
        lattice=Lattice(lattice),
        energy_cutoff=energy_cutoff_ev,
        mad_tol=madelung_tol,
    )


def _to_result(result, charge: int, frac: tuple[float, ...], lattice: np.ndarray) -> FNVResult:
    """Translate the library's CorrectionResult into an FNVResult."""
    meta = result.metadata
    # The library's per-axis C is the offset of the electron potential energy (LOCPOT sign);
    # the electrostatic potential offset dV is its negative.
    delta_v = tuple(-float(meta["alignments"][ax]) for ax in range(3))
    point_charge = float(meta["electrostatic"])
    alignment = charge * float(np.mean(delta_v))
    total = point_charge - alignment
    if not np.isclose(total, float(result.correction_energy), atol=1e-9):
        raise RuntimeError("FNV sign bookkeeping disagrees with the library total")  # guard
    axes = tuple(
        _axis_data(meta["plot_data"][ax], float(np.linalg.norm(lattice[ax]))) for ax in range(3)
    )
    spread = max(float(np.std(a.short_range[slice(*a.window)])) for a in axes)
    return FNVResult(
        total=total,
        point_charge=point_charge,
        alignment=alignment,
        axis_delta_v=delta_v,  # type: ignore[arg-type]
        error=abs(charge) * spread,
        charge=int(charge),
        defect_frac_coords=frac,  # type: ignore[arg-type]
        axes=axes,
    )


def _axis_data(plot_data: dict, length: float) -> FNVAxisData:
    pot = plot_data["pot_plot_data"]
    n = len(pot["dft_diff"])
    start, stop = pot["check"]
    return FNVAxisData(
        x=np.arange(n) * (length / n),  # the library's own x includes the endpoint
        dft_diff=np.asarray(pot["dft_diff"], dtype=float),
        model=np.asarray(pot["Vr"], dtype=float),
        short_range=np.asarray(pot["short_range"], dtype=float),
        window=(int(start), int(stop)),
    )


def _prepare(average: np.ndarray, shift: int) -> np.ndarray:
    """Put plane ``shift`` (the defect) first; give odd-length averages an even length."""
    rolled = np.roll(average, -shift)
    n = rolled.size
    if n % 2 == 0:
        return rolled
    # Exact trigonometric interpolation: an odd grid has no Nyquist term to lose.
    return np.fft.irfft(np.fft.rfft(rolled), n + 1) * ((n + 1) / n)


def _plane_index(frac: float, n: int) -> int:
    """Index of the grid plane nearest to fractional coordinate ``frac``."""
    return int(round(frac * n)) % n


def _dielectric_argument(dielectric: float | Sequence[float] | np.ndarray) -> float | np.ndarray:
    """Validate the dielectric; a scalar for isotropic (incl. cubic) input, else a 3x3."""
    arr = np.asarray(dielectric, dtype=float)
    if arr.shape == ():
        tensor = np.eye(3) * float(arr)
    elif arr.shape == (3,):
        tensor = np.diag(arr)
    elif arr.shape == (3, 3):
        tensor = arr
    else:
        raise ValueError(f"dielectric must be a scalar, 3 values or 3x3, got shape {arr.shape}")
    if not np.allclose(tensor, tensor.T, rtol=1e-6, atol=1e-8):
        raise ValueError(f"dielectric tensor is not symmetric: {tensor.tolist()}")
    eigvals = np.linalg.eigvalsh(tensor)
    if eigvals.min() <= 0:
        raise ValueError(f"dielectric tensor must be positive definite, eigenvalues {eigvals}")
    if np.allclose(tensor, tensor[0, 0] * np.eye(3), rtol=1e-8, atol=0.0):
        return float(tensor[0, 0])
    return tensor


def _check_same_cell(bulk: PotentialGrid, defect: PotentialGrid) -> None:
    if bulk.data.shape != defect.data.shape:
        raise ValueError(
            f"bulk and defect potential grids differ: {bulk.data.shape} vs {defect.data.shape}"
        )
    scale = float(np.abs(bulk.lattice).max())
    if not np.allclose(bulk.lattice, defect.lattice, rtol=0.0, atol=LATTICE_RTOL * scale):
        raise ValueError("bulk and defect potential grids have different lattices")
