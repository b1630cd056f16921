"""host.stability in the workflow: config, dry run, and the bulk taken from stability.json.

Quick tests (no DFT): the config block (defaults, refusals), the dry run of a study with
``check: true`` (a host_stability job per host; the bulk reads its result, not the
end-member unit cells), the bulk supercell built from a stability result, and the CLI's
refusals. The stability result used for the bulk is hand-made from the host structure
(it tests only that the bulk takes the result's cell and positions).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from test_lattice_mode import _jobs
from workflow_runner import snakemake, tiny

from perovskite_defects import cli
from perovskite_defects import config as cfg
from perovskite_defects.engines.base import EngineError
from perovskite_defects.hosts.stability import HostStability, StabilityRound
from perovskite_defects.hosts.stability_run import stability_engine
from perovskite_defects.steps import hosts as steps_hosts
from perovskite_defects.steps import params as sp
from perovskite_defects.steps.common import host_plan

TINY = tiny()  # tests/configs/tiny.yaml
STUDY = {**TINY, "study": "stab", "host": {**TINY["host"], "stability": {"check": True}}}


def test_defaults_and_refusals() -> None:
    block = cfg.validate({})["host"]["stability"]
    assert block["check"] is False  # the default study does not run it
    assert block["tolerance_thz"] == -0.3 and block["max_rounds"] == 4
    for raw, message in (
        ({"host": {"stability": {"tolerance_thz": 0.2}}}, "host.stability.tolerance_thz"),
        ({"host": {"stability": {"rounds": 2}}}, "host.stability"),
        (
            {"engine": "vasp", "host": {"stability": {"check": True}}},
            "config key 'host.stability.check': needs engine cp2k",
        ),
    ):
        with pytest.raises(cfg.ConfigError) as err:
            cfg.validate(raw)
        assert message in str(err.value) and "\n" not in str(err.value)


def test_check_runs_use_a_symmetric_mesh_and_tight_thresholds() -> None:
    config = cfg.validate(STUDY | {"cp2k": {"settings": {"supercell_kpoints": "mean_value"}}})
    settings = stability_engine(sp.engine_inputs(config))["settings"]
    assert settings["supercell_kpoints"] == "length"
    assert settings["max_force"] <= 0.01


def test_dry_run_checks_each_host_and_takes_the_bulk_from_it(tmp_path: Path) -> None:
    proc = snakemake(tmp_path, STUDY, "--cores", "1", "-n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = _jobs(proc.stdout)
    stab = [(i, o) for r, i, o in jobs if r == "host_stability"]
    assert stab == [
        ("results/stab/CsPbI3/structures/host.json", "results/stab/CsPbI3/stability/stability.json")
    ]
    (bulk_in,) = [i for r, i, _ in jobs if r == "bulk_inputs"]
    assert bulk_in.split(", ") == [
        "results/stab/CsPbI3/structures/host.json",
        "results/stab/CsPbI3/stability/stability.json",
    ]
    # the host energy of the chemical potentials is the stable bulk's, not the cubic cell's
    assert not any("/CsPbI3/unitcell/" in i + o for _, i, o in jobs)
    # check false (the default): no stability job
    proc = snakemake(tmp_path, TINY, "--cores", "1", "-n")
    assert "host_stability" not in [r for r, _, _ in _jobs(proc.stdout)]


def _result(structure: Structure, stable: bool = True) -> HostStability:
    """A hand-made result (numbers only for the bulk to copy, not physics)."""
    entry = StabilityRound(1, -100.0, "P4/mbm", 127, 4, 0.001, 0.5, 0, [0.0, 0.5])
    return HostStability(
        stable=stable,
        rounds=1,
        lowest_frequency_thz=0.5,
        n_imaginary=0,
        space_group="P4/mbm",
        space_group_number=127,
        tilt_pattern="a0a0c+",
        formula_units=1,
        energy_per_fu_vs_reference=-0.02,
        reference_energy=-99.98,
        reference_space_group="Pm-3m",
        structure=structure.as_dict(),
        history=[entry],
        settings={},
    )


def test_bulk_is_the_stable_supercell(tmp_path: Path) -> None:
    config = cfg.validate(STUDY)
    plan = host_plan(config, "CsPbI3")
    steps_hosts.build_host_files(tmp_path / "structures", **sp.host_structure_params(config, plan))
    host_json = tmp_path / "structures" / "host.json"
    host = json.loads(host_json.read_text())
    assert host["metadata"]["stability"] == "stability/stability.json"
    assert host["metadata"]["lattice_source"] == "relaxed (stability check)"
    stable = Structure.from_dict(host["structure"])
    stable.lattice = Lattice.orthorhombic(6.35, 6.35, 6.42)
    stable.translate_sites([2], [0.02, 0.0, 0.0], frac_coords=True)
    _result(stable).to_json(tmp_path / "stability.json")
    records = {"stable": str(tmp_path / "stability.json")}
    bulk_params = sp.bulk_inputs_params(config, plan)
    steps_hosts.prepare_bulk(host_json, records, tmp_path / "bulk", **bulk_params)
    info = json.loads((tmp_path / "bulk" / "supercell.json").read_text())
    assert info["lattice_source"] == "relaxed (stability check)"
    assert info["stability"]["tilt_pattern"] == "a0a0c+"
    assert info["stability"]["energy_per_fu_vs_reference"] == -0.02
    bulk = Structure.from_dict(info["structure"])
    assert np.allclose(bulk.frac_coords, stable.frac_coords)
    assert "RUN_TYPE ENERGY\n" in (tmp_path / "bulk" / "cp2k.inp").read_text()
    other = stable.copy()
    other.replace(0, "Rb")
    _result(other).to_json(tmp_path / "wrong.json")
    with pytest.raises(EngineError, match="atoms are not those of"):
        steps_hosts.prepare_bulk(
            host_json, {"stable": str(tmp_path / "wrong.json")}, tmp_path / "b2", **bulk_params
        )


def test_cli_refusals(tmp_path: Path, capsys) -> None:
    code = cli.main(["check-stability", str(tmp_path / "none.cif"), "--workdir", str(tmp_path)])
    assert code == 1
    assert "none.cif: structure file not found" in capsys.readouterr().err
    poscar = tmp_path / "POSCAR"
    Structure(Lattice.cubic(4), ["Cs", "Cl"], [[0, 0, 0], [0.5] * 3]).to(filename=str(poscar))
    code = cli.main(
        ["check-stability", str(poscar), "--workdir", str(tmp_path), "--tolerance-thz", "1"]
    )
    assert code == 1 and "host.stability.tolerance_thz: 1.0" in capsys.readouterr().err
    code = cli.main(
        ["check-stability", str(poscar), "--workdir", str(tmp_path), "--set", "cutof_ry=1"]
    )
    assert code == 1 and "unknown key(s) cutof_ry" in capsys.readouterr().err


def test_engine_adapter_reuses_converged_records(tmp_path: Path) -> None:
    """A folder with a converged record is not run again (a killed check resumes); a
    record without forces is refused. Records hand-made (no engine)."""
    from perovskite_defects.engines.base import CalcRecord
    from perovskite_defects.hosts.stability import StabilityError
    from perovskite_defects.hosts.stability_run import EngineCalculator

    cell = Structure(Lattice.cubic(4), ["Cs", "Cl"], [[0, 0, 0], [0.5] * 3])
    record = CalcRecord("cp2k", "hand-made", -10.0, 0, True, None, cell.as_dict())
    record.forces = [[0.1, 0.0, 0.0], [-0.1, 0.0, 0.0]]
    (tmp_path / "f").mkdir()
    record.to_json(tmp_path / "f" / "record.json")
    config = cfg.validate(STUDY)
    calc = EngineCalculator(sp.engine_inputs(config), sp.run_params(config, None, 1, 1)["run"])
    forces, energy = calc.forces(cell, tmp_path / "f")
    assert energy == -10.0 and forces.tolist() == record.forces and calc.runs == []
    record.forces = None
    (tmp_path / "g").mkdir()
    record.to_json(tmp_path / "g" / "record.json")
    with pytest.raises(StabilityError, match="g: engine cp2k gave no forces"):
        calc.forces(cell, tmp_path / "g")
