"""Carrier densities of the host bands: parabolic bands with Fermi-Dirac statistics, or a
tabulated density of states from the bulk eigenvalues.

Units: eV, K, cm^-3 and Å^3 for cell volumes; energies measured from the VBM. Used by the
charge-neutrality solver in :mod:`perovskite_defects.thermodynamics.fermi_solver`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Exact SI values of e, k and h; CODATA 2022 electron mass.
_EV = 1.602176634e-19  # J per eV
K_B = 1.380649e-23 / _EV  # Boltzmann constant, eV/K (8.617333262...e-5)
_HBAR = 6.62607015e-34 / (2.0 * math.pi)  # J s
_M0 = 9.1093837139e-31  # electron rest mass, kg (CODATA 2022)
A3_TO_CM3 = 1e-24  # cm^3 per Å^3

_FD_NORM = 2.0 / math.sqrt(math.pi)  # 1 / Γ(3/2)


def check_temperature(temperature: float, what: str = "temperature") -> float:
    t = float(temperature)
    if not math.isfinite(t) or t <= 0.0:
        raise ValueError(f"{what} must be a positive number of kelvin, got {temperature!r}")
    return t


def check_positive(value: float, what: str) -> float:
    v = float(value)
    if not math.isfinite(v) or v <= 0.0:
        raise ValueError(f"{what} must be positive and finite, got {value!r}")
    return v


def logsumexp(values: np.ndarray | Sequence[float]) -> float:
    """log(sum(exp(values))), -inf for an empty input or all -inf."""
    a = np.asarray(values, dtype=float)
    if a.size == 0:
        return -math.inf
    top = float(a.max())
    if top == -math.inf:
        return -math.inf
    return top + math.log(float(np.exp(a - top).sum()))


def log_fermi_dirac_half(eta: float) -> float:
    """Natural log of the complete Fermi-Dirac integral of order 1/2, see
    :func:`fermi_dirac_half`. Accurate to ~1e-12 relative for any finite ``eta``, including
    ``eta << 0`` where the integral itself would underflow."""
    from scipy.integrate import quad  # scipy import is slow: keep it local

    eta = float(eta)
    if not math.isfinite(eta):
        raise ValueError(f"reduced Fermi level must be finite, got {eta!r}")
    opts: dict[str, Any] = {"epsabs": 0.0, "epsrel": 1e-12, "limit": 200}
    if eta <= 0.0:
        # With x = t^2 (no sqrt kink at 0): F = e^eta (2/sqrt(pi)) int 2 t^2 e^{-t^2} /
        # (1 + e^{eta - t^2}) dt. Taking e^eta out analytically keeps the integrand O(1), so
        # nothing underflows however small F is.
        def boltzmann_scaled(t: float) -> float:
            t2 = t * t
            return 2.0 * t2 * math.exp(-t2) / (1.0 + math.exp(eta - t2))

        integral, _ = quad(boltzmann_scaled, 0.0, math.inf, **opts)
        return eta + math.log(_FD_NORM * integral)

    # eta > 0: F = (2/sqrt(pi)) [ (2/3) eta^{3/2}                       (the T = 0 step)
    #                             + int_0^inf sqrt(eta + y) / (1 + e^y) dy    (occupied above)
    #                             - int_0^eta sqrt(eta - y) / (1 + e^y) dy ]  (empty below)
    # with y = |x - eta|. Both corrections live within a few units of the step, so quad
    # resolves them at any eta; the sqrt endpoint of the last one is its algebraic weight.
    def occupation(y: float) -> float:  # 1 / (1 + e^y) for y >= 0, without overflow
        tail = math.exp(-y)
        return tail / (1.0 + tail)

    above, _ = quad(lambda y: math.sqrt(eta + y) * occupation(y), 0.0, math.inf, **opts)
    below, _ = quad(occupation, 0.0, eta, weight="alg", wvar=(0.0, 0.5), **opts)
    return math.log(_FD_NORM * (2.0 / 3.0 * eta**1.5 + above - below))


def fermi_dirac_half(eta: float) -> float:
    """Complete Fermi-Dirac integral of order 1/2, normalised so that it tends to e^eta::

        F_1/2(eta) = 2/sqrt(pi) * int_0^inf sqrt(x) / (1 + exp(x - eta)) dx

    With this normalisation ``n = N_c F_1/2((E_F - E_C) / k_B T)``; F_1/2(0) =
    (1 - 2^-1/2) zeta(3/2) ≈ 0.765147, and F_1/2(eta) ≈ e^eta for eta << 0 (Boltzmann).
    Computed by adaptive quadrature (QUADPACK via scipy.integrate.quad).
    """
    return math.exp(log_fermi_dirac_half(eta))


class BandModel(ABC):
    """Free-carrier densities of a host as functions of the Fermi level (from the VBM).

    Implementations return natural logarithms of densities in cm^-3, so that the solver never
    sees an underflowed zero; :meth:`electron_density` and :meth:`hole_density` exponentiate.
    """

    @property
    @abstractmethod
    def band_gap(self) -> float:
        """CBM - VBM (eV)."""

    @abstractmethod
    def log_electron_density(self, fermi_level: float, temperature: float) -> float:
        """ln(n / cm^-3) at ``fermi_level`` (eV above the VBM) and ``temperature`` (K)."""

    @abstractmethod
    def log_hole_density(self, fermi_level: float, temperature: float) -> float:
        """ln(p / cm^-3) at ``fermi_level`` (eV above the VBM) and ``temperature`` (K)."""

    def electron_density(self, fermi_level: float, temperature: float) -> float:
        """Conduction-band electrons, cm^-3."""
        return math.exp(self.log_electron_density(fermi_level, temperature))

    def hole_density(self, fermi_level: float, temperature: float) -> float:
        """Valence-band holes, cm^-3."""
        return math.exp(self.log_hole_density(fermi_level, temperature))


def effective_density_of_states(mass: float, temperature: float) -> float:
    """Effective band-edge density of states 2 (m* k_B T / (2 pi hbar^2))^{3/2} in cm^-3.

    ``mass`` is the density-of-states effective mass in units of the electron mass (for
    several equivalent valleys, m_dos = N_valleys^{2/3} m*). About 2.51e19 cm^-3 for m* = 1
    at 300 K.
    """
    m = check_positive(mass, "effective mass") * _M0
    kt = check_temperature(temperature) * K_B * _EV  # J
    per_m3 = 2.0 * (m * kt / (2.0 * math.pi * _HBAR**2)) ** 1.5
    return per_m3 * 1e-6


@dataclass(frozen=True)
class EffectiveMassBands(BandModel):
    """One parabolic conduction and one parabolic valence band (spin-degenerate).

    ``n = N_c F_1/2((E_F - E_g) / k_B T)`` and ``p = N_v F_1/2(-E_F / k_B T)``, with the full
    Fermi-Dirac integral, so degenerate doping is handled too.

    Attributes:
        gap: band gap E_g (eV); the CBM sits at E_F = gap.
        m_e: electron density-of-states mass (units of the electron mass).
        m_h: hole density-of-states mass (units of the electron mass).
    """

    gap: float
    m_e: float
    m_h: float

    def __post_init__(self) -> None:
        check_positive(self.gap, "band gap")
        check_positive(self.m_e, "electron effective mass m_e")
        check_positive(self.m_h, "hole effective mass m_h")

    @property
    def band_gap(self) -> float:
        return float(self.gap)

    def effective_dos_conduction(self, temperature: float) -> float:
        """N_c (cm^-3)."""
        return effective_density_of_states(self.m_e, temperature)

    def effective_dos_valence(self, temperature: float) -> float:
        """N_v (cm^-3)."""
        return effective_density_of_states(self.m_h, temperature)

    def log_electron_density(self, fermi_level: float, temperature: float) -> float:
        kt = K_B * check_temperature(temperature)
        eta = (float(fermi_level) - self.gap) / kt
        return math.log(self.effective_dos_conduction(temperature)) + log_fermi_dirac_half(eta)

    def log_hole_density(self, fermi_level: float, temperature: float) -> float:
        kt = K_B * check_temperature(temperature)
        eta = -float(fermi_level) / kt
        return math.log(self.effective_dos_valence(temperature)) + log_fermi_dirac_half(eta)


def _band_quadrature(
    energies: np.ndarray, dos: np.ndarray, edge: float, conduction: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Grid of one band (E >= CBM or E <= VBM), starting exactly at the edge (DOS interpolated
    there), and ln(trapezoid weight x DOS) per point (-inf where the DOS is zero)."""
    g_edge = float(np.interp(edge, energies, dos))
    if conduction:
        keep = energies > edge
        e = np.concatenate(([edge], energies[keep]))
        g = np.concatenate(([g_edge], dos[keep]))
    else:
        keep = energies < edge
        e = np.concatenate((energies[keep], [edge]))
        g = np.concatenate((dos[keep], [g_edge]))
    weights = np.zeros_like(e)
    if e.size > 1:
        half = 0.5 * np.diff(e)
        weights[:-1] += half
        weights[1:] += half
    wg = weights * g
    if not np.any(wg > 0.0):
        band = "above the CBM" if conduction else "below the VBM"
        raise ValueError(f"the DOS has no states {band}")
    with np.errstate(divide="ignore"):
        return e, np.log(wg)


@dataclass(eq=False)
class DosBands(BandModel):
    """Carrier densities from a tabulated density of states of the perfect host.

    ``n = (1/V) int_{E >= CBM} g(E) f(E) dE`` and ``p = (1/V) int_{E <= VBM} g(E) (1 - f(E)) dE``
    with Fermi-Dirac occupations f and the trapezoid rule on the given grid. DOS inside the gap
    (e.g. Gaussian tails) is ignored; defect levels belong in the defect species instead.

    Attributes:
        energies: increasing energy grid (eV), in the same reference as ``vbm`` and ``cbm``.
            It should reach several eV beyond both band edges; the DOS is zero outside it.
        dos: states per eV per unit cell, spin included, at ``energies``.
        vbm: valence-band maximum (eV), the zero of the Fermi level.
        cbm: conduction-band minimum (eV).
        volume: volume of the cell the DOS refers to (Å^3).
    """

    energies: np.ndarray
    dos: np.ndarray
    vbm: float
    cbm: float
    volume: float
    _cond: tuple[np.ndarray, np.ndarray] = field(init=False, repr=False)
    _val: tuple[np.ndarray, np.ndarray] = field(init=False, repr=False)
    _log_volume_cm3: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.energies = np.asarray(self.energies, dtype=float)
        self.dos = np.asarray(self.dos, dtype=float)
        if self.energies.ndim != 1 or self.energies.size < 2:
            raise ValueError("energies must be a 1-D grid of at least two points")
        if self.dos.shape != self.energies.shape:
            raise ValueError(
                f"dos has shape {self.dos.shape} but energies have {self.energies.shape}"
            )
        if not (np.all(np.isfinite(self.energies)) and np.all(np.isfinite(self.dos))):
            raise ValueError("energies and dos must be finite")
        if np.any(np.diff(self.energies) <= 0.0):
            raise ValueError("energies must be strictly increasing")
        if np.any(self.dos < 0.0):
            raise ValueError("dos must not be negative")
        self.vbm, self.cbm = float(self.vbm), float(self.cbm)
        if not self.cbm > self.vbm:
            raise ValueError(f"CBM ({self.cbm}) must lie above the VBM ({self.vbm})")
        if not (self.energies[0] <= self.vbm and self.cbm <= self.energies[-1]):
            raise ValueError(
                f"the energy grid [{self.energies[0]}, {self.energies[-1]}] must contain "
                f"the VBM ({self.vbm}) and the CBM ({self.cbm})"
            )
        self.volume = check_positive(self.volume, "cell volume")
        self._cond = _band_quadrature(self.energies, self.dos, self.cbm, conduction=True)
        self._val = _band_quadrature(self.energies, self.dos, self.vbm, conduction=False)
        self._log_volume_cm3 = math.log(self.volume * A3_TO_CM3)

    @property
    def band_gap(self) -> float:
        return self.cbm - self.vbm

    def log_electron_density(self, fermi_level: float, temperature: float) -> float:
        kt = K_B * check_temperature(temperature)
        mu = self.vbm + float(fermi_level)
        e, log_wg = self._cond
        # ln f = -ln(1 + exp((E - mu)/kT)), stable for any sign of E - mu.
        log_occ = -np.logaddexp(0.0, (e - mu) / kt)
        return logsumexp(log_wg + log_occ) - self._log_volume_cm3

    def log_hole_density(self, fermi_level: float, temperature: float) -> float:
        kt = K_B * check_temperature(temperature)
        mu = self.vbm + float(fermi_level)
        e, log_wg = self._val
        log_empty = -np.logaddexp(0.0, (mu - e) / kt)  # ln(1 - f)
        return logsumexp(log_wg + log_empty) - self._log_volume_cm3


def dos_bands_from_eigenvalues(
    eigenvalues: np.ndarray | Sequence[Sequence[float]],
    weights: np.ndarray | Sequence[float],
    vbm: float,
    cbm: float,
    volume: float,
    sigma: float,
    *,
    spin_degeneracy: float,
    step: float | None = None,
) -> DosBands:
    """Gaussian-broadened DOS of the host from Kohn-Sham eigenvalues on a k-mesh.

    ``g(E) = s * sum_k w_k sum_n G_sigma(E - eps_nk)`` states/eV per cell, with the k-point
    weights normalised to sum to 1 (so each band holds ``s`` states per cell).

    Args:
        eigenvalues: eV, shape (n_kpoints, n_bands), or (n_spins, n_kpoints, n_bands) for a
            spin-polarised run.
        weights: k-point weights, shape (n_kpoints,); any positive normalisation.
        vbm, cbm: band edges (eV, same reference as the eigenvalues).
        volume: cell volume (Å^3).
        sigma: Gaussian standard deviation (eV). Keep it well below k_B T: Boltzmann tails of a
            Gaussian-smeared band edge are inflated by about exp(sigma^2 / (2 (k_B T)^2)).
        spin_degeneracy: electrons per listed eigenvalue: 2 for a non-spin-polarised run
            without spin-orbit coupling, 1 for spin-polarised (both spins listed) or
            noncollinear/SOC runs. Required, because a wrong value silently doubles n and p.
        step: energy grid spacing (eV); default sigma / 10.

    The eigenvalues are binned onto the grid by linear interpolation (which keeps the number
    of states and their mean energy) and the histogram is convolved with a discrete Gaussian
    normalised to unit area, so the DOS integrates exactly to the number of states.
    """
    eig = np.asarray(eigenvalues, dtype=float)
    w = np.asarray(weights, dtype=float)
    if eig.ndim == 2:
        eig = eig[None]
    if eig.ndim != 3:
        raise ValueError(
            "eigenvalues must have shape (n_kpoints, n_bands) or (n_spins, n_kpoints, n_bands)"
        )
    if w.ndim != 1 or w.size != eig.shape[1]:
        raise ValueError(f"need one weight per k-point ({eig.shape[1]}), got shape {w.shape}")
    if not (np.all(np.isfinite(eig)) and np.all(np.isfinite(w))):
        raise ValueError("eigenvalues and weights must be finite")
    if np.any(w < 0.0) or not w.sum() > 0.0:
        raise ValueError("k-point weights must be non-negative with a positive sum")
    sigma = check_positive(sigma, "broadening sigma")
    spin = check_positive(spin_degeneracy, "spin_degeneracy")
    step = sigma / 10.0 if step is None else check_positive(step, "energy step")

    w = w / w.sum()
    state_weights = np.broadcast_to(w[None, :, None], eig.shape).ravel() * spin
    eps = eig.ravel()
    pad = 8.0 * sigma  # kernel reach (6 sigma) plus room for the band edges
    e0 = float(eps.min()) - pad
    n_points = int(math.ceil((float(eps.max()) + pad - e0) / step)) + 1
    energies = e0 + step * np.arange(n_points)

    # Linear binning: each state is shared by its two neighbouring grid points.
    x = (eps - e0) / step
    i = np.floor(x).astype(int)
    frac = x - i
    hist = np.bincount(i, state_weights * (1.0 - frac), minlength=n_points)
    hist += np.bincount(i + 1, state_weights * frac, minlength=n_points)
    hist = hist[:n_points]

    half = int(math.ceil(6.0 * sigma / step))
    offsets = step * np.arange(-half, half + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    dos = np.convolve(hist, kernel, mode="same") / step
    return DosBands(energies, dos, vbm, cbm, volume)
