"""Steps of workflow/rules/search.smk: the ground-state search of each defect.

With config ``ground_state_search: screen|full`` every defect (manifest entry) and charge
state gets trial relaxations (:func:`prepare_trial`, one calc folder per trial under
``<host>/defects/<id>/search/q<q>/<label>/``, run by run_calculation like any other), a
summary per defect (:func:`summarise_search`: the energy-vs-distortion table and plot of
:mod:`perovskite_defects.thermodynamics.ground_state_search`), and production inputs that
start from the lowest trial when it is more than ``min_e_diff`` below the plain relaxation
(:func:`prepare_searched_defect`, which records the start in ``start.json``). Between
the two, one cross-charge round: the first round's new ground states (:func:`search_candidates`)
relaxed in the other charge states (:func:`prepare_cross_trial`).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from perovskite_defects.defects.distortions import (
    DefectCentre,
    distorted_neighbour_count,
    distortion_label,
    nominal_charge_of,
    trial_structures,
)
from perovskite_defects.engines.base import CalcRecord, CalcSpec
from perovskite_defects.reporting.tables import write_csv
from perovskite_defects.steps.calculations import OMITTED
from perovskite_defects.steps.common import DEFECT_CELL, RECORD, write_inputs, write_structure_files
from perovskite_defects.steps.defects import defect_cell, write_defect_inputs
from perovskite_defects.thermodynamics import ground_state_search as gss

log = logging.getLogger("perovskite_defects")

TRIAL = "trial.json"
START = "start.json"
SUMMARY = "summary"
IDEAL_START = "ideal site"
_TRIAL_PATH = re.compile(r"/q(-?\d+)/([^/]+)/" + re.escape(RECORD) + "$")


def search_labels(defect: str, charge: int, distortions: Sequence[float]) -> list[str]:
    """Trial labels of a defect (concrete name, e.g. V_I) in charge state ``charge``:
    "Unperturbed" (the plain relaxation) then one per bond distortion, or "Rattled" when
    no neighbour is distorted (N = 0). [] for a defect the method cannot place (complexes,
    species without an oxidation state in defects/names.py): see :func:`not_searched`."""

    if not_searched(defect) is not None:
        return []
    if distorted_neighbour_count(defect, charge) == 0:
        return [gss.UNPERTURBED, gss.RATTLED]
    return [gss.UNPERTURBED, *(distortion_label(d) for d in distortions)]


def not_searched(defect: str) -> str | None:
    """Why ``defect`` gets no search (None when it does): a complex has no single centre
    to distort about; N needs the nominal charge, i.e. oxidation states of its species."""

    try:
        nominal_charge_of(defect)
    except ValueError as err:
        return str(err)
    return None


def search_jobs(
    manifest_tsv: str | Path, distortions: Sequence[float]
) -> dict[str, dict[int, list[str]]]:
    """Defect id -> charge -> trial labels, for every entry of a host's manifest.tsv."""
    out: dict[str, dict[int, list[str]]] = {}
    with Path(manifest_tsv).open(newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            charges = [int(q) for q in row["charges"].split(",")]
            out[row["id"]] = {q: search_labels(row["defect"], q, distortions) for q in charges}
    return out


def _defect_name(manifest_dir: Path, defect_id: str) -> str:
    with (manifest_dir / "manifest.tsv").open(newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if row["id"] == defect_id:
                return str(row["defect"])
    raise ValueError(f"defect {defect_id!r} is not in {manifest_dir}/manifest.tsv")


def prepare_trial(
    manifest_dir: str | Path,
    bulk_dir: str | Path,
    defect_id: str,
    charge: int,
    label: str,
    calc_dir: str | Path,
    *,
    engine: Mapping[str, Any],
) -> None:
    """Inputs of one trial: the defect cell bond-distorted and rattled as ``label`` says
    ("Unperturbed": the cell as built), relaxed with the loose thresholds in ``engine``
    (steps/params.py ``search_trial_params``), atoms beyond relax_radius fixed as in the
    production run. A trial with two atoms closer than 1 Å gets ``omitted.json`` and is
    not run (ShakeNBreak leaves such trials out)."""

    manifest_dir, calc_dir = Path(manifest_dir), Path(calc_dir)
    name = _defect_name(manifest_dir, defect_id)
    structure, cell = defect_cell(manifest_dir, Path(bulk_dir), defect_id, charge)
    n = distorted_neighbour_count(name, charge)
    info: dict[str, Any] = {"defect": defect_id, "name": name, "charge": charge, "label": label}
    info["n_distorted_neighbours"] = n
    if label != gss.UNPERTURBED:
        d = gss.label_distortion(label)
        if (d is None) != (n == 0):
            raise ValueError(f"{defect_id} q={charge}: trial {label} does not fit N = {n}")
        centre = _centre(structure, cell)
        bulk = _bulk_structure(Path(bulk_dir))
        trials = trial_structures(structure, centre, n, [d or 0.0], bulk=bulk)
        if trials.trials:
            (trial,) = trials.trials
            structure = trial.structure
            info |= trial.metadata()
        else:
            shortest = trials.omitted[label]
            info["omitted"] = f"two atoms {shortest:.2f} Å apart"
            (calc_dir / OMITTED).parent.mkdir(parents=True, exist_ok=True)
            (calc_dir / OMITTED).write_text(json.dumps(info, indent=1) + "\n")
            log.warning("%s q=%d %s: omitted (%s)", defect_id, charge, label, info["omitted"])
    _write_trial(structure, cell, charge, calc_dir, engine, info)


def _write_trial(
    structure: Any,
    cell: Any,
    charge: int,
    calc_dir: Path,
    engine: Mapping[str, Any],
    info: Mapping[str, Any],
) -> None:
    """trial.json, structure files, defect.json and the inputs of a trial relaxation."""
    calc_dir.mkdir(parents=True, exist_ok=True)
    (calc_dir / TRIAL).write_text(json.dumps(info, indent=1) + "\n")
    relax_radius = float(engine["settings"]["relax_radius"])
    fixed = tuple(cell.atoms_beyond(relax_radius)) if relax_radius > 0 else ()
    write_structure_files(structure, calc_dir)
    cell.to_json(calc_dir / DEFECT_CELL)  # a trial that fails for good gets a failure record
    spec = CalcSpec("relax_ions", "defect", charge=charge, fixed_atoms=fixed)
    write_inputs(engine, structure, spec, calc_dir)


def prepare_cross_trial(
    manifest_dir: str | Path,
    bulk_dir: str | Path,
    defect_id: str,
    charge: int,
    source_record: str | Path,
    calc_dir: str | Path,
    *,
    engine: Mapping[str, Any],
) -> None:
    """A cross-charge trial: the relaxed structure of another charge state's new ground
    state (``source_record``) relaxed again in charge state ``charge``, as ShakeNBreak's
    second round does (labels "<label>_from_<q>")."""
    from pymatgen.core import Structure

    structure, cell = defect_cell(manifest_dir, Path(bulk_dir), defect_id, charge)
    source = CalcRecord.from_json(source_record)
    if not source.converged:
        raise ValueError(f"{source_record}: a cross-charge trial needs a relaxed source")
    start = Structure.from_dict(source.structure)
    if [s.specie for s in start] != [s.specie for s in structure]:
        raise ValueError(f"{source_record}: not a structure of defect {defect_id}")
    info = {
        "defect": defect_id,
        "charge": charge,
        "from_charge": int(source.charge),
        "source_record": str(source_record),
    }
    _write_trial(start, cell, charge, Path(calc_dir), engine, info)


def _centre(structure: Any, cell: Any) -> Any:
    """The distortion centre: a vacancy's former position, else the defect's atom (the
    site nearest the defect position)."""
    import numpy as np

    if cell.kind == "vacancy":
        x, y, z = (float(v) for v in cell.frac_coords)
        return DefectCentre(vacancy_frac=(x, y, z))
    dists = structure.lattice.get_all_distances([cell.frac_coords], structure.frac_coords)[0]
    return DefectCentre(site_index=int(np.argmin(dists)))


def _bulk_structure(bulk_dir: Path) -> Any:
    """The bulk supercell (sets the rattle stdev, as ShakeNBreak's bulk bond length)."""
    from pymatgen.core import Structure

    data = json.loads((bulk_dir / "supercell.json").read_text())
    return Structure.from_dict(data["structure"])


def _trial_of(path: Path) -> tuple[int, str]:
    """(charge, label) of a trial record path ``.../q<q>/<label>/record.json``."""
    m = _TRIAL_PATH.search(path.as_posix())
    if not m:
        raise ValueError(f"{path}: not a trial record (.../q<charge>/<label>/{RECORD})")
    return int(m.group(1)), m.group(2)


def _trial_status(record: CalcRecord, folder: Path) -> str:
    """ "relaxed", or why the trial gives no energy (it is then never used)."""
    if (folder / OMITTED).is_file():
        return "omitted: " + json.loads((folder / OMITTED).read_text())["omitted"]
    if record.extra.get("failure"):
        return f"failed: {record.extra['failure']}"
    if not record.converged or not math.isfinite(record.energy):
        return "failed: not converged"
    return "relaxed"


def search_summary(
    manifest_dir: str | Path, defect_id: str, trial_records: Sequence[str | Path], min_e_diff: float
) -> dict[str, Any]:
    """The summary of one defect's trials (what summary.json holds): every trial with its
    status, energy and energy relative to Unperturbed, per charge state the lowest, and
    the cross-charge candidates not yet tried (a new ground state of q to relax in q').
    The workflow runs one cross-charge round (ShakeNBreak compares structures to decide
    on more); candidates left after it are listed in summary.json, not run."""
    manifest_dir = Path(manifest_dir)
    name = _defect_name(manifest_dir, defect_id)
    rows: list[dict[str, Any]] = []
    energies: dict[int, dict[str, float]] = {}
    initial: dict[int, float | None] = {}
    for path in map(Path, trial_records):
        charge, label = _trial_of(path)
        record = CalcRecord.from_json(path)
        status = _trial_status(record, path.parent)
        rows.append({"charge": charge, "label": label, "status": status, "record": str(path)})
        if status == "relaxed":
            energies.setdefault(charge, {})[label] = float(record.energy)
            if label == gss.UNPERTURBED:
                initial[charge] = record.initial_energy
    usable = {q: e for q, e in energies.items() if gss.UNPERTURBED in e}
    table = {(r.charge, r.label): r for r in gss.energy_table(usable)} if usable else {}
    for row in rows:
        found = table.get((row["charge"], row["label"]))
        row["distortion"] = gss.label_distortion(row["label"])
        row["energy_eV"] = found.energy if found else None
        row["relative_eV"] = found.relative if found else None
    lowest = gss.lowest_trials(usable, min_e_diff) if usable else []
    tried = {(r["charge"], r["label"]) for r in rows}
    return {
        "defect": defect_id,
        "name": name,
        "not_searched": not_searched(name),
        "min_e_diff_eV": min_e_diff,
        "lowest": {
            str(r.charge): {
                "label": r.lowest,
                "energy_eV": r.lowest_energy,
                "lowering_eV": r.lowering,
                "new_ground_state": r.new_ground_state,
                "record": next(
                    x["record"] for x in rows if (x["charge"], x["label"]) == (r.charge, r.lowest)
                ),
                # the vertical (ideal-site) energy: first step of the plain relaxation
                "unperturbed_initial_energy_eV": initial.get(r.charge),
            }
            for r in lowest
        },
        "trials": rows,
        "failed": [r for r in rows if r["status"] != "relaxed"],
        "cross_charge_candidates": [
            {"charge": q, "from_charge": src, "label": lab, "new_label": new}
            for q, src, lab, new in gss.cross_charge_trials(lowest)
            # not tried yet, and not back to the charge state the structure came from
            if (q, new) not in tried and gss.parse_label(lab)[1] != q
        ],
    }


def search_candidates(
    manifest_dir: str | Path,
    defect_id: str,
    trial_records: Sequence[str | Path],
    out_json: str | Path,
    *,
    min_e_diff: float,
) -> dict[str, Any]:
    """The first round's summary (``round1.json``): its ``cross_charge_candidates`` are
    the cross-charge trials of the second round (rule search_cross_trial)."""
    summary = search_summary(manifest_dir, defect_id, trial_records, min_e_diff)
    Path(out_json).parent.mkdir(parents=True, exist_ok=True)
    Path(out_json).write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def summarise_search(
    manifest_dir: str | Path,
    defect_id: str,
    trial_records: Sequence[str | Path],
    out_dir: str | Path,
    *,
    min_e_diff: float,
) -> dict[str, Any]:
    """summary.json, summary.csv and the energy-vs-distortion plot (PNG, SVG) of one
    defect in ``out_dir``, over every trial of both rounds. Failed or omitted trials are
    listed with their reason and never used; a charge state whose Unperturbed relaxation
    failed has no lowest trial (its production run then starts from the ideal cell)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = search_summary(manifest_dir, defect_id, trial_records, min_e_diff)
    (out_dir / f"{SUMMARY}.json").write_text(json.dumps(summary, indent=1) + "\n")
    _write_summary_csv(summary["trials"], out_dir / f"{SUMMARY}.csv")
    usable: dict[int, dict[str, float]] = {}
    for row in summary["trials"]:
        if row["energy_eV"] is not None:
            usable.setdefault(row["charge"], {})[row["label"]] = row["energy_eV"]
    gss.plot_energies(usable, defect_id, out_dir / SUMMARY)
    return summary


def _write_summary_csv(rows: Sequence[Mapping[str, Any]], path: Path) -> None:

    columns = ["charge", "label", "distortion", "energy_eV", "relative_eV", "status"]
    write_csv(rows, path, columns=columns)


def prepare_searched_defect(
    manifest_dir: str | Path,
    bulk_dir: str | Path,
    defect_id: str,
    charge: int,
    calc_dir: str | Path,
    summary_json: str | Path,
    *,
    engine: Mapping[str, Any],
) -> dict[str, Any]:
    """Production inputs of a defect after its search: the relaxation starts from the
    lowest trial's relaxed structure when the summary marks it a new ground state (more
    than min_e_diff below the plain relaxation), else from the ideal cell. ``start.json``
    records the start, the energy lowering and the vertical (ideal-site) energy, which the
    tables use for the relaxation energy when the start is a trial. Returns start.json."""
    from pymatgen.core import Structure

    calc_dir = Path(calc_dir)
    structure, cell = defect_cell(manifest_dir, Path(bulk_dir), defect_id, charge)
    summary = json.loads(Path(summary_json).read_text())
    found = summary["lowest"].get(str(charge))
    start: dict[str, Any] = {
        "start": IDEAL_START,
        "summary": str(summary_json),
        "lowest_trial": found["label"] if found else None,
        "lowering_eV": found["lowering_eV"] if found else None,
        "min_e_diff_eV": summary["min_e_diff_eV"],
        "vertical_energy_eV": None,
    }
    if found is None:
        start["reason"] = summary["not_searched"] or "no relaxed Unperturbed trial"
    elif found["new_ground_state"]:
        trial = CalcRecord.from_json(found["record"])
        structure = Structure.from_dict(trial.structure)
        start |= {
            "start": found["label"],
            "trial_record": found["record"],
            "vertical_energy_eV": found["unperturbed_initial_energy_eV"],
        }
    else:
        start["reason"] = f"no trial more than {summary['min_e_diff_eV']} eV below Unperturbed"
    calc_dir.mkdir(parents=True, exist_ok=True)
    write_defect_inputs(structure, cell, charge, calc_dir, engine)
    (calc_dir / START).write_text(json.dumps(start, indent=1) + "\n")
    log.info("%s q=%d: production starts from %s", defect_id, charge, start["start"])
    return start
