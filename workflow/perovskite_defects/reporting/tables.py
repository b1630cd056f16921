"""Study tables as CSV and GitHub Markdown, written from rows (column -> value).

The rows themselves are built in :mod:`perovskite_defects.thermodynamics.rows`. A value of
``None`` is an empty cell. Only the standard-library ``csv`` module is used.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from perovskite_defects.thermodynamics.rows import CHARGE, Row


def _columns(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None) -> list[str]:
    if columns is not None:
        return list(columns)
    if not rows:
        raise ValueError("no rows and no columns given: nothing to write")
    found: dict[str, None] = {}
    for row in rows:
        found.update(dict.fromkeys(row))
    return list(found)


def write_csv(
    rows: Sequence[Mapping[str, Any]], path: str | Path, columns: Sequence[str] | None = None
) -> None:
    """Write rows as CSV: full-precision numbers (repr), empty cells for None."""
    cols = _columns(rows, columns)
    with Path(path).open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(cols)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else _csv_cell(row.get(c)) for c in cols])


def _csv_cell(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)  # shortest string that reads back to the same float
    return str(value)


_INT = re.compile(r"^[+-]?\d+$")


def read_csv(path: str | Path) -> list[Row]:
    """Read a CSV written by :func:`write_csv`, restoring types.

    Empty cells become None, "True"/"False" become booleans, integers and floats become
    numbers; everything else (names, "+1/0", "missing") stays a string.
    """
    with Path(path).open(newline="") as handle:
        return [{k: _parse_cell(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def _parse_cell(text: str) -> Any:
    if text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    if _INT.match(text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


def write_markdown(
    rows: Sequence[Mapping[str, Any]],
    path: str | Path,
    title: str,
    notes: str | Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
) -> None:
    """Write a GitHub Markdown table with a title, and provenance notes under it.

    Floats are shown with 3 decimals, charges with an explicit sign, None as an empty cell.
    """
    cols = _columns(rows, columns)
    lines = [f"## {title}", ""]
    lines.append("| " + " | ".join(_md_escape(c) for c in cols) + " |")
    lines.append("|" + "|".join("---" for _ in cols) + "|")
    for row in rows:
        cells = [_md_escape(_md_cell(c, row.get(c))) for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    if notes:
        note_list = [notes] if isinstance(notes, str) else list(notes)
        lines += ["", "Notes:", ""]
        lines += [f"- {n}" for n in note_list]
    Path(path).write_text("\n".join(lines) + "\n")


def _md_cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if column == CHARGE and isinstance(value, int):
        return f"{value:+d}" if value else "0"
    if isinstance(value, float) and "cm^-3" in column:
        return f"{value:.3e}"  # concentrations span many decades
    if isinstance(value, float):
        text = f"{value:.3f}"
        return "0.000" if text == "-0.000" else text  # no "-0.000" from rounding
    return str(value)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")
