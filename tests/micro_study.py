"""The smallest study the workflow can run, shared by the SLURM and kill/resume tests.

Unit cell not relaxed and used as the supercell (5 atoms), one defect in two charge
states, the elemental phases only, 100 Ry and Gamma-heavy k-meshes: 7 DFT jobs of a few
seconds each on an idle core. Numbers are meaningless physically; the tests compare runs
of the same config with each other and check structure and bookkeeping.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from perovskite_defects.reporting.tables import read_csv

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")

MICRO = {
    "study": "micro",
    "host": {"lattice_constant": 6.30, "relax": False, "supercell": [1, 1, 1]},
    "defects": [{"name": "V_I", "charges": [1, 0]}],
    "competing_phases": ["Cs", "Pb", "I2"],
    "resources": {"mpi_ranks": 1},
    "cp2k": {"settings": {"cutoff_ry": 100, "rel_cutoff_ry": 20, "kpoint_length": 8.0}},
}

TABLES = ("formation_energies.csv", "transition_levels.csv")


def command(workdir: Path, config: dict, *args: str) -> list[str]:
    cfg_path = workdir / "study.yaml"
    cfg_path.write_text(yaml.safe_dump(config))
    cmd = ["nice", "-n", "19", SNAKEMAKE, "-s", str(ROOT / "Snakefile")]
    return cmd + ["--directory", str(workdir), "--configfile", str(cfg_path), *args]


def env() -> dict[str, str]:
    return dict(
        os.environ,
        OMPI_ALLOW_RUN_AS_ROOT="1",
        OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
        PYTHONPATH=str(ROOT / "workflow"),
    )


def run(workdir: Path, config: dict, *args: str, timeout: int = 3600):
    return subprocess.run(
        command(workdir, config, *args), capture_output=True, text=True, timeout=timeout, env=env()
    )


def tables(workdir: Path, study: str = "micro") -> dict[str, list[dict]]:
    folder = workdir / "results" / study / "tables"
    return {name: read_csv(folder / name) for name in TABLES}


def assert_same_tables(a: dict, b: dict, tol: float = 1e-6) -> float:
    """Same rows and columns; numbers equal within ``tol`` eV. Returns the largest difference."""
    largest = 0.0
    for name in TABLES:
        assert len(a[name]) == len(b[name]), name
        for ra, rb in zip(a[name], b[name], strict=True):
            assert ra.keys() == rb.keys(), name
            for key in ra:
                if isinstance(ra[key], float) or isinstance(rb[key], float):
                    largest = max(largest, abs(ra[key] - rb[key]))
                    assert abs(ra[key] - rb[key]) <= tol, (name, key, ra[key], rb[key])
                else:
                    assert ra[key] == rb[key], (name, key)
    return largest
