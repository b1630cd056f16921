"""Chemical-potential limits of a host compound from its competing phases.

The host (e.g. CsPbI3) is stable where its energy equals the sum of the chemical potentials
of its atoms and no competing phase is lower:

    E_host = sum_i n_i mu_i,      E_phase <= sum_i m_i mu_i   for every competing phase,
    mu_i <= mu_i(elemental phase).

In the space of the host's (intrinsic) elements this region is a polytope. Its vertices are
exactly the chemical potentials of the facets of the convex hull (phase diagram) that contain
the host composition, which is what pymatgen's ``PhaseDiagram.get_all_chempots`` returns; we
use it instead of a hand-written linear programme.

Extrinsic (dopant) elements do not enter the polytope. At each vertex, a dopant D gets the
largest chemical potential at which no D-containing phase would precipitate (the usual
solubility-limit convention):

    mu_D = min over D phases of (E_phase - sum_{i != D} m_i mu_i) / m_D.

All energies are in eV; chemical potentials are in eV/atom.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition, Element

CompositionLike = str | Mapping[str, float]
"""A formula ("CsPbI3", "I2") or an element -> amount mapping ({"Cs": 1, "Pb": 1, "I": 3})."""

_HALOGENS = ("F", "Cl", "Br", "I")


@dataclass
class ChemicalPotentialLimits:
    """Chemical-potential limits of one host, ready for defect formation energies.

    Attributes:
        host_formula: reduced formula of the host, e.g. "CsPbI3".
        elements: intrinsic elements (those of the host), in the host formula's order.
        extrinsic_elements: dopant elements, in the order given.
        rich_element: element that names the limits ("I" -> "I-rich" / "I-poor").
        elemental_energies: eV/atom of the lowest-energy elemental phase of every element.
        elemental_phases: label of that elemental phase, per element.
        limits: named limits ("I-rich", "I-poor") -> {element: absolute mu in eV/atom},
            for intrinsic and extrinsic elements.
        relative_limits: the same as ``limits`` but Δmu = mu - elemental energy (eV/atom).
        all_vertices: every vertex of the host stability polytope, "limit_1", "limit_2", ...
            ordered from the highest to the lowest mu of ``rich_element`` (ties broken as
            for the named limits), with the dopant chemical potentials at each vertex.
        all_vertices_relative: ``all_vertices`` as Δmu.
        competing_phases_at_limit: labels of the intrinsic competing phases in equilibrium
            with the host at each named limit and each vertex (the host itself excluded).
        dopant_limiting_phases: limit or vertex name -> {dopant: label of the phase that
            fixes its chemical potential}.
        host_formation_energy: formation energy of the host from the elemental phases, eV per
            formula unit of ``host_formula``, from the host energy as given (unshifted).
        host_energy_above_hull: eV/atom, 0.0 when the host is on the hull. When positive the
            limits were evaluated with the host energy lowered by this amount per atom, so
            sum_i n_i Δmu_i = host_formation_energy - host_energy_above_hull * atoms per
            formula unit.
        host_decomposition: label -> atomic fraction of the phases the host decomposes into
            when above the hull (empty when stable).
        notes: human-readable remarks (stability, ties, shifts, skipped phases).
    """

    host_formula: str
    elements: list[str]
    extrinsic_elements: list[str]
    rich_element: str
    elemental_energies: dict[str, float]
    elemental_phases: dict[str, str]
    limits: dict[str, dict[str, float]]
    relative_limits: dict[str, dict[str, float]]
    all_vertices: dict[str, dict[str, float]]
    all_vertices_relative: dict[str, dict[str, float]]
    competing_phases_at_limit: dict[str, list[str]]
    dopant_limiting_phases: dict[str, dict[str, str]]
    host_formation_energy: float
    host_energy_above_hull: float
    host_decomposition: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: Where the limits come from: the competing phases of this study, or the user's
    #: ``chemical_potentials.source`` (see user_chempots.py).
    source: str = "competing phases computed in this study"
    #: Per limit: sum_i n_i mu_i - E_host per formula unit (eV); 0 on the stability
    #: boundary. Filled for user-given limits (a check of their DFT footing).
    host_consistency: dict[str, float] = field(default_factory=dict)

    @property
    def limit_names(self) -> list[str]:
        """Names of the named limits, e.g. ["I-rich", "I-poor"]."""
        return list(self.limits)

    def mu(self, limit: str) -> dict[str, float]:
        """Absolute chemical potentials (eV/atom) at a named limit or a "limit_<n>" vertex."""
        return dict(self._lookup(self.limits, self.all_vertices, limit))

    def delta_mu(self, limit: str) -> dict[str, float]:
        """Chemical potentials relative to the elemental phases (eV/atom) at ``limit``."""
        return dict(self._lookup(self.relative_limits, self.all_vertices_relative, limit))

    @staticmethod
    def _lookup(
        named: Mapping[str, dict[str, float]], vertices: Mapping[str, dict[str, float]], key: str
    ) -> dict[str, float]:
        if key in named:
            return named[key]
        if key in vertices:
            return vertices[key]
        known = ", ".join([*named, *vertices])
        raise KeyError(f"unknown chemical-potential limit {key!r}; known: {known}")

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable dictionary of all fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChemicalPotentialLimits:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)

    def write_json(self, path: str | Path) -> None:
        """Write :meth:`to_dict` to ``path`` as indented JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def from_json(cls, path: str | Path) -> ChemicalPotentialLimits:
        """Read a file written by :meth:`write_json`."""
        return cls.from_dict(json.loads(Path(path).read_text()))


def compute_chemical_potential_limits(
    host_composition: CompositionLike,
    host_energy: float,
    competing_phases: Mapping[str, tuple[CompositionLike, float]],
    extrinsic_elements: Sequence[str] = (),
    rich_element: str | None = None,
    host_label: str | None = None,
    tol: float = 1e-6,
) -> ChemicalPotentialLimits:
    """Chemical-potential limits of a host from the total energies of its competing phases.

    Args:
        host_composition: composition of the host cell whose energy is given (e.g. "CsPbI3"
            or "Cs4Pb4I12"; any multiple of the formula unit).
        host_energy: total energy of ``host_composition`` in eV.
        competing_phases: label -> (composition, total energy in eV of that composition).
            Must contain an elemental phase of every host and dopant element (e.g. "Cs",
            "Pb", "I2", "Na"); may contain polymorphs of the host. Phases made only of host
            elements bound the stability region; phases with one dopant bound that dopant.
        extrinsic_elements: dopant elements, e.g. ["Na"].
        rich_element: element naming the limits ("<X>-rich" has the highest mu_X, "<X>-poor"
            the lowest). Default: the host's only halogen, else its most electronegative
            element.
        host_label: name of the host in reports; default its reduced formula.
        tol: energy tolerance in eV/atom for deciding which phases coexist at a vertex, for
            merging coincident vertices and for ties between vertices.

    Returns:
        The limits; see :class:`ChemicalPotentialLimits`.

    Raises:
        ValueError: missing elemental reference, phase with an element outside the system,
            unreadable composition or non-finite energy (one line naming the culprit).
    """
    host_comp = _parse_composition("host", host_composition)
    _check_energy("host", host_energy)
    host_elements = [el.symbol for el in host_comp.elements]
    if len(host_elements) < 2:
        raise ValueError(f"host {host_comp.formula}: needs at least two elements")
    reduced, n_fu = host_comp.get_reduced_composition_and_factor()
    host_formula = reduced.reduced_formula
    host_label = host_label or host_formula

    dopants = [Element(d).symbol for d in extrinsic_elements]
    overlap = sorted(set(dopants) & set(host_elements))
    if overlap:
        raise ValueError(f"extrinsic element(s) {overlap} are also host elements")
    system = set(host_elements) | set(dopants)

    phases: dict[str, tuple[Composition, float]] = {}
    for label, value in competing_phases.items():
        try:
            comp_like, energy = value
        except (TypeError, ValueError) as err:
            raise ValueError(f"phase {label!r}: expected (composition, energy)") from err
        comp = _parse_composition(f"phase {label!r}", comp_like)
        _check_energy(f"phase {label!r}", energy)
        outside = sorted({el.symbol for el in comp.elements} - system)
        if outside:
            raise ValueError(
                f"phase {label!r} ({comp.formula}) contains {', '.join(outside)}, outside the "
                f"system {sorted(system)}; add to extrinsic_elements or remove the phase"
            )
        phases[label] = (comp, float(energy))

    elemental_energies, elemental_phases = _elemental_references(phases, [*host_elements, *dopants])
    rich = _choose_rich_element(host_comp, rich_element)
    notes: list[str] = []

    intrinsic = {
        lab: ce
        for lab, ce in phases.items()
        if {e.symbol for e in ce[0].elements} <= set(host_elements)
    }
    # --- host stability and, if needed, the shift onto the hull -------------------------
    entries = [PDEntry(c, e, name=lab) for lab, (c, e) in intrinsic.items()]
    host_entry = PDEntry(host_comp, float(host_energy), name=host_label)
    pd = PhaseDiagram([*entries, host_entry], elements=[Element(e) for e in host_elements])
    decomp, e_hull = pd.get_decomp_and_e_above_hull(host_entry, allow_negative=True)
    if decomp is None or e_hull is None:  # on_error="raise" makes this unreachable
        raise RuntimeError(f"no decomposition found for host {host_label}")
    e_above = float(e_hull)
    host_formation = (
        float(host_energy) - sum(host_comp[el] * elemental_energies[el] for el in host_elements)
    ) / n_fu
    host_decomposition: dict[str, float] = {}
    if e_above > PhaseDiagram.numerical_tol:
        host_decomposition = {str(getattr(ent, "name", ent)): float(f) for ent, f in decomp.items()}
        products = " + ".join(
            f"{frac:.3f} {lab}" for lab, frac in sorted(host_decomposition.items())
        )
        notes.append(
            f"WARNING: host {host_label} is above the convex hull by {1000 * e_above:.1f} "
            f"meV/atom; it decomposes into {products} (atomic fractions). The limits were "
            f"evaluated at the hull point: host energy shifted by {-e_above:.6f} eV/atom "
            f"({-e_above * host_comp.num_atoms:.6f} eV for {host_comp.formula})."
        )
        shifted = float(host_energy) - e_above * host_comp.num_atoms
        host_entry = PDEntry(host_comp, shifted, name=host_label)
        pd = PhaseDiagram([*entries, host_entry], elements=[Element(e) for e in host_elements])
    else:
        e_above = 0.0
        margin = _stability_margin(pd, host_entry)
        if margin is not None:
            notes.append(
                f"host {host_label} is stable: {1000 * margin:.1f} meV/atom below the hull of "
                f"its competing phases"
            )
    host_tight_energy = host_entry.energy

    # --- vertices of the stability polytope ----------------------------------------------
    vertices: list[dict[str, float]] = []
    for pots in pd.get_all_chempots(host_comp).values():
        mu = {el: float(pots[Element(el)]) for el in host_elements}
        if not any(_close(mu, v, tol) for v in vertices):
            vertices.append(mu)

    host_atoms = {el: host_comp[el] for el in host_elements}
    coexisting: list[list[str]] = []
    for mu in vertices:
        _check_vertex(mu, host_label, host_atoms, host_tight_energy, intrinsic, tol)
        coexisting.append(
            sorted(
                lab for lab, (c, e) in intrinsic.items() if _excess(c, e, mu) <= tol * c.num_atoms
            )
        )

    others = sorted(el for el in host_elements if el != rich)

    def order_key(mu: Mapping[str, float]) -> tuple[float, ...]:
        # Highest mu_X first; ties (within tol) broken by the other host elements' mu in
        # alphabetical order of symbol, higher first, so the choice is reproducible.
        return tuple(-_rounded(mu[el], tol) for el in [rich, *others])

    order = sorted(range(len(vertices)), key=lambda i: order_key(vertices[i]))
    vertex_names = {idx: f"limit_{rank + 1}" for rank, idx in enumerate(order)}
    rich_idx = order[0]
    lowest = min(_rounded(vertices[i][rich], tol) for i in order)
    poor_candidates = [i for i in order if _rounded(vertices[i][rich], tol) == lowest]
    poor_idx = poor_candidates[0]
    highest_candidates = [
        i
        for i in order
        if _rounded(vertices[i][rich], tol) == _rounded(vertices[rich_idx][rich], tol)
    ]
    for name, chosen, candidates in (
        (f"{rich}-rich", rich_idx, highest_candidates),
        (f"{rich}-poor", poor_idx, poor_candidates),
    ):
        if len(candidates) > 1:
            alternatives = "; ".join(
                f"{vertex_names[i]} ({', '.join(coexisting[i])})" for i in candidates
            )
            notes.append(
                f"{name}: {len(candidates)} vertices share the same mu_{rich} ({alternatives}); "
                f"chose {vertex_names[chosen]} (tie broken by higher mu of {', '.join(others)} "
                f"in that order)"
            )
    if len(vertices) == 1:
        notes.append(
            f"the host stability region is a single point: {rich}-rich and {rich}-poor coincide"
        )

    # --- dopants --------------------------------------------------------------------------
    dopant_phases, skipped = _dopant_phases(phases, host_elements, dopants)
    if skipped:
        notes.append(
            "ignored phases with more than one extrinsic element (dopants are treated "
            f"independently): {', '.join(skipped)}"
        )
    full_vertices: dict[int, dict[str, float]] = {}
    limiting: dict[int, dict[str, str]] = {}
    for i, mu in enumerate(vertices):
        full = dict(mu)
        limiting[i] = {}
        for dop in dopants:
            full[dop], limiting[i][dop] = _dopant_mu(dop, mu, dopant_phases[dop])
        full_vertices[i] = full

    def relative(mu: Mapping[str, float]) -> dict[str, float]:
        return {el: mu[el] - elemental_energies[el] for el in mu}

    limits: dict[str, dict[str, float]] = {}
    competing_at: dict[str, list[str]] = {}
    dopant_limits: dict[str, dict[str, str]] = {}
    for name, idx in ((f"{rich}-rich", rich_idx), (f"{rich}-poor", poor_idx)):
        limits[name] = dict(full_vertices[idx])
        competing_at[name] = list(coexisting[idx])
        dopant_limits[name] = dict(limiting[idx])
    all_vertices: dict[str, dict[str, float]] = {}
    for idx in order:
        all_vertices[vertex_names[idx]] = dict(full_vertices[idx])
        competing_at[vertex_names[idx]] = list(coexisting[idx])
        dopant_limits[vertex_names[idx]] = dict(limiting[idx])

    return ChemicalPotentialLimits(
        host_formula=host_formula,
        elements=host_elements,
        extrinsic_elements=dopants,
        rich_element=rich,
        elemental_energies=elemental_energies,
        elemental_phases=elemental_phases,
        limits=limits,
        relative_limits={k: relative(v) for k, v in limits.items()},
        all_vertices=all_vertices,
        all_vertices_relative={k: relative(v) for k, v in all_vertices.items()},
        competing_phases_at_limit=competing_at,
        dopant_limiting_phases=dopant_limits,
        host_formation_energy=host_formation,
        host_energy_above_hull=e_above,
        host_decomposition=host_decomposition,
        notes=notes,
    )


# --- helpers -------------------------------------------------------------------------------


def _parse_composition(what: str, comp: CompositionLike) -> Composition:
    try:
        parsed = Composition(comp)
    except Exception as err:  # pymatgen raises several types for bad formulas
        raise ValueError(f"{what}: cannot read composition {comp!r} ({err})") from err
    if parsed.num_atoms <= 0:
        raise ValueError(f"{what}: composition {comp!r} has no atoms")
    return parsed


def _check_energy(what: str, energy: Any) -> None:
    try:
        ok = math.isfinite(float(energy))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{what}: energy {energy!r} is not a finite number")


def _elemental_references(
    phases: Mapping[str, tuple[Composition, float]], elements: Sequence[str]
) -> tuple[dict[str, float], dict[str, str]]:
    """Lowest energy per atom among the single-element phases of each element."""
    energies: dict[str, float] = {}
    labels: dict[str, str] = {}
    for el in elements:
        best: tuple[float, str] | None = None
        for label, (comp, energy) in phases.items():
            if [e.symbol for e in comp.elements] == [el]:
                candidate = (energy / comp.num_atoms, label)
                if best is None or candidate < best:
                    best = candidate
        if best is None:
            raise ValueError(
                f"missing elemental reference for {el}: add a phase made only of {el} "
                f"to the competing phases"
            )
        energies[el], labels[el] = best
    return energies, labels


def _choose_rich_element(host: Composition, rich_element: str | None) -> str:
    symbols = [el.symbol for el in host.elements]
    if rich_element is not None:
        if rich_element not in symbols:
            raise ValueError(f"rich_element {rich_element} is not an element of {host.formula}")
        return rich_element
    halogens = [s for s in symbols if s in _HALOGENS]
    if len(halogens) == 1:
        return halogens[0]
    # Mixed halides or non-halides: the anion-like element, named explicitly in that case
    # is better, but the most electronegative element is the conventional default.
    return max(host.elements, key=lambda el: el.X).symbol


def _stability_margin(pd: PhaseDiagram, host_entry: PDEntry) -> float | None:
    """How far (eV/atom, >= 0) the host lies below the hull of the other phases."""
    try:
        energy = pd.get_equilibrium_reaction_energy(host_entry)
    except (ValueError, RuntimeError):
        return None
    return None if energy is None else -float(energy)


def _excess(comp: Composition, energy: float, mu: Mapping[str, float]) -> float:
    """E_phase - sum_i n_i mu_i: >= 0 when the phase does not precipitate."""
    return energy - sum(comp[el] * mu[el.symbol] for el in comp.elements)


def _check_vertex(
    mu: Mapping[str, float],
    host_label: str,
    host_atoms: Mapping[str, float],
    host_energy: float,
    phases: Mapping[str, tuple[Composition, float]],
    tol: float,
) -> None:
    """Guard against a wrong facet from the hull code: the vertex must satisfy every bound."""
    n_host = sum(host_atoms.values())
    gap = host_energy - sum(n * mu[el] for el, n in host_atoms.items())
    if abs(gap) > tol * n_host:
        raise RuntimeError(f"vertex {mu} does not reproduce the {host_label} energy ({gap:g} eV)")
    for label, (comp, energy) in phases.items():
        if _excess(comp, energy, mu) < -tol * comp.num_atoms:
            raise RuntimeError(f"vertex {mu} lets phase {label!r} precipitate")


def _close(a: Mapping[str, float], b: Mapping[str, float], tol: float) -> bool:
    return all(abs(a[k] - b[k]) <= tol for k in a)


def _rounded(value: float, tol: float) -> float:
    """Snap to a grid of spacing ``tol`` so values equal within tol compare equal."""
    return round(value / tol) * tol


def _dopant_phases(
    phases: Mapping[str, tuple[Composition, float]],
    host_elements: Sequence[str],
    dopants: Sequence[str],
) -> tuple[dict[str, dict[str, tuple[Composition, float]]], list[str]]:
    """Phases bounding each dopant: those with that dopant and otherwise host elements."""
    by_dopant: dict[str, dict[str, tuple[Composition, float]]] = {d: {} for d in dopants}
    skipped = []
    for label, (comp, energy) in phases.items():
        present = [el.symbol for el in comp.elements if el.symbol in dopants]
        if len(present) == 1:
            by_dopant[present[0]][label] = (comp, energy)
        elif len(present) > 1:
            skipped.append(label)
    return by_dopant, sorted(skipped)


def _dopant_mu(
    dopant: str, mu: Mapping[str, float], phases: Mapping[str, tuple[Composition, float]]
) -> tuple[float, str]:
    """Largest mu of ``dopant`` at which none of ``phases`` is favourable, and the limiter."""
    best: tuple[float, str] | None = None
    for label in sorted(phases):
        comp, energy = phases[label]
        others = sum(comp[el] * mu[el.symbol] for el in comp.elements if el.symbol != dopant)
        value = (energy - others) / comp[dopant]
        # Strictly lower wins; ties keep the alphabetically first label (deterministic).
        if best is None or value < best[0] - 1e-12:
            best = (value, label)
    assert best is not None  # the elemental phase is always present (checked earlier)
    return best
