"""The Snakemake workflow end to end, with the real CP2K engine on a tiny study."""

from __future__ import annotations

import csv
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")

# A vacancy and a dopant in a 5-atom cell at a low cutoff: every DFT job takes seconds.
TINY = {
    "study": "tiny",
    "host": {"lattice_constant": 6.30, "relax": True, "supercell": [1, 1, 1]},
    "defects": [{"name": "V_I", "charges": [1, 0, -1]}, {"name": "Na_Cs", "charges": [0]}],
    "competing_phases": ["Cs", "Pb", "I2", "Na", "CsI", "PbI2", "NaI"],
    "resources": {"mpi_ranks": 1},
    "cp2k": {
        "settings": {
            "cutoff_ry": 150,
            "rel_cutoff_ry": 30,
            "kpoint_length": 10.0,
            "supercell_kpoints": "length",
        }
    },
}


def snakemake(workdir: Path, config: dict, *args: str, timeout: int = 1200):
    cfg_path = workdir / "study.yaml"
    cfg_path.write_text(yaml.safe_dump(config))
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    cmd = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(workdir)]
    cmd += ["--configfile", str(cfg_path), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def test_invalid_config_stops_before_any_job(tmp_path: Path) -> None:
    bad = dict(TINY, host={"B": "Ge"})
    proc = snakemake(tmp_path, bad, "--cores", "1", "-n")
    assert proc.returncode != 0
    assert "invalid configuration: config key 'host.B': 'Ge' is not one of" in (
        proc.stdout + proc.stderr
    )
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_tiny_study_end_to_end(tmp_path: Path, cp2k_binary: str) -> None:
    proc = snakemake(tmp_path, TINY, "--cores", "2")
    assert proc.returncode == 0, proc.stderr[-4000:]
    tables = tmp_path / "results" / "tiny" / "tables"
    for name in ("formation_energies", "transition_levels"):
        assert (tables / f"{name}.csv").is_file()
        assert (tables / f"{name}.md").read_text().startswith("#")
    with open(tables / "formation_energies.csv") as fh:
        all_rows = list(csv.DictReader(fh))
    assert {(r["defect"], int(r["charge"])) for r in all_rows} == {
        ("V_I", 1),
        ("V_I", 0),
        ("V_I", -1),
        ("Na_Cs", 0),
    }
    rows = [r for r in all_rows if r["defect"] == "V_I"]
    limit_columns = [c for c in rows[0] if c.startswith("E_f[")]
    assert {"E_f[I-rich] (eV)", "E_f[I-poor] (eV)"} <= set(limit_columns)
    for row in rows:
        assert row["converged"] == "True"
        for column in limit_columns:
            assert math.isfinite(float(row[column]))
    # Known physics: the iodine vacancy is a donor; at E_F = VBM its +1 state is lowest.
    for column in limit_columns:
        by_charge = {int(r["charge"]): float(r[column]) for r in rows}
        assert by_charge[1] < by_charge[0] < by_charge[-1]
    # I-poor conditions make iodine vacancies cheaper than I-rich ones.
    neutral = next(r for r in rows if int(r["charge"]) == 0)
    assert float(neutral["E_f[I-poor] (eV)"]) < float(neutral["E_f[I-rich] (eV)"])
    assert (tables / "provenance.json").is_file()
    # trap classes, Fermi level and concentrations, plots, and the Snakemake report
    with open(tables / "transition_levels.csv") as fh:
        level_columns = next(csv.reader(fh))
    for column in ("nearest edge", "depth from nearest edge (eV)", "in gap", "class",
                   "states of q"):  # fmt: skip
        assert column in level_columns
    with open(tables / "fermi_level.csv") as fh:
        fermi = list(csv.DictReader(fh))
    assert {r["limit"] for r in fermi} == {"I-rich", "I-poor"}
    for row in fermi:
        assert math.isfinite(float(row["Fermi level above VBM (eV)"]))
        assert float(row["n (cm^-3)"]) > 0 and float(row["p (cm^-3)"]) > 0
    with open(tables / "concentrations.csv") as fh:
        conc = list(csv.DictReader(fh))
    assert {int(r["charge"]) for r in conc} == {1, 0, -1}
    assert all(float(r["concentration (cm^-3)"]) >= 0 for r in conc)
    # what Na changes: the study's Fermi level with Na against the native defects alone
    with open(tables / "dopant_effect.csv") as fh:
        effect = {r["limit"]: r for r in csv.DictReader(fh)}
    with open(tables / "transition_levels.csv") as fh:
        deep = {r["defect"] for r in csv.DictReader(fh) if r["class"] == "deep"}
    assert set(effect) == {"I-rich", "I-poor"}
    for row in fermi:
        doped = effect[row["limit"]]
        assert doped["dopants"] == "Na"
        assert float(doped["Fermi level, with dopants (eV)"]) == float(
            row["Fermi level above VBM (eV)"]
        )
        assert math.isfinite(float(doped["Fermi level, native only (eV)"]))
        assert set(doped["deep-trap defects"].split()) == deep
    plots = tmp_path / "results" / "tiny" / "plots"
    for stem in ("formation_energy_CsPbI3_I-rich", "formation_energy_CsPbI3_I-poor",
                 "trap_levels"):  # fmt: skip
        assert (plots / f"{stem}.png").stat().st_size > 1000
        assert (plots / f"{stem}.svg").read_text().lstrip().startswith("<?xml")
    report = snakemake(tmp_path, TINY, "--report", str(tmp_path / "report.html"))
    assert report.returncode == 0, report.stderr[-3000:]
    html = (tmp_path / "report.html").read_text()
    assert "transition_levels.csv" in html and "trap_levels.png" in html

    # The host went through the variable-cell relaxation and stayed cubic (its lattice
    # constant against the literature is checked at converged settings in
    # test_cp2k_engine.py; this tiny k-mesh puts the minimum near 6.31 Å).
    from perovskite_defects.engines.base import CalcRecord

    host = CalcRecord.from_json(tmp_path / "results/tiny/CsPbI3/unitcell/record.json")
    assert host.geometry_converged is True
    a, b, c = host.pmg_structure().lattice.abc
    assert a == pytest.approx(b) == pytest.approx(c)

    # A second run has nothing to do.
    again = snakemake(tmp_path, TINY, "--cores", "2", "-n")
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr
