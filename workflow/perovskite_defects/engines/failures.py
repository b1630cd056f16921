"""The failure log of a study: ``results/<study>/failures.csv`` (calc, rung, reason, time).

Every failed calculation gets a row; a later success of the same calculation removes it,
so the file always lists what is failed *now*. Jobs run in parallel, so every update
happens under a file lock. Split from :mod:`perovskite_defects.engines.recovery` (resume
and SCF ladder), which writes the rows from the run rule's step.
"""

from __future__ import annotations

import csv
import datetime as _dt
import fcntl
from collections.abc import Callable
from pathlib import Path

FAILURES_CSV = "failures.csv"
FAILURE_COLUMNS = ("calc", "rung", "reason", "time")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def one_line(err: BaseException | str) -> str:
    """First line of an error message (CSV cells and table cells hold one line)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _locked_rows(path: Path, update: Callable[[list[dict[str, str]]], list[dict[str, str]]]):
    """Read, update and rewrite failures.csv under an exclusive lock (jobs run in parallel)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows: list[dict[str, str]] = []
        if path.is_file():
            with path.open(newline="") as handle:
                rows = list(csv.DictReader(handle))
        rows = update(rows)
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=FAILURE_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        tmp.replace(path)


def record_failure(study_dir: str | Path, calc: str, reason: str, rung: int | None = None) -> None:
    """Add (or replace) the row of ``calc`` in ``<study_dir>/failures.csv``."""
    row = {"calc": calc, "rung": "" if rung is None else str(rung), "reason": one_line(reason)}
    row["time"] = _now()

    def update(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        return [r for r in rows if r.get("calc") != calc] + [row]

    _locked_rows(Path(study_dir) / FAILURES_CSV, update)


def clear_failure(study_dir: str | Path, calc: str) -> None:
    """Remove ``calc`` from failures.csv (it has now succeeded)."""
    path = Path(study_dir) / FAILURES_CSV
    if path.is_file():
        _locked_rows(path, lambda rows: [r for r in rows if r.get("calc") != calc])


def read_failures(study_dir: str | Path) -> dict[str, str]:
    """calc -> reason of every calculation currently listed in failures.csv."""
    path = Path(study_dir) / FAILURES_CSV
    if not path.is_file():
        return {}
    with path.open(newline="") as handle:
        return {row["calc"]: row["reason"] for row in csv.DictReader(handle)}


def study_dir_of(calc_dir: Path) -> Path:
    """``results/<study>`` for a calculation folder ``results/<study>/<calc...>``."""
    parts = calc_dir.parts
    if "results" in parts[:-1]:
        i = len(parts) - 1 - parts[::-1].index("results")
        if i + 1 < len(parts) - 1:
            return Path(*parts[: i + 2])
    return calc_dir.parent
