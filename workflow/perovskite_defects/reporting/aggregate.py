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

from perovskite_defects.reporting.tables import read_csv, write_csv, write_markdown
from perovskite_defects.thermodynamics.concentrations import DOPANT_EFFECT_COLUMNS
from perovskite_defects.thermodynamics.formation import transition_levels

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
            tables folder), "manifest" (its manifest.json)}.
        temperature: Boltzmann temperature (K) of the class averages.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fe_all: list[dict[str, Any]] = []
    tl_all: list[dict[str, Any]] = []
    fermi_all: list[dict[str, Any]] = []
    conc_all: list[dict[str, Any]] = []
    dopant_all: list[dict[str, Any]] = []
    avg_all: list[dict[str, Any]] = []
    class_tl: list[dict[str, Any]] = []
    for host in hosts:
        comp = host["composition"]
        head = (
            {"host": host["name"], "formula": comp["formula"]}  # framework any
            if "formula" in comp
            else {
                "host": host["name"],
                "A": comp["A"],
                "X": "+".join(
                    f"{h}{f:g}" if len(comp["X"]) > 1 else h for h, f in comp["X"].items()
                ),
                "x": comp["x"],
            }
        )
        manifest = {e["id"]: e for e in json.loads(Path(host["manifest"]).read_text())}
        provenance = json.loads((Path(host["tables"]) / "provenance.json").read_text())
        gap = float(provenance["band_gap"])
        fe = read_csv(Path(host["tables"]) / "formation_energies.csv")
        limits = [c for c in fe[0] if c.startswith("E_f[")] if fe else []
        for row in fe:
            entry = manifest[row["defect"]]
            fe_all.append(
                head
                | {
                    "defect type": entry["defect"],
                    "site class": entry["site_class"],
                    "multiplicity": entry["multiplicity"],
                }
                | row
            )
        for row in read_csv(Path(host["tables"]) / "transition_levels.csv"):
            entry = manifest[row["defect"]]
            tl_all.append(
                head | {"defect type": entry["defect"], "site class": entry["site_class"]} | row
            )
        # Fermi level and concentrations of each host as they are (per limit; defect rows
        # keep the host's defect ids, whose types and classes the manifest gives).
        fermi_file = Path(host["tables"]) / "fermi_level.csv"
        if fermi_file.is_file():
            fermi_all += [head | row for row in read_csv(fermi_file)]
        conc_file = Path(host["tables"]) / "concentrations.csv"
        if conc_file.is_file():
            for row in read_csv(conc_file):
                entry = manifest.get(str(row.get("defect")), {})
                conc_all.append(
                    head
                    | {
                        "defect type": entry.get("defect", ""),
                        "site class": entry.get("site_class", ""),
                    }
                    | row
                )
        dopant_file = Path(host["tables"]) / "dopant_effect.csv"
        if dopant_file.is_file():
            dopant_all += [head | row for row in read_csv(dopant_file)]
        groups: dict[tuple[str, str], dict[int, dict[str, list[float]]]] = {}
        for row in fe:
            if row.get("converged") is not True:
                continue
            entry = manifest[row["defect"]]
            key = (entry["defect"], entry["site_class"])
            by_charge = groups.setdefault(key, {}).setdefault(int(row["charge"]), {})
            for col in limits:
                by_charge.setdefault(col, []).append(float(row[col]))
        for (defect, cls), charges in groups.items():
            for q, cols in sorted(charges.items(), reverse=True):
                for col, values in cols.items():
                    avg_all.append(
                        head
                        | {
                            "defect type": defect,
                            "site class": cls,
                            "charge": q,
                            "limit": col[len("E_f[") : -len("] (eV)")],
                            "representatives": len(values),
                            "E_f Boltzmann (eV)": boltzmann_average(values, temperature),
                            "E_f min (eV)": min(values),
                            "E_f max (eV)": max(values),
                        }
                    )
            # Transition levels of the class from its averaged lines (limit-independent).
            first = limits[0] if limits else None
            if first:
                lines = {
                    q: boltzmann_average(cols[first], temperature)
                    for q, cols in charges.items()
                    if first in cols
                }
                levels = transition_levels(lines, gap) if lines else []
                for lev in levels or []:
                    class_tl.append(
                        head
                        | {
                            "defect type": defect,
                            "site class": cls,
                            "q/q'": lev.label,
                            "level above VBM (eV)": lev.level,
                            "depth below CBM (eV)": lev.depth,
                        }
                    )
    notes = [
        f"Class averages: Boltzmann-weighted over the representatives at {temperature:g} K, "
        "with min and max; E_F at the VBM of each host.",
        "x and X are the compositions achieved in each supercell (see structures/host.json).",
    ]
    tables = {
        "formation_energies": fe_all,
        "transition_levels": tl_all,
        "fermi_level": fermi_all,
        "concentrations": conc_all,
        "dopant_effect": dopant_all,
        "class_averages": avg_all,
        "class_transition_levels": class_tl,
    }
    titles = {
        "formation_energies": "Defect formation energies at E_F = VBM, all compositions",
        "transition_levels": "Charge-transition levels, all compositions",
        "fermi_level": "Self-consistent Fermi level, all compositions",
        "concentrations": "Defect concentrations, all compositions",
        "dopant_effect": "Fermi level and deep traps without and with dopants, all compositions",
        "class_averages": "Site-class averages of formation energies",
        "class_transition_levels": "Charge-transition levels of the class-averaged energies",
    }
    for name, rows in tables.items():
        empty = ["host", *DOPANT_EFFECT_COLUMNS] if name == "dopant_effect" else None
        columns = None if rows else (empty or ["host", "defect type", "site class"])
        write_csv(rows, out_dir / f"{name}.csv", columns)
        write_markdown(rows, out_dir / f"{name}.md", titles[name], notes, columns)
    return tables
