# Config validation, study plan and wildcard constraints shared by all rule files.
import os
import sys
from pathlib import Path

# The package is importable from the checkout even when it is not pip-installed.
sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))

from perovskite_defects import config as pd_config
from perovskite_defects import steps as pd_steps

try:
    CONFIG = pd_config.validate(config)
    ENGINE_SETTINGS = pd_steps.engine_settings(CONFIG).__dict__
except (pd_config.ConfigError, ValueError) as err:
    raise WorkflowError(f"invalid configuration: {err}")

STUDY = CONFIG["study"]
HOST = pd_config.host_name(CONFIG)
RESULTS = f"results/{STUDY}"
try:
    pd_config.check_writable(RESULTS)
except pd_config.ConfigError as err:
    raise WorkflowError(f"invalid configuration: {err}")
DEFECT_SPECS = pd_config.defect_specs(CONFIG)
DEFECT_DIRS = [
    f"{RESULTS}/{HOST}/defects/{spec.name}_q{charge}"
    for spec in DEFECT_SPECS
    for charge in spec.charges
]
PHASES = CONFIG["competing_phases"]
TABLES = [
    f"{RESULTS}/tables/{name}.{ext}"
    for name in ("formation_energies", "transition_levels")
    for ext in ("csv", "md")
]


if not workflow.local_exec and CONFIG["resources"]["mpi_ranks"] == 0:
    # 0 means "all cores of --cores", which a cluster executor does not have.
    raise WorkflowError(
        "invalid configuration: config key 'resources.mpi_ranks': 0 (all local cores) has "
        "no meaning on a cluster executor; set the MPI ranks per DFT job, e.g. 32"
    )


def dft_threads():
    """MPI ranks of one DFT job: the configured number, or all cores given to Snakemake."""
    ranks = CONFIG["resources"]["mpi_ranks"]
    return ranks if ranks > 0 else max(1, workflow.cores)


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
    host=r"[A-Za-z0-9]+",
    defect=r"[A-Za-z]+_[A-Za-z]+",
    charge=r"-?\d+",
    phase=r"[A-Za-z0-9]+",
