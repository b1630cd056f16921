"""Results of a ground-state search: energy against bond distortion, per charge state.

Input: for each charge state the final energies (eV) of the relaxed trials, keyed by the
labels of :mod:`perovskite_defects.defects.distortions` ("Bond_Distortion_-30.0%",
"Rattled") plus "Unperturbed", the plain relaxation from the undistorted cell that every
trial is measured against. Output: the table of relative energies, per charge state the
lowest trial and its energy lowering, and a plot of energy against distortion.

A trial counts as a new ground state when it lies more than ``min_e_diff`` (0.05 eV, as
ShakeNBreak's analysis) below the plain relaxation; smaller differences are within what
loose relaxation thresholds leave unconverged.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from perovskite_defects.thermodynamics.formation import format_charge

UNPERTURBED = "Unperturbed"
RATTLED = "Rattled"
_LABEL = re.compile(r"^(?:Bond_Distortion_(-?\d+(?:\.\d+)?)%|(Rattled))(?:_from_([+-]?\d+))?$")


def parse_label(label: str) -> tuple[float | None, int | None]:
    """(bond distortion d, source charge) of a trial label: "Bond_Distortion_-30.0%" ->
    (-0.3, None); "Rattled" and "Unperturbed" -> (None, None); a ground state of another
    charge state tried in this one, "Bond_Distortion_-40.0%_from_+1" -> (-0.4, 1)."""
    if label == UNPERTURBED:
        return None, None
    m = _LABEL.match(label)
    if not m:
        raise ValueError(
            f"trial label {label!r} is not Unperturbed, Rattled or Bond_Distortion_X% "
            "(optionally with _from_<charge>)"
        )
    d = round(float(m.group(1)) / 100.0, 4) if m.group(1) is not None else None
    return d, int(m.group(3)) if m.group(3) is not None else None


def label_distortion(label: str) -> float | None:
    """The bond distortion d of a trial label (None for Rattled and Unperturbed)."""
    return parse_label(label)[0]


@dataclass(frozen=True)
class TrialEnergy:
    """One relaxed trial: its energy and the energy relative to the plain relaxation (eV)."""

    charge: int
    label: str
    distortion: float | None
    energy: float
    relative: float
    source_charge: int | None = None


@dataclass(frozen=True)
class ChargeResult:
    """The lowest trial of one charge state.

    Attributes:
        charge: charge state q.
        lowest: label of the lowest-energy structure (may be "Unperturbed").
        lowest_energy: its energy (eV).
        lowering: lowest minus plain relaxation (eV, <= 0).
        new_ground_state: the lowering exceeds ``min_e_diff``.
    """

    charge: int
    lowest: str
    lowest_energy: float
    lowering: float
    new_ground_state: bool


def _checked(records: Mapping[int, Mapping[str, float]]) -> dict[int, dict[str, float]]:
    if not records:
        raise ValueError("ground-state search: no charge state has trial energies")
    out: dict[int, dict[str, float]] = {}
    for charge, energies in records.items():
        if UNPERTURBED not in energies:
            raise ValueError(
                f"charge {format_charge(charge)}: no {UNPERTURBED} energy to measure trials by"
            )
        for label, energy in energies.items():
            parse_label(label)
            if not math.isfinite(energy):
                raise ValueError(
                    f"charge {format_charge(charge)}, {label}: energy {energy} is not finite"
                )
        out[int(charge)] = {label: float(e) for label, e in energies.items()}
    return out


def energy_table(records: Mapping[int, Mapping[str, float]]) -> list[TrialEnergy]:
    """Every trial with its energy relative to the plain relaxation of its charge state;
    ordered by charge (highest first), then distortion (Unperturbed, Rattled first)."""
    rows = []
    for charge, energies in _checked(records).items():
        ref = energies[UNPERTURBED]
        for label, energy in energies.items():
            d, source = parse_label(label)
            rows.append(TrialEnergy(charge, label, d, energy, energy - ref, source))

    def order(row: TrialEnergy) -> tuple[int, int, float, str]:
        first = {UNPERTURBED: 0, RATTLED: 1}.get(row.label, 2)
        return (-row.charge, first, row.distortion or 0.0, row.label)

    return sorted(rows, key=order)


def lowest_trials(
    records: Mapping[int, Mapping[str, float]], min_e_diff: float = 0.05
) -> list[ChargeResult]:
    """Per charge state (highest first) the lowest structure and its energy lowering
    against the plain relaxation; ties go to the plain relaxation."""
    if min_e_diff < 0:
        raise ValueError(f"min_e_diff {min_e_diff} is negative")
    results = []
    for charge, energies in sorted(_checked(records).items(), reverse=True):
        ref = energies[UNPERTURBED]
        label = min(energies, key=lambda k: (energies[k], k != UNPERTURBED))
        lowering = energies[label] - ref
        results.append(
            ChargeResult(charge, label, energies[label], lowering, -lowering > min_e_diff)
        )
    return results


def cross_charge_trials(results: list[ChargeResult]) -> list[tuple[int, int, str, str]]:
    """The relaxed structures to try in other charge states: for every new ground state
    (of charge q, label L) and every other charge state q' of ``results``, the tuple
    (q', q, L, new label "L_from_q"), ShakeNBreak's naming. The caller relaxes the
    structure of L at q in charge state q' and adds its energy under the new label."""
    found = [r for r in results if r.new_ground_state]
    out = []
    for target in results:
        for source in found:
            if source.charge != target.charge:
                base = source.lowest.split("_from_")[0]
                new = f"{base}_from_{format_charge(source.charge)}"
                out.append((target.charge, source.charge, source.lowest, new))
    return out


def plot_energies(
    records: Mapping[int, Mapping[str, float]], defect: str, stem: str | Path
) -> list[Path]:
    """Energy relative to the plain relaxation against bond distortion (%), one line per
    charge state; "Rattled" is drawn at 0 % with an open marker, a structure from another
    charge state as a cross at its distortion, the plain relaxation is the zero line.
    Writes PNG and SVG (a figure saying so when no trial has an energy, so the files
    exist either way); returns their paths."""
    # why: reporting.plots loads matplotlib: only when a plot is drawn
    from perovskite_defects.reporting.plots import _pyplot, _save

    plt = _pyplot()
    if not any(records.values()):
        fig, ax = plt.subplots(figsize=(5.0, 1.5))
        ax.axis("off")
        ax.text(0.5, 0.5, f"{defect}: no relaxed trial energies", ha="center", va="center")
        paths = _save(fig, Path(stem))
        plt.close(fig)
        return paths
    rows = energy_table(records)
    fig, ax = plt.subplots(figsize=(5.0, 3.8))
    ax.axhline(0.0, color="0.5", lw=1, ls="--", label=f"{UNPERTURBED} (plain relaxation)")
    for i, charge in enumerate(sorted({r.charge for r in rows}, reverse=True)):
        colour = f"C{i % 10}"
        bonds = [
            r
            for r in rows
            if r.charge == charge and r.distortion is not None and r.source_charge is None
        ]
        ax.plot(
            [100 * r.distortion for r in bonds if r.distortion is not None],
            [r.relative for r in bonds],
            "o-",
            color=colour,
            label=f"q = {format_charge(charge)}",
        )
        for r in rows:
            if r.charge != charge or r.label == UNPERTURBED:
                continue
            if r.source_charge is not None:  # a ground state of another charge state
                ax.plot([100 * (r.distortion or 0.0)], [r.relative], "x", ms=8, color=colour)
            elif r.label == RATTLED:
                ax.plot([0.0], [r.relative], "o", mfc="none", color=colour)
    if any(r.label == RATTLED for r in rows):
        ax.plot([], [], "o", mfc="none", color="0.4", label=RATTLED)
    if any(r.source_charge is not None for r in rows):
        ax.plot([], [], "x", color="0.4", label="from another charge state")
    ax.set_xlabel("bond distortion (%)")
    ax.set_ylabel("E - E(plain relaxation) (eV)")
    ax.set_title(f"{defect}: ground-state search")
    ax.legend(fontsize=8)
    paths = _save(fig, Path(stem))
    plt.close(fig)
    return paths
