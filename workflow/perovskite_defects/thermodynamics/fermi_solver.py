"""Equilibrium defect and carrier concentrations and the self-consistent Fermi level.

Units on the public side: eV, K, cm^-3, and Å^3 for cell volumes. The Fermi level ``E_F`` is
measured from the valence-band maximum, as in :mod:`perovskite_defects.thermodynamics.formation`.

Model (dilute, non-interacting defects):

* Defect concentration of charge state q::

      c(q) = N_sites g_q exp(-E_f(q, E_F) / k_B T),     E_f(q, E_F) = E_f(q, 0) + q E_F

  with ``N_sites`` the density of lattice sites the defect can occupy (site multiplicity per
  unit cell over the cell volume) and ``g_q`` the degeneracy factor of the charge state,
  ``g = g_spin * g_orientation``: ``g_spin = 2S + 1`` (2 for one unpaired electron, 1 for a
  closed shell) and ``g_orientation`` the number of equivalent symmetry-broken configurations
  per site (e.g. 3 for a split interstitial that can point along x, y or z). Default 1.
* Carriers: electrons ``n`` in the conduction band and holes ``p`` in the valence band, from a
  :class:`BandModel` (parabolic bands with Fermi-Dirac statistics, or a tabulated DOS).
* Charge neutrality: ``p + sum_{q>0} q c(q) = n + sum_{q<0} |q| c(q)``. The net charge falls
  strictly as E_F rises (every term's derivative has the same sign), so there is exactly one
  root, found with Brent's method in a wide bracket.

Numerics: every density is handled as its natural logarithm, and the net charge is divided by
its largest term before root finding, so ``exp`` neither overflows nor underflows to a zero
that would hide the sign of the net charge (wide brackets, low temperatures).

The methods follow the usual textbook treatment (e.g. Freysoldt et al., Rev. Mod. Phys. 86,
253 (2014); Sze & Ng, *Physics of Semiconductor Devices*, ch. 1); the code is written here.

The synthesis-then-room-temperature quench is in :mod:`perovskite_defects.thermodynamics.quenched`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from perovskite_defects.thermodynamics.carriers import (
    A3_TO_CM3,
    K_B,
    BandModel,
    check_positive,
    check_temperature,
    logsumexp,
)
from perovskite_defects.thermodynamics.formation import DefectChargeEntry, charge_lines
from perovskite_defects.thermodynamics.rows import CHARGE, DEFECT, Row

CONCENTRATION = "concentration (cm^-3)"

NEUTRALITY_TOL = 1e-6
"""Largest accepted |positive - negative charge| / positive charge of a solution."""

DEFAULT_MARGIN = 2.0
"""eV: the default bracket is [VBM - margin, CBM + margin] (widened if needed)."""


# --- defects ----------------------------------------------------------------------------------


@dataclass
class DefectSpecies:
    """One defect with all its charge states, ready for concentrations.

    Give either ``cell_volume`` (with ``multiplicity`` = equivalent sites per unit cell, e.g. 3
    for a halide vacancy in a 5-atom cubic ABX3 cell, so N_sites = 3 / V_cell) or
    ``site_density`` (sites per cm^3 directly, multiplicity left at 1).

    Attributes:
        name: defect name, e.g. "V_I".
        charge_states: charge q -> (formation energy at E_F = VBM in eV, degeneracy g). Both
            numbers are required here; :meth:`from_formation_energies` fills in g = 1.
            g = spin degeneracy (2S + 1; 2 for one unpaired electron) x orientational
            degeneracy (equivalent symmetry-broken configurations per site).
        multiplicity: defect sites per unit cell.
        cell_volume: unit-cell volume (Å^3).
        site_density: sites per cm^3, instead of multiplicity / cell_volume.
    """

    name: str
    charge_states: Mapping[int, tuple[float, float]]
    multiplicity: float = 1.0
    cell_volume: float | None = None
    site_density: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"defect name must be a non-empty string, got {self.name!r}")
        if not self.charge_states:
            raise ValueError(f"{self.name}: no charge states given")
        states: dict[int, tuple[float, float]] = {}
        for q, value in self.charge_states.items():
            charge = _check_charge(self.name, q)
            states[charge] = _check_state(self.name, charge, value)
        self.charge_states = states
        self.multiplicity = check_positive(self.multiplicity, f"{self.name}: multiplicity")
        if (self.cell_volume is None) == (self.site_density is None):
            raise ValueError(f"{self.name}: give exactly one of cell_volume and site_density")
        if self.cell_volume is not None:
            self.cell_volume = check_positive(self.cell_volume, f"{self.name}: cell_volume")
        if self.site_density is not None:
            self.site_density = check_positive(self.site_density, f"{self.name}: site_density")
            if self.multiplicity != 1.0:
                raise ValueError(
                    f"{self.name}: site_density already counts every site; multiplicity is "
                    "used only with cell_volume"
                )

    @classmethod
    def from_formation_energies(
        cls,
        name: str,
        formation_energies: Mapping[int, float],
        *,
        degeneracies: Mapping[int, float] | None = None,
        multiplicity: float = 1.0,
        cell_volume: float | None = None,
        site_density: float | None = None,
    ) -> DefectSpecies:
        """Build from charge -> E_f at E_F = VBM; degeneracies default to 1 for every charge,
        but when given they must cover every charge state."""
        if degeneracies is None:
            degeneracies = dict.fromkeys(formation_energies, 1.0)
        missing = [q for q in formation_energies if q not in degeneracies]
        if missing:
            labels = ", ".join(f"{int(q):+d}" for q in missing)
            raise ValueError(f"{name}: missing degeneracy for charge {labels}")
        extra = [q for q in degeneracies if q not in formation_energies]
        if extra:
            labels = ", ".join(f"{int(q):+d}" for q in extra)
            raise ValueError(f"{name}: degeneracy given for charge {labels} with no energy")
        states = {q: (e, degeneracies[q]) for q, e in formation_energies.items()}
        return cls(name, states, multiplicity, cell_volume, site_density)

    @classmethod
    def from_entries(
        cls,
        entries: Sequence[DefectChargeEntry],
        name: str,
        limit: str,
        *,
        degeneracies: Mapping[int, float] | None = None,
        multiplicity: float = 1.0,
        cell_volume: float | None = None,
        site_density: float | None = None,
        include_unconverged: bool = False,
    ) -> DefectSpecies:
        """Build from :class:`~perovskite_defects.thermodynamics.formation.DefectChargeEntry` rows
        at one chemical-potential limit (missing and, by default, unconverged entries are
        skipped)."""
        lines = charge_lines(entries, name, limit, include_unconverged)
        if not lines:
            raise ValueError(f"{name}: no usable formation energies at limit {limit!r}")
        return cls.from_formation_energies(
            name,
            lines,
            degeneracies=degeneracies,
            multiplicity=multiplicity,
            cell_volume=cell_volume,
            site_density=site_density,
        )

    @property
    def n_sites(self) -> float:
        """Density of sites N_sites (cm^-3)."""
        if self.site_density is not None:
            return self.site_density
        assert self.cell_volume is not None  # guaranteed by __post_init__
        return self.multiplicity / (self.cell_volume * A3_TO_CM3)

    def formation_energy(self, charge: int, fermi_level: float) -> float:
        """E_f(q, E_F) = E_f(q, 0) + q E_F (eV)."""
        return self.charge_states[charge][0] + charge * float(fermi_level)

    def _log_weights(self, fermi_level: float, kt: float) -> dict[int, float]:
        """ln(g_q) - E_f(q, E_F) / kT per charge."""
        return {
            q: math.log(g) - (e0 + q * fermi_level) / kt
            for q, (e0, g) in self.charge_states.items()
        }

    def log_concentrations(
        self, fermi_level: float, temperature: float, total: float | None = None
    ) -> dict[int, float]:
        """ln(c(q) / cm^-3) per charge.

        With ``total`` (cm^-3) the total concentration is held fixed and shared among the
        charge states by their relative Boltzmann weights g_q exp(-E_f(q, E_F)/kT).
        """
        kt = K_B * check_temperature(temperature)
        logs = self._log_weights(float(fermi_level), kt)
        if total is None:
            log_ns = math.log(self.n_sites)
            return {q: log_ns + a for q, a in logs.items()}
        if total == 0.0:
            return dict.fromkeys(logs, -math.inf)
        norm = logsumexp(list(logs.values()))
        log_total = math.log(total)
        return {q: log_total + a - norm for q, a in logs.items()}

    def concentrations(
        self, fermi_level: float, temperature: float, total: float | None = None
    ) -> dict[int, float]:
        """c(q) in cm^-3 per charge (see :meth:`log_concentrations`)."""
        logs = self.log_concentrations(fermi_level, temperature, total)
        return {q: math.exp(v) for q, v in logs.items()}

    def charge_fractions(self, fermi_level: float, temperature: float) -> dict[int, float]:
        """Fraction of this defect in each charge state (sums to 1)."""
        return self.concentrations(fermi_level, temperature, total=1.0)


def _check_charge(name: str, q: Any) -> int:
    try:
        iq = int(q)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: charge {q!r} is not an integer") from None
    if iq != q:
        raise ValueError(f"{name}: charge {q!r} is not an integer")
    return iq


def _check_state(name: str, q: int, value: Any) -> tuple[float, float]:
    label = f"{name} charge {q:+d}"
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) != 2:
        raise ValueError(
            f"{label}: expected (formation energy, degeneracy), got {value!r}; "
            "DefectSpecies.from_formation_energies gives the default degeneracy 1"
        )
    energy, degeneracy = value
    if degeneracy is None:
        raise ValueError(f"{label}: missing degeneracy")
    if energy is None or not math.isfinite(float(energy)):
        raise ValueError(f"{label}: formation energy {energy!r} is not a finite number")
    return float(energy), check_positive(degeneracy, f"{label}: degeneracy")


def defect_concentrations(
    defects: Sequence[DefectSpecies], fermi_level: float, temperature: float
) -> dict[str, dict[int, float]]:
    """Equilibrium c(q) (cm^-3) of every defect at a given Fermi level (not self-consistent)."""
    return {d.name: d.concentrations(fermi_level, temperature) for d in defects}


# --- charge neutrality ------------------------------------------------------------------------


@dataclass
class FermiSolution:
    """Charge-neutral state of a host with its defects at one temperature.

    Attributes:
        fermi_level: E_F above the VBM (eV).
        temperature: K.
        band_gap: gap of the band model used (eV).
        electrons: n (cm^-3).
        holes: p (cm^-3).
        concentrations: defect name -> charge -> concentration (cm^-3).
        charge_residual: |positive - negative charge| / positive charge (<= 1e-6).
        in_gap: True when 0 <= E_F <= band gap.
        fixed_totals: defects whose total concentration was held fixed -> that total (cm^-3).
    """

    fermi_level: float
    temperature: float
    band_gap: float
    electrons: float
    holes: float
    concentrations: dict[str, dict[int, float]]
    charge_residual: float
    in_gap: bool
    fixed_totals: dict[str, float] = field(default_factory=dict)

    def total_concentration(self, name: str) -> float:
        """Concentration of one defect summed over its charge states (cm^-3)."""
        return math.fsum(self.concentrations[name].values())

    @property
    def totals(self) -> dict[str, float]:
        """Defect name -> total concentration (cm^-3)."""
        return {name: self.total_concentration(name) for name in self.concentrations}

    def to_rows(self) -> Iterator[Row]:
        """Table rows (defect, charge, concentration in cm^-3), charges from + to -."""
        for name, by_charge in self.concentrations.items():
            for q in sorted(by_charge, reverse=True):
                yield {DEFECT: name, CHARGE: q, CONCENTRATION: by_charge[q]}

    def summary(self) -> dict[str, Any]:
        """Fermi level (eV above the VBM), n and p (cm^-3), with temperature and checks."""
        return {
            "temperature_K": self.temperature,
            "fermi_level_eV": self.fermi_level,
            "n_cm3": self.electrons,
            "p_cm3": self.holes,
            "band_gap_eV": self.band_gap,
            "in_gap": self.in_gap,
            "charge_residual": self.charge_residual,
        }


class _Neutrality:
    """Net charge of host + defects as a function of E_F, in log space."""

    def __init__(
        self,
        defects: Sequence[DefectSpecies],
        bands: BandModel,
        temperature: float,
        fixed: Mapping[str, float],
    ) -> None:
        self.defects = defects
        self.bands = bands
        self.temperature = temperature
        self.fixed = fixed

    def state(self, fermi_level: float) -> tuple[float, float, dict[str, dict[int, float]]]:
        """ln n, ln p and ln c(q) per defect at ``fermi_level``."""
        t = self.temperature
        log_n = self.bands.log_electron_density(fermi_level, t)
        log_p = self.bands.log_hole_density(fermi_level, t)
        log_c = {
            d.name: d.log_concentrations(fermi_level, t, self.fixed.get(d.name))
            for d in self.defects
        }
        return log_n, log_p, log_c

    @staticmethod
    def scaled_charges(
        log_n: float, log_p: float, log_c: Mapping[str, Mapping[int, float]]
    ) -> tuple[float, float]:
        """Positive and negative charge densities, both divided by the largest single term."""
        pos = [log_p]
        neg = [log_n]
        for by_charge in log_c.values():
            for q, lc in by_charge.items():
                if q > 0:
                    pos.append(math.log(q) + lc)
                elif q < 0:
                    neg.append(math.log(-q) + lc)
        top = max(max(pos), max(neg))  # finite: carrier densities always are
        return (
            math.fsum(math.exp(v - top) for v in pos),
            math.fsum(math.exp(v - top) for v in neg),
        )

    def net(self, fermi_level: float) -> float:
        """(positive - negative charge) / largest term; strictly decreasing in E_F."""
        pos, neg = self.scaled_charges(*self.state(fermi_level))
        return pos - neg


def _validate_inputs(
    defects: Sequence[DefectSpecies],
    bands: BandModel,
    fixed_concentrations: Mapping[str, float] | None,
) -> dict[str, float]:
    if not isinstance(bands, BandModel):
        what = "no band model" if bands is None else f"{type(bands).__name__} is not a BandModel"
        raise ValueError(
            f"{what}: give EffectiveMassBands or DosBands (carriers are always part of "
            f"neutrality; with {len(defects)} defect species given)"
        )
    names = []
    for d in defects:
        if not isinstance(d, DefectSpecies):
            raise ValueError(f"defects must be DefectSpecies, got {type(d).__name__}")
        names.append(d.name)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"defect names must be unique: {', '.join(duplicates)} repeated")
    fixed: dict[str, float] = {}
    for name, total in (fixed_concentrations or {}).items():
        if name not in names:
            raise ValueError(f"fixed concentration given for unknown defect {name!r}")
        value = float(total)
        if not math.isfinite(value) or value < 0.0:
            raise ValueError(f"{name}: fixed concentration must be >= 0 and finite, got {total!r}")
        fixed[name] = value
    return fixed


def solve_fermi_level(
    defects: Sequence[DefectSpecies],
    bands: BandModel,
    temperature: float,
    *,
    fixed_concentrations: Mapping[str, float] | None = None,
    bracket: tuple[float, float] | None = None,
) -> FermiSolution:
    """Self-consistent Fermi level from charge neutrality.

    Args:
        defects: defect species (may be empty: intrinsic host).
        bands: the host's band model (required: it supplies n and p).
        temperature: K.
        fixed_concentrations: defect name -> total concentration (cm^-3) held fixed (e.g. a
            dopant at its known density, or defects frozen in after a quench); the total is
            shared among charge states by their Boltzmann weights at E_F.
        bracket: E_F search interval (eV from the VBM). Default: VBM - 2 eV to CBM + 2 eV,
            widened in 2 eV steps (up to 40 eV each side) if the net charge has no sign
            change there. A given bracket is used as is.

    The net charge is strictly decreasing in E_F, so the root in the bracket is unique; it is
    found with Brent's method (scipy.optimize.brentq) to ~1e-14 eV, far tighter than needed
    for neutrality to 1e-6 relative.

    Raises:
        ValueError: bad inputs, or no sign change of the net charge in the bracket.
        RuntimeError: the neutrality check fails (should not happen).
    """
    from scipy.optimize import brentq  # scipy import is slow: keep it local

    t = check_temperature(temperature)
    fixed = _validate_inputs(defects, bands, fixed_concentrations)
    model = _Neutrality(list(defects), bands, t, fixed)
    gap = bands.band_gap

    if bracket is None:
        lo, hi = -DEFAULT_MARGIN, gap + DEFAULT_MARGIN
        for _ in range(19):  # huge defect densities can push the root outside the default
            if model.net(lo) > 0.0:
                break
            lo -= DEFAULT_MARGIN
        for _ in range(19):
            if model.net(hi) < 0.0:
                break
            hi += DEFAULT_MARGIN
    else:
        lo, hi = (float(bracket[0]), float(bracket[1]))
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"bracket must be two finite numbers low < high, got {bracket!r}")
    f_lo, f_hi = model.net(lo), model.net(hi)
    if f_lo == 0.0:
        root = lo
    elif f_hi == 0.0:
        root = hi
    elif f_lo > 0.0 > f_hi:
        # xtol/rtol at (nearly) machine precision: a 1e-14 eV error in E_F changes the charge
        # balance by ~|q| 1e-14 / kT, orders of magnitude inside the 1e-6 requirement.
        root = float(
            brentq(model.net, lo, hi, xtol=1e-14, rtol=4.0 * np.finfo(float).eps, maxiter=1000)
        )
    else:
        raise ValueError(
            f"net charge does not change sign for E_F in [{lo}, {hi}] eV from the VBM "
            f"(scaled net charge {f_lo:.3g} and {f_hi:.3g}); widen the bracket"
        )

    log_n, log_p, log_c = model.state(root)
    pos, neg = model.scaled_charges(log_n, log_p, log_c)
    residual = abs(pos - neg) / pos
    if residual > NEUTRALITY_TOL:
        raise RuntimeError(
            f"charge neutrality not reached: residual {residual:.3g} at E_F = {root} eV"
        )
    return FermiSolution(
        fermi_level=root,
        temperature=t,
        band_gap=gap,
        electrons=math.exp(log_n),
        holes=math.exp(log_p),
        concentrations={
            name: {q: math.exp(v) for q, v in by_q.items()} for name, by_q in log_c.items()
        },
        charge_residual=residual,
        in_gap=0.0 <= root <= gap,
        fixed_totals=dict(fixed),
    )
