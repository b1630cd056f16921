"""Steps of workflow/rules/analysis.smk per defect: finite-size correction and defect states."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from perovskite_defects.corrections import efnv_correction, fnv_correction
from perovskite_defects.corrections.dielectric import (
    correction_argument,
    effective_dielectric,
    screening_tensor,
)
from perovskite_defects.corrections.kumagai import ERROR_WARN_EV
from perovskite_defects.defects.distinct_sites import DefectCell
from perovskite_defects.defects.local_environment import write_local_environment
from perovskite_defects.engines.base import CalcRecord, EngineError
from perovskite_defects.engines.eigenvalues import read_eigenvalues
from perovskite_defects.engines.potentials import read_potential_grid, site_potentials
from perovskite_defects.steps.common import DEFECT_CELL, RECORD
from perovskite_defects.thermodynamics.trap_classes import (
    defect_state_character,
    far_potential_shift,
)

log = logging.getLogger("perovskite_defects")


def correction(
    bulk_dir: str | Path,
    defect_dir: str | Path,
    out_json: str | Path,
    *,
    scheme: str,
    dielectric: Mapping[str, Any],
    site_radius: float,
) -> dict[str, Any]:
    """Finite-size correction of one charged defect (``scheme``: fnv, efnv or none),
    written as JSON (eV); ``dielectric``: the effective config block (cited or computed);
    ``site_radius``: eFNV's sphere around each atom (Å)."""

    bulk_dir, defect_dir = Path(bulk_dir), Path(defect_dir)
    defect = CalcRecord.from_json(defect_dir / RECORD)
    cell = DefectCell.from_json(defect_dir / DEFECT_CELL)
    result: dict[str, Any] = {"scheme": scheme, "charge": defect.charge}
    if defect.extra.get("failure"):
        # A defect that failed for good has no correction; the tables mark its row.
        result.update(total=None, failure=defect.extra["failure"])
    elif scheme == "none" or defect.charge == 0:
        result.update(total=0.0, reason="neutral defect" if defect.charge == 0 else "disabled")
    else:
        bulk = CalcRecord.from_json(bulk_dir / RECORD)
        for rec, where in ((bulk, bulk_dir), (defect, defect_dir)):
            if not rec.potential_file:
                raise EngineError(f"{where}: no electrostatic potential file in the record")
        files = [bulk_dir / str(bulk.potential_file), defect_dir / str(defect.potential_file)]
        bulk_grid, defect_grid = (read_potential_grid(f) for f in files)
        eps = correction_argument(screening_tensor(dielectric))
        if scheme == "fnv":
            result.update(
                fnv_correction(
                    defect.charge, eps, bulk_grid, defect_grid, cell.frac_coords
                ).summary()
            )
        else:
            bulk_s, defect_s = bulk.pmg_structure(), defect.pmg_structure()
            radius = site_radius
            efnv = efnv_correction(
                defect.charge,
                eps,
                site_potentials(bulk_grid, bulk_s.frac_coords, radius),
                site_potentials(defect_grid, defect_s.frac_coords, radius),
                bulk_s,
                defect_s,
                cell.frac_coords,
            )
            result.update(efnv.summary(), site_radius=radius)
        result["files"] = [str(f) for f in files]
        if scheme == "fnv" and result["error"] > ERROR_WARN_EV:  # eFNV warns by itself
            log.warning(
                "%s: %s correction %.3f eV has an error estimate of %.3f eV (> %.2f eV): "
                "the potential is not flat where it is aligned (supercell too small?)",
                defect_dir,
                scheme,
                result["total"],
                result["error"],
                ERROR_WARN_EV,
            )
    result["dielectric"] = dict(dielectric)
    result["dielectric_tensor"] = screening_tensor(dielectric).tolist()
    Path(out_json).write_text(json.dumps(result, indent=1))
    return result


def defect_states(
    bulk_dir: str | Path,
    defect_dir: str | Path,
    out_json: str | Path,
    *,
    site_radius: float,
    shallow_threshold: float,
) -> dict[str, Any]:
    """Character of the defect cell's states near the gap (localized trap or perturbed host),
    from eigenvalues aligned by the far-field potential; written as JSON (eV)."""

    bulk_dir, defect_dir = Path(bulk_dir), Path(defect_dir)
    bulk = CalcRecord.from_json(bulk_dir / RECORD)
    defect = CalcRecord.from_json(defect_dir / RECORD)
    cell = DefectCell.from_json(defect_dir / DEFECT_CELL)
    result: dict[str, Any] = {"defect": cell.name, "charge": defect.charge}
    try:
        for rec, where in ((bulk, bulk_dir), (defect, defect_dir)):
            if not rec.potential_file:
                raise EngineError(f"{where}: no electrostatic potential file in the record")
        shift = far_potential_shift(
            read_potential_grid(bulk_dir / str(bulk.potential_file)),
            read_potential_grid(defect_dir / str(defect.potential_file)),
            defect.pmg_structure(),
            cell.frac_coords,
            site_radius,
        )
        bulk_eig = read_eigenvalues(bulk_dir)
        if not bulk_eig.complete:  # its edges could miss the gap's k-point
            raise EngineError(f"{bulk_dir}: eigenvalues printed for only some k-points")
        states = defect_state_character(
            bulk_eig,
            read_eigenvalues(defect_dir),
            shift,
            tolerance=shallow_threshold,
        )
        result.update(states.to_dict())
    except EngineError as err:  # no eigenvalues printed: the table says so, empty cell
        log.warning("%s: defect states not analysed: %s", defect_dir, err)
        result.update(character=None, reason=str(err))
    Path(out_json).write_text(json.dumps(result, indent=1))
    return result


def local_environment(
    bulk_dir: str | Path, defect_dir: str | Path, out_json: str | Path
) -> dict[str, Any]:
    """Local geometry and carrier localisation of one defect cell against the bulk
    (Å, e, Bohr magnetons), written as JSON; see defects/local_environment.py."""

    cell = DefectCell.from_json(Path(defect_dir) / DEFECT_CELL)
    return write_local_environment(
        bulk_dir, defect_dir, out_json, cell.name, cell.kind, cell.frac_coords
    )


def defect_analysis(
    bulk_dir: str | Path,
    defect_dir: str | Path,
    correction_json: str | Path,
    states_json: str | Path,
    local_environment_json: str | Path | None = None,
    dielectric_json: str | Path | None = None,
    host: str = "",
    *,
    scheme: str,
    site_radius: float,
    dielectric: Mapping[str, Any],
    shallow_threshold: float,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The analyses of one converged defect run (one workflow job, see analysis.smk): its
    finite-size correction, the character of its states near the gap and, when a path is
    given, its local environment. With ``dielectric.source: computed`` the host's
    ``dielectric_json`` replaces the cited tensor (``host`` names it in errors)."""

    if local_environment_json is not None:
        local_environment(bulk_dir, defect_dir, local_environment_json)
    eps = effective_dielectric(dielectric, dielectric_json, host)
    return (
        correction(
            bulk_dir,
            defect_dir,
            correction_json,
            scheme=scheme,
            dielectric=eps,
            site_radius=site_radius,
        ),
        defect_states(
            bulk_dir,
            defect_dir,
            states_json,
            site_radius=site_radius,
            shallow_threshold=shallow_threshold,
        ),
    )
