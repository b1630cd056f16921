"""Local environment of each defect cell: geometry and carrier localisation, and its table.

Per defect and charge state (``local_environment.json`` beside ``correction.json``): the
local geometry against the bulk (:mod:`.local_geometry`) and the per-atom charges and
spins against the bulk with a localisation verdict (:mod:`.carrier_localisation`). Per
host: ``tables/local_environment.{csv,md}``, one row per defect and charge state.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from perovskite_defects.corrections.sites import matched_sites
from perovskite_defects.defects.carrier_localisation import carrier_localisation
from perovskite_defects.defects.local_geometry import local_geometry
from perovskite_defects.engines.atomic_populations import (
    HIRSHFELD,
    MULLIKEN,
    VASP_SPHERES,
    AtomicPopulations,
    parse_cp2k_populations,
    parse_vasp_populations,
    record_populations,
)
from perovskite_defects.engines.base import CalcRecord, EngineError
from perovskite_defects.reporting.tables import write_csv, write_markdown

log = logging.getLogger("perovskite_defects")

FILE_NAME = "local_environment.json"
#: Analyses in order of preference for the verdict: Mulliken (CP2K) gives spins to 1e-6,
#: Hirshfeld (CP2K) only to 1e-3; VASP's spheres are the only per-atom moments VASP prints.
PREFERRED = (MULLIKEN, VASP_SPHERES, HIRSHFELD)


def populations(record: CalcRecord, folder: str | Path) -> dict[str, AtomicPopulations]:
    """The record's per-atom analyses; for records written before the parsers kept them,
    read again from the engine output in ``folder`` (cp2k.out or OUTCAR, maybe gzipped)."""
    found = record_populations(record.extra)
    if found:
        return found
    import gzip

    names = {"cp2k": ("cp2k.out", "cp2k.out.gz"), "vasp": ("OUTCAR", "OUTCAR.gz")}
    for name in names.get(record.engine, ()):
        path = Path(folder) / name
        if path.is_file():
            opener = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rt", errors="replace") as handle:
                text = handle.read()
            if record.engine == "cp2k":
                return parse_cp2k_populations(text)
            elements = [s["species"][0]["element"] for s in record.structure["sites"]]
            found = parse_vasp_populations(text)
            for pops in found.values():
                pops.elements = elements
            return found
    return {}


def analyse(
    bulk: CalcRecord,
    defect: CalcRecord,
    bulk_dir: str | Path,
    defect_dir: str | Path,
    interstitial_site: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Geometry and localisation of one defect cell as a JSON-ready dict (Å, e, Bohr
    magnetons). ``interstitial_site``: the generator's ideal site (fractional)."""

    bulk_s, defect_s = bulk.pmg_structure(), defect.pmg_structure()
    ideal = None if interstitial_site is None else np.asarray(interstitial_site, dtype=float)
    geometry = local_geometry(bulk_s, defect_s, ideal)
    result: dict[str, Any] = {"geometry": geometry.to_dict(), "localisation": {}}
    if geometry.defect_index is not None:
        centre = np.asarray(defect_s.frac_coords[geometry.defect_index])
    else:
        centre = np.asarray(geometry.centre_frac)
    defect_pops = populations(defect, defect_dir)
    bulk_pops = populations(bulk, bulk_dir)
    methods = [m for m in PREFERRED if m in defect_pops and m in bulk_pops]
    to_bulk = matched_sites(bulk_s, defect_s)
    for method in methods:
        verdict = carrier_localisation(
            defect_pops[method], bulk_pops[method], to_bulk, defect_s, centre, bulk_s
        )
        result["localisation"][method] = verdict.to_dict()
    result["verdict_method"] = methods[0] if methods else None
    if not methods:
        result["localisation_reason"] = (
            "no per-atom population analysis in both the bulk and the defect output"
        )
    return result


def write_local_environment(
    bulk_dir: str | Path,
    defect_dir: str | Path,
    out_json: str | Path,
    name: str,
    kind: str,
    site: Sequence[float],
) -> dict[str, Any]:
    """``local_environment.json`` of one defect cell (``name``, ``kind`` and ``site`` from
    its defect.json). Never fails a converged defect: what cannot be analysed is written
    as a reason, and logged."""
    bulk_dir, defect_dir = Path(bulk_dir), Path(defect_dir)
    defect = CalcRecord.from_json(defect_dir / "record.json")
    result: dict[str, Any] = {"defect": name, "charge": defect.charge, "engine": defect.engine}
    if defect.extra.get("failure"):
        result["failure"] = defect.extra["failure"]
    else:
        try:
            bulk = CalcRecord.from_json(bulk_dir / "record.json")
            site_arg = site if kind == "interstitial" else None
            result.update(analyse(bulk, defect, bulk_dir, defect_dir, site_arg))
        except (EngineError, ValueError) as err:
            log.warning("%s: local environment not analysed: %s", defect_dir, err)
            result["reason"] = str(err)
    Path(out_json).write_text(json.dumps(result, indent=1))
    return result


# --------------------------------------------------------------------------- table

COLUMNS = (
    "defect",
    "charge",
    "key distance",
    "defect (Å)",
    "host (Å)",
    "off-centre (Å)",
    "largest other displacement (Å)",
    "B-X near defect (Å)",
    "B-X host average (Å)",
    "largest spin (μB)",
    "largest charge change (e)",
    "verdict",
)

NOTES = [
    "Distances pair every atom of the defect cell with the same atom of the relaxed bulk "
    "supercell by position (never by index); host = the same pair of atoms in the bulk. An "
    "unrelaxed defect has defect = host.",
    "Key distance: across a vacancy, the mean distance between its opposite first-shell "
    "atoms (B-B across V_X); otherwise the mean distance from the defect atom to its nearest "
    "first-shell element. Off-centre: the defect atom from its ideal site.",
    "B-X near defect: mean B-X bond of the B atoms in the first B shell around the defect "
    "(host: the same bonds in the bulk); B-X host average: all B-X bonds of the bulk.",
    "Spin and charge change per atom from the engine's population analysis (CP2K Mulliken, "
    "VASP LORBIT spheres), against the same bulk atom. Verdict thresholds (documented in "
    "perovskite_defects/defects/carrier_localisation.py): localised when one atom holds >= "
    "50 % of the total |spin|, a pair when two adjacent halides hold >= 60 %; without a "
    "moment the verdict comes from charge changes and is weaker.",
]


def local_environment_rows(defect_dirs: Sequence[str | Path]) -> list[dict[str, Any]]:
    """One table row per defect folder that has a local_environment.json."""
    rows = []
    for folder in map(Path, defect_dirs):
        path = folder / FILE_NAME
        if path.is_file():
            rows.append(_row(json.loads(path.read_text())))
    return rows


def _row(data: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"defect": data["defect"], "charge": data["charge"]}
    if "geometry" not in data:
        row["verdict"] = data.get("failure") or data.get("reason")
        return row
    geometry = data["geometry"]
    row.update(key_distance(geometry))
    row["off-centre (Å)"] = geometry["displacement"]
    if geometry["max_displaced"]:
        row["largest other displacement (Å)"] = geometry["max_displacement"]
    bonds = geometry["bonds"]
    row["B-X near defect (Å)"] = "; ".join(
        f"{b['pair']} {b['defect_mean']:.3f} (host {b['host_mean']:.3f})" for b in bonds
    )
    row["B-X host average (Å)"] = "; ".join(f"{b['pair']} {b['host_average']:.3f}" for b in bonds)
    method = data.get("verdict_method")
    if not method:
        row["verdict"] = data.get("localisation_reason")
        return row
    loc = data["localisation"][method]
    atoms = loc["atoms"]
    spins = [a for a in atoms if a["spin"] is not None]
    if spins and loc["basis"] == "spin":  # no moment: nothing to place
        top = max(spins, key=lambda a: abs(a["spin"]))
        row["largest spin (μB)"] = f"{top['element']} {top['index']} {top['spin']:+.3f}"
    charges = [a for a in atoms if a["charge_change"] is not None]
    if charges:
        top = max(charges, key=lambda a: abs(a["charge_change"]))
        row["largest charge change (e)"] = (
            f"{top['element']} {top['index']} {top['charge_change']:+.3f}"
        )
    row["verdict"] = f"{loc['label']} [{method}, {loc['basis']}]"
    return row


def geometry_summary(geometry: dict[str, Any]) -> str | None:
    """One line for other tables: the key distance against the host's (Å), and the
    defect atom's distance from its ideal site where it has one; None without a key
    distance. E.g. "Pb-Pb across V_I 6.952 (host 6.388)"."""
    key = key_distance(geometry)
    if not key:
        return None
    text = f"{key['key distance']} {key['defect (Å)']:.3f} (host {key['host (Å)']:.3f})"
    if geometry.get("displacement") is not None:
        text += f"; off-centre {geometry['displacement']:.3f}"
    return text


def key_distance(geometry: dict[str, Any]) -> dict[str, Any]:
    """The "key distance" columns of one cell's geometry (``LocalGeometry.to_dict()``):
    across a vacancy the mean distance between opposite first-shell atoms, otherwise the
    mean distance from the defect to its nearest first-shell element; {} when neither."""
    if geometry["across"]:
        pairs = geometry["across"]
        label = pairs[0]["label"] + (f" (mean of {len(pairs)})" if len(pairs) > 1 else "")
        return {
            "key distance": label,
            "defect (Å)": float(np.mean([p["defect"] for p in pairs])),
            "host (Å)": float(np.mean([p["host"] for p in pairs])),
        }
    shell = sorted(geometry["first_shell"], key=lambda s: s["host_mean"])
    if not shell:
        return {}
    centre = geometry["species"]
    prefix = f"V_{centre}" if geometry["kind"] == "vacancy" else centre
    return {
        "key distance": f"{prefix}-{shell[0]['element']} (x{shell[0]['count']})",
        "defect (Å)": shell[0]["defect_mean"],
        "host (Å)": shell[0]["host_mean"],
    }


def write_table(defect_dirs: Sequence[str | Path], out_dir: str | Path) -> None:
    """tables/local_environment.csv and .md of one host."""

    rows = local_environment_rows(defect_dirs)
    out_dir = Path(out_dir)
    write_csv(rows, out_dir / "local_environment.csv", columns=COLUMNS)
    title = "Local geometry and carrier localisation per defect cell"
    write_markdown(rows, out_dir / "local_environment.md", title, NOTES, columns=COLUMNS)
