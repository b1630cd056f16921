"""Failed and killed DFT jobs: resume from saved state, retry SCF failures, record failures.

Three things a long DFT campaign on a cluster needs, kept out of the engines:

* **Resume.** A job killed at its walltime (or by anything else) leaves CP2K's restart
  files in its folder: the last geometry (``cp2k-1.restart``, written after every
  optimisation step) and the last wavefunction (``cp2k-RESTART.kp``/``.wfn``). Before each
  attempt they are copied into ``<calc>/restart/``, which is *not* a declared output of any
  rule, so Snakemake's removal of a failed job's outputs never touches it, and the next
  attempt starts from them: CP2K's own ``&EXT_RESTART`` for the geometry (and the cell of a
  cell optimisation) and ``SCF_GUESS RESTART`` for the wavefunction.
* **SCF ladder.** A run whose SCF (or geometry optimisation) ends unconverged is rerun from
  its last state with stronger settings, one rung of :data:`LADDER` at a time, up to the
  configured limit (``scf_retries``). The rung reached is kept in ``restart/state.json``,
  so a resubmitted job (Snakemake ``--retries``) continues up the ladder instead of
  repeating rungs that already failed, and the settings actually used go into the record.
* **Failure log.** Every failure is written to ``results/<study>/failures.csv`` (calc,
  rung, reason, time); a later success of the same calculation removes its rows, so the
  file always lists what is failed *now*.

The restart state is fingerprinted by the input the workflow wrote (``cp2k.inp`` as the
inputs rule left it): when that input changes (new settings, new structure), the old state
is discarded instead of being resumed into a different calculation.

Written here rather than taken from a library: custodian (Materials Project) has error
handlers for VASP/Q-Chem but none for CP2K, and its job model (a supervising process that
outlives the engine) does not fit Snakemake jobs that SLURM may kill outright.

The failure log (failures.csv) is kept by :mod:`perovskite_defects.engines.failures`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perovskite_defects.engines.base import CalcRecord, EngineError
from perovskite_defects.engines.failures import (
    _now,
    clear_failure,
    one_line,
    record_failure,
    study_dir_of,
)

log = logging.getLogger("perovskite_defects")

RESTART_DIR = "restart"
STATE_FILE = "state.json"
PRISTINE_INPUT = "pristine.inp"

INPUT_NAME = "cp2k.inp"
OUTPUT_NAME = "cp2k.out"
GEOMETRY_RESTART = "cp2k-1.restart"
WFN_RESTARTS = ("cp2k-RESTART.kp", "cp2k-RESTART.wfn")


@dataclass(frozen=True)
class Rung:
    """One rung of the SCF ladder: how the configured settings are strengthened.

    Attributes:
        mixing_alpha_factor: multiplies the Broyden mixing parameter (smaller = damped).
        smearing_factor: multiplies the Fermi-Dirac electronic temperature (capped at
            :data:`MAX_SMEARING_K`): smooths occupations near the Fermi level.
        min_max_scf: MAX_SCF is at least this (and at least the configured value).
        note: what the rung does, for logs and provenance.
    """

    mixing_alpha_factor: float
    smearing_factor: float
    min_max_scf: int
    note: str


# The documented ladder. Rung 0 is the configured settings; every later rung also starts
# from the last wavefunction (and geometry), so the SCF steps of earlier rungs are not lost.
# Smearing is raised only from rung 2 on because it changes the energy (slightly, for a
# semiconductor: 600 K moves a 1.4 eV-gap cell by well under 1 meV); the rung and its
# settings are kept in the record, so provenance shows which numbers were rescued how.
LADDER: tuple[Rung, ...] = (
    Rung(1.0, 1.0, 0, "configured settings"),
    Rung(0.5, 1.0, 200, "mixing alpha halved, MAX_SCF >= 200, restart from last state"),
    Rung(0.25, 2.0, 300, "mixing alpha / 4, smearing x2, MAX_SCF >= 300"),
    Rung(0.125, 3.0, 400, "mixing alpha / 8, smearing x3, MAX_SCF >= 400"),
)
MAX_RUNG = len(LADDER) - 1
MAX_SMEARING_K = 1000.0


class PermanentFailureError(EngineError):
    """The calculation ran to its end but never converged, even on the last allowed rung."""

    def __init__(self, message: str, record: CalcRecord | None = None) -> None:
        super().__init__(message)
        self.record = record  # the last (unconverged) record, when there is one


# --------------------------------------------------------------------------- state


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _load_state(calc_dir: Path) -> dict[str, Any]:
    """The restart state of ``calc_dir``, reset when the workflow rewrote the input."""
    rdir = calc_dir / RESTART_DIR
    state_path = rdir / STATE_FILE
    inp = calc_dir / INPUT_NAME
    if not inp.is_file():
        raise EngineError(f"{inp}: CP2K input is missing")
    current = _sha(inp)
    if state_path.is_file():
        try:
            state = json.loads(state_path.read_text())
        except json.JSONDecodeError:
            state = {}
        # cp2k.inp is either what the inputs rule wrote (pristine) or what an earlier
        # attempt generated from it; anything else means new inputs: start afresh.
        if (
            current in (state.get("pristine_sha"), state.get("generated_sha"))
            and (rdir / PRISTINE_INPUT).is_file()
        ):
            return state
        log.info("%s: input changed since the saved restart state; starting afresh", calc_dir)
    _reset(calc_dir)
    rdir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(inp, rdir / PRISTINE_INPUT)
    state = {"pristine_sha": current, "generated_sha": None, "rung": 0, "attempts": []}
    _save_state(calc_dir, state)
    return state


def _reset(calc_dir: Path) -> None:
    """Remove restart state (snapshots and CP2K's own restart files) of an older input."""
    shutil.rmtree(calc_dir / RESTART_DIR, ignore_errors=True)
    for name in (GEOMETRY_RESTART, *WFN_RESTARTS, "cp2k-BFGS.Hessian"):
        (calc_dir / name).unlink(missing_ok=True)


def _save_state(calc_dir: Path, state: dict[str, Any]) -> None:
    path = calc_dir / RESTART_DIR / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1))
    tmp.replace(path)  # atomic: a kill never leaves a half-written state


def _check_not_running(calc_dir: Path, state: dict[str, Any]) -> None:
    """Refuse to start while another process on this host still runs this calculation.

    A snakemake process killed hard leaves its CP2K child running; a second CP2K in the
    same folder would overwrite the first one's files.
    """
    owner = state.get("owner") or {}
    pid = owner.get("pid")
    if not pid or owner.get("host") != socket.gethostname() or pid == os.getpid():
        return
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, PermissionError):
        return
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.is_file() and b"python" not in cmdline.read_bytes():
        return  # pid reused by an unrelated program
    raise EngineError(
        f"{calc_dir}: still being run by process {pid} on this host; stop it or wait "
        "(a hard-killed snakemake leaves its DFT jobs running)"
    )


def _snapshot(calc_dir: Path) -> dict[str, str]:
    """Copy CP2K's latest restart files into restart/ (atomically) and list what is there."""
    rdir = calc_dir / RESTART_DIR
    saved: dict[str, str] = {}
    for name in (GEOMETRY_RESTART, *WFN_RESTARTS):
        src = calc_dir / name
        if src.is_file() and src.stat().st_size > 0:
            # A restart file written while CP2K was killed may be incomplete; a geometry
            # restart must at least hold a full &COORD section to be usable.
            if name == GEOMETRY_RESTART and "&END COORD" not in src.read_text(errors="replace"):
                continue
            tmp = rdir / (name + ".tmp")
            shutil.copyfile(src, tmp)
            tmp.replace(rdir / name)
    for name in (GEOMETRY_RESTART, *WFN_RESTARTS):
        if (rdir / name).is_file():
            saved["geometry" if name == GEOMETRY_RESTART else "wavefunction"] = name
    return saved


# --------------------------------------------------------------------------- input


def _set_keyword(text: str, keyword: str, value: str) -> str:
    pattern = re.compile(rf"^(\s*){keyword}\s+\S+\s*$", re.M)
    if not pattern.search(text):
        raise EngineError(f"generated CP2K input has no {keyword} line to change")
    return pattern.sub(lambda m: f"{m.group(1)}{keyword} {value}", text)


def _keyword_value(text: str, keyword: str) -> str | None:
    match = re.search(rf"^\s*{keyword}\s+(\S+)\s*$", text, re.M)
    return match.group(1) if match else None


def attempt_input(pristine: str, rung: int, saved: dict[str, str], relaxation: bool) -> str:
    """The CP2K input of one attempt: the pristine input, resumed state and a ladder rung.

    Args:
        pristine: the input as the inputs rule wrote it.
        rung: index into :data:`LADDER`.
        saved: restart files available in restart/ (keys "geometry", "wavefunction").
        relaxation: True for geometry/cell optimisations (the geometry is resumed).
    """
    text = pristine
    # The inputs rule may have pointed at a restart file of its own; this module decides.
    text = re.sub(r"^\s*WFN_RESTART_FILE_NAME .*\n", "", text, flags=re.M)
    step = LADDER[rung]
    if rung > 0:
        alpha = float(_keyword_value(text, "ALPHA") or 0.3)
        kelvin = float(_keyword_value(text, "ELECTRONIC_TEMPERATURE") or 300.0)
        max_scf = int(_keyword_value(text, "MAX_SCF") or 100)
        text = _set_keyword(text, "ALPHA", f"{max(0.02, alpha * step.mixing_alpha_factor):g}")
        text = _set_keyword(
            text,
            "ELECTRONIC_TEMPERATURE",
            f"{min(MAX_SMEARING_K, kelvin * step.smearing_factor):g}",
        )
        text = _set_keyword(text, "MAX_SCF", str(max(max_scf, step.min_max_scf)))
    wfn = saved.get("wavefunction")
    if wfn:
        text = _set_keyword(text, "SCF_GUESS", "RESTART")
        # WFN_RESTART_FILE_NAME belongs to &DFT; put it right after the CHARGE keyword.
        text = re.sub(
            r"^(\s*)(CHARGE\s+-?\d+)\s*$",
            lambda m: (
                f"{m.group(1)}{m.group(2)}\n{m.group(1)}WFN_RESTART_FILE_NAME {RESTART_DIR}/{wfn}"
            ),
            text,
            count=1,
            flags=re.M,
        )
    if relaxation and saved.get("geometry"):
        # CP2K's own mechanism: positions and cell from the restart file. Step counters
        # are not restarted, so a resumed optimisation gets the full MAX_ITER again (a
        # run that stopped at MAX_ITER would otherwise stop again at once).
        ext = (
            "&EXT_RESTART\n"
            f"  RESTART_FILE_NAME {RESTART_DIR}/{saved['geometry']}\n"
            "  RESTART_DEFAULT F\n"
            "  RESTART_POS T\n"
            "  RESTART_CELL T\n"
            "  RESTART_COUNTERS F\n"
            "&END EXT_RESTART\n"
        )
        text = ext + text
    return text


# --------------------------------------------------------------------------- running


def run_with_recovery(
    calc_dir: str | Path,
    run_once: Callable[[], CalcRecord],
    max_rung: int = MAX_RUNG,
) -> CalcRecord:
    """Run a calculation, resuming saved state and climbing the SCF ladder when needed.

    Args:
        calc_dir: the calculation folder (holds the pristine ``cp2k.inp``).
        run_once: runs the engine once in ``calc_dir`` and returns the parsed record
            (convergence not yet checked); raises EngineError when the run itself fails.
        max_rung: highest ladder rung to try (0 = no retries).

    Returns the converged record, with ``extra["recovery"]`` describing the rung used and
    whether state was resumed. Raises :class:`PermanentFailureError` when the last allowed rung
    also ends unconverged, and EngineError (after saving restart state) when a run fails.
    """
    calc_dir = Path(calc_dir)
    max_rung = max(0, min(MAX_RUNG, int(max_rung)))
    state = _load_state(calc_dir)
    _check_not_running(calc_dir, state)
    pristine = (calc_dir / RESTART_DIR / PRISTINE_INPUT).read_text()
    relaxation = bool(re.search(r"RUN_TYPE\s+(GEO_OPT|CELL_OPT)", pristine))
    last: CalcRecord | None = None
    while True:
        rung = int(state.get("rung", 0))
        if rung > max_rung:
            results = [a["result"] for a in state["attempts"]] or ["?"]
            raise PermanentFailureError(
                f"{results[-1]} on ladder rungs 0-{max_rung} ({len(results)} attempts)",
                last,
            )
        saved = _snapshot(calc_dir)
        # CP2K appends to an existing output file: keep each attempt's output apart, so the
        # parser sees only this attempt (and an earlier "SCF run NOT converged" or a killed
        # run's truncated text cannot leak into it).
        old_out = calc_dir / OUTPUT_NAME
        if old_out.is_file():
            old_out.replace(calc_dir / RESTART_DIR / f"attempt-{len(state['attempts'])}.out")
        text = attempt_input(pristine, rung, saved, relaxation)
        inp = calc_dir / INPUT_NAME
        inp.write_text(text)
        state["generated_sha"] = _sha(inp)
        state["owner"] = {"pid": os.getpid(), "host": socket.gethostname()}
        attempt = {
            "rung": rung,
            "resumed": sorted(saved),
            "started": _now(),
            "result": "running (killed if it stays so)",
        }
        state["attempts"].append(attempt)
        _save_state(calc_dir, state)
        if saved:
            log.info("%s: resuming from saved %s (rung %d)", calc_dir, ", ".join(saved), rung)
        try:
            with _terminate_as_error():
                record = run_once()
        except EngineError as err:
            attempt["result"] = f"failed: {one_line(err)}"
            state["owner"] = None
            _snapshot(calc_dir)
            _save_state(calc_dir, state)
            raise
        _snapshot(calc_dir)
        state["owner"] = None
        if record.converged:
            attempt["result"] = "converged"
            _save_state(calc_dir, state)
            record.extra["recovery"] = {
                "rung": rung,
                "rung_note": LADDER[rung].note,
                "resumed_from": sorted(saved),
                "attempts": len(state["attempts"]),
                "scf": {
                    k: _keyword_value(text, k)
                    for k in ("ALPHA", "ELECTRONIC_TEMPERATURE", "MAX_SCF")
                },
            }
            return record
        last = record
        what = "SCF" if not record.scf_converged else "geometry optimisation"
        attempt["result"] = f"{what} not converged"
        state["rung"] = rung + 1
        _save_state(calc_dir, state)
        if rung + 1 <= max_rung:
            log.warning(
                "%s: %s not converged on rung %d; retrying with: %s",
                calc_dir,
                what,
                rung,
                LADDER[rung + 1].note,
            )


class TerminatedError(EngineError):
    """SIGTERM arrived (Snakemake cancelling the job, scancel, a walltime warning)."""


@contextlib.contextmanager
def _terminate_as_error() -> Iterator[None]:
    """Turn SIGTERM into an exception while the engine runs.

    subprocess.run kills its child when an exception interrupts it, so a cancelled job
    takes its CP2K (or mpirun) with it instead of leaving it writing into the folder that
    the next attempt will use; the restart state is saved on the way out.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):  # noqa: ARG001 (signal handler signature)
        raise TerminatedError(f"terminated by signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def current_rung(calc_dir: str | Path) -> int:
    """Ladder rung the next attempt in ``calc_dir`` would use (0 without saved state)."""
    path = Path(calc_dir) / RESTART_DIR / STATE_FILE
    if not path.is_file():
        return 0
    return int(json.loads(path.read_text()).get("rung", 0))


# --------------------------------------------------------------------------- the rule's step


def is_defect_calc(calc_dir: Path) -> bool:
    """Defect calculations can fail alone: the tables mark them instead of stopping."""
    return (calc_dir / "defect.json").is_file()


def finish(
    config: Any, calc_dir: Path, run_once: Callable[[], CalcRecord], record_name: str
) -> CalcRecord:
    """Run with recovery, then write the record, and keep failures.csv up to date.

    A converged run writes ``record_name``. A run that fails for good (the last ladder
    rung ended unconverged) is listed in failures.csv; for a *defect* it also writes a
    failure record (``extra["failure"]``, energy NaN, convergence flags False), so the
    study goes on and the tables show the row as "failed: <reason>"; anything that
    downstream needs converged refuses it (``CalcRecord.require_converged``). Host, bulk
    and competing-phase failures, and runs that crash or are killed, fail the job.
    """
    import math

    study_dir = study_dir_of(calc_dir)
    calc = (
        str(calc_dir.relative_to(study_dir))
        if calc_dir.is_relative_to(study_dir)
        else str(calc_dir)
    )
    record_path = calc_dir / record_name
    try:
        record = run_with_recovery(calc_dir, run_once, max_rung=config.get("scf_retries", MAX_RUNG))
        record.require_converged()
        if not math.isfinite(record.energy):
            raise EngineError(f"{calc_dir}: energy is not finite ({record.energy})")
    except PermanentFailureError as err:
        record_failure(study_dir, calc, str(err), current_rung(calc_dir) - 1)
        if not is_defect_calc(calc_dir) or err.record is None:
            raise
        failed = err.record
        failed.energy = math.nan
        failed.scf_converged = False
        failed.extra["failure"] = one_line(err)
        failed.to_json(record_path)
        log.error("%s: failed for good, recorded as failed: %s", calc_dir, one_line(err))
        return failed
    except Exception as err:
        record_failure(study_dir, calc, f"{type(err).__name__}: {one_line(err)}")
        raise
    record.to_json(record_path)
    clear_failure(study_dir, calc)
    log.info(
        "%s: E = %.6f eV (%s %s)", calc_dir, record.energy, record.engine, record.engine_version
    )
    return record


def finish_without_recovery(
    config: Any, calc_dir: Path, run_once: Callable[[], CalcRecord], record_name: str
) -> CalcRecord:
    """Run once and write the record only for a converged result (engines without resume).

    Engines whose inputs this module cannot edit (VASP, the test-only replay engine) get no
    ladder or resume, but their failures are listed in failures.csv all the same.
    """
    import math

    calc_dir = Path(calc_dir)
    study_dir = study_dir_of(calc_dir)
    calc = (
        str(calc_dir.relative_to(study_dir))
        if calc_dir.is_relative_to(study_dir)
        else str(calc_dir)
    )
    try:
        record = run_once()
        record.require_converged()
        if not math.isfinite(record.energy):
            raise EngineError(f"{calc_dir}: energy is not finite ({record.energy})")
    except Exception as err:
        record_failure(study_dir, calc, f"{type(err).__name__}: {one_line(err)}")
        raise
    record.to_json(calc_dir / record_name)
    clear_failure(study_dir, calc)
    log.info(
        "%s: E = %.6f eV (%s %s)", calc_dir, record.energy, record.engine, record.engine_version
    )
    return record
