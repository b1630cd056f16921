"""Tables across the compositions of a sweep, and configurational averages over site classes.

An alloy site class (e.g. V_I between a Pb and a Sn) is computed at a few representative
sites; its formation energy in the table is the Boltzmann-weighted average over them at
the configured temperature,
``<E> = sum_i E_i exp(-E_i / kT) / sum_i exp(-E_i / kT)``
(each representative stands for an equal share of the class), with the min and max.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from perovskite_defects.reporting.tables import write_csv, write_markdown
from perovskite_defects.thermodynamics.concentrations import DOPANT_EFFECT_COLUMNS
from perovskite_defects.thermodynamics.formation import transition_levels
from perovskite_defects.thermodynamics.host_results import HOST_RESULTS_JSON, HostResults
from perovskite_defects.thermodynamics.rows import DEFECT

K_B = 8.617333262e-5  # eV/K


def boltzmann_average(energies: Sequence[float], temperature: float) -> float:
    """Boltzmann-weighted mean of ``energies`` (eV) at ``temperature`` (K)."""
    if not energies:
        raise ValueError("no energies to average")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    e0 = min(energies)
    weights = [math.exp(-(e - e0) / (K_B * temperature)) for e in energies]
    return sum(w * e for w, e in zip(weights, energies, strict=True)) / sum(weights)


def aggregate(
    hosts: Sequence[Mapping[str, Any]], temperature: float, out_dir: str | Path
) -> dict[str, list[dict[str, Any]]]:
    """Write formation_energies, transition_levels, fermi_level, concentrations and
    dopant_effect (when the hosts have them), class_averages and class_transition_levels
    (CSV + Markdown).

    Args:
        hosts: per host {"name", "composition" (requested/achieved dict), "tables" (its
            tables folder, holding host_results.json), "manifest" (its manifest.json)}.
        temperature: Boltzmann temperature (K) of the class averages.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tables: dict[str, list[dict[str, Any]]] = {name: [] for name in TITLES}
    for host in hosts:
        res = HostResults.from_json(Path(host["tables"]) / HOST_RESULTS_JSON)
        manifest = {e["id"]: e for e in json.loads(Path(host["manifest"]).read_text())}
        for name, rows in _host_rows(_head(host), res, manifest, temperature).items():
            tables[name] += rows
    notes = [
        f"Class averages: Boltzmann-weighted over the representatives at {temperature:g} K, "
        "with min and max; E_F at the VBM of each host.",
        "x and X are the compositions achieved in each supercell (see structures/host.json).",
    ]
    for name, rows in tables.items():
        empty = ["host", *DOPANT_EFFECT_COLUMNS] if name == "dopant_effect" else None
        columns = None if rows else (empty or ["host", "defect type", "site class"])
        write_csv(rows, out_dir / f"{name}.csv", columns)
        write_markdown(rows, out_dir / f"{name}.md", TITLES[name], notes, columns)
    return tables


def _head(host: Mapping[str, Any]) -> dict[str, Any]:
    """The leading columns of a host's rows: its name and composition."""
    comp = host["composition"]
    if "formula" in comp:  # framework any
        return {"host": host["name"], "formula": comp["formula"]}
    x_sites = "+".join(f"{h}{f:g}" if len(comp["X"]) > 1 else h for h, f in comp["X"].items())
    return {"host": host["name"], "A": comp["A"], "X": x_sites, "x": comp["x"]}


def _host_rows(
    head: dict[str, Any],
    res: HostResults,
    manifest: Mapping[str, Mapping[str, Any]],
    temperature: float,
) -> dict[str, list[dict[str, Any]]]:
    """One host's rows of every aggregated table; defect rows keep the host's defect ids,
    whose types and site classes the manifest gives."""

    def kind(defect_id: str) -> dict[str, Any]:
        entry = manifest.get(defect_id, {})
        return {"defect type": entry.get("defect", ""), "site class": entry.get("site_class", "")}

    rows: dict[str, list[dict[str, Any]]] = {
        "formation_energies": [
            head | kind(row[DEFECT]) | {"multiplicity": manifest[row[DEFECT]]["multiplicity"]} | row
            for row in res.formation_rows
        ],
        "transition_levels": [head | kind(row[DEFECT]) | row for row in res.level_rows],
        "fermi_level": [head | row for row in res.fermi_rows()],
        "concentrations": [head | kind(str(row[DEFECT])) | row for row in res.concentration_rows()],
        "dopant_effect": [head | row for row in res.dopant_effect_rows()],
    }
    averages, levels = _class_rows(res, manifest, temperature)
    rows["class_averages"] = [head | row for row in averages]
    rows["class_transition_levels"] = [head | row for row in levels]
    return rows


def _class_rows(
    res: HostResults, manifest: Mapping[str, Mapping[str, Any]], temperature: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Boltzmann averages over the representatives of each site class (converged charge
    states), per charge and limit, and the transition levels of the averaged lines."""
    groups: dict[tuple[str, str], dict[int, dict[str, list[float]]]] = {}
    for entry in res.entries:
        if not entry.converged:
            continue
        site = manifest[entry.name]
        by_charge = groups.setdefault((site["defect"], site["site_class"]), {})
        by_limit = by_charge.setdefault(entry.charge, {})
        for limit in res.limit_names:
            value = entry.formation_energies[limit]
            if value is None:  # never for a converged entry
                raise ValueError(f"{entry.name} q={entry.charge}: no formation energy at {limit}")
            by_limit.setdefault(limit, []).append(float(value))
    averages: list[dict[str, Any]] = []
    levels: list[dict[str, Any]] = []
    for (defect, cls), charges in groups.items():
        kind = {"defect type": defect, "site class": cls}
        for q, by_limit in sorted(charges.items(), reverse=True):
            for limit, values in by_limit.items():
                averages.append(
                    kind
                    | {
                        "charge": q,
                        "limit": limit,
                        "representatives": len(values),
                        "E_f Boltzmann (eV)": boltzmann_average(values, temperature),
                        "E_f min (eV)": min(values),
                        "E_f max (eV)": max(values),
                    }
                )
        # Levels do not depend on the limit: those of the averaged lines at the first one.
        first = res.limit_names[0]
        lines = {
            q: boltzmann_average(by_limit[first], temperature) for q, by_limit in charges.items()
        }
        for lev in transition_levels(lines, res.band_edges.gap) or []:
            levels.append(
                kind
                | {
                    "q/q'": lev.label,
                    "level above VBM (eV)": lev.level,
                    "depth below CBM (eV)": lev.depth,
                }
            )
    return averages, levels


TITLES = {
    "formation_energies": "Defect formation energies at E_F = VBM, all compositions",
    "transition_levels": "Charge-transition levels, all compositions",
    "fermi_level": "Self-consistent Fermi level, all compositions",
    "concentrations": "Defect concentrations, all compositions",
    "dopant_effect": "Fermi level and deep traps without and with dopants, all compositions",
    "class_averages": "Site-class averages of formation energies",
    "class_transition_levels": "Charge-transition levels of the class-averaged energies",
}
