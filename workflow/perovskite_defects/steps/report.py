"""Steps of workflow/rules/report.smk: the findings page of a finished study.

Reads what the tables and plots rules wrote (per host: the tables, ``provenance.json`` and
``chemical_potentials.json``; across hosts: ``tables/provenance.json`` and
``tables/dopant_effect.csv``) and writes ``findings.md`` and ``findings.html`` beside them
(:mod:`perovskite_defects.reporting.findings` writes the text).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from perovskite_defects.reporting.cited import JsonFile, Table
from perovskite_defects.reporting.findings import (
    HostInput,
    StudyInput,
    findings_html,
    findings_markdown,
)
from perovskite_defects.reporting.tables import read_csv

log = logging.getLogger("perovskite_defects")

# Columns that name a row of each table for the reader of the page.
KEYS = {
    "formation_energies": ("defect", "charge"),
    "transition_levels": ("defect", "q/q'"),
    "fermi_level": ("limit",),
    "concentrations": ("limit", "defect", "charge"),
    "dopant_effect": ("limit",),
}


def _table(results_dir: Path, relative: str, keys: tuple[str, ...]) -> Table:
    path = results_dir / relative
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (the findings page reads it)")
    return Table(relative, read_csv(path), keys)


def _json(results_dir: Path, relative: str) -> JsonFile:
    path = results_dir / relative
    try:
        data: Any = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: missing (the findings page reads it)") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    return JsonFile(relative, data)


def read_host(results_dir: Path, name: str, figures: Sequence[str] = ()) -> HostInput:
    """The files of host ``name`` under ``results_dir``; ``figures``: plot paths relative to
    ``results_dir`` (its formation-energy diagrams are picked by name)."""
    tables = {t: _table(results_dir, f"{name}/tables/{t}.csv", k) for t, k in KEYS.items()}
    prefix = f"formation_energy_{name}_"  # host names hold no "_" (wildcard constraint)
    own = [
        (Path(f).stem[len(prefix) :], f)
        for f in figures
        if Path(f).name.startswith(prefix) and f.endswith(".png")
    ]
    # in the order of the limits (the formation-energy columns E_f[<limit>] (eV))
    fe_rows = tables["formation_energies"].rows
    limits = [c[len("E_f[") : -len("] (eV)")] for c in (fe_rows[0] if fe_rows else {})]
    own.sort(key=lambda fig: limits.index(fig[0]) if fig[0] in limits else len(limits))
    return HostInput(
        name=name,
        formation=tables["formation_energies"],
        levels=tables["transition_levels"],
        fermi=tables["fermi_level"],
        concentrations=tables["concentrations"],
        dopant_effect=tables["dopant_effect"],
        provenance=_json(results_dir, f"{name}/tables/provenance.json"),
        chemical_potentials=_json(results_dir, f"{name}/chemical_potentials.json"),
        figures=tuple(own),
    )


def read_study(results_dir: str | Path, figures: Sequence[str | Path] = ()) -> StudyInput:
    """Everything the findings page reads from a finished study folder.

    Args:
        results_dir: ``results/<study>``.
        figures: plot files (absolute, or relative to the working directory or to
            ``results_dir``); PNGs are linked, in the order given.
    """
    results_dir = Path(results_dir)
    relative = [_relative(Path(f), results_dir) for f in figures]
    provenance = _json(results_dir, "tables/provenance.json")
    names = list(provenance.data.get("hosts") or {})
    if not names:
        raise ValueError(f"{results_dir / provenance.path}: no hosts listed under 'hosts'")
    return StudyInput(
        study=str((provenance.data.get("config") or {}).get("study", results_dir.name)),
        hosts=tuple(read_host(results_dir, name, relative) for name in names),
        provenance=provenance,
        dopant_effect=_table(results_dir, "tables/dopant_effect.csv", ("host", "limit")),
        figures=tuple(f for f in relative if Path(f).name == "trap_levels.png"),
    )


def _relative(path: Path, results_dir: Path) -> str:
    for base in (results_dir, results_dir.resolve()):
        try:
            return str(path.relative_to(base))
        except ValueError:
            pass
    try:
        return str(path.resolve().relative_to(results_dir.resolve()))
    except ValueError:
        return str(path)  # outside the study folder: as given


def findings(
    results_dir: str | Path,
    out_md: str | Path,
    out_html: str | Path,
    figures: Sequence[str | Path] = (),
) -> None:
    """Write ``findings.md`` and ``findings.html`` of the study in ``results_dir``."""
    study = read_study(results_dir, figures)
    Path(out_md).write_text(findings_markdown(study))
    Path(out_html).write_text(findings_html(study))
    log.info("findings of %s (%d hosts): %s, %s", study.study, len(study.hosts), out_md, out_html)
