"""Chemical-potential limits given in the config (``chemical_potentials``) instead of
computed from competing phases.

For hosts whose competing phases are not worth (or not possible) to compute here, e.g. a
published phase diagram of the same functional, or limits from an earlier study. The
values are *absolute* chemical potentials in eV/atom on the same DFT footing as the defect
calculations (same engine, functional, pseudopotentials, cutoff): the formation energy
uses them as they are, E_f = E_defect - E_bulk - sum_i n_i mu_i + q (E_VBM + E_F) + E_corr,
so a mu from another footing shifts every formation energy by n_i times the difference.

When the key is set, no competing phase is computed (all or nothing: mixing the user's
numbers with computed ones would mix footings silently). The limits keep the user's
``source`` in chemical_potentials.json and in the table notes, and each limit is checked
against the host's own energy: on the host's stability boundary sum_i n_i mu_i equals the
host energy per formula unit; the difference is recorded (``host_consistency``) and a
note warns when it exceeds :data:`CONSISTENCY_TOLERANCE` (limits from another footing, or
not on the boundary).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from perovskite_defects.thermodynamics.phase_limits import ChemicalPotentialLimits

#: eV per formula unit: |sum_i n_i mu_i - E_host| above this is noted as inconsistent.
CONSISTENCY_TOLERANCE = 0.05


class ChemicalPotentialError(ValueError):
    """The ``chemical_potentials`` config is incomplete or inconsistent (one line)."""


def check_config(settings: Mapping[str, Any] | None, needed: Iterable[str], n_hosts: int) -> None:
    """Every limit gives a finite mu for every element in ``needed`` (host + dopants) and
    nothing else; one host only. Raises ChemicalPotentialError naming the key."""
    if not settings:
        return
    if n_hosts > 1:
        raise ChemicalPotentialError(
            f"config key 'chemical_potentials': given limits hold for one host, but the "
            f"study has {n_hosts} (a sweep); drop the sweep or the key"
        )
    needed = sorted(set(needed))
    for name, mus in settings["limits"].items():
        where = f"config key 'chemical_potentials.limits.{name}'"
        missing = [el for el in needed if el not in mus]
        if missing:
            raise ChemicalPotentialError(
                f"{where}: no chemical potential for {missing} (every element of the host "
                f"and the dopants is needed: {needed})"
            )
        extra = sorted(set(mus) - set(needed))
        if extra:
            raise ChemicalPotentialError(
                f"{where}: {extra} are neither host elements nor dopants (needed: {needed})"
            )
        for el, mu in mus.items():
            if not math.isfinite(float(mu)):
                raise ChemicalPotentialError(f"{where}.{el}: {mu!r} is not a finite number")
    elemental = settings.get("elemental") or {}
    extra = sorted(set(elemental) - set(needed))
    if extra:
        raise ChemicalPotentialError(
            f"config key 'chemical_potentials.elemental': {extra} are neither host elements "
            f"nor dopants (needed: {needed})"
        )


def limits_from_config(
    settings: Mapping[str, Any],
    host_composition: Mapping[str, float],
    host_energy: float,
    dopants: Iterable[str] = (),
    host_label: str | None = None,
) -> ChemicalPotentialLimits:
    """ChemicalPotentialLimits of the user's limits, with the host-energy consistency.

    Args:
        settings: the validated ``chemical_potentials`` config.
        host_composition: element -> count of the cell whose energy is ``host_energy``.
        host_energy: energy of that cell (eV, same footing).
        dopants: extrinsic elements (their mu is taken as given).
    """
    from pymatgen.core import Composition

    comp = Composition(dict(host_composition))
    reduced, factor = comp.get_reduced_composition_and_factor()
    per_fu = float(host_energy) / factor
    host_elements = [el.symbol for el in reduced.elements]
    dopants = sorted(set(dopants) - set(host_elements))
    label = host_label or reduced.reduced_formula
    limits = {
        name: {el: float(mus[el]) for el in [*host_elements, *dopants]}
        for name, mus in settings["limits"].items()
    }
    consistency = {
        name: sum(reduced[el] * mu[el] for el in host_elements) - per_fu
        for name, mu in limits.items()
    }
    elemental = {el: float(v) for el, v in (settings.get("elemental") or {}).items()}
    complete = all(el in elemental for el in [*host_elements, *dopants])
    relative = (
        {n: {el: mu - elemental[el] for el, mu in m.items()} for n, m in limits.items()}
        if complete
        else {n: {} for n in limits}
    )
    formation = (
        per_fu - sum(reduced[el] * elemental[el] for el in host_elements)
        if complete
        else float("nan")
    )
    source = str(settings["source"])
    notes = [
        f"Chemical potentials given in the config (chemical_potentials), not computed from "
        f"competing phases; source: {source}. Absolute values, eV/atom: "
        + "; ".join(
            f"{n}: " + ", ".join(f"{el} {mu:.4f}" for el, mu in m.items())
            for n, m in limits.items()
        )
        + "."
    ]
    off = {n: d for n, d in consistency.items() if abs(d) > CONSISTENCY_TOLERANCE}
    if off:
        notes.append(
            f"Check the footing of the given chemical potentials: sum_i n_i mu_i - E({label}) "
            + ", ".join(f"{n} {d:+.3f}" for n, d in off.items())
            + f" eV per {reduced.reduced_formula} (0 on the host's stability boundary; "
            f"tolerance {CONSISTENCY_TOLERANCE} eV): other functional or pseudopotentials, "
            "or a point off the boundary?"
        )
    # why: phase_limits loads pymatgen's phase diagrams (~1 s), which the Snakefile parse
    # (limit_names) does not need
    from perovskite_defects.thermodynamics.phase_limits import ChemicalPotentialLimits

    return ChemicalPotentialLimits(
        host_formula=reduced.reduced_formula,
        elements=host_elements,
        extrinsic_elements=dopants,
        rich_element="",
        elemental_energies=elemental,
        elemental_phases={el: "given in config" for el in elemental},
        limits=limits,
        relative_limits=relative,
        all_vertices=dict(limits),
        all_vertices_relative=dict(relative),
        competing_phases_at_limit={n: [] for n in limits},
        dopant_limiting_phases={n: {} for n in limits},
        host_formation_energy=formation,
        host_energy_above_hull=0.0,
        notes=notes,
        source=f"config chemical_potentials: {source}",
        host_consistency=consistency,
    )


def limit_names(config: Mapping[str, Any], plan: Any) -> list[str]:
    """Names of the limits a host's tables and plots will have (known before any job):
    the user's, or "<X>-rich"/"<X>-poor" of the computed phase diagram."""
    given = config.get("chemical_potentials")
    if given:
        return list(given["limits"])
    rich = getattr(getattr(plan, "composition", None), "majority_halide", None)
    if rich is None:  # framework any: as chempots chooses it (the most electronegative)
        from pymatgen.core import Composition

        # why: pymatgen's phase diagrams (~1 s); the Snakefile parse calls limit_names
        from perovskite_defects.thermodynamics.phase_limits import _choose_rich_element

        rich = _choose_rich_element(Composition(plan.formula), None)
    return [f"{rich}-rich", f"{rich}-poor"]
