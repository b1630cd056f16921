"""Fermi level, carrier densities and defect concentrations of a study (config
``concentrations``), from :mod:`perovskite_defects.thermodynamics.fermi_solver`.

What goes in, per defect and charge state:

- formation energy at E_F = VBM at the chemical-potential limit (corrections included);
- site density = multiplicity (equivalent sites per primitive cell, from the defect
  generator) x cells in the supercell / supercell volume;
- degeneracy g = g_spin x g_orientation: g_spin = 2 for an odd electron count of the defect
  cell (one unpaired electron, S = 1/2), 1 for an even count (closed shell, the state our
  engine computes for even counts); g_orientation from config (default 1).

Carriers: ``dos`` builds the host DOS from the bulk supercell's eigenvalues (k-points of
non-zero weight); ``effective_mass`` uses parabolic bands with the configured masses;
``auto`` takes ``dos`` only when the weighted k-points reach the band edges (within 0.05 eV),
since a mesh that misses the edge point (e.g. the default shifted 2x2x2 mesh, which misses
R where CsPbI3's gap is) would underestimate n and p by exp(-miss / k_B T).
When band edges come from an external run, the DOS is scissor-shifted onto its edges.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from perovskite_defects.engines.eigenvalues import read_eigenvalues
from perovskite_defects.thermodynamics.carriers import (
    BandModel,
    EffectiveMassBands,
    dos_bands_from_eigenvalues,
)
from perovskite_defects.thermodynamics.fermi_solver import (
    DefectSpecies,
    FermiSolution,
    solve_fermi_level,
)
from perovskite_defects.thermodynamics.formation import DefectChargeEntry, charge_lines
from perovskite_defects.thermodynamics.quenched import QuenchedSolution, solve_quenched

log = logging.getLogger("perovskite_defects")

#: Largest distance (eV) between the weighted k-points' edges and the band edges for "auto"
#: to use the eigenvalue DOS.
EDGE_MATCH_EV = 0.05


@dataclass(frozen=True)
class DefectSite:
    """What concentrations need about one defect beyond its energies."""

    name: str
    site_density: float  # cm^-3
    spin_degeneracy: Mapping[int, float]  # charge -> 2S + 1
    orientational_degeneracy: float = 1.0


def spin_degeneracy(n_electrons: float | None) -> float:
    """2 for an odd electron count (one unpaired electron), 1 for even; 1 if unknown."""
    if n_electrons is None:
        return 1.0
    return 2.0 if int(round(n_electrons)) % 2 else 1.0


def site_density(multiplicity: float, n_cells: int, supercell_volume: float) -> float:
    """Defect sites per cm^3 from sites per primitive cell and the supercell (Å^3)."""
    return multiplicity * n_cells / (supercell_volume * 1e-24)


def band_model(
    settings: Mapping[str, Any],
    bulk_dir: str | Path,
    supercell_volume: float,
    bulk_edges: tuple[float, float],
    edges: tuple[float, float],
) -> tuple[BandModel, str]:
    """The host's carrier model and a one-line description of it.

    Args:
        settings: config ``concentrations``.
        bulk_dir: bulk supercell folder (its eigenvalues are read for ``dos``).
        supercell_volume: Å^3.
        bulk_edges: VBM, CBM of the bulk supercell record (eV).
        edges: VBM, CBM used by the study (eV; differ from bulk_edges for external edges).
    """
    choice = settings["carriers"]
    gap = edges[1] - edges[0]
    if choice in ("auto", "dos"):
        eig = read_eigenvalues(bulk_dir)
        w_vbm, w_cbm = eig.weighted_edges()
        miss = max(abs(w_vbm - bulk_edges[0]), abs(w_cbm - bulk_edges[1]))
        if eig.complete and miss <= EDGE_MATCH_EV:
            energies = np.where(
                eig.occupied, eig.energies + (edges[0] - w_vbm), eig.energies + (edges[1] - w_cbm)
            )
            keep = eig.weights > 0.0
            bands = dos_bands_from_eigenvalues(
                energies[:, keep, :],
                eig.weights[keep],
                edges[0],
                edges[1],
                supercell_volume,
                settings["dos_broadening"],
                spin_degeneracy=eig.spin_degeneracy,
            )
            return bands, (
                f"carriers from the bulk DOS ({int(keep.sum())} k-points, Gaussian "
                f"{settings['dos_broadening']} eV)"
            )
        reason = (
            f"the weighted k-points of the bulk miss the band edges by {miss:.3f} eV "
            f"(> {EDGE_MATCH_EV} eV)"
            if eig.complete
            else "the bulk output printed the eigenvalues of only some of its k-points"
        )
        if choice == "dos":
            raise ValueError(f"config key 'concentrations.carriers' is dos, but {reason}")
        log.info("carriers from effective masses: %s", reason)
    m_e, m_h = settings["electron_mass"], settings["hole_mass"]
    return EffectiveMassBands(gap, m_e, m_h), (
        f"carriers from parabolic bands, m_e = {m_e}, m_h = {m_h} (config)"
    )


def defect_species(
    entries: Sequence[DefectChargeEntry], sites: Mapping[str, DefectSite], limit: str
) -> list[DefectSpecies]:
    """DefectSpecies at one limit for every defect with usable (converged) energies."""
    species = []
    for name, site in sites.items():
        lines = charge_lines(entries, name, limit)
        if not lines:
            log.warning("%s: no converged charge state at %s; left out of neutrality", name, limit)
            continue
        g = {q: site.spin_degeneracy.get(q, 1.0) * site.orientational_degeneracy for q in lines}
        species.append(
            DefectSpecies.from_formation_energies(
                name, lines, degeneracies=g, site_density=site.site_density
            )
        )
    return species


@dataclass
class LimitResult:
    """Neutral state at one chemical-potential limit."""

    limit: str
    solution: FermiSolution | QuenchedSolution

    @property
    def room(self) -> FermiSolution:
        sol = self.solution
        return sol.room if isinstance(sol, QuenchedSolution) else sol


def solve_limits(
    settings: Mapping[str, Any],
    entries: Sequence[DefectChargeEntry],
    sites: Mapping[str, DefectSite],
    limits: Sequence[str],
    bands: BandModel,
) -> list[LimitResult]:
    """Charge neutrality at each requested limit (equilibrium, or synthesis + quench)."""
    wanted = list(settings["limits"]) or list(limits)
    unknown = [lim for lim in wanted if lim not in limits]
    if unknown:
        raise ValueError(
            f"config key 'concentrations.limits': {unknown} not among the limits {list(limits)}"
        )
    results = []
    for limit in wanted:
        species = defect_species(entries, sites, limit)
        t = settings["temperature"]
        t_syn = settings["synthesis_temperature"]
        if t_syn is None:
            sol: FermiSolution | QuenchedSolution = solve_fermi_level(species, bands, t)
        else:
            sol = solve_quenched(species, bands, t_syn, t)
        results.append(LimitResult(limit, sol))
    return results


FERMI_COLUMNS = (
    "limit",
    "temperature (K)",
    "Fermi level above VBM (eV)",
    "n (cm^-3)",
    "p (cm^-3)",
    "synthesis temperature (K)",
    "synthesis Fermi level (eV)",
)


def fermi_rows(results: Sequence[LimitResult]) -> list[dict[str, Any]]:
    rows = []
    for res in results:
        room = res.room
        sol = res.solution
        hot = sol.synthesis if isinstance(sol, QuenchedSolution) else None
        values = (
            res.limit,
            room.temperature,
            room.fermi_level,
            room.electrons,
            room.holes,
            hot.temperature if hot else None,
            hot.fermi_level if hot else None,
        )
        rows.append(dict(zip(FERMI_COLUMNS, values, strict=True)))
    return rows


def concentration_rows(results: Sequence[LimitResult]) -> list[dict[str, Any]]:
    """limit, defect, charge, concentration (cm^-3), total of the defect (cm^-3)."""
    rows = []
    for res in results:
        room = res.room
        for name, by_q in room.concentrations.items():
            total = math.fsum(by_q.values())
            for q in sorted(by_q, reverse=True):
                rows.append(
                    {
                        "limit": res.limit,
                        "defect": name,
                        "charge": q,
                        "concentration (cm^-3)": by_q[q],
                        "defect total (cm^-3)": total,
                    }
                )
    return rows


def dopants_of(atoms_added: Mapping[str, int], host_elements: set[str]) -> list[str]:
    """Elements a defect brings into the host (none for a native defect)."""
    return sorted(el for el, n in atoms_added.items() if n > 0 and el not in host_elements)


DOPANT_EFFECT_COLUMNS = (
    "limit",
    "dopants",
    "Fermi level, native only (eV)",
    "Fermi level, with dopants (eV)",
    "n, native only (cm^-3)",
    "n, with dopants (cm^-3)",
    "p, native only (cm^-3)",
    "p, with dopants (cm^-3)",
    "deep-trap defects",
    "deep-trap density, native only (cm^-3)",
    "deep-trap density, with dopants (cm^-3)",
)


def _deep_trap_density(solution: FermiSolution, deep: Sequence[str]) -> float:
    return math.fsum(solution.total_concentration(n) for n in deep if n in solution.concentrations)


def dopant_effect_rows(
    native_only: Sequence[LimitResult],
    with_dopants: Sequence[LimitResult],
    dopants: Sequence[str],
    deep_defects: Sequence[str],
) -> list[dict[str, Any]]:
    """What the dopants change, per limit: the neutral state solved with the native defects
    alone against the one with every defect (the study's Fermi-level table).

    The deep-trap density is the summed concentration (all charge states) of the defects
    with a deep transition level: each such centre traps carriers whatever its charge. With
    dopants, dopant defects with a deep level count too.
    """
    rows = []
    for nat, dop in zip(native_only, with_dopants, strict=True):
        if nat.limit != dop.limit:
            raise ValueError(f"limits out of step: {nat.limit} against {dop.limit}")
        a, b = nat.room, dop.room
        present = [n for n in deep_defects if n in a.concentrations or n in b.concentrations]
        values = (
            nat.limit,
            " ".join(dopants),
            a.fermi_level,
            b.fermi_level,
            a.electrons,
            b.electrons,
            a.holes,
            b.holes,
            " ".join(present),
            _deep_trap_density(a, present),
            _deep_trap_density(b, present),
        )
        rows.append(dict(zip(DOPANT_EFFECT_COLUMNS, values, strict=True)))
    return rows
