"""Defect thermodynamics: formation energies, stable charge states and transition levels.

Conventions (eV throughout):

* ``E_f(q, E_F) = E_def - E_bulk - sum_i n_i mu_i + q (E_VBM + E_F) + E_corr``, with
  ``n_i > 0`` for atoms added to the supercell and ``n_i < 0`` for atoms removed, and the
  Fermi level ``E_F`` measured from the valence-band maximum.
* A charge state is a straight line ``E_f(q, E_F) = E_f(q, 0) + q E_F``; the thermodynamic
  transition level ``ε(q/q')`` is where two lines cross, reported only where both lie on the
  lower envelope.

pymatgen-analysis-defects has formation-energy diagrams too, but they need full
``DefectEntry``/``ComputedStructureEntry`` objects and a phase diagram; here the inputs are
plain numbers per charge state, so a short envelope march on floats is simpler and easier to
check by hand.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from perovskite_defects.engines.base import CalcRecord

Status = Literal["converged", "unconverged", "missing"]

_TOL = 1e-9  # eV; ties between lines or crossings closer than this are treated as equal


def formation_energy(
    e_defect: float,
    e_bulk: float,
    atoms_added: Mapping[str, int],
    mu: Mapping[str, float],
    charge: int,
    vbm: float,
    fermi_level: float = 0.0,
    correction: float = 0.0,
) -> float:
    """Formation energy of one charged defect (eV).

    Args:
        e_defect: total energy of the defect supercell.
        e_bulk: total energy of the pristine supercell.
        atoms_added: element -> number of atoms added (> 0) or removed (< 0), e.g.
            {"I": -1} for an iodine vacancy, {"Na": 1, "Pb": -1} for Na on a Pb site.
        mu: absolute chemical potentials (eV/atom) of at least the elements in
            ``atoms_added``.
        charge: defect charge q (+1 = one electron removed).
        vbm: valence-band maximum of the bulk (eV), in the same reference as the energies.
        fermi_level: Fermi level above the VBM.
        correction: finite-size (and any other) correction to add.
    """
    missing = sorted(el for el in atoms_added if el not in mu)
    if missing:
        raise ValueError(f"no chemical potential for {', '.join(missing)}")
    exchange = sum(n * mu[el] for el, n in atoms_added.items())
    return e_defect - e_bulk - exchange + charge * (vbm + fermi_level) + correction


@dataclass
class DefectChargeEntry:
    """One charge state of one defect, at every chemical-potential limit of the study.

    A failed or absent calculation is kept as an explicit entry with ``status="missing"``
    and ``None`` numbers, so tables show it instead of silently dropping it.

    Attributes:
        name: defect name, e.g. "V_I" or "Na_Pb".
        charge: charge q.
        formation_energies: limit name -> E_f at E_F = VBM (eV), correction included;
            values are None when the calculation is missing.
        correction: correction included in the formation energies (eV), None if missing.
        status: "converged", "unconverged" (energy present but not trustworthy) or "missing".
        note: free text, e.g. why a calculation is missing.
        extra: anything else worth keeping with the entry (JSON-serialisable).
    """

    name: str
    charge: int
    formation_energies: dict[str, float | None]
    correction: float | None = 0.0
    status: Status = "converged"
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def converged(self) -> bool:
        return self.status == "converged"

    @property
    def is_missing(self) -> bool:
        return self.status == "missing"

    @classmethod
    def from_energies(
        cls,
        name: str,
        charge: int,
        e_defect: float,
        e_bulk: float,
        atoms_added: Mapping[str, int],
        limits: Mapping[str, Mapping[str, float]],
        vbm: float,
        correction: float = 0.0,
        converged: bool = True,
        note: str = "",
    ) -> DefectChargeEntry:
        """Evaluate :func:`formation_energy` at E_F = VBM for every limit in ``limits``
        (limit name -> absolute chemical potentials, e.g. ``ChemicalPotentialLimits.limits``).
        """
        energies: dict[str, float | None] = {
            lim: formation_energy(e_defect, e_bulk, atoms_added, mu, charge, vbm, 0.0, correction)
            for lim, mu in limits.items()
        }
        status: Status = "converged" if converged else "unconverged"
        return cls(name, int(charge), energies, float(correction), status, note)

    @classmethod
    def from_records(
        cls,
        name: str,
        defect: CalcRecord | None,
        bulk: CalcRecord,
        atoms_added: Mapping[str, int],
        limits: Mapping[str, Mapping[str, float]],
        charge: int | None = None,
        correction: float = 0.0,
        vbm: float | None = None,
    ) -> DefectChargeEntry:
        """Build from engine records; ``defect=None`` gives a missing entry.

        ``charge`` defaults to the defect record's charge (it is required when ``defect`` is
        None); ``vbm`` defaults to the bulk record's VBM.
        """
        if defect is None:
            if charge is None:
                raise ValueError(f"{name}: charge is needed for a missing calculation")
            return cls.missing(name, charge, limits, note="no calculation record")
        vbm = bulk.vbm if vbm is None else vbm
        if vbm is None:
            raise ValueError(f"{name}: the bulk record has no VBM; pass vbm explicitly")
        q = defect.charge if charge is None else charge
        if q != defect.charge:
            raise ValueError(f"{name}: charge {q} differs from the record's {defect.charge}")
        note = "" if defect.converged else f"not converged: {defect.run_dir}"
        return cls.from_energies(
            name,
            q,
            defect.energy,
            bulk.energy,
            atoms_added,
            limits,
            vbm,
            correction,
            converged=defect.converged,
            note=note,
        )

    @classmethod
    def missing(
        cls, name: str, charge: int, limits: Sequence[str] | Mapping[str, Any], note: str = ""
    ) -> DefectChargeEntry:
        """An explicit placeholder for a calculation that failed or was never run."""
        return cls(name, int(charge), dict.fromkeys(limits), None, "missing", note)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable dictionary of all fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DefectChargeEntry:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


def charge_lines(
    entries: Sequence[DefectChargeEntry],
    name: str,
    limit: str,
    include_unconverged: bool = False,
) -> dict[int, float]:
    """Charge -> E_f at E_F = VBM for one defect at one limit, skipping missing entries
    (and unconverged ones unless ``include_unconverged``)."""
    lines: dict[int, float] = {}
    for entry in entries:
        if entry.name != name or entry.is_missing:
            continue
        if not entry.converged and not include_unconverged:
            continue
        value = entry.formation_energies.get(limit)
        if value is None:
            continue
        if entry.charge in lines:
            raise ValueError(f"{name}: charge {entry.charge} appears twice")
        lines[entry.charge] = value
    return lines


# --- lower envelope and transition levels ---------------------------------------------------


@dataclass(frozen=True)
class EnvelopeSegment:
    """Charge state ``charge`` is the most stable one for ``start <= E_F <= end``."""

    charge: int
    start: float
    end: float


@dataclass(frozen=True)
class TransitionLevel:
    """Thermodynamic transition level ε(q/q') with q > q'.

    Attributes:
        q: the more positive charge (stable below the level).
        q_prime: the more negative charge (stable above the level).
        level: ε(q/q') above the VBM (eV).
        depth: band gap - level, i.e. depth below the CBM (eV; negative if above the CBM).
        in_gap: True when 0 <= level <= band gap.
    """

    q: int
    q_prime: int
    level: float
    depth: float
    in_gap: bool

    @property
    def label(self) -> str:
        """Written like "+1/0" or "0/-1"."""
        return f"{format_charge(self.q)}/{format_charge(self.q_prime)}"


def format_charge(q: int) -> str:
    """ "+1", "0", "-2": explicit sign except for zero."""
    return f"{q:+d}" if q else "0"


def _check_lines(lines: Mapping[int, float]) -> dict[int, float]:
    if not lines:
        raise ValueError("no charge states given")
    checked = {}
    for q, e in lines.items():
        if not math.isfinite(e):
            raise ValueError(f"charge {q}: formation energy {e!r} is not finite")
        checked[int(q)] = float(e)
    return checked


def lower_envelope(
    lines: Mapping[int, float], window: tuple[float, float]
) -> list[EnvelopeSegment]:
    """Segments of the lower envelope of ``E_f(q) + q E_F`` over ``window`` (E_F from VBM).

    Marches from the left edge: the current line is replaced by the one it crosses first
    among lines with a smaller slope (charge). When several lines cross the current one at
    the same point (a degenerate crossing), the lowest charge is taken, so the intermediate
    state, stable only at that single point, gets no segment and the level is reported
    directly as q/q''. A crossing exactly at a window edge is kept (as a zero-length
    segment), so levels at the edges are reported on both sides alike.
    """
    lo, hi = (float(window[0]), float(window[1]))
    if not lo < hi:
        raise ValueError(f"empty Fermi-level window {window}")
    lines = _check_lines(lines)

    def value(q: int, x: float) -> float:
        return lines[q] + q * x

    lowest = min(value(q, lo) for q in lines)
    # Among lines tied at the left edge take the highest charge: it is the one stable just
    # left of the edge, so a level exactly at ``lo`` is still reported.
    current = max(q for q in lines if value(q, lo) <= lowest + _TOL)
    x = lo
    segments: list[EnvelopeSegment] = []
    while True:
        best: tuple[float, int] | None = None
        for q in lines:
            if q >= current:
                continue
            cross = (lines[q] - lines[current]) / (current - q)
            if cross < x - _TOL:
                continue
            if best is None or cross < best[0] - _TOL:
                best = (cross, q)
            elif abs(cross - best[0]) <= _TOL and q < best[1]:
                best = (best[0], q)
        if best is None or best[0] > hi + _TOL:
            segments.append(EnvelopeSegment(current, x, hi))
            return segments
        cross = max(best[0], x)
        segments.append(EnvelopeSegment(current, x, cross))
        current, x = best[1], cross


def stable_charge_states(lines: Mapping[int, float], window: tuple[float, float]) -> list[int]:
    """Charges on the lower envelope in ``window``, from the most positive to the most negative.

    A state that touches the envelope at a single point only (degenerate crossing) is not
    included.
    """
    return [seg.charge for seg in lower_envelope(lines, window)]


def transition_levels(
    lines: Mapping[int, float],
    band_gap: float,
    window: tuple[float, float] | None = None,
) -> list[TransitionLevel]:
    """Transition levels between consecutive stable charge states (crossings of the envelope).

    Args:
        lines: charge q -> formation energy at E_F = VBM (eV).
        band_gap: gap used for the depth below the CBM and the ``in_gap`` flag.
        window: Fermi-level range (from the VBM) to search; default ``(0, band_gap)``. A wider
            window shows levels just outside the gap.

    Returns:
        Levels in increasing energy; empty for a defect with one stable charge state. Where
        three or more lines meet at one point, only the direct level between the outer
        states is returned (e.g. ε(+1/-1)), since the middle state is never the unique
        ground state.
    """
    if window is None:
        window = (0.0, band_gap)
    segments = lower_envelope(lines, window)
    levels = []
    for left, right in zip(segments, segments[1:], strict=False):
        level = left.end
        levels.append(
            TransitionLevel(
                q=left.charge,
                q_prime=right.charge,
                level=level,
                depth=band_gap - level,
                in_gap=-_TOL <= level <= band_gap + _TOL,
            )
        )
    return levels


def envelope_energy(
    lines: Mapping[int, float], fermi_levels: float | Sequence[float] | np.ndarray
) -> np.ndarray:
    """Lowest formation energy over all charge states at each Fermi level (for plotting)."""
    lines = _check_lines(lines)
    ef = np.atleast_1d(np.asarray(fermi_levels, dtype=float))
    charges = np.array(list(lines), dtype=float)
    offsets = np.array(list(lines.values()))
    return (offsets[:, None] + charges[:, None] * ef[None, :]).min(axis=0)
