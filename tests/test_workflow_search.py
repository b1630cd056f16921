"""The ground-state search in the workflow (rules/search.smk, steps/search.py).

Quick tests: trial labels, trial inputs (loose relaxations of the distorted cells), the
omitted-trial record, the summary and the production start built from trial records, the
dry run with the search on and off. One real CP2K run (marked long): the search of V_I(+1)
in a [2, 1, 1] CsPbI3 cell at the tiny settings.

The energies of the summary tests are HAND-MADE inputs for the selection logic, not
physics: round numbers chosen so that each rule (lowest, threshold, failed trial) acts.
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from workflow_runner import snakemake, tiny_cp2k

from perovskite_defects import config as cfg
from perovskite_defects.engines.base import CalcRecord
from perovskite_defects.engines.cp2k import EV_PER_ANGSTROM_TO_HA_PER_BOHR
from perovskite_defects.steps import hosts as steps_hosts
from perovskite_defects.steps import params as sp
from perovskite_defects.steps import search
from perovskite_defects.steps.calculations import run_calculation
from perovskite_defects.steps.common import host_plan
from perovskite_defects.steps.defects import write_manifest_files
from perovskite_defects.steps.tables import _with_search_start

SCREEN = ["Bond_Distortion_-40.0%", "Bond_Distortion_-20.0%", "Bond_Distortion_0.0%"]
SCREEN += ["Bond_Distortion_20.0%", "Bond_Distortion_40.0%"]


def _study(**extra: object) -> dict:
    """V_I (one representative) in a [2, 1, 1] CsPbI3 cell at the tiny settings, screened."""
    cp2k = tiny_cp2k()
    cp2k["settings"]["relax_radius"] = 6.0
    return {
        "study": "gss",
        "host": {"lattice_constant": 6.30, "relax": True, "supercell": [2, 1, 1]},
        "defects": [{"name": "V_I", "charges": [1], "representatives": 1}],
        "competing_phases": ["Cs", "Pb", "I2", "CsI", "PbI2"],
        "resources": {"mpi_ranks": 1},
        "ground_state_search": "screen",
        "cp2k": cp2k,
        **extra,
    }


def test_labels_follow_the_charge() -> None:
    """N from the charge (V_I: 0 at +1, 1 at 0, 2 at -1): Rattled when N = 0."""
    d = sp.search_distortions({"ground_state_search": "screen"})
    assert search.search_labels("V_I", 1, d) == ["Unperturbed", "Rattled"]
    assert search.search_labels("V_I", 0, d) == ["Unperturbed", *SCREEN]
    assert search.search_labels("V_I", -1, d) == ["Unperturbed", *SCREEN]
    full = sp.search_distortions({"ground_state_search": "full"})
    assert len(search.search_labels("Na_i", 0, full)) == 14
    assert search.search_labels("Na_Pb+V_I", 0, d) == []
    assert "complexes" in (search.not_searched("Na_Pb+V_I") or "")
    assert "no oxidation state for Cd" in (search.not_searched("Cd_i") or "")


def test_trials_refuse_unrelaxed_defects() -> None:
    config = cfg.validate({"ground_state_search": "screen"})  # fast level: relax_radius 0
    with pytest.raises(ValueError, match="'ground_state_search': screen relaxes defects.*0"):
        sp.search_trial_params(config)


@pytest.fixture()
def host_dirs(tmp_path: Path) -> tuple[dict, Path, Path]:
    """(config, manifest folder, bulk folder) of the study, without any DFT: the bulk
    supercell is the built host (what prepare_defect reads from supercell.json)."""
    config = cfg.validate(
        _study(defects=[{"name": "V_I", "charges": [1, 0], "representatives": 1}])
    )
    plan = host_plan(config, "CsPbI3")
    structures = tmp_path / "structures"
    steps_hosts.build_host_files(structures, **sp.host_structure_params(config, plan))
    host = json.loads((structures / "host.json").read_text())
    bulk = tmp_path / "bulk"
    bulk.mkdir()
    (bulk / "supercell.json").write_text(json.dumps({"structure": host["structure"]}))
    manifest = tmp_path / "defects"
    write_manifest_files(
        structures / "host.json",
        manifest,
        **sp.defect_manifest_params(config),
    )
    return config, manifest, bulk


def _distance_to(structure, frac, index: int) -> float:
    return float(structure.lattice.get_all_distances([frac], [structure[index].frac_coords])[0][0])


def test_trial_inputs_are_loose_relaxations_of_the_distorted_cell(host_dirs, tmp_path) -> None:
    from pymatgen.core import Structure

    config, manifest, bulk = host_dirs
    params = sp.search_trial_params(config)
    assert params["engine"]["settings"]["max_force"] == 0.1  # fast: 0.05 in production
    assert params["engine"]["settings"]["geo_max_iter"] == 40
    (defect_id,) = search.search_jobs(manifest / "manifest.tsv", [-0.4])
    assert defect_id == "V_I"
    out = tmp_path / "trial"
    search.prepare_trial(manifest, bulk, "V_I", 0, "Bond_Distortion_-40.0%", out, **params)
    inp = (out / "cp2k.inp").read_text()
    assert "RUN_TYPE GEO_OPT" in inp and "MAX_ITER 40" in inp
    force = float(re.search(r"MAX_FORCE (\S+)", inp).group(1))  # type: ignore[union-attr]
    assert force == pytest.approx(0.1 * EV_PER_ANGSTROM_TO_HA_PER_BOHR, rel=1e-3)
    info = json.loads((out / "trial.json").read_text())
    assert info["n_distorted_neighbours"] == 1 and info["distortion"] == -0.4
    cell = json.loads((out / "defect.json").read_text())  # a failure gets a failure record
    trial = Structure.from_file(out / "structure.vasp")
    (neighbour,) = info["distorted_neighbours"]
    assert _distance_to(trial, cell["frac_coords"], neighbour) == pytest.approx(
        0.6 * info["distances_before"][0], abs=1e-4
    )
    # Unperturbed: the defect cell as built, same inputs otherwise
    plain = tmp_path / "plain"
    search.prepare_trial(manifest, bulk, "V_I", 1, "Unperturbed", plain, **params)
    ideal = Structure.from_dict(cell["structure"])
    assert np.allclose(Structure.from_file(plain / "structure.vasp").frac_coords, ideal.frac_coords)
    with pytest.raises(ValueError, match="does not fit N = 0"):
        search.prepare_trial(manifest, bulk, "V_I", 1, "Bond_Distortion_20.0%", plain, **params)


def test_an_omitted_trial_is_recorded_not_run(tmp_path: Path) -> None:
    (tmp_path / "omitted.json").write_text(
        json.dumps({"charge": 0, "omitted": "two atoms 0.90 Å apart"})
    )
    run = {"engine": "cp2k", "cp2k": {"executable": "/nonexistent/cp2k"}, "scf_retries": 0}
    record = run_calculation(tmp_path, run=run, nprocs=1)
    assert math.isnan(record.energy)
    saved = CalcRecord.from_json(tmp_path / "record.json")
    assert saved.extra["failure"] == "omitted: two atoms 0.90 Å apart"


def _record(structure, energy: float, path: Path, **extra: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    CalcRecord(
        engine="cp2k",
        engine_version="test",
        energy=energy,
        charge=int(re.search(r"/q(-?\d+)/", path.as_posix()).group(1)),  # type: ignore[union-attr]
        scf_converged=not math.isnan(energy),
        geometry_converged=not math.isnan(energy),
        structure=structure.as_dict(),
        initial_energy=extra.pop("initial", None),  # type: ignore[arg-type]
        extra=dict(extra),
    ).to_json(path)
    return path


def test_summary_and_the_production_start(host_dirs, tmp_path: Path) -> None:
    from pymatgen.core import Structure

    config, manifest, bulk = host_dirs
    ideal = Structure.from_dict(
        json.loads((manifest.parent / "structures" / "V_I.json").read_text())["structure"]
    )
    moved = ideal.copy()
    moved.translate_sites([0], [0.01, 0.0, 0.0])  # the "relaxed" structure of the winner
    trials = tmp_path / "search"
    hand_made = {  # HAND-MADE energies (eV), see the module docstring
        "q0/Unperturbed": (-100.0, {"initial": -99.5}),
        "q0/Bond_Distortion_-40.0%": (-100.2, {}),  # 0.2 eV lower: a new ground state
        "q0/Bond_Distortion_20.0%": (math.nan, {"failure": "SCF not converged"}),
        "q1/Unperturbed": (-90.0, {"initial": -89.9}),
        "q1/Rattled": (-90.02, {}),  # lower, but within 0.05 eV
    }
    records = [
        _record(moved if "-40" in k else ideal, e, trials / k / "record.json", **x)
        for k, (e, x) in hand_made.items()
    ]
    out = tmp_path / "summary"
    summary = search.summarise_search(manifest, "V_I", records, out, min_e_diff=0.05)
    assert summary["lowest"]["0"]["label"] == "Bond_Distortion_-40.0%"
    assert summary["lowest"]["0"]["lowering_eV"] == pytest.approx(-0.2)
    assert summary["lowest"]["0"]["new_ground_state"] is True
    assert summary["lowest"]["1"]["new_ground_state"] is False
    assert [f["label"] for f in summary["failed"]] == ["Bond_Distortion_20.0%"]
    assert summary["failed"][0]["status"] == "failed: SCF not converged"
    assert summary["cross_charge_candidates"] == [
        {"charge": 1, "from_charge": 0, "label": "Bond_Distortion_-40.0%",
         "new_label": "Bond_Distortion_-40.0%_from_0"}
    ]  # fmt: skip
    with (out / "summary.csv").open() as fh:
        rows = {r["label"]: r for r in csv.DictReader(fh) if r["charge"] == "0"}
    assert float(rows["Bond_Distortion_-40.0%"]["relative_eV"]) == pytest.approx(-0.2)
    assert rows["Bond_Distortion_20.0%"]["energy_eV"] == ""  # a failed trial has no number
    assert (out / "summary.png").stat().st_size > 0

    # round 1 lists the cross-charge trial; once tried it is a trial like the others
    round1 = search.search_candidates(
        manifest, "V_I", records, tmp_path / "round1.json", min_e_diff=0.05
    )
    assert round1["cross_charge_candidates"] == summary["cross_charge_candidates"]
    cross = trials / "q1" / "Bond_Distortion_-40.0%_from_0"
    search.prepare_cross_trial(
        manifest, bulk, "V_I", 1, records[1], cross, **sp.search_trial_params(config)
    )
    assert np.allclose(Structure.from_file(cross / "structure.vasp").cart_coords, moved.cart_coords)
    assert "CHARGE 1" in (cross / "cp2k.inp").read_text()
    both = [*records, _record(moved, -90.3, cross / "record.json")]
    second = search.summarise_search(manifest, "V_I", both, out, min_e_diff=0.05)
    assert second["lowest"]["1"]["label"] == "Bond_Distortion_-40.0%_from_0"
    assert second["lowest"]["1"]["lowering_eV"] == pytest.approx(-0.3)
    assert second["cross_charge_candidates"] == []  # both directions tried or not needed
    search.summarise_search(manifest, "V_I", records, out, min_e_diff=0.05)  # round 1 again

    engine = sp.defect_inputs_searched_params(config)["engine"]
    for q, start in ((0, "Bond_Distortion_-40.0%"), (1, "ideal site")):
        calc = tmp_path / f"V_I_q{q}"
        made = search.prepare_searched_defect(
            manifest, bulk, "V_I", q, calc, out / "summary.json", engine=engine
        )
        assert json.loads((calc / "start.json").read_text()) == made
        assert made["start"] == start
        first = Structure.from_file(calc / "structure.vasp")
        expected = moved if q == 0 else ideal
        assert np.allclose(first.cart_coords, expected.cart_coords, atol=1e-6)
    # the relaxation energy of the run from a trial is measured from the ideal site
    relaxed = CalcRecord.from_json(records[1])
    relaxed.initial_energy = -100.19  # its own first step: the trial structure
    assert _with_search_start(relaxed, tmp_path / "V_I_q0").relaxation_energy == pytest.approx(
        -100.2 + 99.5
    )


def _job_counts(output: str) -> dict[str, int]:
    table = output[output.index("Job stats:") :]
    return {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_dry_run_plans_the_trials_only_when_the_search_is_on(tmp_path: Path) -> None:
    """After the manifest (pure Python), screen plans Unperturbed + Rattled for V_I(+1) and
    V_I(0)'s five distortions + Unperturbed, their runs, round 1 and one summary; off
    plans none. With round 1 done (its trial records HAND-MADE, V_I(0) lower at -40 %),
    the summary waits for that structure relaxed in charge +1."""
    study = _study(defects=[{"name": "V_I", "charges": [1, 0], "representatives": 1}])
    manifest = "results/gss/CsPbI3/defects/manifest.tsv"
    proc = snakemake(tmp_path, study, "--cores", "1", manifest, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = snakemake(tmp_path, study, "--cores", "1", "-n", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = _job_counts(proc.stdout)
    assert jobs["search_trial"] == 8 and jobs["search_summary"] == 1
    assert jobs["search_round1"] == 1 and "search_cross_trial" not in jobs  # known later
    assert jobs["defect_inputs_searched"] == 2 and "defect_inputs" not in jobs
    planned = set(re.findall(r"defects/V_I/search/(q-?\d+/[^/]+)/record\.json", proc.stdout))
    first_round = {"q1/Unperturbed", "q1/Rattled"} | {f"q0/{x}" for x in ["Unperturbed", *SCREEN]}
    assert planned == first_round
    off = snakemake(tmp_path, {**study, "ground_state_search": "off"}, "--cores", "1", "-n")
    assert off.returncode == 0, off.stderr[-3000:]
    jobs_off = _job_counts(off.stdout)
    assert "/search/" not in off.stdout and "search_" not in off.stdout
    assert jobs_off["defect_inputs"] == 2
    assert jobs["run_calculation"] - jobs_off["run_calculation"] == 8

    # round 1 as if run: hand-made records, its checkpoint output, a bulk input file
    from pymatgen.core import Structure

    results = tmp_path / "results/gss/CsPbI3"
    cell = json.loads((results / "structures/V_I.json").read_text())["structure"]
    folder = results / "defects/V_I/search"
    records = [
        _record(Structure.from_dict(cell), -100.3 if "-40" in t else -100.0,
                folder / t / "record.json")
        for t in first_round
    ]  # fmt: skip
    search.search_candidates(
        results / "defects", "V_I", records, folder / "round1.json", min_e_diff=0.05
    )
    (results / "bulk").mkdir()
    (results / "bulk/calc.json").write_text("{}")
    rules = ["search_summary", "search_round1", "search_cross_trial", "run_calculation"]
    target = str(folder.relative_to(tmp_path) / "summary.json")
    proc = snakemake(
        tmp_path, study, "--cores", "1", "-n", "--allowed-rules", *rules, "defect_manifest",
        "--", target,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _job_counts(proc.stdout) == {
        "search_cross_trial": 1, "run_calculation": 1, "search_summary": 1, "total": 3
    }  # fmt: skip
    cross = "search/q1/Bond_Distortion_-40.0%_from_0"
    assert f"{cross}/record.json" in proc.stdout
    assert "search/q0/Bond_Distortion_-40.0%/record.json" in proc.stdout  # its source


@pytest.mark.long
def test_real_search_of_the_iodine_vacancy(tmp_path: Path, cp2k_binary: str) -> None:
    """V_I(+1) in a [2, 1, 1] CsPbI3 cell (9 atoms) at the tiny CP2K settings, screened:
    N = 0 at +1, so the trials are Unperturbed and Rattled; both relax to an energy, the
    summary is written, and the production inputs start where the rule says (the lowest
    trial if more than 0.05 eV below Unperturbed, else the ideal site). Cost: see
    docs/physics-and-settings.md "Ground-state search"."""
    from pymatgen.core import Structure

    folder = "results/gss/CsPbI3/defects"
    targets = [f"{folder}/V_I/search/summary.json", f"{folder}/V_I_q1/calc.json"]
    proc = snakemake(tmp_path, _study(), "--cores", "2", *targets, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = json.loads((tmp_path / targets[0]).read_text())
    assert {t["label"] for t in summary["trials"]} == {"Unperturbed", "Rattled"}
    for trial in summary["trials"]:
        assert trial["status"] == "relaxed", trial
        assert math.isfinite(trial["energy_eV"])
        record = CalcRecord.from_json(tmp_path / trial["record"])
        assert record.geometry_converged and record.initial_energy is not None
    assert (tmp_path / folder / "V_I/search/summary.png").stat().st_size > 0
    lowest = summary["lowest"]["1"]
    start = json.loads((tmp_path / folder / "V_I_q1/start.json").read_text())
    assert start["lowest_trial"] == lowest["label"]
    assert start["lowering_eV"] == pytest.approx(lowest["lowering_eV"])
    chosen = lowest["label"] if lowest["lowering_eV"] < -0.05 else "ideal site"
    assert start["start"] == chosen
    first = Structure.from_file(tmp_path / folder / "V_I_q1/structure.vasp")
    if chosen == "ideal site":
        expected = Structure.from_dict(
            json.loads((tmp_path / folder / "V_I_q1/defect.json").read_text())["structure"]
        )
    else:
        expected = CalcRecord.from_json(tmp_path / lowest["record"]).pmg_structure()
    assert np.allclose(first.cart_coords, expected.cart_coords, atol=1e-5)


def test_provenance_names_the_search_start(tmp_path: Path) -> None:
    from pymatgen.core import Lattice, Structure

    from perovskite_defects.steps.tables import _run_provenance
    from perovskite_defects.thermodynamics.host_results import DefectRun

    cell = Structure(Lattice.cubic(6.3), ["Pb"], [[0, 0, 0]])
    record = CalcRecord.from_json(_record(cell, -10.0, tmp_path / "q1" / "record.json"))
    run = DefectRun("V_I", record, {"I": -1}, 1.0, 0.1)
    folder = tmp_path / "q1"
    (folder / "correction.json").write_text(json.dumps({"total": 0.1}))
    assert "search_start" not in _run_provenance(run, folder)  # search off: as before
    start = {"start": "Rattled", "lowering_eV": -0.2, "vertical_energy_eV": -9.5}
    (folder / "start.json").write_text(json.dumps(start))
    assert _run_provenance(run, folder)["search_start"] == start
