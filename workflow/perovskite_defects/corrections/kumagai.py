"""Extended FNV (eFNV) finite-size correction of Kumagai and Oba, PRB 89, 195205 (2014).

Written here instead of wrapping pymatgen-analysis-defects' ``kumagai`` module: that module
depends on pydefect, which is not installed and which we do not want as a dependency. This
is an independent implementation from the paper; it needs only numpy (scipy only for an
ambiguous site assignment, see :func:`~.sites.assign_sites`), and reads pymatgen structures
or their dictionaries without pymatgen (:mod:`~.cells`).

The method, for a defect of charge q in a supercell with dielectric tensor eps:

- ``point_charge`` = E_lat, the lattice energy of the periodic point charge q in a
  neutralising background, screened by eps (the anisotropic Madelung energy), from an Ewald
  sum with the anisotropic Coulomb interaction 1 / (sqrt(det eps) sqrt(r . eps^-1 r)).
- At each atom away from the defect, ``dV = (V_defect - V_bulk) - V_pc``: the DFT
  electrostatic-potential change at the atomic site minus the potential of the same
  periodic point charge. Atoms are matched between the two cells by periodic position,
  never by index, so the atom order of either calculation does not matter.
- The mean of dV over the atoms outside a sphere centred on the defect is the alignment
  potential. Its radius by default is pydefect's (half the largest distance between
  opposite faces of the supercell); the sphere inscribed in the Wigner-Seitz cell is the
  other choice (:mod:`~perovskite_defects.corrections.sampling` says why and how they
  differ). Both are computed and reported; ``sampling`` picks the one in ``total``.
- ``total = point_charge - q * mean(dV)``, ADDED to the formation energy, as for
  :class:`~perovskite_defects.corrections.freysoldt.FNVResult`.

For the CdTe V_Cd^-2 reference (eps = 9.13, 64-atom cubic cell, both radii L/2 =
6.5434 Å) it gives 0.74901 eV against 0.7509 from doped 3.2.1: point charge 0.683886 eV
(the analytic Madelung value for L = 13.086768 Å, to 1e-7 eV), alignment -0.06512 eV (mean
dV = +0.032560 V over the 32 atoms beyond L/2), error 0.0051 eV (doped: 0.005). The 1.9 meV
to doped is the three Cd atoms lying exactly at L/2: doped/pydefect sampled one of them
by floating-point rounding (33 atoms: 0.75086 eV), this code samples none (see
:data:`~perovskite_defects.corrections.sampling.ON_SPHERE_TOL`). Listing the atoms of
both runs in another order changes nothing (difference 0.0 eV).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from perovskite_defects.corrections.cells import Cell
from perovskite_defects.corrections.freysoldt import LATTICE_RTOL, _dielectric_argument
from perovskite_defects.corrections.sampling import (
    DEFAULT_SAMPLING,
    SAMPLING_REGIONS,
    SampledAlignment,
    lattice_points,
    outside,
    sampling_radius,
)
from perovskite_defects.corrections.sampling import (
    inscribed_sphere_radius as inscribed_sphere_radius,  # re-exported (trap_classes)
)
from perovskite_defects.corrections.sites import _default_tol, assign_sites, locate_defect
from perovskite_defects.engines.vasp_output import parse_vasp_dir, read_outcar_site_potentials

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pymatgen.core import Structure

log = logging.getLogger("perovskite_defects")

#: e^2 / (4 pi eps0) in eV Å: turns e/Å into V and e^2/Å into eV.
COULOMB_EV_ANGSTROM = 14.3996454784
#: Each Ewald term is dropped once its Gaussian/erfc factor is below exp(-EWALD_CUTOFF^2);
#: 6^2 = 36 leaves a truncation error far below 1e-6 eV (tested by varying alpha).
EWALD_CUTOFF = 6.0
#: Corrections less certain than this (eV) are logged as a warning.
ERROR_WARN_EV = 0.05


@dataclass(frozen=True)
class EFNVResult:
    """Kumagai-Oba (eFNV) correction for one defect in one charge state; energies in eV.

    Attributes:
        total: the correction, to be ADDED to the formation energy
            (= point_charge - alignment).
        point_charge: lattice (anisotropic Madelung) energy E_lat of the screened point charge.
        alignment: q * delta_v, the potential-alignment term subtracted from ``point_charge``.
        delta_v: mean of the per-site dV over the sampling region, V (electrostatic sign).
        error: |q| x the standard error of the mean of dV over the sampling region
            (std with ddof=1 over sqrt(n_sampled)): the statistical uncertainty of the
            alignment, the quantity doped reports (0.005 eV for the CdTe reference). The
            plain spread, |q| x std(dV), is larger (0.028 eV there); get it from
            ``site_delta_v[sampled]`` when a stricter flatness test is wanted.
        sampling_radius: radius (Å) of the sphere around the defect beyond which atoms are
            sampled (atoms on it are not), for the region named by ``sampling``.
        n_sampled: number of atoms in the sampling region.
        sampling: which sphere: one of
            :data:`~perovskite_defects.corrections.sampling.SAMPLING_REGIONS`.
        sampling_radii: the radius of every sampling region, for :meth:`by_sampling`.
        charge: defect charge q in e.
        defect_frac_coords: defect position used (fractional, defect cell).
        site_distances: distance (Å, minimum image) from the defect of every matched atom,
            in defect-structure order (the defect site itself excluded); for plotting.
        site_delta_v: dV of those atoms, V.
        site_model: point-charge potential V_pc of those atoms, V.
    """

    total: float
    point_charge: float
    alignment: float
    delta_v: float
    error: float
    sampling_radius: float
    n_sampled: int
    charge: int
    defect_frac_coords: tuple[float, float, float]
    sampling: str
    sampling_radii: dict[str, float] = field(compare=False)
    site_distances: np.ndarray = field(repr=False, compare=False)
    site_delta_v: np.ndarray = field(repr=False, compare=False)
    site_model: np.ndarray = field(repr=False, compare=False)

    @property
    def sampled(self) -> np.ndarray:
        """Boolean mask of the per-site arrays: True for atoms in the sampling region."""
        return outside(self.site_distances, self.sampling_radius)

    def by_sampling(self) -> dict[str, dict[str, Any]]:
        """The alignment and total of every sampling region (None where < 2 atoms)."""
        return {
            name: SampledAlignment.of(
                name, radius, self.site_distances, self.site_delta_v, self.charge
            ).to_dict(self.charge, self.point_charge)
            for name, radius in self.sampling_radii.items()
        }

    def summary(self) -> dict[str, Any]:
        """The numbers (no plotting arrays) as plain JSON-ready values, energies in eV."""
        return {
            "total": float(self.total),
            "point_charge": float(self.point_charge),
            "alignment": float(self.alignment),
            "delta_v": float(self.delta_v),
            "error": float(self.error),
            # |q| x std of the site dV in the sampling region: the plain spread
            "spread": float(abs(self.charge) * np.std(self.site_delta_v[self.sampled])),
            "sampling": self.sampling,
            "sampling_radius": float(self.sampling_radius),
            "n_sampled": int(self.n_sampled),
            "charge": int(self.charge),
            "defect_frac_coords": [float(f) for f in self.defect_frac_coords],
            "by_sampling": self.by_sampling(),
        }


def efnv_correction(
    charge: int,
    dielectric: float | Sequence[float] | np.ndarray,
    bulk_site_potentials: Sequence[float] | np.ndarray,
    defect_site_potentials: Sequence[float] | np.ndarray,
    bulk_structure: Structure | dict[str, Any],
    defect_structure: Structure | dict[str, Any],
    defect_frac_coords: Sequence[float] | np.ndarray | None = None,
    sampling: str = DEFAULT_SAMPLING,
) -> EFNVResult:
    """Kumagai-Oba (eFNV) correction from the site potentials of bulk and defect cells.

    Args:
        charge: defect charge q in e.
        dielectric: total (ionic + electronic) dielectric constant: a scalar, the three
            diagonal values, or a 3x3 symmetric positive-definite tensor (Cartesian axes).
        bulk_site_potentials: potential at each atom of ``bulk_structure``, eV, in its atom
            order, as VASP's "average (electrostatic) potential at core" (electron potential
            energy, see
            :func:`~perovskite_defects.engines.vasp_output.read_outcar_site_potentials`).
        defect_site_potentials: the same for ``defect_structure``.
        bulk_structure: pristine supercell (pymatgen ``Structure`` or its ``as_dict()``).
        defect_structure: the same supercell with the defect, atoms in any order.
        defect_frac_coords: defect position (fractional); default from
            :func:`~perovskite_defects.corrections.locate_defect`.
        sampling: the sphere beyond which atoms are sampled: "half_max_face_distance"
            (pydefect's, the default) or "ws_inscribed_sphere"; both are reported in
            :meth:`EFNVResult.summary`.

    Returns:
        An :class:`EFNVResult`; add ``result.total`` to the formation energy.

    Raises:
        ValueError: mismatched potentials and structures, different cells, bad dielectric,
            or fewer than two atoms outside the sampling sphere.
    """
    if sampling not in SAMPLING_REGIONS:
        raise ValueError(f"eFNV sampling {sampling!r} is not one of {', '.join(SAMPLING_REGIONS)}")
    bulk = Cell.of(bulk_structure)
    defect = Cell.of(defect_structure)
    bulk_pot = _site_potentials(bulk_site_potentials, len(bulk), "bulk")
    defect_pot = _site_potentials(defect_site_potentials, len(defect), "defect")
    lattice = defect.lattice
    _check_same_cell(bulk.lattice, lattice)
    eps = _dielectric_tensor(dielectric)
    if defect_frac_coords is None:
        _, frac_arr = locate_defect(bulk, defect)
    else:
        frac_arr = np.mod(np.asarray(defect_frac_coords, dtype=float), 1.0)
        if frac_arr.shape != (3,):
            raise ValueError(f"defect_frac_coords must have 3 components, got {frac_arr.shape}")
    frac = tuple(float(f) for f in frac_arr)

    bulk_idx, defect_idx = _match_sites(bulk, defect)
    # VASP's core potentials are electron potential energies (-e * phi), like LOCPOT: the
    # electrostatic potential change is their negative, comparable with V_pc (in V, same
    # sign as q near the defect). This sign reproduces the CdTe V_Cd^-2 reference (0.7509
    # eV, flat dV); taking them as phi gives 0.105 eV and a 3.5x larger spread of dV.
    dft_diff = -(defect_pot[defect_idx] - bulk_pot[bulk_idx])
    offsets = defect.frac_coords[defect_idx] - frac_arr
    offsets -= np.round(offsets)  # any periodic image will do for the Ewald sum
    distances = defect.distances(frac_arr, offsets + frac_arr)[0]

    ewald = AnisotropicEwald(lattice, eps)
    model = charge * COULOMB_EV_ANGSTROM * ewald.potential(offsets @ lattice)
    site_dv = dft_diff - model
    radii = {name: sampling_radius(lattice, name) for name in SAMPLING_REGIONS}
    radius = radii[sampling]
    chosen = SampledAlignment.of(sampling, radius, distances, site_dv, charge)
    n_sampled = chosen.n_sampled
    if chosen.delta_v is None or chosen.error is None:  # fewer than 2 atoms: no std error
        raise ValueError(
            f"only {n_sampled} atom(s) lie beyond the sampling radius {radius:.3f} Å "
            f"({sampling}) from the defect: the supercell is too small for the eFNV correction"
        )
    delta_v, error = chosen.delta_v, chosen.error
    point_charge = charge * charge * ewald.lattice_energy()
    alignment = charge * delta_v
    if error > ERROR_WARN_EV:
        log.warning(
            "eFNV correction for q=%+d is uncertain: error %.3f eV from %d sites beyond "
            "%.2f Å (supercell too small or defect not localised?)",
            charge,
            error,
            n_sampled,
            radius,
        )
    return EFNVResult(
        total=point_charge - alignment,
        point_charge=point_charge,
        alignment=alignment,
        delta_v=delta_v,
        error=error,
        sampling_radius=radius,
        n_sampled=n_sampled,
        charge=int(charge),
        defect_frac_coords=frac,  # type: ignore[arg-type]
        sampling=sampling,
        sampling_radii=radii,
        site_distances=distances,
        site_delta_v=site_dv,
        site_model=model,
    )


def efnv_from_vasp_dirs(
    bulk_dir: str | Path,
    defect_dir: str | Path,
    charge: int,
    dielectric: float | Sequence[float] | np.ndarray,
) -> EFNVResult:
    """eFNV correction straight from two finished VASP run folders.

    Structures come from vasprun.xml(.gz) through
    :func:`~perovskite_defects.engines.vasp_output.parse_vasp_dir`, site potentials from
    OUTCAR(.gz). Both runs must be converged (:meth:`CalcRecord.require_converged`), and
    ``charge`` must agree with the defect run's NELECT when its OUTCAR gives it.
    """
    # imported here: the correction itself needs no engine module

    bulk = parse_vasp_dir(bulk_dir).require_converged()
    defect = parse_vasp_dir(defect_dir).require_converged()
    if defect.extra.get("charge_known") and defect.charge != charge:
        raise ValueError(
            f"{defect_dir}: charge {charge:+d} requested but the run has q = {defect.charge:+d}"
        )
    return efnv_correction(
        charge,
        dielectric,
        read_outcar_site_potentials(bulk_dir),
        read_outcar_site_potentials(defect_dir),
        bulk.structure,
        defect.structure,
    )


def point_charge_energy(
    charge: float,
    dielectric: float | Sequence[float] | np.ndarray,
    lattice: Sequence[Sequence[float]] | np.ndarray,
) -> float:
    """Lattice energy E_lat (eV) of a periodic point charge in a neutralising background.

    Positive: this is what the correction adds, ``-(E_periodic - E_isolated)``. For a
    scalar eps and a simple-cubic cell of side L it is ``q^2 * 2.8373 / (2 eps L)`` (in
    e^2/Å, times 14.3996 eV Å).
    """
    ewald = AnisotropicEwald(np.asarray(lattice, dtype=float), _dielectric_tensor(dielectric))
    return charge * charge * ewald.lattice_energy()


class AnisotropicEwald:
    """Ewald sums for a periodic unit point charge screened by a dielectric tensor.

    With the Coulomb interaction 1 / (sqrt(det eps) |r|_eps), |r|_eps = sqrt(r . eps^-1 r),
    the potential of the periodic charge plus uniform neutralising background is

        phi(r) = sum_R erfc(alpha |r+R|_eps) / (sqrt(det eps) |r+R|_eps)
                 + 4 pi / V sum_{G != 0} exp(-G.eps.G / (4 alpha^2)) / (G.eps.G) cos(G.r)
                 - pi / (V alpha^2)

    in e/Å (multiply by q and ``COULOMB_EV_ANGSTROM`` for volts). The last (background) term
    makes the cell average zero, the same reference as the DFT potentials (no G = 0 term).

    Args:
        lattice: 3x3 cell matrix in Å, rows are lattice vectors.
        eps: 3x3 symmetric positive-definite dielectric tensor.
        alpha: Ewald splitting parameter in 1/Å; the default balances the two sums.
    """

    def __init__(self, lattice: np.ndarray, eps: np.ndarray, alpha: float | None = None) -> None:
        self.lattice = np.asarray(lattice, dtype=float)
        self.eps = np.asarray(eps, dtype=float)
        self.eps_inv = np.linalg.inv(self.eps)
        self.sqrt_det = math.sqrt(float(np.linalg.det(self.eps)))
        self.volume = abs(float(np.linalg.det(self.lattice)))
        if alpha is None:
            # Standard rule for one charge (Fincham's N = 1 balance), applied in the
            # eps-scaled coordinates r' = eps^-1/2 r where the interaction is plain 1/r':
            # alpha = sqrt(pi) / V'^(1/3) with V' = V / sqrt(det eps). Then both sums need
            # the same small number of terms, about 170 each at EWALD_CUTOFF = 6.
            alpha = math.sqrt(math.pi) / (self.volume / self.sqrt_det) ** (1.0 / 3.0)
        self.alpha = float(alpha)
        recip = 2.0 * math.pi * np.linalg.inv(self.lattice).T  # rows are b_i, a_i.b_j = 2pi
        g_vectors = lattice_points(recip, self.eps, 2.0 * self.alpha * EWALD_CUTOFF)
        g_eps_g = np.einsum("ij,jk,ik->i", g_vectors, self.eps, g_vectors)
        self._g_vectors = g_vectors
        self._g_weights = (
            4.0 * math.pi / self.volume * np.exp(-g_eps_g / (4.0 * self.alpha**2)) / g_eps_g
        )
        self._background = -math.pi / (self.volume * self.alpha**2)

    def potential(self, cart_vectors: np.ndarray) -> np.ndarray:
        """phi (e/Å) at Cartesian offsets (N, 3) from the charge; none may be a lattice point."""
        r = np.atleast_2d(np.asarray(cart_vectors, dtype=float))
        reach = float(np.sqrt(np.einsum("ij,jk,ik->i", r, self.eps_inv, r).max(initial=0.0)))
        # Every image within the erfc cutoff of any r: the offsets are not wrapped in the
        # eps metric, so widen the search sphere by the largest |r|_eps.
        lattice_vectors = lattice_points(
            self.lattice, self.eps_inv, EWALD_CUTOFF / self.alpha + reach, include_origin=True
        )
        shifted = r[:, None, :] + lattice_vectors[None, :, :]
        dist = np.sqrt(np.einsum("nij,jk,nik->ni", shifted, self.eps_inv, shifted))
        if (dist < 1e-8).any():
            raise ValueError("point-charge potential requested at the charge itself")
        real = (_erfc(self.alpha * dist) / dist).sum(axis=1) / self.sqrt_det
        recip = np.cos(r @ self._g_vectors.T) @ self._g_weights
        return real + recip + self._background

    def self_potential(self) -> float:
        """lim r->0 of phi(r) minus the bare screened Coulomb term, e/Å (negative)."""
        lattice_vectors = lattice_points(self.lattice, self.eps_inv, EWALD_CUTOFF / self.alpha)
        dist = np.sqrt(np.einsum("ij,jk,ik->i", lattice_vectors, self.eps_inv, lattice_vectors))
        real = float((_erfc(self.alpha * dist) / dist).sum()) / self.sqrt_det
        recip = float(self._g_weights.sum())
        self_term = -2.0 * self.alpha / (math.sqrt(math.pi) * self.sqrt_det)
        return real + recip + self._background + self_term

    def lattice_energy(self) -> float:
        """E_lat per unit charge squared, eV: -(1/2) x self potential (positive)."""
        return -0.5 * COULOMB_EV_ANGSTROM * self.self_potential()


def _erfc(x: np.ndarray) -> np.ndarray:
    """erfc elementwise with the C library's ``math.erfc``: scipy.special's costs ~0.3 s of
    import per process, more than the whole eFNV sum (~2e4 values, a few ms this way)."""
    arr = np.asarray(x, dtype=float)
    return np.fromiter(map(math.erfc, arr.ravel()), dtype=float, count=arr.size).reshape(arr.shape)


def _match_sites(bulk: Cell, defect: Cell) -> tuple[np.ndarray, np.ndarray]:
    """Indices (bulk, defect) of atoms present in both cells with the same species.

    One-to-one nearest periodic assignment with the tolerance of :func:`locate_defect`, so
    vacancies, interstitials and substituted atoms (the defect itself) drop out.
    """
    dist = defect.distances(bulk.frac_coords, defect.frac_coords)
    rows, cols = assign_sites(dist, _default_tol(bulk))
    same = np.array(
        [bulk.species[int(i)] == defect.species[int(j)] for i, j in zip(rows, cols, strict=True)],
        dtype=bool,
    )
    order = np.argsort(cols[same])  # defect-structure order, independent of the bulk order
    return rows[same][order], cols[same][order]


def _site_potentials(values: Sequence[float] | np.ndarray, n_sites: int, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1 or arr.size != n_sites:
        raise ValueError(
            f"{name}_site_potentials has {arr.size} values (shape {arr.shape}) but "
            f"{name}_structure has {n_sites} sites: one potential per atom, same order"
        )
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}_site_potentials contains non-finite values")
    return arr


def _dielectric_tensor(dielectric: float | Sequence[float] | np.ndarray) -> np.ndarray:
    """3x3 tensor from a scalar, 3 diagonal values or a 3x3 (validated as for FNV)."""
    eps = _dielectric_argument(dielectric)
    if isinstance(eps, float):
        return eps * np.eye(3)
    return np.asarray(eps, dtype=float)


def _check_same_cell(bulk_lattice: np.ndarray, defect_lattice: np.ndarray) -> None:
    scale = float(np.abs(bulk_lattice).max())
    if not np.allclose(bulk_lattice, defect_lattice, rtol=0.0, atol=LATTICE_RTOL * scale):
        raise ValueError("bulk and defect structures have different lattices")
