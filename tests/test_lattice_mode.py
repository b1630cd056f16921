"""lattice_mode relax: each host supercell relaxes itself (cell and positions) and is the bulk.

Quick tests: the plan (no end members), bad input, the workflow's dry run (a relax job per
host, no unit cells, no Vegard inputs), the inputs of the relaxation for both engines, and
the bulk taken from a relaxation record. The slow test relaxes a 10-atom CsSn0.5Pb0.5I3
SQS with the real CP2K.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from workflow_runner import snakemake, study_config, tiny_cp2k

from perovskite_defects import config as cfg
from perovskite_defects.engines.base import CalcRecord, EngineError
from perovskite_defects.steps import hosts as steps_hosts
from perovskite_defects.steps import params as sp
from perovskite_defects.steps.common import host_plan
from perovskite_defects.study import end_member_plans, plan_hosts

ALLOY = "CsSn0.5Pb0.5I3"
# The compositions, defects and phases of tests/configs/two_compositions.yaml, each host
# supercell relaxed itself.
SWEEP = {
    **study_config("two_compositions"),
    "study": "relax2",
    "host": {"lattice_constant": 6.30, "supercell": [2, 1, 1], "lattice_mode": "relax"},
}


def _with(base: dict, **host) -> dict:
    return {**base, "host": {**base["host"], **host}}


def test_plan_relax_mode_needs_no_end_members() -> None:
    config = cfg.validate(SWEEP)
    plans = plan_hosts(config, cfg.PROJECT_ROOT)
    assert {p.name: p.lattice_mode for p in plans} == {"CsPbI3": "relax", ALLOY: "relax"}
    assert all(p.end_members == () for p in plans)
    assert end_member_plans(config, plans) == {}
    # the default is unchanged: Vegard between the two end members' unit cells
    vegard = plan_hosts(cfg.validate(_with(SWEEP, lattice_mode="vegard")), cfg.PROJECT_ROOT)
    alloy = next(p for p in vegard if p.name == ALLOY)
    assert alloy.lattice_mode == "vegard"
    assert set(alloy.end_members) == {"CsPbI3", "CsSnI3"}
    assert cfg.validate({})["host"]["lattice_mode"] == "vegard"


def test_one_composition_may_override_the_mode() -> None:
    config = cfg.validate(
        {
            **_with(SWEEP, lattice_mode="vegard"),
            "sweep": {
                "compositions": [
                    {"A": "Cs", "X": "I", "x": 0},
                    {"A": "Cs", "X": "I", "x": 0.5, "lattice_mode": "relax"},
                ]
            },
        }
    )
    plans = {p.name: p for p in plan_hosts(config, cfg.PROJECT_ROOT)}
    assert plans[ALLOY].end_members == ()
    # only the Vegard host's own unit cell is needed (not CsSnI3, the alloy's other end)
    assert set(end_member_plans(config, list(plans.values()))) == {"CsPbI3"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"host": {"lattice_mode": "fit"}},
            "config key 'host.lattice_mode': 'fit' is not one of ['vegard', 'relax']",
        ),
        (
            {"host": {"lattice_mode": "relax", "relax": False}},
            "config key 'host.lattice_mode': relax needs 'host.relax' true",
        ),
        (
            {"sweep": {"compositions": [{"A": "Cs", "X": "I", "x": 0, "lattice_mode": "x"}]}},
            "config key 'sweep.compositions.0.lattice_mode': 'x' is not one of",
        ),
        (
            {"host": {"framework": "any", "structure": "x.cif", "lattice_mode": "relax"}},
            "config key 'host.lattice_mode': relax is for perovskite hosts",
        ),
    ],
)
def test_bad_lattice_mode_is_one_line_error(raw: dict, message: str) -> None:
    with pytest.raises(cfg.ConfigError) as err:
        cfg.validate(raw)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def _jobs(output: str) -> list[tuple[str, str, str]]:
    """(rule, input, output) of every job of a dry-run printout."""
    jobs = []
    for block in re.split(r"\n(?=\[)", output):  # each job starts with "[<date>]"
        rule = re.search(r"^(?:rule|checkpoint) (\w+):", block, re.M)
        if rule:
            inp = re.search(r"^\s+input: (.*)$", block, re.M)
            out = re.search(r"^\s+output: (.*)$", block, re.M)
            jobs.append((rule.group(1), inp.group(1) if inp else "", out.group(1) if out else ""))
    return jobs


def test_dry_run_relaxes_each_supercell_without_vegard(tmp_path: Path) -> None:
    proc = snakemake(tmp_path, SWEEP, "--cores", "1", "-n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = _jobs(proc.stdout)
    rules = [r for r, _, _ in jobs]
    assert "host_inputs" not in rules  # no end-member unit cell at all
    assert not any("/unitcell/" in i + o for _, i, o in jobs)
    for host in ("CsPbI3", ALLOY):
        relax = [o for r, _, o in jobs if r == "supercell_relax_inputs" and f"/{host}/" in o]
        assert relax == [f"results/relax2/{host}/relax/calc.json"]
        runs = [o for r, _, o in jobs if r == "run_calculation"]
        assert f"results/relax2/{host}/relax/record.json" in runs
        (bulk_in,) = [i for r, i, o in jobs if r == "bulk_inputs" and f"/{host}/" in o]
        assert bulk_in.split(", ") == [
            f"results/relax2/{host}/structures/host.json",
            f"results/relax2/{host}/relax/record.json",
        ]
    # the same study in the default mode has the Vegard chain instead
    proc = snakemake(tmp_path, _with(SWEEP, lattice_mode="vegard"), "--cores", "1", "-n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = _jobs(proc.stdout)
    assert "supercell_relax_inputs" not in [r for r, _, _ in jobs]
    (bulk_in,) = [i for r, i, o in jobs if r == "bulk_inputs" and f"/{ALLOY}/" in o]
    assert "results/relax2/CsSnI3/unitcell/record.json" in bulk_in


@pytest.fixture()
def alloy_host(tmp_path: Path) -> tuple[dict, Path]:
    config = cfg.validate(SWEEP)
    params = sp.host_structure_params(config, host_plan(config, ALLOY))
    steps_hosts.build_host_files(tmp_path / "structures", **params)
    return config, tmp_path / "structures" / "host.json"


def test_host_metadata_records_relaxed_lattice(alloy_host) -> None:
    _, host_json = alloy_host
    meta = json.loads(host_json.read_text())["metadata"]
    assert (meta["lattice_mode"], meta["lattice_source"]) == ("relax", "relaxed")
    assert meta["start_lattice_source"] == "config" and meta["end_members"] == []


def test_relaxation_inputs_for_both_engines(alloy_host, tmp_path: Path) -> None:
    config, host_json = alloy_host
    params = sp.supercell_relax_inputs_params(config)
    steps_hosts.prepare_supercell_relax(host_json, tmp_path / "cp2k", **params)
    text = (tmp_path / "cp2k" / "cp2k.inp").read_text()
    assert "RUN_TYPE CELL_OPT" in text and "STRESS_TENSOR ANALYTICAL" in text
    assert "KEEP_SYMMETRY" not in text and "SYMMETRY CUBIC" not in text  # an SQS has none
    assert len(re.findall(r"^\s+(Cs|Sn|Pb|I) ", text, re.M)) == 10  # the whole supercell

    from pymatgen.io.vasp.inputs import Incar

    vasp_config = cfg.validate({**SWEEP, "engine": "vasp"})
    params = sp.supercell_relax_inputs_params(vasp_config)
    steps_hosts.prepare_supercell_relax(host_json, tmp_path / "vasp", **params)
    incar = Incar.from_file(str(tmp_path / "vasp" / "INCAR"))
    assert (incar["IBRION"], incar["ISIF"], incar["ISYM"]) == (2, 3, 0)


def _record(structure, path: Path, converged: bool = True) -> Path:
    """A record as an engine writes it after a cell relaxation (hand-made: the numbers
    here only test that the bulk takes the record's cell and positions)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    CalcRecord(
        engine="cp2k",
        engine_version="hand-made",
        energy=-1000.0,
        charge=0,
        scf_converged=True,
        geometry_converged=converged,
        structure=structure.as_dict(),
    ).to_json(path)
    return path


def test_bulk_is_the_relaxed_supercell(alloy_host, tmp_path: Path) -> None:
    from pymatgen.core import Lattice

    from perovskite_defects.hosts.perovskite import HostStructure

    config, host_json = alloy_host
    host = HostStructure.from_json(host_json).structure
    relaxed = host.copy()
    # an anisotropic cell (12.4 x 6.25 x 6.2 Å instead of 12.6 x 6.3 x 6.3) and a shifted atom
    relaxed.lattice = Lattice.orthorhombic(12.4, 6.25, 6.2)
    relaxed.translate_sites([3], [0.01, 0.0, 0.02], frac_coords=True)
    record = _record(relaxed, tmp_path / "relax" / "record.json")
    params = sp.bulk_inputs_params(config, host_plan(config, ALLOY))
    steps_hosts.prepare_bulk(host_json, {"relaxed": record}, tmp_path / "bulk", **params)

    info = json.loads((tmp_path / "bulk" / "supercell.json").read_text())
    assert info["lattice_source"] == "relaxed"
    assert info["lattice_abc"] == pytest.approx([12.4, 6.25, 6.2])
    # pseudo-cubic constant: (volume per B atom)^(1/3), two B atoms
    assert info["lattice_constant"] == pytest.approx((12.4 * 6.25 * 6.2 / 2) ** (1 / 3))
    from pymatgen.core import Structure

    bulk = Structure.from_dict(info["structure"])
    assert np.allclose(bulk.lattice.matrix, relaxed.lattice.matrix)
    assert np.allclose(bulk.frac_coords, relaxed.frac_coords)

    # an unconverged relaxation is never a bulk; nor a record of other atoms
    bad = _record(relaxed, tmp_path / "bad" / "record.json", converged=False)
    with pytest.raises(EngineError, match="not converged|converge"):
        steps_hosts.prepare_bulk(host_json, {"relaxed": bad}, tmp_path / "bulk2", **params)
    other = relaxed.copy()
    other.replace(0, "Rb")
    wrong = _record(other, tmp_path / "wrong" / "record.json")
    with pytest.raises(EngineError, match="atoms are not those of"):
        steps_hosts.prepare_bulk(host_json, {"relaxed": wrong}, tmp_path / "bulk3", **params)


@pytest.mark.slow
def test_relaxed_alloy_supercell_with_cp2k(tmp_path: Path, cp2k_binary: str) -> None:
    """One real CP2K cell relaxation of the 10-atom CsSn0.5Pb0.5I3 SQS ([2, 1, 1]) at the
    tiny settings of the workflow tests, then the bulk and a defect built on it."""
    study = {**SWEEP, "sweep": {"compositions": [{"A": "Cs", "X": "I", "x": 0.5}]}}
    study["cp2k"] = tiny_cp2k()
    # One DFT job: both cores go to it (one rank took 210 s of CI time, 2026-12-01).
    study["resources"] = {"mpi_ranks": 2}
    base = f"results/relax2/{ALLOY}"
    targets = (f"{base}/bulk/calc.json", f"{base}/defects/manifest.tsv")
    proc = snakemake(tmp_path, study, "--cores", "2", *targets, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = tmp_path / base
    assert not (tmp_path / "results/relax2/CsPbI3").exists()  # no end member computed
    record = CalcRecord.from_json(results / "relax" / "record.json")
    assert record.converged and record.geometry_converged
    relaxed = record.pmg_structure()
    # the cell really relaxed from its 6.30 Å start (12.6 x 6.3 x 6.3 Å)
    start = json.loads((results / "structures/host.json").read_text())
    assert start["metadata"]["lattice_source"] == "relaxed"
    assert np.abs(np.array(relaxed.lattice.abc) - (12.6, 6.3, 6.3)).max() > 0.01
    # pseudo-cubic constant in the range of the end members (CsSnI3 6.2, CsPbI3 6.4 Å,
    # PBE a little larger; the tiny basis shifts it by a few per cent)
    info = json.loads((results / "bulk/supercell.json").read_text())
    assert info["lattice_source"] == "relaxed"
    assert 5.9 < info["lattice_constant"] < 6.9
    from pymatgen.core import Structure

    bulk = Structure.from_dict(info["structure"])
    assert np.allclose(bulk.lattice.matrix, relaxed.lattice.matrix)
    # a defect supercell is built in the relaxed cell
    from perovskite_defects.defects.manifest import read_manifest

    entry = read_manifest(results / "defects")[0]
    defect = f"{base}/defects/{entry.id}_q0/calc.json"
    proc = snakemake(tmp_path, study, "--cores", "1", defect, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    cell = json.loads((tmp_path / defect).parent.joinpath("defect.json").read_text())
    assert np.allclose(Structure.from_dict(cell["structure"]).lattice.matrix, bulk.lattice.matrix)
