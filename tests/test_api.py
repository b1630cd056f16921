"""The Python API (perovskite_defects.api) on a hand-made results folder, no DFT.

The folder is written by the workflow's own steps (chemical potentials and tables) from
hand-made records of a zincblende CdTe cell: the energies are chosen to be solved by hand
(they check bookkeeping, not physics). Checked: the API's numbers equal the tables the
step wrote and the hand values; the export to pymatgen-analysis-defects gives the same
formation energies and levels through the library's own FormationEnergyDiagram; failed
runs stay visible; bad folders give one-line errors naming the file.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from pymatgen.core import Lattice, Structure

from perovskite_defects import config as cfg
from perovskite_defects.api import StudyLoadError, find_hosts, load_study
from perovskite_defects.defects.distinct_sites import DefectCell
from perovskite_defects.engines.base import CalcRecord
from perovskite_defects.reporting.tables import read_csv
from perovskite_defects.steps import params as sp
from perovskite_defects.steps import phases as steps_phases
from perovskite_defects.steps.common import host_plan
from perovskite_defects.steps.tables import tables

A_CDTE = 6.48  # Å, zincblende CdTe (experimental)
VBM, CBM = 1.0, 2.5
LIMITS = {"Cd-rich": {"Cd": -1.0, "Te": -4.0}, "Te-rich": {"Cd": -2.0, "Te": -3.0}}
ELEMENTAL = {"Cd": -1.0, "Te": -3.0}
# defect, charge -> (energy of the defect cell, correction); bulk cell at -20 eV
RUNS = {
    ("V_Cd", 0): (-16.0, 0.0),
    ("V_Cd", -1): (-14.6, 0.1),
    ("V_Cd", -2): (-13.0, 0.4),
    ("Te_Cd", 0): (-21.0, 0.0),
    ("Te_Cd", 1): (math.nan, None),  # failed for good
}
# E_f(E_F = VBM) at Cd-rich, by hand: E_d - E_b - sum n_i mu_i + q VBM + E_corr
BY_HAND = {
    ("V_Cd", 0): 4.0 - 1.0,
    ("V_Cd", -1): 5.4 - 1.0 - 1.0 + 0.1,
    ("V_Cd", -2): 7.0 - 1.0 - 2.0 + 0.4,
    ("Te_Cd", 0): -1.0 + 4.0 - 1.0,
}
LEVELS = {"0/-1": 0.5, "-1/-2": 0.9}  # V_Cd crossings of the lines above


def zincblende() -> Structure:
    return Structure.from_spacegroup(
        "F-43m", Lattice.cubic(A_CDTE), ["Cd", "Te"], [[0, 0, 0], [0.25, 0.25, 0.25]]
    )


def record(structure: Structure, energy: float, charge: int = 0, **extra) -> CalcRecord:
    return CalcRecord(
        engine="vasp",
        engine_version="test",
        energy=energy,
        charge=charge,
        scf_converged=not math.isnan(energy),
        geometry_converged=not math.isnan(energy),
        structure=structure.as_dict(),
        **extra,
    )


def write_study(base: Path, elemental: bool = True) -> tuple[Path, dict]:
    """results/tiny/CdTe as the workflow leaves it; returns the study folder and config."""
    host_file = base / "CdTe.vasp"
    bulk_s = zincblende()
    bulk_s.to(filename=str(host_file), fmt="poscar")
    given = {"source": "hand-made test values", "limits": LIMITS}
    if elemental:
        given["elemental"] = ELEMENTAL
    config = cfg.validate(
        {
            "study": "tiny",
            "engine": "vasp",
            "host": {"framework": "any", "structure": str(host_file), "relax": False},
            "defects": [
                {"name": "V_Cd", "charges": [0, -1, -2]},
                {"name": "Te_Cd", "charges": [1, 0]},
            ],
            "chemical_potentials": given,
            "concentrations": {"carriers": "effective_mass"},
        }
    )
    host = base / "results" / "tiny" / "CdTe"
    (host / "bulk").mkdir(parents=True)
    record(bulk_s, -20.0, vbm=VBM, cbm=CBM, nelect=72.0).to_json(host / "bulk/record.json")
    params = sp.chemical_potentials_params(config, host_plan(config, "CdTe"))
    steps_phases.chemical_potentials(
        "CdTe", host / "bulk/record.json", {}, host / "chemical_potentials.json", **params
    )
    manifest = ["id\tcharges"]
    for name, charges in (("V_Cd", "0,-1,-2"), ("Te_Cd", "1,0")):
        manifest.append(f"{name}\t{charges}")
        defect_s = bulk_s.copy()
        if name == "V_Cd":
            defect_s.remove_sites([0])
        else:
            defect_s.replace(0, "Te")
        added = {"Cd": -1} if name == "V_Cd" else {"Te": 1, "Cd": -1}
        kind = "vacancy" if name == "V_Cd" else "substitution"
        for q in map(int, charges.split(",")):
            folder = host / "defects" / f"{name}_q{q}"
            folder.mkdir(parents=True)
            cell = DefectCell(name, kind, [q], added, 1.0, [0.0, 0.0, 0.0], defect_s.as_dict())
            cell.to_json(folder / "defect.json")
            energy, corr = RUNS[(name, q)]
            extra = {"failure": "SCF did not converge (test)"} if corr is None else {}
            record(defect_s, energy, q, nelect=72.0 - q, extra=extra).to_json(
                folder / "record.json"
            )
            (folder / "correction.json").write_text(json.dumps({"scheme": "fnv", "total": corr}))
    (host / "defects" / "manifest.tsv").write_text("\n".join(manifest) + "\n")
    dirs = [host / "defects" / f"{n}_q{q}" for n, q in RUNS]
    tables(
        host / "bulk/record.json",
        host / "chemical_potentials.json",
        dirs,
        host / "tables",
        "CdTe",
        **sp.tables_params(config),
    )
    return host.parent, config


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_study(tmp_path_factory.mktemp("api"))[0]


def test_study_numbers_equal_the_tables_and_the_hand_values(tiny: Path) -> None:
    study = load_study(tiny)
    assert (study.study, study.host, study.limit_names) == ("tiny", "CdTe", list(LIMITS))
    assert (study.vbm, study.band_gap) == (VBM, CBM - VBM)
    assert study.records[("V_Cd", -2)].energy == -13.0
    assert study.corrections == {k: v[1] for k, v in RUNS.items()}

    fe = study.formation_energies()
    assert len(fe) == len(RUNS) * len(LIMITS)
    table = {
        (r["defect"], r["charge"]): r for r in read_csv(tiny / "CdTe/tables/formation_energies.csv")
    }
    for row in fe.itertuples():
        written = table[(row.defect, row.charge)][f"E_f[{row.limit}] (eV)"]
        if written is None:  # the failed run: kept, without a number
            assert (row.defect, row.charge, row.status) == ("Te_Cd", 1, "missing")
            assert math.isnan(row.formation_energy_eV) and "failed" in row.note
        else:
            assert row.formation_energy_eV == written
    cd_rich = study.formation_energies("Cd-rich", fermi_level=0.7).set_index(["defect", "charge"])
    for key, value in BY_HAND.items():
        assert cd_rich.loc[key, "formation_energy_eV"] == pytest.approx(value + key[1] * 0.7)
        # Te-rich: mu_Cd one eV lower (V_Cd costs 1 eV less), mu_Te one eV higher
        shift = -1.0 if key[0] == "V_Cd" else -2.0
        assert study.formation_energy(*key, "Te-rich") == pytest.approx(value + shift)


def test_levels_fermi_level_and_concentrations_as_written(tiny: Path) -> None:
    study = load_study(tiny / "CdTe")
    levels = study.transition_levels()
    v_cd = levels[levels.defect == "V_Cd"].set_index("transition")
    assert v_cd.level_eV.to_dict() == pytest.approx(LEVELS)
    written = read_csv(tiny / "CdTe/tables/transition_levels.csv")
    for row in written:
        mine = levels[(levels.defect == row["defect"]) & (levels.transition == row["q/q'"])]
        assert len(mine) == 1
        if row["level above VBM (eV)"] is not None:
            assert mine.level_eV.iloc[0] == row["level above VBM (eV)"]
            assert mine["class"].iloc[0] == row["class"]
    assert levels[levels.defect == "Te_Cd"].transition.tolist() == ["missing"]

    fermi = study.fermi_levels()
    for row, mine in zip(
        read_csv(tiny / "CdTe/tables/fermi_level.csv"), fermi.itertuples(), strict=True
    ):
        assert (mine.limit, mine.fermi_level_eV) == (
            row["limit"],
            row["Fermi level above VBM (eV)"],
        )
    conc = study.concentrations()
    written_c = read_csv(tiny / "CdTe/tables/concentrations.csv")
    assert conc.concentration_cm3.tolist() == [r["concentration (cm^-3)"] for r in written_c]


def test_pymatgen_analysis_defects_export_gives_the_same_energies(tiny: Path) -> None:
    """Formation energies and levels through pymatgen-analysis-defects'
    FormationEnergyDiagram (its own element bookkeeping, VBM term and envelope)."""
    from pymatgen.analysis.defects.core import Vacancy

    study = load_study(tiny)
    entries = study.to_pmg_defect_entries()
    assert sorted((e.defect.name, e.charge_state) for e in entries) == [
        ("Te_Cd", 0), ("v_Cd", -2), ("v_Cd", -1), ("v_Cd", 0)
    ]  # fmt: skip
    vac = next(e for e in entries if e.charge_state == -2)
    assert vac.corrections == {"fnv": 0.4}
    # our multiplicity scaled to the supercell = the library's own count by symmetry
    assert vac.defect.multiplicity == 4
    assert Vacancy(zincblende(), zincblende()[0]).get_multiplicity() == 4

    diagrams = study.to_pmg_formation_energy_diagrams()
    assert sorted(diagrams) == ["Te_Cd", "V_Cd"]
    for limit in LIMITS:
        chempots = study.pmg_chempots(limit)
        assert {el.symbol: v for el, v in chempots.items()} == pytest.approx(
            {el: LIMITS[limit][el] - ELEMENTAL[el] for el in ELEMENTAL}
        )
        for ef in (0.0, 0.3, 0.7, 1.2, 1.5):
            for name, fed in diagrams.items():
                ours = min(
                    study.formation_energy(n, q, limit, ef)
                    for (n, q), (_, corr) in RUNS.items()
                    if n == name and corr is not None
                )
                assert fed.get_formation_energy(ef, chempots) == pytest.approx(ours, abs=1e-9)
        kinks = [x for x, _ in diagrams["V_Cd"].get_transitions(chempots, 0.0, study.band_gap)]
        assert kinks[1:-1] == pytest.approx(sorted(LEVELS.values()))


def test_limits_without_elemental_references_export_absolute_mu(tmp_path: Path) -> None:
    study = load_study(write_study(tmp_path, elemental=False)[0])
    chempots = study.pmg_chempots("Te-rich")
    assert {el.symbol: v for el, v in chempots.items()} == LIMITS["Te-rich"]
    fed = study.to_pmg_formation_energy_diagrams()["Te_Cd"]
    assert fed.get_formation_energy(0.0, chempots) == pytest.approx(BY_HAND[("Te_Cd", 0)] - 2.0)


def test_doped_export_gives_the_same_energies(tiny: Path) -> None:
    """Formation energies and levels through doped's DefectThermodynamics (optional:
    doped is not a dependency of the project)."""
    pytest.importorskip("doped", reason="doped is not installed (optional: pip install doped)")
    study = load_study(tiny)
    thermo = study.to_doped_thermodynamics()
    assert (thermo.vbm, thermo.band_gap) == (VBM, CBM - VBM)
    assert len(thermo.defect_entries) == 4  # the failed Te_Cd +1 is not exported
    for entry in thermo.defect_entries.values():
        name = entry.name.rsplit("_", 1)[0]
        for limit in LIMITS:
            for ef in (0.0, 0.7, 1.5):
                ours = study.formation_energy(name, entry.charge_state, limit, ef)
                theirs = thermo.get_formation_energy(entry, limit=limit, fermi_level=ef)
                assert theirs == pytest.approx(ours, abs=1e-9)
    levels = {level for by_level in thermo.transition_level_map.values() for level in by_level}
    assert sorted(levels) == pytest.approx(sorted(LEVELS.values()))


def test_doped_export_without_doped_is_one_clear_line(tiny: Path, monkeypatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_doped(name, *args, **kwargs):
        if name == "doped" or name.startswith("doped."):
            raise ImportError("No module named 'doped'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_doped)
    with pytest.raises(ImportError, match=r"needs doped, which is not installed \(pip install"):
        load_study(tiny).to_doped_thermodynamics()


def test_bad_folders_give_one_line_naming_the_file(tiny: Path, tmp_path: Path) -> None:
    study_dir = tmp_path / "two"
    shutil.copytree(tiny, study_dir)
    shutil.copytree(study_dir / "CdTe", study_dir / "CdTe_copy")
    assert find_hosts(study_dir) == ["CdTe", "CdTe_copy"]
    with pytest.raises(StudyLoadError, match=r"pass host= \(hosts with tables: \['CdTe', 'CdT"):
        load_study(study_dir)
    assert load_study(study_dir, host="CdTe_copy").host == "CdTe_copy"
    (study_dir / "CdTe/defects/V_Cd_q-1/correction.json").unlink()
    with pytest.raises(StudyLoadError, match=r"V_Cd_q-1/correction.json: missing$"):
        load_study(study_dir, host="CdTe")
    (study_dir / "CdTe/chemical_potentials.json").write_text("{")
    with pytest.raises(StudyLoadError, match=r"chemical_potentials.json: not valid JSON"):
        load_study(study_dir, host="CdTe")
    with pytest.raises(StudyLoadError, match=r"no_such: no such results folder"):
        load_study(tmp_path / "no_such")
    with pytest.raises(KeyError, match=r"unknown limit 'Sn-rich'; limits of the study"):
        load_study(tiny).formation_energies("Sn-rich")


def test_tables_older_than_host_results_json_say_how_to_rerun(tiny: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(tiny, old)
    results_file = old / "CdTe/tables/host_results.json"
    data = json.loads(results_file.read_text())
    data["entries"] = [e for e in data["entries"] if e["name"] != "Te_Cd"]
    results_file.write_text(json.dumps(data))
    with pytest.raises(StudyLoadError, match=r"host_results.json: Te_Cd 0 is in only one of it"):
        load_study(old)
    results_file.unlink()
    with pytest.raises(StudyLoadError) as err:
        load_study(old)
    assert str(err.value) == (
        f"{results_file}: missing (tables written before it existed); rerun the tables "
        "step: snakemake results/old/CdTe/tables/host_results.json --rerun-triggers mtime "
        "(with the study's --configfile)"
    )
