"""The "frozen defect" quench: equilibrium at the synthesis temperature, then the defect
totals held fixed while charge states and carriers re-equilibrate at room temperature.

Split from :mod:`perovskite_defects.thermodynamics.fermi_solver`, whose
:func:`~perovskite_defects.thermodynamics.fermi_solver.solve_fermi_level` does both solves.
Units: eV, K, cm^-3.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from perovskite_defects.thermodynamics.carriers import BandModel, check_temperature
from perovskite_defects.thermodynamics.fermi_solver import (
    DefectSpecies,
    FermiSolution,
    solve_fermi_level,
)
from perovskite_defects.thermodynamics.rows import Row


@dataclass
class QuenchedSolution:
    """Result of :func:`solve_quenched`.

    Attributes:
        synthesis: equilibrium at the synthesis temperature.
        room: neutral state at room temperature with the defect totals frozen.
        frozen_totals: defect name -> total concentration carried over (cm^-3).
    """

    synthesis: FermiSolution
    room: FermiSolution
    frozen_totals: dict[str, float]

    def to_rows(self) -> Iterator[Row]:
        """Rows (defect, charge, concentration in cm^-3) of the quenched, room-T state."""
        return self.room.to_rows()

    def summary(self) -> dict[str, Any]:
        """Room-temperature Fermi level, n and p, plus the synthesis Fermi level."""
        out = self.room.summary()
        out["synthesis_temperature_K"] = self.synthesis.temperature
        out["synthesis_fermi_level_eV"] = self.synthesis.fermi_level
        return out


def solve_quenched(
    defects: Sequence[DefectSpecies],
    bands: BandModel,
    synthesis_temperature: float,
    room_temperature: float,
    *,
    fixed_concentrations: Mapping[str, float] | None = None,
    room_bands: BandModel | None = None,
    bracket: tuple[float, float] | None = None,
) -> QuenchedSolution:
    """The standard "frozen defect" quench.

    1. Full equilibrium at ``synthesis_temperature`` (defects and carriers).
    2. Each defect's total concentration (summed over charge states) is frozen: the defects
       cannot form, anneal or diffuse away on cooling.
    3. At ``room_temperature`` the frozen totals are redistributed over their charge states by
       the relative Boltzmann weights g_q exp(-E_f(q, E_F)/kT) at the new E_F (electrons are
       fast), and neutrality is solved again.

    Approximations: formation energies and degeneracies do not depend on temperature (no
    vibrational entropy), no defect complexes form on cooling, and the band model is the same
    at both temperatures unless ``room_bands`` is given (e.g. the room-temperature gap).

    Args:
        fixed_concentrations: totals held fixed already at the synthesis temperature (e.g. a
            dopant); they are frozen like the others.
        bracket: passed to both solves.
    """
    t_syn = check_temperature(synthesis_temperature, "synthesis temperature")
    t_room = check_temperature(room_temperature, "room temperature")
    hot = solve_fermi_level(
        defects, bands, t_syn, fixed_concentrations=fixed_concentrations, bracket=bracket
    )
    frozen = hot.totals
    cold = solve_fermi_level(
        defects,
        bands if room_bands is None else room_bands,
        t_room,
        fixed_concentrations=frozen,
        bracket=bracket,
    )
    return QuenchedSolution(synthesis=hot, room=cold, frozen_totals=frozen)
