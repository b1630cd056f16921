"""The one way the tests run the Snakemake workflow, and the study configs they share.

Every test that runs ``snakemake`` (dry runs, real CP2K studies, the replayed VASP study,
SLURM, kill and resume) goes through :func:`snakemake` or :func:`command`, so they all get
the same environment: this checkout's package first on ``PYTHONPATH``, OpenMPI allowed to
run as root, ``nice -n 19`` (the machine is shared), and no VASP settings or test-only
replay switch leaking in from the caller's environment.

The study configs live in ``tests/configs/*.yaml`` (each with a comment saying what it is
for); the builders below return fresh copies, so a test may change its copy freely.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from perovskite_defects.engines import REPLAY_ENV
from perovskite_defects.reporting.tables import read_csv

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = Path(__file__).resolve().parent / "configs"
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")

# Tables that two runs of the same study must reproduce (assert_same_tables).
TABLES = ("formation_energies.csv", "transition_levels.csv")


# --------------------------------------------------------------------------- configs


@cache
def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())


def study_config(name: str) -> dict[str, Any]:
    """A fresh copy of ``tests/configs/<name>.yaml``."""
    return copy.deepcopy(_load(name))


def tiny() -> dict[str, Any]:
    """The tiny study of the end-to-end test: V_I and Na_Cs in a 5-atom cell (tiny.yaml)."""
    return study_config("tiny")


def tiny_cp2k() -> dict[str, Any]:
    """The ``cp2k`` section of the tiny study: the cheap settings of every real workflow run."""
    return tiny()["cp2k"]


def micro() -> dict[str, Any]:
    """The smallest study (7 DFT jobs) of the SLURM and kill/resume tests (micro.yaml)."""
    return study_config("micro")


def two_composition_sweep() -> dict[str, Any]:
    """CsPbI3 and CsSn0.5Pb0.5I3 in a [2, 1, 1] cell with V_X, at the tiny CP2K settings."""
    return {**study_config("two_compositions"), "cp2k": tiny_cp2k()}


# --------------------------------------------------------------------------- running


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of every workflow run (see the module docstring)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PMG_VASP_PSP_DIR", REPLAY_ENV)}
    env.update(
        OMPI_ALLOW_RUN_AS_ROOT="1",
        OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
        PYTHONPATH=str(ROOT / "workflow"),
    )
    env.update(extra or {})
    return env


def command(workdir: Path, config: dict, *args: str) -> list[str]:
    """Write ``config`` to ``workdir/study.yaml``; the Snakemake command line that runs it."""
    cfg_path = workdir / "study.yaml"
    cfg_path.write_text(yaml.safe_dump(config))
    cmd = ["nice", "-n", "19", SNAKEMAKE, "-s", str(ROOT / "Snakefile")]
    return cmd + ["--directory", str(workdir), "--configfile", str(cfg_path), *args]


def snakemake(
    workdir: Path,
    config: dict,
    *args: str,
    timeout: int = 1200,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the workflow on ``config`` in ``workdir`` (extra ``args`` as on the command line)."""
    return subprocess.run(
        command(workdir, config, *args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment(env),
    )


# --------------------------------------------------------------------------- comparing runs


def study_tables(workdir: Path, study: str = "micro") -> dict[str, list[dict]]:
    """The tables of :data:`TABLES` of a finished study, parsed."""
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
