"""The VASP path through the real Snakemake workflow.

1. ``engine: vasp`` on the default study writes complete VASP inputs for every calculation.
2. The test-only replay engine stands in for running VASP on the recorded CdTe V_Cd^-2
   runs: the VASP input writer prepares the job folders, the run rule copies the recorded
   outputs in, and the VASP parser, convergence rules and correction rule run on them,
   reproducing the published numbers.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from perovskite_defects import config as cfg
from perovskite_defects.defect_sets import manifest_jobs
from perovskite_defects.engines import REPLAY_ENV, vasp
from perovskite_defects.engines.base import CalcRecord, CalcSpec

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def snakemake(workdir: Path, config: dict, *args: str, env: dict | None = None):
    cfg_path = workdir / "study.yaml"
    cfg_path.write_text(yaml.safe_dump(config))
    cmd = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(workdir)]
    cmd += ["--configfile", str(cfg_path), "--cores", "1", *args]
    full_env = {k: v for k, v in os.environ.items() if k not in ("PMG_VASP_PSP_DIR", REPLAY_ENV)}
    full_env.update(env or {})
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env=full_env)


def _incar(folder: Path) -> dict:
    from pymatgen.io.vasp.inputs import Incar

    return dict(Incar.from_file(str(folder / "INCAR")))


def _expected_nelect(folder: Path, charge: int) -> float:
    from pymatgen.io.vasp.inputs import Poscar

    symbols = (folder / "POTCAR.spec").read_text().split()
    counts = Poscar.from_file(str(folder / "POSCAR")).natoms
    return sum(vasp.RECOMMENDED_ZVAL[s] * n for s, n in zip(symbols, counts, strict=True)) - charge


def test_engine_vasp_writes_inputs_for_the_whole_default_study(tmp_path: Path) -> None:
    config = {"engine": "vasp"}
    full = cfg.validate(config)
    study, host = full["study"], cfg.host_name(full)
    results = tmp_path / "results" / study

    dry = snakemake(tmp_path, config, "-n")
    assert dry.returncode == 0, dry.stderr[-3000:]
    n_phases = len(full["competing_phases"])
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", dry.stdout, re.M))
    # Defect jobs join the DAG once the defect_manifest checkpoint has run.
    assert int(jobs["run_calculation"]) == 1 + n_phases + 1
    assert int(jobs["defect_manifest"]) == 1

    # Host and phase inputs and the defect manifest need nothing computed first.
    first = [f"results/{study}/{host}/unitcell/calc.json"]
    first += [f"results/{study}/phases/{p}/calc.json" for p in full["competing_phases"]]
    first += [f"results/{study}/{host}/defects/manifest.tsv"]
    proc = snakemake(tmp_path, config, *first)
    assert proc.returncode == 0, proc.stderr[-3000:]
    defect_jobs = manifest_jobs(results / host / "defects")
    n_defects = len(defect_jobs)
    assert n_defects > 0
    dry = snakemake(tmp_path, config, "-n")
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", dry.stdout, re.M))
    assert int(jobs["run_calculation"]) == 1 + n_phases + 1 + n_defects
    assert int(jobs["defect_inputs"]) == n_defects
    # Bulk and defect inputs need the relaxed host, which VASP would give. As a stand-in
    # (inputs only; no energy from it is used) the record holds the unrelaxed prototype.
    from pymatgen.core import Structure

    unit_dir = results / host / "unitcell"
    prototype = Structure.from_file(str(unit_dir / "initial.cif"))
    CalcRecord(
        engine="vasp",
        engine_version="test stand-in: unrelaxed prototype, for input writing only",
        energy=float("nan"),
        charge=0,
        scf_converged=True,
        geometry_converged=True,
        structure=prototype.as_dict(),
    ).to_json(unit_dir / "record.json")
    second = [f"results/{study}/{host}/bulk/calc.json"]
    second += [f"results/{study}/{host}/defects/{d}_q{q}/calc.json" for d, q in defect_jobs]
    only = ("--allowed-rules", "bulk_inputs", "defect_inputs")
    proc = snakemake(tmp_path, config, *second, "--rerun-triggers", "mtime", *only)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "run_calculation" not in proc.stdout + proc.stderr  # nothing was run

    folders = [unit_dir, results / host / "bulk"]
    folders += [results / "phases" / p for p in full["competing_phases"]]
    defect_folders = sorted(p for p in (results / host / "defects").iterdir() if p.is_dir())
    folders += defect_folders
    assert len(folders) == 2 + n_phases + n_defects
    for folder in folders:
        for name in ("INCAR", "KPOINTS", "POSCAR", "POTCAR.spec", "calc.json"):
            assert (folder / name).is_file(), folder / name
        assert not (folder / "POTCAR").exists()
        meta = json.loads((folder / "calc.json").read_text())
        tags = _incar(folder)
        assert meta["engine"] == "vasp"
        assert tags["ISPIN"] == 2
        assert tags["NELECT"] == _expected_nelect(folder, meta["charge"])
        if meta["role"] in ("bulk", "defect"):
            assert (tags["ISYM"], tags["LVHAR"]) == (0, True)
            assert meta["kpoint_mesh"] == [2, 2, 2]
    assert _incar(unit_dir)["ISIF"] == 3
    for folder in defect_folders:
        charge = int(folder.name.rsplit("_q", 1)[1])
        assert json.loads((folder / "calc.json").read_text())["charge"] == charge
        tags = _incar(folder)
        assert (tags["ISIF"], tags["IBRION"]) == (2, 2)  # relaxed at fixed cell (6 Å radius)
        assert "Selective dynamics" in (folder / "POSCAR").read_text()


# --------------------------------------------------------------------------- replay

# Settings of the recorded CdTe runs (their INCARs): HSE06 with HFSCREEN 0.208, 350 eV,
# Gamma only. The replay engine refuses the recordings unless our inputs agree.
CDTE_VASP = {
    "command": "srun vasp_gam",
    "settings": {
        "functional": "hse06",
        "encut": 350.0,
        "supercell_kpoints": "gamma",
        "relax_radius": 0.0,
        "incar": {"HFSCREEN": 0.208},
    },
}
PAIRS = {
    "ordered": ("bulk_vasp_gam", "v_Cd_-2_vasp_gam"),
    "reordered": ("bulk_vasp_gam_alt", "v_Cd_-2_choppy_changy_vasp_gam"),
}


def _prepare_cdte(workdir: Path, study: str, reference: Path, pair: tuple[str, str]) -> dict:
    """Job folders for the recorded pair, written by the VASP engine's input writer."""
    from perovskite_defects.corrections import locate_defect
    from perovskite_defects.defects import DefectCell
    from perovskite_defects.engines.vasprun import read_vasprun

    settings = vasp.VaspSettings.from_config(CDTE_VASP["settings"])
    bulk_s = read_vasprun(reference / pair[0] / "vasprun.xml.gz").structure()
    defect_s = read_vasprun(reference / pair[1] / "vasprun.xml.gz").structure()
    bulk_dir = f"results/{study}/CdTe/bulk"
    defect_dir = f"results/{study}/CdTe/defects/V_Cd_q-2"
    vasp.write_input(
        bulk_s, CalcSpec("static", "bulk", band_edges=True), settings, workdir / bulk_dir
    )
    vasp.write_input(defect_s, CalcSpec("static", "defect", -2), settings, workdir / defect_dir)
    kind, frac = locate_defect(bulk_s, defect_s)
    assert kind == "vacancy"
    DefectCell(
        name="V_Cd",
        kind=kind,
        charges=[-2],
        atoms_added={"Cd": -1},
        multiplicity=1,
        frac_coords=[float(x) for x in frac],
        structure=defect_s.as_dict(),
    ).to_json(workdir / defect_dir / "defect.json")
    return {bulk_dir: str(reference / pair[0]), defect_dir: str(reference / pair[1])}


def test_replay_recorded_cdte_through_the_workflow(cdte_reference: Path, tmp_path: Path) -> None:
    config = {
        "engine": "vasp",
        "vasp": CDTE_VASP,
        "correction": "fnv",
        "dielectric": {"value": 9.13, "source": "CdTe reference README"},
    }
    recordings: dict[str, str] = {}
    for study, pair in PAIRS.items():
        recordings |= _prepare_cdte(tmp_path, study, cdte_reference, pair)
    plan = tmp_path / "replay_plan.json"
    plan.write_text(json.dumps({"recordings": recordings}))
    targets = [f"results/{s}/CdTe/defects/V_Cd_q-2/correction.json" for s in PAIRS]

    # Snakemake runs the run and defect-analysis (correction) rules; the inputs are the
    # VASP writer's.
    # (--allowed-rules takes several values: it goes after the targets.)
    only = ("--allowed-rules", "run_calculation", "defect_analysis")
    proc = snakemake(tmp_path, config, *targets, *only, env={REPLAY_ENV: str(plan)})
    assert proc.returncode == 0, proc.stderr[-4000:]
    numbers = {}
    for study in PAIRS:
        base = tmp_path / "results" / study / "CdTe"
        bulk = CalcRecord.from_json(base / "bulk" / "record.json")
        defect = CalcRecord.from_json(base / "defects/V_Cd_q-2/record.json")
        corr = json.loads((base / "defects/V_Cd_q-2/correction.json").read_text())
        assert defect.extra["replayed_from"].endswith(PAIRS[study][1])
        assert (bulk.engine, defect.charge, defect.nelect) == ("vasp", -2, 566.0)
        numbers[study] = (defect.energy - bulk.energy, bulk.vbm, bulk.band_gap, corr["total"])
        raw, vbm, gap, fnv = numbers[study]
        # known answers of the reference README (doped 3.2.1 and its test suite)
        assert raw == pytest.approx(7.4480, abs=1e-3)
        assert vbm == pytest.approx(1.5968, abs=1e-3)
        assert gap == pytest.approx(1.469, abs=5e-3)
        assert fnv == pytest.approx(0.7278, abs=0.01)
    assert numbers["reordered"] == pytest.approx(numbers["ordered"], abs=1e-5)

    # Without the test variable the same workflow runs VASP itself: here it stops at the
    # missing POTCAR, naming the setting, and writes no record.
    record = tmp_path / "results/ordered/CdTe/bulk/record.json"
    record.unlink()
    proc = snakemake(tmp_path, config, str(record.relative_to(tmp_path)), *only)
    assert proc.returncode != 0
    log = (tmp_path / "logs/ordered/CdTe/bulk/run.log").read_text()
    assert "PMG_VASP_PSP_DIR is not set" in log
    assert not record.exists()


def test_replay_refuses_a_recording_of_other_inputs(cdte_reference: Path, tmp_path: Path) -> None:
    config = {"engine": "vasp", "vasp": CDTE_VASP}
    recordings = _prepare_cdte(tmp_path, "swap", cdte_reference, PAIRS["ordered"])
    bulk_dir, defect_dir = list(recordings)
    # the bulk job is given the defect's recording: a different structure and charge
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"recordings": {bulk_dir: recordings[defect_dir]}}))
    proc = snakemake(
        tmp_path,
        config,
        f"{bulk_dir}/record.json",
        *("--allowed-rules", "run_calculation"),
        env={REPLAY_ENV: str(plan)},
    )
    assert proc.returncode != 0
    log = (tmp_path / "logs/swap/CdTe/bulk/run.log").read_text()
    assert "has charge -2, inputs 0" in log
    assert not (tmp_path / bulk_dir / "record.json").exists()
