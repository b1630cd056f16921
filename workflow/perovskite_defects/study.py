"""The study plan of a sweep: every host composition with its supercell, end members and
defect requests, computed from the validated config before any job starts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from perovskite_defects.defects.manifest import DefectRequest
from perovskite_defects.defects.names import (
    MOLECULE_FORMULA,
    concrete_names,
    own_site,
    site_species_missing,
)
from perovskite_defects.hosts.any_structure import (
    PEROVSKITE,
    check_structure_defects,
    framework,
    plan_structure_host,
)
from perovskite_defects.hosts.composition import (
    Composition,
    CompositionError,
    SupercellChoice,
    choose_supercell,
    end_member_lattice,
    end_member_name,
    expand_sweep,
    parse_composition,
)
from perovskite_defects.hosts.perovskite import load_user_structure

if TYPE_CHECKING:  # any_structure imports this module's names lazily
    from perovskite_defects.hosts.any_structure import StructureHostPlan


@runtime_checkable
class AnyHostPlan(Protocol):
    """What the rules read from a host plan, whichever framework made it (HostPlan for
    perovskites, generic_hosts.StructureHostPlan for a structure file). Typed so that
    mypy catches a plan class missing one of them."""

    @property
    def name(self) -> str: ...

    @property
    def settings(self) -> dict[str, Any]: ...

    @property
    def lattice_mode(self) -> str: ...

    @property
    def end_members(self) -> tuple[str, ...]: ...

    @property
    def energy_from_unitcell(self) -> bool: ...

    @property
    def framework(self) -> str: ...

    @property
    def end_member_keys(self) -> tuple[Any, ...]: ...

    @property
    def elements(self) -> set[str]: ...


@dataclass(frozen=True)
class HostPlan:
    """One host of the study.

    Attributes:
        name: host name (folder under results/<study>/).
        composition: the requested composition.
        settings: the host keys of the config merged with this composition's overrides.
        start_lattice: starting (pseudo-cubic) lattice constant in Å.
        lattice_source: "config", "literature", "estimated" or "vegard(literature)".
        supercell: the supercell choice with the exact species counts.
        end_members: names of the end-member hosts whose relaxed cells give its lattice
            constant by Vegard's law (the host itself when it is an end member); empty
            with lattice_mode relax.
        user_structure: path of the user's parent structure, or None (cubic prototype).
        lattice_mode: "vegard" (end-member unit cells) or "relax" (the supercell itself
            is relaxed, cell and positions, and is the bulk).
        role: "host" (a composition of the study) or "end_member" (only planned for an
            alloy's Vegard lattice: its start lattice is the literature value).
    """

    name: str
    composition: Composition
    settings: dict[str, Any]
    start_lattice: float
    lattice_source: str
    supercell: SupercellChoice
    end_members: tuple[str, ...]
    user_structure: str | None = None
    formula_units_per_cell: int = 1
    end_member_keys: tuple[tuple[str, str, str], ...] = field(default=())
    lattice_mode: str = "vegard"
    framework: str = "perovskite"
    role: str = "host"

    @property
    def is_end_member(self) -> bool:
        return not self.composition.is_alloy

    @property
    def energy_from_unitcell(self) -> bool:
        """The host energy for chemical potentials is the unit cell's (an end member with
        an atomic A cation, lattice_mode vegard), otherwise the bulk supercell's (SQS,
        molecules, or any host whose supercell relaxes itself)."""
        return self.is_end_member and self.composition.a == "Cs" and self.lattice_mode == "vegard"

    @property
    def elements(self) -> set[str]:
        els = set(self.composition.b_species) | set(self.composition.x_species)
        els |= set(MOLECULE_FORMULA.get(self.composition.a, {self.composition.a: 1}))
        return els


def _start_lattice(comp: Composition, settings: Mapping[str, Any]) -> tuple[float, str]:
    value = settings.get("lattice_constant", "auto")
    if value not in (None, "auto"):
        return float(value), "config"
    if not comp.is_alloy:
        a, source = end_member_lattice(comp.a, comp.b_species[0], comp.x_species[0])
        return a, source
    return comp.literature_lattice(), "vegard(literature)"


LATTICE_MODES = ("vegard", "relax")


def _lattice_mode(settings: Mapping[str, Any], key: str) -> str:
    """lattice_mode of one composition (a sweep entry may override the host's; the schema
    checks only the host's own key)."""
    mode = settings.get("lattice_mode", "vegard")
    if mode not in LATTICE_MODES:
        raise CompositionError(
            f"config key '{key}.lattice_mode': {mode!r} is not one of {list(LATTICE_MODES)}"
        )
    if mode == "relax" and not settings.get("relax", True):
        raise CompositionError(
            f"config key '{key}.lattice_mode': relax needs '{key}.relax' true (relax: false "
            "keeps every lattice at its starting value)"
        )
    return mode


def plan_hosts(config: Mapping[str, Any], project_root: Path | None = None) -> list[AnyHostPlan]:
    """Every host of the study (the sweep, or the single ``host``), validated.

    Raises CompositionError (one line naming the key) for a bad composition, a supercell
    that cannot hold it, or a structure file without the expected sublattices. A
    ``framework: any`` host gives one generic_hosts.StructureHostPlan.
    """

    if framework(config) != PEROVSKITE:
        return [plan_structure_host(config["host"], config.get("sweep"), project_root)]

    plans: dict[str, HostPlan] = {}
    for entry in expand_sweep(config["host"], config.get("sweep")):
        key = entry.pop("_key")
        plan = _plan_entry(entry, key, project_root)
        if plan.name in plans:
            raise CompositionError(f"config key '{key}': composition {plan.name} is listed twice")
        plans[plan.name] = plan
    return list(plans.values())


def _plan_entry(entry: dict[str, Any], key: str, project_root: Path | None) -> HostPlan:
    """The plan of one composition: ``entry`` is its host settings (sweep entry merged
    with the host keys), ``key`` the config key its errors name."""

    comp = parse_composition(entry, key)
    start, source = _start_lattice(comp, entry)
    user = entry.get("structure") or None
    n_fu_cell = 1
    lattice = [start] * 3
    if user:
        path = Path(user)
        if not path.is_absolute() and project_root is not None:
            path = project_root / path
        try:
            structure = load_user_structure(path, f"{key}.structure")
        except ValueError as err:
            raise CompositionError(str(err)) from err
        n_fu_cell = sum(s.specie.symbol in ("Pb", "Sn") for s in structure)
        scale = (n_fu_cell * start**3 / structure.volume) ** (1 / 3)
        lattice = [length * scale for length in structure.lattice.abc]
        user = str(path)
    choice = choose_supercell(
        comp,
        lattice,
        entry.get("supercell", "auto"),
        float(entry.get("min_image_distance", 12.0)),
        int(entry.get("max_atoms", 400)),
        float(entry.get("composition_tolerance", 0.02)),
        key,
        formula_units_per_cell=n_fu_cell,
    )
    mode = _lattice_mode(entry, key)
    # relax: the supercell's own relaxation gives its lattice, no end member needed
    ems = comp.end_members() if mode == "vegard" else []
    return HostPlan(
        name=comp.name,
        composition=comp,
        settings=entry,
        start_lattice=start,
        lattice_source=source,
        supercell=choice,
        end_members=tuple(end_member_name(*em) for em in ems),
        user_structure=user,
        formula_units_per_cell=n_fu_cell,
        end_member_keys=tuple(ems),
        lattice_mode=mode,
    )


def end_member_plans(
    config: Mapping[str, Any], hosts: Sequence[AnyHostPlan]
) -> dict[str, AnyHostPlan]:
    """Host plans of every end member that an alloy's Vegard lattice needs (name -> plan);
    end members that are hosts of the sweep are included as they are."""
    by_name = {h.name: h for h in hosts}
    out: dict[str, AnyHostPlan] = {}
    for host in hosts:
        if host.framework != "perovskite":  # its own cell, relaxed when relax is true
            out.update({name: host for name in host.end_members})
            continue
        for (a, b, x), name in zip(host.end_member_keys, host.end_members, strict=True):
            if name in by_name:
                out[name] = by_name[name]
                continue
            if name in out:
                continue
            entry = {k: v for k, v in host.settings.items() if k not in ("x", "X", "B", "A")}
            entry.update({"A": a, "x": 1.0 if b == "Sn" else 0.0, "X": x})
            entry["supercell"] = [1, 1, 1]  # end members only give a lattice constant
            out[name] = _end_member_plan(entry)
    return out


def _end_member_plan(entry: dict[str, Any]) -> HostPlan:
    """An end member planned for an alloy's Vegard lattice: its unit cell at the
    literature lattice constant (``entry``: the alloy's settings with A, x, X of the end
    member and supercell [1, 1, 1])."""
    comp = parse_composition(entry, "end member")
    a, b, x = comp.a, comp.b_species[0], comp.x_species[0]
    start, source = end_member_lattice(a, b, x)
    choice = choose_supercell(comp, [start] * 3, [1, 1, 1], 0.0, 10**6, 1.0, comp.name)
    return HostPlan(
        comp.name,
        comp,
        entry,
        start,
        source,
        choice,
        (comp.name,),
        end_member_keys=((a, b, x),),
        role="end_member",
    )


def plan_params(plan: AnyHostPlan) -> dict[str, Any]:
    """What a job needs to plan one host again: its settings and its role (plain data,
    see steps/params.py). :func:`plan_from_params` gives back an equal plan."""
    return {"settings": plan.settings, "role": getattr(plan, "role", "host")}


def plan_from_params(
    params: Mapping[str, Any], project_root: Path | None
) -> HostPlan | StructureHostPlan:
    """The plan of one host from :func:`plan_params` (the host's settings were validated
    with the whole config by the Snakefile; key names in errors are generic here)."""

    settings = dict(params["settings"])
    if settings.get("framework", PEROVSKITE) != PEROVSKITE:
        return plan_structure_host(settings, None, project_root)
    if params["role"] == "end_member":
        return _end_member_plan(settings)
    return _plan_entry(settings, "host", project_root)


def defect_requests(defects: Sequence[Mapping[str, Any]]) -> list[DefectRequest]:
    """The requests of config key ``defects`` (a list of entries)."""
    return [
        DefectRequest(
            name=d["name"],
            charges=tuple(d["charges"]) if d.get("charges") else None,
            representatives=d.get("representatives"),
            site_index=d.get("site_index", 0),
            all_sites=bool(d.get("all_sites", False)),
            atom_index=d.get("atom_index"),
        )
        for d in defects
    ]


def check_defects(config: Mapping[str, Any], hosts: list[Any]) -> set[str]:
    """Every config defect must exist in every host; returns the dopant species."""
    dopants: set[str] = set()
    for host in hosts:
        if host.framework != "perovskite":
            dopants |= check_structure_defects(config["defects"], host)
    hosts = [h for h in hosts if h.framework == "perovskite"]
    for i, req in enumerate(defect_requests(config["defects"])):
        if not hosts:
            break
        if req.atom_index is not None:
            raise CompositionError(
                f"config key 'defects.{i}.atom_index': only for host.framework any "
                "(perovskite hosts choose sites by site class)"
            )
        for host in hosts:
            comp = host.composition
            names = concrete_names(req.name, comp.a, comp.b_species, comp.x_species)
            species = {comp.a, *comp.b_species, *comp.x_species}
            for name in names:
                same = own_site(name)
                if same:
                    raise CompositionError(
                        f"config key 'defects.{i}.name': {req.name!r} gives {same} in "
                        f"{host.name}, a species on its own site"
                    )
                missing = site_species_missing(name, species)
                if missing:
                    raise CompositionError(
                        f"config key 'defects.{i}.name': {req.name!r} uses the site of "
                        f"{missing[0]}, which is not in the host {host.name} (host species: "
                        f"{sorted(species)}; in a sweep use role names: V_X, V_B, Na_B, B_X ...)"
                    )
                for part in name.split("+"):
                    head = part.split("_")[0]
                    if head != "V" and head not in species:
                        dopants.add(head)
    return dopants
