"""Failed and killed DFT jobs: resume, SCF retry ladder, failures.csv, killed workflow.

The quick tests check the generated inputs and the bookkeeping on a real CP2K run folder;
the slow ones run the real engine on the 5-atom CsPbI3 cell.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from workflow_runner import assert_same_tables, command, environment, micro, snakemake, study_tables

from perovskite_defects import config as cfg
from perovskite_defects.engines import cp2k, cp2k_output, failures, recovery
from perovskite_defects.engines.base import CalcRecord
from perovskite_defects.hosts.perovskite import cubic_prototype
from perovskite_defects.steps import calculations as steps_calculations
from perovskite_defects.steps import common as steps_common
from perovskite_defects.steps import params

DATA = Path(__file__).parent / "data" / "cp2k" / "pbi2_relax_ions"

# 5-atom CsPbI3 at Gamma and 100 Ry: a few SCF seconds on an idle core.
TINY_SETTINGS = {"cutoff_ry": 100, "rel_cutoff_ry": 20, "kpoint_length": 5.0}


def _config(**settings) -> dict:
    return cfg.validate({"cp2k": {"settings": {**TINY_SETTINGS, **settings}}})


def _run(config: dict) -> dict:
    """The run step's params (run keys, scf_retries, one rank), as the rule passes them."""
    return dict(params.run_params(config, None, 1, 1))


def _prepare(calc: Path, config: dict, kind: str = "static", a: float = 6.3) -> Path:
    cp2k.write_input(
        cubic_prototype("Cs", "Pb", "I", a),
        kind,
        0,
        steps_common.engine_and_settings(params.engine_inputs(config))[1],
        calc,
        keep_symmetry="CUBIC" if kind == "relax_cell" else None,
    )
    return calc


# --------------------------------------------------------------------------- quick


def test_attempt_input_climbs_the_ladder_and_resumes() -> None:
    pristine = (DATA / "cp2k.inp").read_text()
    assert recovery.attempt_input(pristine, 0, {}, True) == pristine
    saved = {"geometry": "cp2k-1.restart", "wavefunction": "cp2k-RESTART.kp"}
    text = recovery.attempt_input(pristine, 2, saved, relaxation=True)
    # rung 2: alpha 0.3 / 4, smearing 300 K x 2, MAX_SCF >= 300 (see recovery.LADDER)
    assert "ALPHA 0.075" in text and "ELECTRONIC_TEMPERATURE 600" in text
    assert "MAX_SCF 300" in text
    assert "SCF_GUESS RESTART" in text
    assert "WFN_RESTART_FILE_NAME restart/cp2k-RESTART.kp" in text
    assert text.startswith("&EXT_RESTART\n  RESTART_FILE_NAME restart/cp2k-1.restart")
    # a single point never takes positions from a restart file
    static = recovery.attempt_input(pristine, 0, saved, relaxation=False)
    assert "EXT_RESTART" not in static and "SCF_GUESS RESTART" in static


def test_restart_state_is_dropped_when_the_input_changes(tmp_path: Path) -> None:
    calc = _prepare(tmp_path / "calc", _config())
    state = recovery._load_state(calc)
    assert state["rung"] == 0 and (calc / "restart" / "pristine.inp").is_file()
    (calc / "cp2k-RESTART.wfn").write_text("old wavefunction")
    state["rung"] = 2
    recovery._save_state(calc, state)
    assert recovery._load_state(calc)["rung"] == 2  # same input: state kept
    _prepare(calc, _config(cutoff_ry=120))  # the inputs rule wrote a new input
    assert recovery._load_state(calc)["rung"] == 0
    assert not (calc / "cp2k-RESTART.wfn").exists()


def test_failures_csv_lists_what_is_failed_now(tmp_path: Path) -> None:
    failures.record_failure(tmp_path, "phases/Cs", "SCF not converged\nsecond line", 3)
    failures.record_failure(tmp_path, "CsPbI3/bulk", "EngineError: CP2K exited with code 137")
    failures.record_failure(tmp_path, "phases/Cs", "SCF not converged again", 3)
    assert failures.read_failures(tmp_path) == {
        "CsPbI3/bulk": "EngineError: CP2K exited with code 137",
        "phases/Cs": "SCF not converged again",
    }
    failures.clear_failure(tmp_path, "phases/Cs")
    assert list(failures.read_failures(tmp_path)) == ["CsPbI3/bulk"]


def test_failed_defect_gets_a_table_row_not_a_number(tmp_path: Path) -> None:
    from perovskite_defects.thermodynamics.formation import DefectChargeEntry
    from perovskite_defects.thermodynamics.rows import formation_energy_table

    entry = DefectChargeEntry.missing("V_I", 1, ["I-rich"], "failed: SCF not converged")
    (row,) = formation_energy_table([entry], ["I-rich"])
    assert row["converged"] == "failed: SCF not converged"
    assert row["E_f[I-rich] (eV)"] is None


# --------------------------------------------------------------------------- real engine


@pytest.mark.slow
def test_scf_failure_climbs_the_ladder_to_the_same_energy(tmp_path: Path, cp2k_binary) -> None:
    """MAX_SCF 2 cannot converge; rung 1 (restart, damped mixing, MAX_SCF >= 200) does, to
    the energy of a run converged at once (same physics: mixing only changes the path)."""
    reference = steps_calculations.run_calculation(
        _prepare(tmp_path / "ref", _config()), **_run(_config())
    )
    study = tmp_path / "results" / "s"
    calc = _prepare(study / "phases" / "X", _config(max_scf=2))
    record = steps_calculations.run_calculation(calc, **_run(_config(max_scf=2)))
    assert record.converged
    assert record.extra["recovery"]["rung"] == 1
    assert record.extra["recovery"]["resumed_from"] == ["wavefunction"]
    assert record.extra["recovery"]["scf"]["MAX_SCF"] == "200"
    assert record.energy == pytest.approx(reference.energy, abs=2e-4)  # eV
    state = json.loads((calc / "restart" / "state.json").read_text())
    assert [a["result"] for a in state["attempts"]] == ["SCF not converged", "converged"]
    assert failures.read_failures(study) == {}


@pytest.mark.slow
def test_scf_failure_for_good_is_recorded(tmp_path: Path, cp2k_binary) -> None:
    study = tmp_path / "results" / "s"
    config = cfg.validate({"scf_retries": 0, "cp2k": {"settings": {**TINY_SETTINGS, "max_scf": 2}}})
    host = _prepare(study / "CsPbI3" / "unitcell", config)
    with pytest.raises(
        recovery.PermanentFailureError, match="SCF not converged on ladder rungs 0-0"
    ):
        steps_calculations.run_calculation(host, **_run(config))
    assert not (host / "record.json").exists()
    assert "SCF not converged" in failures.read_failures(study)["CsPbI3/unitcell"]
    # A defect that fails for good gets a failure record, so the study goes on and its
    # table row says why; nothing downstream can use it as a number.
    defect = _prepare(study / "CsPbI3" / "defects" / "V_I_q0", config)
    (defect / "defect.json").write_text("{}")  # marks the folder as a defect calculation
    failed = steps_calculations.run_calculation(defect, **_run(config))
    on_disk = CalcRecord.from_json(defect / "record.json")
    assert on_disk.extra["failure"].startswith("SCF not converged") and failed.extra["failure"]
    with pytest.raises(Exception, match="SCF did not converge"):
        on_disk.require_converged()
    assert set(failures.read_failures(study)) == {"CsPbI3/unitcell", "CsPbI3/defects/V_I_q0"}


_RUN_SCRIPT = """
import sys
from perovskite_defects import config as cfg
from perovskite_defects.steps import calculations as steps_calculations
from perovskite_defects.steps.params import run_params
config = cfg.validate({"cp2k": {"settings": %r}})
steps_calculations.run_calculation(sys.argv[1], **run_params(config, None, 1, 1))
"""


@pytest.mark.slow
def test_killed_relaxation_resumes_from_its_last_geometry(tmp_path: Path, cp2k_binary) -> None:
    """Kill a cell relaxation after its first step (as a walltime kill would); the rerun
    starts from the saved geometry and ends where an uninterrupted run ends."""
    config = _config()
    # The uninterrupted run goes beside the killed one, each on one core (CI time); the
    # with-block waits for it even when an assertion fails first.
    with ThreadPoolExecutor(max_workers=1) as pool:
        full = _prepare(tmp_path / "full", config, "relax_cell", a=6.6)
        uninterrupted_run = pool.submit(steps_calculations.run_calculation, full, **_run(config))
        calc = _prepare(tmp_path / "killed", config, "relax_cell", a=6.6)
        proc = subprocess.Popen(
            [sys.executable, "-c", _RUN_SCRIPT % TINY_SETTINGS, str(calc)],
            env=environment(),
            start_new_session=True,  # its own process group: the kill takes CP2K with it
        )
        restart = calc / "cp2k-1.restart"
        deadline = time.time() + 1200
        while time.time() < deadline and proc.poll() is None:
            if restart.is_file() and "&END COORD" in restart.read_text(errors="replace"):
                break
            time.sleep(0.5)
        assert proc.poll() is None, "the relaxation finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not (calc / "record.json").exists()
        killed_at = cp2k_output._final_structure(calc, "").lattice.a
        assert killed_at < 6.6 - 1e-3  # the first step moved the cell

        resumed = steps_calculations.run_calculation(calc, **_run(config))
        uninterrupted = uninterrupted_run.result(timeout=1200)
    inp = (calc / "cp2k.inp").read_text()
    assert "RESTART_FILE_NAME restart/cp2k-1.restart" in inp
    assert resumed.extra["recovery"]["resumed_from"] == ["geometry", "wavefunction"]
    # The resumed run started at the saved cell, not at the 6.6 Å of the input.
    out = (calc / "cp2k.out").read_text()
    first_a = float(re.search(r"CELL\| Vector a \[angstrom\]:.*\|a\| =\s+(\S+)", out).group(1))
    assert first_a == pytest.approx(killed_at, abs=1e-4)
    a_full = uninterrupted.pmg_structure().lattice.a
    assert resumed.pmg_structure().lattice.a == pytest.approx(a_full, abs=0.01)
    assert resumed.energy == pytest.approx(uninterrupted.energy, abs=2e-3)
    # The energy of the input geometry comes from the killed attempt's output, not from
    # the first energy of the resumed output (the saved cell).
    first_here = cp2k_output._first_converged_energy(out)
    assert uninterrupted.initial_energy is not None and first_here is not None
    assert resumed.initial_energy == pytest.approx(uninterrupted.initial_energy, abs=1e-5)
    assert abs(first_here - resumed.initial_energy) > 1e-3


def _in_dir(cmdline: Path, folder: Path) -> bool:
    try:
        return str(Path(os.readlink(cmdline.parent / "cwd"))).startswith(str(folder))
    except OSError:
        return False


@pytest.mark.slow
def test_killed_workflow_recomputes_nothing_finished(
    tmp_path: Path, micro_reference_tables: dict
) -> None:
    """Kill snakemake mid-study (SIGTERM, as `kill PID` or a login-node reaper sends), run
    the same command again: finished records are not recomputed, the interrupted job
    reruns, and the tables equal those of an uninterrupted run.

    (After SIGKILL or a crash Snakemake's lock stays: `snakemake --unlock` first, then the
    same command; the DFT jobs of the killed run die with it here, as its process group.)"""
    killed = tmp_path / "killed"
    killed.mkdir()
    # Two DFT jobs at a time (one MPI rank each): the kill lands while jobs are running.
    args = ("--cores", "2", "--rerun-incomplete")
    proc = subprocess.Popen(
        command(killed, micro(), *args),
        env=environment(),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    study = killed / "results" / "micro"
    deadline = time.time() + 2400
    while time.time() < deadline and proc.poll() is None:
        if len(list(study.glob("**/record.json"))) >= 3:
            break
        time.sleep(1)
    assert proc.poll() is None, "the study finished before it could be killed"
    # nice -n 19 exec()s snakemake, so proc.pid is the snakemake process itself
    os.kill(proc.pid, signal.SIGTERM)
    proc.wait(timeout=600)
    assert not any(
        "cp2k" in p.read_text(errors="replace")
        for p in Path("/proc").glob("[0-9]*/cmdline")
        if _in_dir(p, killed)
    ), "a DFT job of the killed run is still running"
    finished = {p: p.stat().st_mtime_ns for p in study.glob("**/record.json")}
    assert 3 <= len(finished) < 7

    again = snakemake(killed, micro(), *args, timeout=3600)
    assert again.returncode == 0, again.stderr[-4000:]
    for path, mtime in finished.items():
        assert path.stat().st_mtime_ns == mtime, f"{path} was recomputed"
    assert len(list(study.glob("**/record.json"))) == 7

    # Same config and ranks as the session's uninterrupted run: identical numbers.
    assert_same_tables(study_tables(killed), micro_reference_tables, tol=0.0)
