"""What each workflow step reads from the study config: one function per rule.

A rule's ``params:`` come from its function here (see workflow/rules/common.smk), and its
script passes them on unchanged as the keyword-only arguments of the step function, so
the values Snakemake tracks are the values the step uses; the step never sees the whole
config. tests/test_step_params.py checks that every rule's params, its step's
keyword-only parameters and the keys returned here are the same names.

The values are plain data (str, numbers, bools, None, lists and dicts), not dataclasses:
Snakemake compares a job's params with the ones it recorded by their ``repr`` and skips
values of other types, so only plain data reruns exactly the jobs whose values changed.
How a DFT job is started (executable, MPI launcher, ranks, SCF retries) is in
:func:`run_params`, which the rules feed from the job's resources: Snakemake counts such
params as derived and does not rerun finished calculations when they change.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypedDict, TypeVar

from perovskite_defects import engines
from perovskite_defects.engines.gpaw import gpaw_settings
from perovskite_defects.study import AnyHostPlan, check_defects, plan_params

# --------------------------------------------------------------------------- shared


def canonical(value: Any) -> Any:
    """``value`` with every mapping's keys sorted and tuples as lists: the same config
    written with its keys in another order (YAML dumpers sort them, people do not) gives
    the same ``repr``, so Snakemake sees no params change."""
    if isinstance(value, Mapping):
        return {str(k): canonical(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value


_F = TypeVar("_F", bound=Callable[..., Mapping[str, Any]])


def _params(function: _F) -> _F:
    """Every params function returns its values in :func:`canonical` form."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return {k: canonical(v) for k, v in function(*args, **kwargs).items()}

    return typing.cast(_F, wrapper)


def engine_inputs(config: Mapping[str, Any]) -> dict[str, Any]:
    """The engine and all its numerical settings (defaults of the level with
    ``<engine>.settings`` applied): what writing an input reads. Resolved here, not
    left as the config's overrides, so a changed default reruns the inputs too."""
    name = config["engine"]
    settings = engines.get_engine(name).settings(config)
    return {"engine": name, "settings": dataclasses.asdict(settings)}


class RunParams(TypedDict):
    run: dict[str, Any]
    nprocs: int


@_params
def run_params(config: Mapping[str, Any], mpi: str | None, tasks: int, threads: int) -> RunParams:
    """How one DFT job runs: the engine's run keys (``cp2k.executable`` and
    ``mpi_launcher``, ``vasp.command`` ...), ``scf_retries``, and the MPI ranks.

    ``mpi`` is the job's ``mpi`` resource (srun on SLURM, the local launcher, "" for one
    rank; None without it): it replaces ``cp2k.mpi_launcher``. srun starts the
    allocation's ``tasks``; a local launcher gets the job's ``threads``.
    """
    name = config["engine"]
    block = {k: v for k, v in config[name].items() if k != "settings"}
    if mpi is not None and name == "cp2k":
        block["mpi_launcher"] = mpi
    ranks = tasks if mpi == "srun" else threads
    run = {"engine": name, name: block, "scf_retries": config["scf_retries"]}
    return {"run": run, "nprocs": max(1, int(ranks))}


def param_names(function: Callable[..., Any]) -> tuple[str, ...]:
    """The keys of the TypedDict a params function returns (the rule's param names)."""
    returns = typing.get_type_hints(function)["return"]
    return tuple(returns.__annotations__)


# --------------------------------------------------------------------------- hosts.smk


class HostStructureParams(TypedDict):
    host: dict[str, Any]


@_params
def host_structure_params(config: Mapping[str, Any], plan: AnyHostPlan) -> HostStructureParams:
    """The host's settings and role, from which the step plans it again."""
    return {"host": plan_params(plan)}


class HostEngineParams(TypedDict):
    host: dict[str, Any]
    engine: dict[str, Any]


@_params
def host_inputs_params(config: Mapping[str, Any], plan: AnyHostPlan) -> HostEngineParams:
    """The host's plan and the engine: what an end member's unit-cell inputs read."""
    return {"host": plan_params(plan), "engine": engine_inputs(config)}


# the bulk supercell's inputs read the same: its host's plan and the engine
bulk_inputs_params = host_inputs_params


class EngineParams(TypedDict):
    engine: dict[str, Any]


@_params
def supercell_relax_inputs_params(config: Mapping[str, Any]) -> EngineParams:
    return {"engine": engine_inputs(config)}


class HostStabilityParams(TypedDict):
    stability: dict[str, Any]
    engine: dict[str, Any]


@_params
def host_stability_params(config: Mapping[str, Any], plan: AnyHostPlan) -> HostStabilityParams:
    """The host's ``stability`` block (a sweep entry may override it) and the engine."""
    return {
        "stability": dict(plan.settings.get("stability") or {}),
        "engine": engine_inputs(config),
    }


class HostDielectricParams(TypedDict):
    engine: dict[str, Any]
    dielectric: dict[str, Any]


@_params
def host_dielectric_params(config: Mapping[str, Any]) -> HostDielectricParams:
    """The engine (CP2K) and the response cell and field of ``dielectric``."""
    block = config["dielectric"]
    return {
        "engine": engine_inputs(config),
        "dielectric": {"supercell": block.get("supercell"), "field": block.get("field")},
    }


# --------------------------------------------------------------------------- phases.smk


@_params
def phase_inputs_params(config: Mapping[str, Any]) -> EngineParams:
    return {"engine": engine_inputs(config)}


class ChemicalPotentialsParams(TypedDict):
    elements: list[str]
    dopants: list[str]
    rich_element: str | None
    given_limits: dict[str, Any] | None
    competing_phases: list[str]


@_params
def chemical_potentials_params(
    config: Mapping[str, Any], plan: AnyHostPlan
) -> ChemicalPotentialsParams:
    """The host's elements and dopants, the element whose rich limit comes first (the
    majority halide of a perovskite), limits given in config, and the phases listed."""
    composition = getattr(plan, "composition", None)
    rich = composition.majority_halide if plan.framework == "perovskite" and composition else None
    given = config.get("chemical_potentials")
    return {
        "elements": sorted(plan.elements),
        "dopants": sorted(check_defects(config, [plan])),
        "rich_element": rich,
        "given_limits": dict(given) if given else None,
        "competing_phases": list(config["competing_phases"]),
    }


# --------------------------------------------------------------------------- defects.smk


class DefectManifestParams(TypedDict):
    defects: list[dict[str, Any]]
    site_classes: dict[str, Any]


@_params
def defect_manifest_params(config: Mapping[str, Any]) -> DefectManifestParams:
    return {"defects": list(config["defects"]), "site_classes": dict(config["site_classes"])}


@_params
def defect_inputs_params(config: Mapping[str, Any]) -> EngineParams:
    return {"engine": engine_inputs(config)}


# --------------------------------------------------------------------------- search.smk

#: Thresholds of the trial relaxations of the ground-state search, per engine. The trials
#: only have to fall into their basin and be ranked: ShakeNBreak's analysis treats
#: energy differences below 0.05 eV as ties, and the winner is relaxed again at the
#: production thresholds (its production run starts from it). So forces to 0.1 eV/Å
#: (twice fast's 0.05, four times accurate's 0.025) and at most 40 ionic steps before
#: the run counts as unconverged and the recovery ladder resumes it from its last step.
SEARCH_RELAXATION: dict[str, dict[str, Any]] = {
    "cp2k": {"max_force": 0.1, "geo_max_iter": 40},
    "vasp": {"ediffg": -0.1, "nsw": 40},
}
#: A trial is a new ground state when it lies more than this (eV) below the plain
#: relaxation (ShakeNBreak's threshold; thermodynamics/ground_state_search.py).
SEARCH_MIN_E_DIFF = 0.05


def search_distortions(config: Mapping[str, Any]) -> list[float]:
    """Bond distortions of config ``ground_state_search`` (screen or full)."""
    # why: distortions loads pymatgen and ASE; this module is read at every Snakefile parse
    from perovskite_defects.defects.distortions import FULL_DISTORTIONS, SCREEN_DISTORTIONS

    mode = config["ground_state_search"]
    return list({"screen": SCREEN_DISTORTIONS, "full": FULL_DISTORTIONS}[mode])


@_params
def search_trial_params(config: Mapping[str, Any]) -> EngineParams:
    """The engine with the loose thresholds of :data:`SEARCH_RELAXATION` (never tighter
    than the production ones). Refuses unrelaxed defects (relax_radius 0): the search
    compares relaxed structures and its winner is a start for a production relaxation."""
    engine = engine_inputs(config)
    settings = dict(engine["settings"])
    if float(settings["relax_radius"]) <= 0:
        raise ValueError(
            f"config key 'ground_state_search': {config['ground_state_search']} relaxes "
            f"defects, but {config['engine']}.settings.relax_radius is 0 (unrelaxed, the "
            "fast level's default); set relax_radius > 0 (e.g. 6, as level accurate) or off"
        )
    loose = SEARCH_RELAXATION.get(config["engine"])
    if loose is None:
        raise ValueError(f"config key 'ground_state_search': engine {config['engine']} has none")
    for key, value in loose.items():
        if key == "max_force":
            settings[key] = max(float(settings[key]), value)
        elif key == "ediffg":  # VASP: negative = force threshold
            settings[key] = min(float(settings[key]), value)
        else:  # step limits
            settings[key] = min(int(settings[key]), value)
    return {"engine": {**engine, "settings": settings}}


class SearchSummaryParams(TypedDict):
    min_e_diff: float


@_params
def search_summary_params(config: Mapping[str, Any]) -> SearchSummaryParams:
    return {"min_e_diff": SEARCH_MIN_E_DIFF}


# the production inputs after a search read what defect_inputs reads: the engine
defect_inputs_searched_params = defect_inputs_params


# --------------------------------------------------------------------------- spin_orbit.smk


class SpinOrbitParams(TypedDict):
    gpaw: dict[str, Any]


@_params
def spin_orbit_shifts_params(config: Mapping[str, Any]) -> SpinOrbitParams:
    """GPAW's settings (``gpaw``: its Python and numerical settings)."""
    return {"gpaw": dataclasses.asdict(gpaw_settings(config))}


# --------------------------------------------------------------------------- analysis.smk


class DefectAnalysisParams(TypedDict):
    scheme: str
    site_radius: float
    dielectric: dict[str, Any]
    shallow_threshold: float


@_params
def defect_analysis_params(config: Mapping[str, Any]) -> DefectAnalysisParams:
    """Correction scheme, eFNV sampling radius, the dielectric block (cited, or the
    computed tensor's source), and the shallow-level threshold of the defect states."""
    return {
        "scheme": config["correction"],
        "site_radius": config["site_radius"],
        "dielectric": dict(config["dielectric"]),
        "shallow_threshold": config["trap_levels"]["shallow_threshold"],
    }


class TablesParams(TypedDict):
    band_edges: dict[str, Any]
    shallow_threshold: float
    concentrations: dict[str, Any]
    dielectric: dict[str, Any]
    scheme: str
    level: str
    framework: str


@_params
def tables_params(config: Mapping[str, Any]) -> TablesParams:
    """What the host tables and their notes read: band edges, the shallow threshold, the
    charge-neutrality settings, the dielectric block and correction scheme (notes), the
    CP2K level (notes) and the host framework (cells per supercell)."""
    return {
        "band_edges": dict(config["band_edges"]),
        "shallow_threshold": config["trap_levels"]["shallow_threshold"],
        "concentrations": dict(config["concentrations"]),
        "dielectric": dict(config["dielectric"]),
        "scheme": config["correction"],
        "level": config["level"],
        "framework": config["host"].get("framework", "perovskite"),
    }


class AggregateTablesParams(TypedDict):
    host_names: list[str]
    temperature: float


@_params
def aggregate_tables_params(
    config: Mapping[str, Any], host_names: list[str]
) -> AggregateTablesParams:
    """The study's hosts (planned by the Snakefile) and the aggregation temperature."""
    return {"host_names": list(host_names), "temperature": config["aggregate"]["temperature"]}
