"""The tiny study through a real SLURM (single node, started here) and the executor plugin.

Needs root on Debian/Ubuntu (the start script installs munge and slurm with apt-get and
runs the daemons); skips with the reason otherwise. Run alone, niced:
    PYTHONPATH=workflow nice -n 19 .venv/bin/pytest -m slurm -v
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from workflow_runner import ROOT, assert_same_tables, micro, snakemake, study_tables

pytestmark = pytest.mark.slurm

START = ROOT / "scripts" / "slurm" / "start_local_slurm.sh"
STOP = ROOT / "scripts" / "slurm" / "stop_local_slurm.sh"


@pytest.fixture(scope="module")
def local_slurm(tmp_path_factory: pytest.TempPathFactory):
    if os.geteuid() != 0:
        pytest.skip("the local SLURM needs root (apt-get install, slurmd as root)")
    if not Path("/etc/debian_version").is_file() or not shutil.which("apt-get"):
        pytest.skip("the local SLURM start script supports Debian/Ubuntu (apt-get) only")
    state = tmp_path_factory.mktemp("slurm-state")
    proc = subprocess.run(
        ["bash", str(START), str(state)], capture_output=True, text=True, timeout=900
    )
    if proc.returncode != 0:
        # stop whatever did start, then report
        subprocess.run(["bash", str(STOP), str(state)], timeout=120)
        if "is not ours" in proc.stderr:
            pytest.skip(proc.stderr.strip())
        pytest.fail(f"local SLURM did not start: {proc.stdout + proc.stderr}")
    try:
        yield state
    finally:
        subprocess.run(["bash", str(STOP), str(state)], timeout=120)


def test_tiny_study_on_slurm_equals_local_run(
    local_slurm: Path, tmp_path: Path, micro_reference_tables: dict
) -> None:
    # Two MPI ranks per DFT job: srun must start them (one task each) inside the allocation.
    config = {**micro(), "resources": {"mpi_ranks": 2}}
    on_slurm = tmp_path / "slurm"
    on_slurm.mkdir()
    proc = snakemake(
        on_slurm, config, "--profile", str(ROOT / "profiles" / "slurm-local"), timeout=3000
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = proc.stdout + proc.stderr
    assert "submitted with SLURM jobid" in out

    study = on_slurm / "results" / "micro"
    outputs = sorted(study.glob("**/cp2k.out"))
    assert len(outputs) == 7
    for path in outputs:
        text = path.read_text()
        assert "Total number of message passing processes                             2" in text, (
            path
        )
    # Every DFT job went through sbatch (the plugin deletes the logs of successful jobs).
    submitted = [line for line in out.splitlines() if "submitted with SLURM jobid" in line]
    assert sum("rule_run_calculation" in line for line in submitted) == 7

    # The session's local run used one rank per job: the rank count only changes the
    # order of sums (measured: 2e-10 eV), far below the 1e-6 eV tolerance.
    assert_same_tables(study_tables(on_slurm), micro_reference_tables)
