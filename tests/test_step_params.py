"""One source for what each step reads: rule params = params function = step arguments.

Every rule's ``params:`` come from a function of perovskite_defects/steps/params.py, and
its script passes them, unchanged, as the keyword-only arguments of one step function.
These tests parse the real workflow (no job runs) and check the three name lists against
each other, then the params functions on the default config, every tests/configs study,
the shipped studies and a few variants (VASP, stability check, given chemical potentials,
a structure-file host): plain data only (what Snakemake's params tracking compares), the
same values on every call, and host plans that jobs rebuild exactly.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from perovskite_defects import config as cfg
from perovskite_defects.hosts.dielectric_run import host_dielectric_step
from perovskite_defects.steps import (
    analysis,
    calculations,
    defects,
    hosts,
    phases,
    search,
    spin_orbit,
)
from perovskite_defects.steps import params as sp
from perovskite_defects.steps import tables as steps_tables
from perovskite_defects.study import end_member_plans, plan_from_params, plan_hosts

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"

# params function -> the step its rule's script calls (per-host functions take a plan too)
STEPS: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "host_structure": (sp.host_structure_params, hosts.build_host_files),
    "host_inputs": (sp.host_inputs_params, hosts.prepare_host),
    "host_stability": (sp.host_stability_params, hosts.check_host_stability),
    "supercell_relax_inputs": (sp.supercell_relax_inputs_params, hosts.prepare_supercell_relax),
    "bulk_inputs": (sp.bulk_inputs_params, hosts.prepare_bulk),
    "host_dielectric": (sp.host_dielectric_params, host_dielectric_step),
    "phase_inputs": (sp.phase_inputs_params, phases.prepare_phase),
    "chemical_potentials": (sp.chemical_potentials_params, phases.chemical_potentials),
    "defect_manifest": (sp.defect_manifest_params, defects.write_manifest_files),
    "defect_inputs": (sp.defect_inputs_params, defects.prepare_defect),
    "spin_orbit_shifts": (sp.spin_orbit_shifts_params, spin_orbit.compute_shifts),
    "defect_analysis": (sp.defect_analysis_params, analysis.defect_analysis),
    "tables": (sp.tables_params, steps_tables.tables),
    "aggregate_tables": (sp.aggregate_tables_params, steps_tables.aggregate_tables),
}
# rules that exist only with ground_state_search on (rules/search.smk)
SEARCH_STEPS: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "search_trial": (sp.search_trial_params, search.prepare_trial),
    "search_round1": (sp.search_summary_params, search.search_candidates),
    "search_cross_trial": (sp.search_trial_params, search.prepare_cross_trial),
    "search_summary": (sp.search_summary_params, search.summarise_search),
    "defect_inputs_searched": (sp.defect_inputs_searched_params, search.prepare_searched_defect),
}
# DFT rules: the step also takes run_params (from the job's resources)
RUNS = {"host_stability", "host_dielectric", "run_calculation"}
PER_HOST = {"host_structure", "host_inputs", "host_stability", "bulk_inputs", "chemical_potentials"}


def keyword_only(function: Callable[..., Any]) -> set[str]:
    return {
        name
        for name, p in inspect.signature(function).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def script_step(script: Path) -> Callable[..., Any]:
    """The one package function a rule script calls (not the scripting glue)."""
    tree = ast.parse(script.read_text())
    imported = {
        alias.asname or alias.name: node.module
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        and (node.module or "").startswith("perovskite_defects.")
        and node.module != "perovskite_defects.scripting"
        for alias in node.names
    }
    called = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    (name,) = set(imported) & called
    function: Callable[..., Any] = getattr(importlib.import_module(imported[name]), name)
    return function


@pytest.fixture(scope="module")
def workflow(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The parsed workflow of config.yaml (Snakemake's API; no DAG, no job)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (
        ConfigSettings,
        OutputSettings,
        ResourceSettings,
        StorageSettings,
    )

    with SnakemakeApi(OutputSettings(quiet=True)) as api:
        parsed = api.workflow(
            resource_settings=ResourceSettings(cores=1),
            config_settings=ConfigSettings(configfiles=[ROOT / "config.yaml"]),
            storage_settings=StorageSettings(),
            snakefile=ROOT / "Snakefile",
            workdir=tmp_path_factory.mktemp("parsed"),
        )
        yield parsed._workflow


def test_every_rule_passes_exactly_its_params_to_its_step(workflow: Any) -> None:
    rules = {rule.name: rule for rule in workflow.rules if rule.script}
    # plots and findings read only their input files: no params
    assert set(STEPS) | {"run_calculation", "plots", "findings"} == set(rules)
    for name, rule in rules.items():
        script = ROOT / "workflow" / "scripts" / Path(rule.script).name
        step = script_step(script)
        assert set(rule.params._names) == keyword_only(step), name
        expected = set(sp.param_names(STEPS[name][0])) if name in STEPS else set()
        if name in RUNS:
            expected |= set(sp.param_names(sp.run_params))
        assert set(rule.params._names) == expected, name


def test_search_rules_pass_exactly_their_params(tmp_path: Path) -> None:
    """The same check for the rules of a study with the ground-state search on."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (
        ConfigSettings,
        OutputSettings,
        ResourceSettings,
        StorageSettings,
    )

    on = {"ground_state_search": "screen", "cp2k": {"settings": {"relax_radius": 6.0}}}
    with SnakemakeApi(OutputSettings(quiet=True)) as api:
        parsed = api.workflow(
            resource_settings=ResourceSettings(cores=1),
            config_settings=ConfigSettings(configfiles=[ROOT / "config.yaml"], config=on),
            storage_settings=StorageSettings(),
            snakefile=ROOT / "Snakefile",
            workdir=tmp_path,
        )
        rules = {rule.name: rule for rule in parsed._workflow.rules if rule.script}
    assert set(SEARCH_STEPS) <= set(rules)
    config = cfg.validate({**yaml.safe_load((ROOT / "config.yaml").read_text()), **on})
    for name, (function, step) in SEARCH_STEPS.items():
        script = ROOT / "workflow" / "scripts" / Path(rules[name].script).name
        assert script_step(script) is step, name
        names = set(rules[name].params._names)
        assert names == keyword_only(step) == set(sp.param_names(function)), name
        params = function(config)
        assert _plain(dict(params)) and repr(function(config)) == repr(params), name


def test_only_the_run_params_are_left_out_of_snakemakes_params_check(workflow: Any) -> None:
    """Snakemake reruns a job whose params changed, except params computed from the job's
    resources ("derived"): run and nprocs must be those, and no other param may be."""
    from snakemake.rules import Rule

    for rule in workflow.rules:
        for name, value in rule.params._allitems():
            derived = callable(value) and Rule._is_deriving_function(value)
            assert derived == (name in ("run", "nprocs")), (rule.name, name)


def _studies() -> dict[str, dict[str, Any]]:
    """Raw configs: the default, tests/configs, shipped studies, and variants."""
    raw = {"config.yaml": yaml.safe_load((ROOT / "config.yaml").read_text())}
    for path in sorted((ROOT / "tests" / "configs").glob("*.yaml")):
        raw[path.name] = yaml.safe_load(path.read_text())
    for path in sorted((ROOT / "studies").glob("*.yaml")):
        raw[path.name] = yaml.safe_load(path.read_text())
    micro = raw["micro.yaml"]
    raw["vasp"] = {**micro, "engine": "vasp"}
    raw["stability"] = {**micro, "host": {**micro["host"], "stability": {"check": True}}}
    raw["given limits"] = {
        **micro,
        "chemical_potentials": {
            "source": "test values",
            "limits": {"I-rich": {"Cs": -5.0, "Pb": -4.0, "I": -1.5}},
        },
    }
    return raw


STUDIES = _studies()


def _plain(value: Any) -> bool:
    """Only types whose repr Snakemake compares (and JSON can hold)."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (str, int, float, bool))


@pytest.mark.parametrize("study", sorted(STUDIES))
def test_params_functions_on_every_study(study: str) -> None:
    config = cfg.validate(STUDIES[study])
    plans = {h.name: h for h in plan_hosts(config, cfg.PROJECT_ROOT)}
    ends = end_member_plans(config, list(plans.values()))
    for name, (function, step) in STEPS.items():
        if name == "host_dielectric" and config["engine"] != "cp2k":
            continue
        if name in PER_HOST:
            targets = ends if name == "host_inputs" else plans
            arguments = [(config, p) for p in targets.values()]
        elif name == "aggregate_tables":
            arguments = [(config, list(plans))]
        else:
            arguments = [(config,)]
        runs = set(sp.param_names(sp.run_params)) if name in RUNS else set()
        taken = keyword_only(step) - runs
        for args in arguments:
            params = function(*args)
            assert set(params) == set(sp.param_names(function)) == taken, name
            assert _plain(dict(params)), (name, params)
            assert repr(function(*args)) == repr(params), name  # stable: no spurious reruns
            json.dumps(params)


@pytest.mark.parametrize("study", sorted(STUDIES))
def test_jobs_plan_their_host_again_exactly(study: str) -> None:
    config = cfg.validate(STUDIES[study])
    plans = plan_hosts(config, cfg.PROJECT_ROOT)
    for plan in [*plans, *end_member_plans(config, plans).values()]:
        params = sp.host_structure_params(config, plan)["host"]
        assert plan_from_params(params, cfg.PROJECT_ROOT) == plan


def test_structure_file_host_plans_again(tmp_path: Path) -> None:
    from pymatgen.core import Lattice, Structure

    cdte = Structure(Lattice.cubic(6.48), ["Cd", "Te"], [[0, 0, 0], [0.25, 0.25, 0.25]])
    path = tmp_path / "CdTe.vasp"
    cdte.to(filename=str(path), fmt="poscar")
    config = cfg.validate(
        {
            "host": {"framework": "any", "structure": str(path), "supercell": [1, 1, 1]},
            "defects": [{"name": "V_Cd", "charges": [0]}],
            "chemical_potentials": {
                "source": "test values",
                "limits": {"Cd-rich": {"Cd": -1.0, "Te": -3.0}},
            },
        }
    )
    (plan,) = plan_hosts(config, cfg.PROJECT_ROOT)
    params = sp.host_structure_params(config, plan)["host"]
    assert plan_from_params(params, cfg.PROJECT_ROOT) == plan
    chem = sp.chemical_potentials_params(config, plan)
    assert chem["rich_element"] is None and chem["elements"] == ["Cd", "Te"]
    assert sp.tables_params(config)["framework"] == "any"


def test_values_are_the_configs() -> None:
    """The params carry the config's values (and resolved engine settings), not copies
    that could drift: spot checks on the default study."""
    config = cfg.validate(STUDIES["config.yaml"])
    analysis_params = sp.defect_analysis_params(config)
    assert analysis_params == {
        "scheme": "fnv",
        "site_radius": config["site_radius"],
        "dielectric": config["dielectric"],
        "shallow_threshold": 0.1,
    }
    engine = sp.defect_inputs_params(config)["engine"]
    assert engine["engine"] == "cp2k"
    assert engine["settings"]["cutoff_ry"] == 250.0  # the fast level's cutoff
    micro = cfg.validate(STUDIES["micro.yaml"])
    assert sp.engine_inputs(micro)["settings"]["cutoff_ry"] == 100  # cp2k.settings
    (plan,) = plan_hosts(config, cfg.PROJECT_ROOT)
    chem = sp.chemical_potentials_params(config, plan)
    assert chem["dopants"] == ["Na"] and chem["rich_element"] == "I"
    assert chem["elements"] == ["Cs", "I", "Pb"]


@pytest.mark.parametrize(
    ("mpi", "tasks", "threads", "launcher", "nprocs"),
    [
        ("srun", 32, 1, "srun", 32),  # SLURM: the allocation's tasks
        ("mpirun", 4, 2, "mpirun", 2),  # local: the job's threads
        ("", 1, 1, "", 1),  # one rank: no launcher
        (None, 1, 3, "mpirun", 3),  # no mpi resource: cp2k.mpi_launcher
    ],
)
def test_run_params_follow_the_resources(
    mpi: str | None, tasks: int, threads: int, launcher: str, nprocs: int
) -> None:
    config = cfg.validate(STUDIES["config.yaml"])
    params = sp.run_params(config, mpi, tasks, threads)
    assert params["nprocs"] == nprocs
    assert params["run"]["cp2k"] == {"executable": "auto", "mpi_launcher": launcher}
    assert params["run"]["scf_retries"] == config["scf_retries"]
    assert keyword_only(calculations.run_calculation) == set(params)


def test_rule_scripts_do_not_read_the_config() -> None:
    for script in (ROOT / "workflow" / "scripts").glob("*.py"):
        text = script.read_text()
        assert "snakemake.config" not in text and "config[" not in text, script.name


def _reordered(value: Any) -> Any:
    """``value`` with every mapping's keys in reverse order (as another YAML writer)."""
    if isinstance(value, dict):
        return {k: _reordered(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reordered(v) for v in value]
    return value


def test_key_order_of_the_config_changes_no_param() -> None:
    """Snakemake compares params by repr, which keeps a dict's key order: the params are
    sorted, so the same study written with its keys in another order reruns nothing."""
    raw = STUDIES["two_compositions.yaml"]
    configs = [cfg.validate(raw), cfg.validate(_reordered(raw))]
    assert list(configs[0]["defects"][0]) != list(configs[1]["defects"][0])  # really reordered
    for name, (function, _) in STEPS.items():
        if name in PER_HOST:
            reprs = [
                repr([function(c, p) for p in end_member_plans(c, plan_hosts(c)).values()])
                for c in configs
            ]
        elif name == "aggregate_tables":
            reprs = [repr(function(c, ["a", "b"])) for c in configs]
        else:
            reprs = [repr(function(c)) for c in configs]
        assert reprs[0] == reprs[1], name


def test_only_light_rules_skip_the_cluster_queue(workflow: Any) -> None:
    """The localrules run on the submitting node: only rules that read small result files
    (no DFT, no structure building, no potential grids) may be among them."""
    light = {"all", "chemical_potentials", "tables", "aggregate_tables", "plots", "findings"}
    assert set(workflow._localrules) == light
    rules = {rule.name for rule in workflow.rules}
    assert light <= rules  # Snakemake only warns about a localrule that names no rule
