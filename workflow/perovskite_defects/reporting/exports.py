"""A loaded study (:mod:`perovskite_defects.api`) as objects of other defect libraries.

* pymatgen-analysis-defects (a dependency): ``DefectEntry`` per charge state and one
  ``FormationEnergyDiagram`` per defect;
* doped (optional, ``pip install doped``): ``DefectThermodynamics`` with doped's
  ``DefectEntry``.

What goes into every entry is read from the study, nothing is recomputed: the engine
energies of the defect and bulk supercells, our finite-size correction (stored as the
entry's only correction, under the scheme's name), the defect position and the bulk site
from ``defect.json``, the multiplicity from the defect generator scaled to the supercell,
and the study's VBM and band gap. Only converged charge states are exported (failed runs
have no energy; unconverged ones are left out unless asked for, as in the levels).

Chemical potentials: both libraries split mu_i into an elemental reference and a
difference. The study's elemental energies (``ChemicalPotentialLimits.elemental_energies``)
are the references when the study has them for every element; limits given in the config
without them (``chemical_potentials.elemental`` unset) only have absolute values, and the
references are then 0 eV/atom, so the differences are the absolute mu. Either way the
formation energies are the same; only with real references are the diagrams' own
stability regions meaningful (competing phases are not exported).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from perovskite_defects.hosts.any_structure import cells_in_supercell
from perovskite_defects.thermodynamics.concentrations import spin_degeneracy
from perovskite_defects.thermodynamics.formation import format_charge

if TYPE_CHECKING:
    from pymatgen.analysis.defects.core import Defect
    from pymatgen.analysis.defects.thermo import DefectEntry, FormationEnergyDiagram
    from pymatgen.core import Element, Structure

    from perovskite_defects.api import DefectFolder, Study

log = logging.getLogger("perovskite_defects")

#: Å: the bulk site of a vacancy or substitution must lie this close to defect.json's
#: position (they come from the same supercell; pymatgen-analysis-defects looks within 0.1 Å).
SITE_TOLERANCE = 0.1

DOPED_MISSING = "to_doped_thermodynamics needs doped, which is not installed (pip install doped)"


def _references(study: Study) -> dict[str, float]:
    """Elemental reference energies (eV/atom) of the exported chemical potentials."""
    elements = sorted({el for mus in study.limits.limits.values() for el in mus})
    given = study.limits.elemental_energies
    if all(el in given for el in elements):
        return {el: float(given[el]) for el in elements}
    return dict.fromkeys(elements, 0.0)


def pmg_chempots(study: Study, limit: str) -> dict[Element, float]:
    """mu - reference (eV/atom) at ``limit``, keyed by pymatgen Element."""
    from pymatgen.core import Element

    refs = _references(study)
    return {Element(el): mu - refs[el] for el, mu in study.limits.limits[limit].items()}


def _exported_runs(study: Study, include_unconverged: bool) -> list[DefectFolder]:
    runs = []
    for run in study.runs:
        entry = study.entry(run.name, run.charge)
        if entry.is_missing or (not entry.converged and not include_unconverged):
            log.info("%s %+d: %s, not exported", run.name, run.charge, entry.status)
            continue
        runs.append(run)
    return runs


def sites_in_supercell(study: Study, run: DefectFolder) -> int:
    """Equivalent defect sites in the bulk supercell: the generator's multiplicity (per
    cell, see concentrations.py) times the cells in the supercell, as the tables count."""
    framework = study.config.get("host", {}).get("framework", "perovskite")
    n_cells = cells_in_supercell(framework, study.bulk.pmg_structure())
    return int(round(run.cell.multiplicity * n_cells))


def pmg_defect(run: DefectFolder, bulk: Structure, multiplicity: int) -> Defect:
    """pymatgen-analysis-defects Defect of a defect cell, on the bulk supercell."""
    from pymatgen.analysis.defects.core import Interstitial, Substitution, Vacancy
    from pymatgen.core import PeriodicSite

    cell = run.cell
    added = [el for el, n in cell.atoms_added.items() if n > 0]
    removed = [el for el, n in cell.atoms_added.items() if n < 0]
    frac = np.asarray(cell.frac_coords, dtype=float)
    kind: type[Vacancy] | type[Substitution] | type[Interstitial]
    if cell.kind in ("vacancy", "substitution"):
        index = _bulk_site(run, bulk, removed[0], frac)
        site = bulk[index]
        if cell.kind == "substitution":
            site = PeriodicSite(added[0], site.frac_coords, bulk.lattice)
        kind = Vacancy if cell.kind == "vacancy" else Substitution
    elif cell.kind == "interstitial":
        site, kind = PeriodicSite(added[0], frac, bulk.lattice), Interstitial
    else:
        raise ValueError(f"{run.directory / 'defect.json'}: unknown defect kind {cell.kind!r}")
    try:
        return kind(bulk.copy(), site, multiplicity=multiplicity)
    except Exception as err:  # noqa: BLE001  # the oxidation-state guess of the library
        # The oxidation state only feeds the library's charge-state suggestions, never an
        # energy: left unknown (NaN) rather than guessed by us.
        log.warning("%s: oxidation state not guessed (%s); set to NaN", run.name, err)
        return kind(bulk.copy(), site, multiplicity=multiplicity, oxi_state=float("nan"))


def _bulk_site(run: DefectFolder, bulk: Structure, element: str, frac: np.ndarray) -> int:
    dists = bulk.lattice.get_all_distances([frac], bulk.frac_coords)[0]
    candidates = [i for i, s in enumerate(bulk) if s.specie.symbol == element]
    if not candidates:
        raise ValueError(f"{run.directory / 'defect.json'}: no {element} in the bulk supercell")
    index = min(candidates, key=lambda i: dists[i])
    if dists[index] > SITE_TOLERANCE:
        raise ValueError(
            f"{run.directory / 'defect.json'}: the nearest bulk {element} is "
            f"{dists[index]:.3f} Å from the defect position (> {SITE_TOLERANCE} Å)"
        )
    return index


def _entry(run: DefectFolder, bulk_entry: Any, defect: Defect) -> DefectEntry:
    from pymatgen.analysis.defects.thermo import DefectEntry
    from pymatgen.entries.computed_entries import ComputedStructureEntry

    sc_entry = ComputedStructureEntry(
        run.record.pmg_structure(), run.record.energy, entry_id=str(run.directory)
    )
    scheme = str(run.correction.get("scheme", "correction"))
    total = run.correction_total
    return DefectEntry(
        defect=defect,
        charge_state=run.charge,
        sc_entry=sc_entry,
        corrections={scheme: 0.0 if total is None else total},
        corrections_metadata={scheme: dict(run.correction)},
        sc_defect_frac_coords=tuple(float(x) for x in run.cell.frac_coords),  # type: ignore[arg-type]
        bulk_entry=bulk_entry,
    )


def pmg_defect_entries(study: Study, include_unconverged: bool = False) -> list[DefectEntry]:
    """pymatgen-analysis-defects DefectEntry of every exported charge state (one Defect
    object per defect, shared by its charge states)."""
    return [entry for _, entry in _pmg_pairs(study, include_unconverged)]


def _pmg_pairs(study: Study, include_unconverged: bool) -> list[tuple[DefectFolder, DefectEntry]]:
    from pymatgen.entries.computed_entries import ComputedStructureEntry

    bulk = study.bulk.pmg_structure()
    bulk_entry = ComputedStructureEntry(bulk, study.bulk.energy, entry_id="bulk")
    defects: dict[str, Defect] = {}
    pairs = []
    for run in _exported_runs(study, include_unconverged):
        if run.name not in defects:
            defects[run.name] = pmg_defect(run, bulk, sites_in_supercell(study, run))
        pairs.append((run, _entry(run, bulk_entry, defects[run.name])))
    return pairs


def pmg_formation_energy_diagrams(study: Study) -> dict[str, FormationEnergyDiagram]:
    """Defect name -> FormationEnergyDiagram (converged charge states) with the study's
    VBM and gap; its phase diagram holds the elemental references and the bulk."""
    from pymatgen.analysis.defects.thermo import FormationEnergyDiagram
    from pymatgen.core import Composition
    from pymatgen.entries.computed_entries import ComputedEntry

    refs = [ComputedEntry(Composition(el), e, entry_id=el) for el, e in _references(study).items()]
    by_name: dict[str, list[DefectEntry]] = {}
    for run, entry in _pmg_pairs(study, include_unconverged=False):
        by_name.setdefault(run.name, []).append(entry)
    return {
        name: FormationEnergyDiagram(
            defect_entries=entries, pd_entries=refs, vbm=study.vbm, band_gap=study.band_gap
        )
        for name, entries in by_name.items()
    }


def doped_thermodynamics(study: Study) -> Any:
    """doped DefectThermodynamics of the exported charge states, with every limit of the
    study (doped's chempots layout: absolute limits, elemental references, differences)."""
    try:
        from doped.core import DefectEntry as DopedEntry
        from doped.core import doped_defect_from_pmg_defect
        from doped.thermodynamics import DefectThermodynamics
    except ImportError as err:
        raise ImportError(DOPED_MISSING) from err

    orientational = study.config.get("concentrations", {}).get("orientational_degeneracy", {})
    entries = []
    defects: dict[str, Any] = {}
    for run, pmg in _pmg_pairs(study, include_unconverged=False):
        if run.name not in defects:  # doped's subclass; keeps the oxidation state as it is
            defects[run.name] = doped_defect_from_pmg_defect(pmg.defect, bulk_oxi_states=False)
        entries.append(
            DopedEntry(
                defect=defects[run.name],
                charge_state=pmg.charge_state,
                sc_entry=pmg.sc_entry,
                corrections=dict(pmg.corrections),
                corrections_metadata=dict(pmg.corrections_metadata),
                sc_defect_frac_coords=pmg.sc_defect_frac_coords,
                bulk_entry=pmg.bulk_entry,
                name=f"{run.name}_{format_charge(run.charge)}",
                calculation_metadata={"vbm": study.vbm, "gap": study.band_gap},
                degeneracy_factors={
                    "spin degeneracy": spin_degeneracy(run.record.nelect),
                    "orientational degeneracy": float(orientational.get(run.name, 1.0)),
                },
                bulk_supercell=study.bulk.pmg_structure(),
                defect_supercell=run.record.pmg_structure(),
            )
        )
    refs = _references(study)
    chempots = {
        "limits": {name: dict(mus) for name, mus in study.limits.limits.items()},
        "elemental_refs": refs,
        "limits_wrt_el_refs": {
            name: {el: mu - refs[el] for el, mu in mus.items()}
            for name, mus in study.limits.limits.items()
        },
    }
    return DefectThermodynamics(
        entries, chempots=chempots, el_refs=refs, vbm=study.vbm, band_gap=study.band_gap
    )
