# Config validation, study plan and wildcard constraints shared by all rule files.
import functools
import json
import os
import re
import sys
from pathlib import Path
from snakemake.exceptions import WorkflowError

# The package is importable from the checkout even when it is not pip-installed.
sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))

from perovskite_defects import config as pd_config
from perovskite_defects.steps import params as pd_params
from perovskite_defects.steps import phases as pd_steps_phases
from perovskite_defects import study as pd_study
from perovskite_defects.defects.manifest import manifest_jobs
from perovskite_defects.corrections.dielectric import (
    is_computed as pd_dielectric_is_computed,
)
from perovskite_defects.thermodynamics.given_limits import limit_names as pd_limit_names

# Validated once, here, in every process that parses the Snakefile; the jobs read only
# their params (perovskite_defects/steps/params.py), never the config itself.
try:
    CONFIG = pd_config.validate(config)
    # resolving the engine's settings (the input rules' params) refuses a bad one here
    pd_params.engine_inputs(CONFIG)
except (pd_config.ConfigError, ValueError) as err:
    raise WorkflowError(f"invalid configuration: {err}")

STUDY = CONFIG["study"]
RESULTS = f"results/{STUDY}"
try:
    pd_config.check_writable(RESULTS)
except pd_config.ConfigError as err:
    raise WorkflowError(f"invalid configuration: {err}")
# The sweep (or the single host): host plans by name, and the end members whose relaxed
# unit cells give the alloys' lattice constants by Vegard's law.
HOST_PLANS = {h.name: h for h in pd_study.plan_hosts(CONFIG, pd_config.PROJECT_ROOT)}
END_MEMBERS = pd_study.end_member_plans(CONFIG, list(HOST_PLANS.values()))
HOSTS = list(HOST_PLANS)
# Hosts with lattice_mode relax: their supercell is relaxed itself (no end members).
RELAXED_HOSTS = [h for h, p in HOST_PLANS.items() if p.lattice_mode == "relax"]
# Hosts with host.stability.check: the phonon-checked stable supercell is the bulk (its
# cell its own, as with lattice_mode relax) and gives the host energy.
STABLE_HOSTS = [
    h
    for h, p in HOST_PLANS.items()
    if p.framework == "perovskite" and (p.settings.get("stability") or {}).get("check")
]


def host_params(params_function, plans=HOST_PLANS):
    """Params of a per-host step, named by the keys of ``params_function(CONFIG,
    plan)`` (steps/params.py), computed once per host."""
    per_host = functools.lru_cache(maxsize=None)(
        lambda host: params_function(CONFIG, plans[host])
    )
    return {
        key: (lambda wildcards, key=key: per_host(wildcards.host)[key])
        for key in pd_params.param_names(params_function)
    }


def dft_run_params():
    """Params ``run`` and ``nprocs`` of a DFT rule (engine executable and launcher,
    scf_retries, MPI ranks): functions of the job's resources, so Snakemake counts them
    as derived params (rules.py, _is_deriving_function) and does not redo finished
    calculations when only how they are started changes."""

    def job(resources, threads):
        mpi = resources.get("mpi", None)
        return pd_params.run_params(CONFIG, mpi, resources.get("tasks", 1), threads)

    return {
        key: (
            lambda wildcards, resources, threads, key=key: job(resources, threads)[key]
        )
        for key in pd_params.param_names(pd_params.run_params)
    }


def one_of(names):
    """Wildcard constraint matching exactly these names (nothing when there are none)."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


# Rules that build a host only match the hosts of this study (a folder of another host,
# e.g. prepared by hand, is then a plain input of the run and defect_analysis rules).
HOST_RE = one_of(HOSTS)
END_MEMBER_RE = one_of(END_MEMBERS)
RELAXED_HOST_RE = one_of(RELAXED_HOSTS)
STABLE_HOST_RE = one_of(STABLE_HOSTS)
PHASES = CONFIG["competing_phases"]
# Tables of each host (results/<study>/<host>/tables/) and across hosts (<study>/tables/).
HOST_TABLE_NAMES = (
    "formation_energies",
    "transition_levels",
    "fermi_level",
    "concentrations",
    "dopant_effect",
)
TABLES = [
    f"{RESULTS}/tables/{name}.{ext}"
    for name in (*HOST_TABLE_NAMES, "class_averages", "class_transition_levels")
    for ext in ("csv", "md")
]


@functools.lru_cache(maxsize=None)
def _manifest_jobs(manifest, mtime_ns):
    """(defect, charge) of a manifest, read once per file version: the input and params
    functions of a host's tables ask for them several times while the DAG is built."""
    return tuple(manifest_jobs(Path(manifest).parent))


def defect_dirs(wildcards):
    """Defect folders of a host, read from its manifest (after the checkpoint ran)."""
    manifest = checkpoints.defect_manifest.get(**wildcards).output.tsv
    jobs = _manifest_jobs(manifest, os.stat(manifest).st_mtime_ns)
    folder = f"results/{wildcards.study}/{wildcards.host}/defects"
    return [f"{folder}/{d}_q{q}" for d, q in jobs]


def defect_table_inputs(wildcards):
    """Records, corrections, defect states and local environments of every defect of a
    host (its manifest)."""
    dirs = defect_dirs(wildcards)
    return {
        "records": [f"{d}/record.json" for d in dirs],
        "corrections": [f"{d}/correction.json" for d in dirs],
        "states": [f"{d}/defect_states.json" for d in dirs],
        "local_environments": [f"{d}/local_environment.json" for d in dirs],
    }


def end_member_records(wildcards):
    """Relaxed unit cells of the end members of a host (its own when it is one)."""
    plan = HOST_PLANS[wildcards.host]
    return {
        name: f"results/{wildcards.study}/{name}/unitcell/record.json"
        for name in plan.end_members
    }


def bulk_input_files(wildcards):
    """The host structure and what gives the bulk its lattice: the relaxed end-member unit
    cells (lattice_mode vegard) or the host supercell's own relaxation (relax)."""
    folder = f"results/{wildcards.study}/{wildcards.host}"
    if wildcards.host in STABLE_HOSTS:
        return {
            "host": f"{folder}/structures/host.json",
            "stable": f"{folder}/stability/stability.json",
        }
    if wildcards.host in RELAXED_HOSTS:
        return {
            "host": f"{folder}/structures/host.json",
            "relaxed": f"{folder}/relax/record.json",
        }
    return {"host": f"{folder}/structures/host.json", **end_member_records(wildcards)}


def host_energy_record(wildcards):
    """Energy of the host for chemical potentials: the unit cell of an end member with an
    atomic A cation (as before), otherwise the bulk supercell (SQS, molecules, framework
    any)."""
    plan = HOST_PLANS[wildcards.host]
    if plan.energy_from_unitcell and wildcards.host not in STABLE_HOSTS:
        return f"results/{wildcards.study}/{wildcards.host}/unitcell/record.json"
    return f"results/{wildcards.study}/{wildcards.host}/bulk/record.json"


if not workflow.local_exec and CONFIG["resources"]["mpi_ranks"] == 0:
    # 0 means "all cores of --cores", which a cluster executor does not have.
    raise WorkflowError(
        "invalid configuration: config key 'resources.mpi_ranks': 0 (all local cores) has "
        "no meaning on a cluster executor; set the MPI ranks per DFT job, e.g. 32"
    )


def dft_threads():
    """MPI ranks of one DFT job: the configured number, or all cores given to Snakemake."""
    ranks = CONFIG["resources"]["mpi_ranks"]
    if ranks > 0:
        return ranks
    try:
        return max(1, workflow.cores)
    except WorkflowError:  # no --cores: a command that runs no job (--report, --lint)
        return 1


def dft_mem_mb(threads, attempt):
    """Memory of one DFT job (MB): 2 GB per rank, at least 4 GB, doubled per attempt."""
    return max(4000, 2000 * threads) * attempt


def dft_runtime_min(attempt):
    """Walltime of one DFT job (min): 2 h, 4 h, 6 h... by attempt (a resumed job restarts
    from its saved state, so the extra time goes to new steps)."""
    return 120 * attempt


def dft_mpi_launcher(wildcards):
    """The `mpi` resource: how a multi-rank DFT job starts its ranks.

    On SLURM (submitting from a login node, or running inside an allocation) it is srun:
    the executor plugin starts jobs with an `mpi` resource without srun and leaves the
    launch to the job. Locally it is cp2k.mpi_launcher (mpirun). Empty for one rank: the
    plugin refuses MPI jobs of one task, and one rank needs no launcher.
    """
    if dft_threads() <= 1:
        return ""
    if not workflow.local_exec or "SLURM_JOB_ID" in os.environ:
        return "srun"
    return CONFIG["cp2k"]["mpi_launcher"]


wildcard_constraints:
    study=r"[A-Za-z0-9][A-Za-z0-9_-]*",
    host=r"[A-Za-z0-9.]+",
    defect=r"[A-Za-z]+_[A-Za-z]+(?:\+V_[A-Za-z]+)?(?:-[A-Za-z0-9]+)*",
    charge=r"-?\d+",
    phase=r"[A-Za-z0-9]+",


# Spin-orbit shifts of the band edges (band_edges.soc; rule in spin_orbit.smk).
SOC_ENGINE = CONFIG["band_edges"]["soc"]
SOC_TABLE_NAMES = ("spin_orbit_levels",) if SOC_ENGINE != "none" else ()


def soc_structure_record(wildcards):
    """The host's relaxed unit cell when it has one (end members: 5 atoms for ABX3),
    otherwise its bulk supercell (alloys, lattice_mode relax)."""
    folder = f"results/{wildcards.study}/{wildcards.host}"
    if wildcards.host in END_MEMBERS:
        return f"{folder}/unitcell/record.json"
    return f"{folder}/bulk/record.json"


def soc_table_inputs(wildcards):
    """The shifts file of a host for its tables, or nothing without band_edges.soc."""
    if SOC_ENGINE == "none":
        return {}
    return {
        "soc": f"results/{wildcards.study}/{wildcards.host}/spin_orbit/soc_shifts.json"
    }


def dielectric_input(wildcards):
    """The host's computed dielectric tensor when config asks for it (else nothing)."""
    if not pd_dielectric_is_computed(CONFIG["dielectric"]):
        return []
    if wildcards.host not in END_MEMBERS:
        raise WorkflowError(
            f"invalid configuration: config key 'dielectric.source': 'computed' needs a host "
            f"with its own relaxed unit cell; host {wildcards.host} has none (an alloy or a "
            "structure-file host): give 'dielectric.value' instead"
        )
    return [f"results/{wildcards.study}/{wildcards.host}/dielectric/dielectric.json"]


# The ground-state search (rules in search.smk, defined only when it is on): the trial
# relaxations' params and the trial records of a defect, from its host's manifest.
SEARCH_ON = CONFIG["ground_state_search"] != "off"
if SEARCH_ON:
    from perovskite_defects.steps import search as pd_search

    try:
        SEARCH_TRIAL_PARAMS = pd_params.search_trial_params(CONFIG)
    except ValueError as err:
        raise WorkflowError(f"invalid configuration: {err}")
    SEARCH_DISTORTIONS = pd_params.search_distortions(CONFIG)

    @functools.lru_cache(maxsize=None)
    def _search_jobs(manifest, mtime_ns):
        """Defect id -> charge -> trial labels of a manifest, read once per version."""
        return pd_search.search_jobs(manifest, SEARCH_DISTORTIONS)

    def search_trial_records(wildcards):
        """Records of every trial of one defect (all its charge states)."""
        manifest = checkpoints.defect_manifest.get(**wildcards).output.tsv
        jobs = _search_jobs(manifest, os.stat(manifest).st_mtime_ns)
        folder = (
            f"results/{wildcards.study}/{wildcards.host}/defects/{wildcards.defect}"
        )
        return [
            f"{folder}/search/q{q}/{label}/record.json"
            for q, labels in jobs.get(wildcards.defect, {}).items()
            for label in labels
        ]

    def search_all_records(wildcards):
        """Both rounds' trial records of one defect: the first round and the cross-charge
        trials its checkpoint (search_round1) listed."""
        first = search_trial_records(wildcards)
        round1 = checkpoints.search_round1.get(**wildcards).output[0]
        folder = (
            f"results/{wildcards.study}/{wildcards.host}/defects/{wildcards.defect}"
        )
        cross = json.loads(Path(round1).read_text())["cross_charge_candidates"]
        return first + [
            f"{folder}/search/q{c['charge']}/{c['new_label']}/record.json"
            for c in cross
        ]

    def cross_trial_source(wildcards):
        """The relaxed first-round trial a cross-charge trial starts from."""
        folder = (
            f"results/{wildcards.study}/{wildcards.host}/defects/{wildcards.defect}"
        )
        return f"{folder}/search/q{int(wildcards.source)}/{wildcards.label}/record.json"
