"""Steps of workflow/rules/phases.smk: competing-phase inputs and chemical-potential limits."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from perovskite_defects import config as cfg
from perovskite_defects.engines.base import CalcRecord, CalcSpec
from perovskite_defects.hosts.phase_files import has_free_internal_coordinates, load_phase
from perovskite_defects.steps.common import host_plan, write_inputs, write_structure_files
from perovskite_defects.study import check_defects
from perovskite_defects.thermodynamics.absent_phases import absent_phase_notes, unsourced_phases
from perovskite_defects.thermodynamics.given_limits import limits_from_config

log = logging.getLogger("perovskite_defects")


def prepare_phase(
    phase: str,
    calc_dir: str | Path,
    cif: str | Path | None = None,
    *,
    engine: Mapping[str, Any],
) -> None:
    """Inputs of a competing phase.

    Cells relax when the engine settings ask for it (``phase_cell_relax``) and the phase is
    not a molecular crystal; otherwise only the ions relax, at the experimental cell, and
    not even they when symmetry pins every atom (a single point then gives the same energy).
    """

    entry = load_phase(phase, Path(cif).parent) if cif else load_phase(phase)
    calc_dir = Path(calc_dir)
    write_structure_files(entry.structure, calc_dir, "initial")
    if entry.relax == "cell" and engine["settings"]["phase_cell_relax"]:
        kind = "relax_cell"
    elif has_free_internal_coordinates(entry.structure):
        kind = "relax_ions"
    else:
        kind = "static"
    write_inputs(engine, entry.structure, CalcSpec(kind, "phase"), calc_dir)
    (calc_dir / "source.txt").write_text(entry.source + "\n")


def host_phases(config: Mapping[str, Any], name: str, plan: Any = None) -> list[str]:
    """Competing phases that bear on a host: those made of its elements and its dopants.

    ``plan`` (the host's study.HostPlan) spares planning the whole study again, which
    the workflow would otherwise do once per host while building the DAG.
    """

    if config.get("chemical_potentials"):
        return []  # limits given in config: no competing phase is computed
    plan = plan or host_plan(config, name)
    allowed = plan.elements | check_defects(config, [plan])
    return [p for p in config["competing_phases"] if cfg._element_set(p) <= allowed]


def chemical_potentials(
    name: str,
    host_record: str | Path,
    phase_records: Mapping[str, str | Path],
    out_json: str | Path,
    *,
    elements: Sequence[str],
    dopants: Sequence[str],
    rich_element: str | None,
    given_limits: Mapping[str, Any] | None,
    competing_phases: Sequence[str],
) -> None:
    """Chemical-potential limits of one host of the sweep (``name``): from the computed
    ``phase_records``, or the limits given in config (``given_limits``). ``elements``
    and ``dopants``: the host's and its defects' added species; ``rich_element``: the
    element whose rich limit comes first (a perovskite's majority halide);
    ``competing_phases``: those listed in config, to name the ones left out."""
    # why: phase diagrams (~1 s of pymatgen); the Snakefile imports this module (host_phases)
    from perovskite_defects.thermodynamics.phase_limits import compute_chemical_potential_limits

    host = CalcRecord.from_json(host_record).require_converged()
    phases = {}
    for label, path in phase_records.items():
        record = CalcRecord.from_json(path).require_converged()
        phases[label] = (record.pmg_structure().composition.as_dict(), record.energy)
    dopants = list(dopants)
    if given_limits:
        given = limits_from_config(
            given_limits,
            host.pmg_structure().composition.as_dict(),
            host.energy,
            dopants,
            host_label=name,
        )
        given.write_json(out_json)
        for note in given.notes[1:]:
            log.warning(note)
        return
    limits = compute_chemical_potential_limits(
        host.pmg_structure().composition.as_dict(),
        host.energy,
        phases,
        extrinsic_elements=dopants,
        rich_element=rich_element,
        host_label=name,
    )
    unlisted = cfg.unlisted_phases(set(elements) | set(dopants), list(competing_phases))
    if unlisted:
        limits.notes.append(
            f"Competing phases made of these elements but not computed (shipped in "
            f"structures/phases/): {unlisted}; the limits may be too wide without them."
        )
    limits.notes.extend(_absent_phase_notes(limits, set(elements), unlisted))
    limits.write_json(out_json)
    for note in limits.notes:
        log.warning(note)


def _absent_phase_notes(limits: Any, elements: set[str], unlisted: list[str]) -> list[str]:
    """Which limits each phase of the host's system left out could move, and how far."""

    absent = {
        p: "shipped in structures/phases/ but not listed in competing_phases" for p in unlisted
    }
    for phase in unsourced_phases(elements, cfg.shipped_phases()):
        absent[phase] = "no structure file from a citable source in structures/phases/"
    return absent_phase_notes(limits, absent)
