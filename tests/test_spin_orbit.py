"""Spin-orbit shifts of the band edges (band_edges.soc: gpaw).

Quick tests: config (default none, bad values one line each, schema defaults = dataclass
defaults), the GPAW k-mesh and input writer, adding the shifts to the edges, the levels
and classes against both edge sets (closed form), and the workflow's dry run (unit cell
for an end member, bulk supercell for an alloy).

Slow test: the real GPAW (Debian's gpaw 22.8, /usr/bin/python3) on cubic CsPbI3 at
a = 6.40 Å with tiny settings, checked against the spin-orbit physics of the Pb-6p
conduction band at R (see the test's docstring).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from workflow_runner import snakemake, tiny

from perovskite_defects import config as cfg
from perovskite_defects.engines.base import CalcSpec, EngineError
from perovskite_defects.engines.gpaw import (
    GpawEngine,
    GpawSettings,
    gpaw_settings,
    kpoint_mesh,
)
from perovskite_defects.steps.params import spin_orbit_shifts_params
from perovskite_defects.steps.spin_orbit import compute_shifts
from perovskite_defects.thermodynamics.band_edges import BandEdges
from perovskite_defects.thermodynamics.spin_orbit_edges import (
    CHANGED,
    CLASS_NO_SOC,
    CLASS_SOC,
    LEVEL_NO_SOC,
    LEVEL_SOC,
    SocShifts,
    apply_shifts,
    level_comparison_rows,
)

TINY = tiny()  # tests/configs/tiny.yaml


def _shifts(dv: float = 0.05, dc: float = -1.0) -> SocShifts:
    return SocShifts(
        vbm_shift=dv,
        cbm_shift=dc,
        gap_without=1.5,
        gap_with=1.5 + dc - dv,
        k_vbm=[0.5, 0.5, 0.5],
        k_cbm=[0.5, 0.5, 0.5],
        engine="gpaw",
        engine_version="GPAW test",
        setups=[],
        kpoint_mesh=[2, 2, 2],
        settings={},
        structure_source="unitcell/record.json",
        formula="CsPbI3",
        lattice_abc=[6.4, 6.4, 6.4],
    )


# --- config ------------------------------------------------------------------------------


def test_default_is_no_correction_and_gpaw_is_accepted() -> None:
    assert cfg.validate({})["band_edges"]["soc"] == "none"
    config = cfg.validate({"band_edges": {"soc": "gpaw"}})
    assert config["band_edges"]["soc"] == "gpaw"
    assert gpaw_settings(config) == GpawSettings()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"band_edges": {"soc": "vasp"}}, "band_edges.soc"),
        ({"gpaw": {"settings": {"cutof": 300}}}, "gpaw.settings"),
        ({"gpaw": {"settings": {"cutoff": -1}}}, "gpaw.settings.cutoff"),
        ({"gpaw": {"python": "python3; rm"}}, "gpaw.python"),
        (
            {"engine": "vasp", "vasp": {"settings": {"soc": True}}, "band_edges": {"soc": "gpaw"}},
            "count it twice",
        ),
    ],
)
def test_bad_soc_config_is_one_line(raw: dict, message: str) -> None:
    with pytest.raises(cfg.ConfigError) as err:
        cfg.validate(raw)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_schema_defaults_are_the_dataclass_defaults() -> None:
    schema = yaml.safe_load(cfg.SCHEMA_PATH.read_text())
    props = schema["properties"]["gpaw"]["properties"]["settings"]["properties"]
    defaults = GpawSettings()
    assert {k: v["default"] for k, v in props.items()} == {k: getattr(defaults, k) for k in props}
    assert gpaw_settings({"gpaw": {"settings": {"empty_bands": 8.0}}}).empty_bands == 8
    assert gpaw_settings({"gpaw": {"settings": {"soc_bands": 0}}}).soc_bands == 0
    with pytest.raises(ValueError, match="gpaw.settings.soc_bands.*>= 0"):
        gpaw_settings({"gpaw": {"settings": {"soc_bands": -1}}})
    with pytest.raises(ValueError, match="gpaw.settings.empty_bands.*positive"):
        gpaw_settings({"gpaw": {"settings": {"empty_bands": 0}}})
    with pytest.raises(ValueError, match="whole number"):
        gpaw_settings({"gpaw": {"settings": {"max_scf": 2.5}}})


# --- engine --------------------------------------------------------------------------------


def test_kpoint_mesh_is_even_so_the_zone_boundary_is_on_it() -> None:
    assert kpoint_mesh((6.4, 6.4, 6.4), 24.0) == [4, 4, 4]  # ceil(3.75) = 4
    assert kpoint_mesh((6.4, 6.4, 6.4), 12.0) == [2, 2, 2]
    assert kpoint_mesh((12.8, 12.8, 6.4), 24.0) == [2, 2, 4]
    assert kpoint_mesh((30.0, 6.0, 6.0), 24.0) == [2, 4, 4]  # 1 -> 2: R stays on the mesh


def _cubic_cspbi3(a: float = 6.40):
    from pymatgen.core import Lattice, Structure

    return Structure(
        Lattice.cubic(a),
        ["Cs", "Pb", "I", "I", "I"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )


def test_gpaw_inputs_and_refused_relaxation(tmp_path: Path) -> None:
    engine = GpawEngine()
    settings = engine.settings({"gpaw": {"settings": {"cutoff": 300.0, "empty_bands": 16}}})
    engine.write_input(_cubic_cspbi3(), CalcSpec("static", "host"), settings, tmp_path)
    data = json.loads((tmp_path / "gpaw_input.json").read_text())
    assert data["symbols"] == ["Cs", "Pb", "I", "I", "I"]
    assert data["kpoint_mesh"] == [4, 4, 4] and data["nbands"] == -16
    assert data["settings"]["cutoff"] == 300.0 and data["settings"]["xc"] == "PBE"
    assert data["settings"]["soc_bands"] == 200  # the converged default
    assert json.loads((tmp_path / "calc.json").read_text())["engine"] == "gpaw"
    with pytest.raises(EngineError, match="single points only"):
        engine.write_input(_cubic_cspbi3(), CalcSpec("relax_cell", "host"), settings, tmp_path)
    with pytest.raises(EngineError, match="result file is missing"):
        engine.parse(tmp_path)


# --- shifts and levels ---------------------------------------------------------------------


def test_shifts_move_the_edges_and_name_their_source(tmp_path: Path) -> None:
    edges = BandEdges(2.0, 3.5, "bulk", 0.0, 2.0, 3.5)
    moved = apply_shifts(edges, _shifts(0.05, -1.0), "x/soc_shifts.json")
    assert (moved.vbm, moved.cbm) == pytest.approx((2.05, 2.5))
    assert moved.gap == pytest.approx(0.45)
    assert (
        moved.source.startswith("bulk + spin-orbit shifts") and "x/soc_shifts.json" in moved.source
    )
    assert (moved.bulk_vbm, moved.bulk_cbm) == (2.0, 3.5)  # the bulk's own edges stay
    with pytest.raises(EngineError, match="gap .* closes"):
        apply_shifts(edges, _shifts(0.05, -1.6), "x/soc_shifts.json")
    _shifts().to_json(tmp_path / "s.json")
    assert SocShifts.from_json(tmp_path / "s.json") == _shifts()
    assert json.loads((tmp_path / "s.json").read_text())["gap_shift"] == pytest.approx(-1.05)


def test_levels_against_both_edge_sets_closed_form() -> None:
    """Edges without SOC: VBM 2.0, CBM 3.5 (gap 1.5); with SOC: VBM 2.05, CBM 2.5
    (gap 0.45). Lines are at E_F = VBM(SOC).

    A: E(+1) = 1.0 + E_F, E(0) = 1.5 -> ε(+1/0) = 0.5 above VBM(SOC) = 2.55 eV absolute:
       0.55 above VBM(no SOC), deep in the 1.5 eV gap; 0.05 above CBM(SOC): resonant.
    B: E(0) = 1.0, E(-1) = 1.02 - E_F -> ε(0/-1) = 0.02 above VBM(SOC), shallow there;
       without SOC 0.07 above the VBM (< 0.1): shallow too.
    """
    without = BandEdges(2.0, 3.5, "bulk", 0.0, 2.0, 3.5)
    with_soc = apply_shifts(without, _shifts(0.05, -1.0), "s.json")
    lines = {"A": {1: 1.0, 0: 1.5}, "B": {0: 1.0, -1: 1.02}, "C": None, "D": {0: 2.0}}
    rows = {
        (r["defect"], r["q/q'"]): r for r in level_comparison_rows(lines, without, with_soc, 0.1)
    }
    a = rows[("A", "+1/0")]
    assert a[LEVEL_SOC] == pytest.approx(0.5) and a[LEVEL_NO_SOC] == pytest.approx(0.55)
    assert (a[CLASS_NO_SOC], a[CLASS_SOC], a[CHANGED]) == ("deep", "resonant", True)
    b = rows[("B", "0/-1")]
    assert b[LEVEL_SOC] == pytest.approx(0.02) and b[LEVEL_NO_SOC] == pytest.approx(0.07)
    assert (b[CLASS_NO_SOC], b[CLASS_SOC], b[CHANGED]) == ("shallow", "shallow", False)
    assert ("C", "missing") in rows and ("D", "none") in rows


# --- workflow ------------------------------------------------------------------------------


def test_dry_run_computes_the_unit_cell_or_the_bulk(tmp_path: Path) -> None:
    config = {
        **TINY,
        "study": "soc_dry",
        "sweep": {"compositions": [{"A": "Cs", "X": "I", "x": 0}, {"A": "Cs", "X": "I", "x": 0.5}]},
        "host": {**TINY["host"], "supercell": [2, 1, 1]},
        "competing_phases": ["Cs", "Pb", "Sn", "I2", "Na", "CsI", "PbI2", "NaI"],
        "band_edges": {"soc": "gpaw"},
    }
    targets = [
        f"results/soc_dry/{h}/spin_orbit/soc_shifts.json" for h in ("CsPbI3", "CsSn0.5Pb0.5I3")
    ]
    proc = snakemake(tmp_path, config, "--cores", "1", "-n", *targets)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert out.count("rule spin_orbit_shifts:") == 2
    assert "input: results/soc_dry/CsPbI3/unitcell/record.json" in out
    assert "input: results/soc_dry/CsSn0.5Pb0.5I3/bulk/record.json" in out
    assert "log: logs/soc_dry/CsPbI3/spin_orbit.log" in out


# --- real GPAW -----------------------------------------------------------------------------


def _gpaw_python() -> str | None:
    exe = shutil.which("/usr/bin/python3")
    if exe and subprocess.run([exe, "-c", "import gpaw"], capture_output=True).returncode == 0:
        return exe
    return None


@pytest.mark.slow
def test_cspbi3_spin_orbit_shifts_with_real_gpaw(tmp_path: Path) -> None:
    """Cubic CsPbI3, a = 6.40 Å, PBE, 250 eV, 2x2x2 Gamma-centred mesh (contains R), 16
    empty bands in the SCF, SOC basis of 150 bands from a full diagonalisation: 117 s on
    a shared, loaded core (2026-12-01).

    Reference: the physics of the band edges, not a published number (no PBE+SOC gap of
    cubic CsPbI3 could be read from a source reachable here). At R the CBM is the Pb-6p
    triplet (6 spinor states). SOC acts on a p shell as λ L·S, whose trace vanishes: it
    splits the triplet into a j = 1/2 doublet lowered by λ and a j = 3/2 quartet raised by
    λ/2 (Δ = 3λ/2, barycentre kept). The VBM at R is Pb-6s/I-5p antibonding, s-like on
    Pb: no first-order SOC; its second-order shift converges only with ~200 bands (at
    300 eV, 2x2x2: +0.03 eV with 30 bands, -0.137 with 100, -0.176 with 200, -0.178 with
    400; docs/physics-and-settings.md). Checks: edges at R; degeneracies 2 + 4; the
    doublet's shift is -2/3 of the splitting and the quartet's +1/3 (within 15 %: the
    triplet mixes with other bands in second order); the larger basis lowers every edge
    (interlacing) and moves the VBM by more than 0.1 eV, to a negative shift; the CBM
    falls by 0.9-1.4 eV. The scalar eigenvalues of the SCF equal the coupling-0 set of
    the full diagonalisation (same reference: shifts are meaningful).
    """
    if _gpaw_python() is None:  # make test installs it, as it installs CP2K
        pytest.fail("Debian's gpaw is not importable by /usr/bin/python3: run 'make test'")
    from pymatgen.core import Structure

    from perovskite_defects.engines.base import CalcRecord

    unitcell = tmp_path / "unitcell"
    unitcell.mkdir()
    structure = _cubic_cspbi3(6.40)
    CalcRecord("cp2k", "test", 0.0, 0, True, True, structure.as_dict()).to_json(
        unitcell / "record.json"
    )
    settings = {"cutoff": 250.0, "kpoint_density": 12.0, "empty_bands": 16, "soc_bands": 150}
    params = spin_orbit_shifts_params({"gpaw": {"settings": settings}})
    shifts = compute_shifts(unitcell / "record.json", tmp_path / "spin_orbit", **params)
    record = CalcRecord.from_json(tmp_path / "spin_orbit" / "record.json")
    assert Structure.from_dict(record.structure).lattice.a == pytest.approx(6.40)
    assert shifts.kpoint_mesh == [2, 2, 2]
    assert shifts.k_vbm == [0.5, 0.5, 0.5] and shifts.k_cbm == [0.5, 0.5, 0.5]  # R
    assert record.extra["no_soc"]["k_cbm"] == [0.5, 0.5, 0.5]
    assert record.extra["soc_basis_bands"] == 150
    scf = record.extra["scalar_scf_edges"]
    assert (record.vbm, record.cbm) == pytest.approx((scf["vbm"], scf["cbm"]), abs=1e-3)

    cb = record.extra["cb_manifold"]
    ref, soc = np.array(cb["no_soc"]), np.array(cb["soc"])
    assert np.ptp(ref) < 0.01  # the triplet, spin-degenerate, without SOC
    assert np.ptp(soc[:2]) < 0.01 and np.ptp(soc[2:]) < 0.01  # j = 1/2 and j = 3/2
    split = soc[2:].mean() - soc[:2].mean()
    small = record.extra["soc_scf_basis"]  # SOC in the SCF's 22 + 16 bands
    print(
        f"CB at R: no SOC {ref}, SOC {soc}; shifts {shifts.vbm_shift:+.4f} "
        f"{shifts.cbm_shift:+.4f}; in the SCF basis VBM {small['vbm'] - record.vbm:+.4f} "
        f"CBM {small['cbm'] - record.cbm:+.4f}; timings {record.extra['timings_s']}"
    )
    assert split > 0.5
    low, high = soc[:2].mean() - ref.mean(), soc[2:].mean() - ref.mean()
    assert low / split == pytest.approx(-2 / 3, rel=0.15)
    assert high / split == pytest.approx(1 / 3, rel=0.15)
    assert small["bands"] == 38
    big = record.extra["soc"]
    assert small["vbm"] >= big["vbm"] - 1e-6 and small["cbm"] >= big["cbm"] - 1e-6
    assert small["vbm"] - big["vbm"] > 0.1  # the unconverged basis leaves it high
    assert -0.3 < shifts.vbm_shift < -0.05
    assert -1.4 < shifts.cbm_shift < -0.9
    assert shifts.cbm_shift == pytest.approx(low, abs=0.01)  # the doublet is the CBM
    assert shifts.gap_with == pytest.approx(shifts.gap_without + shifts.gap_shift)
    assert shifts.engine_version.startswith("GPAW 22.")
    assert any(s.startswith("Pb:") for s in shifts.setups)


@pytest.mark.reference
def test_tables_with_shifts_through_the_workflow(cdte_reference: Path, tmp_path: Path) -> None:
    """The recorded CdTe V_Cd^-2 study (replayed VASP runs, see test_vasp_workflow) with
    band_edges.soc: gpaw. The shifts file is written by hand (GPAW on the 64-atom bulk
    would take too long here), newer than its input, so the workflow takes it as done.
    Closed form: the edges move by the shifts; E_f(E_F = VBM) of charge q moves by q ΔVBM;
    the level table compares both edge sets; provenance keeps both."""
    from test_vasp_workflow import PAIRS, _cdte_study
    from test_vasp_workflow import snakemake as replay_snakemake

    from perovskite_defects.engines import REPLAY_ENV
    from perovskite_defects.reporting.tables import read_csv

    config, recordings, _ = _cdte_study(
        tmp_path, cdte_reference, "ordered", PAIRS["ordered"], "cif"
    )
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"recordings": recordings}))
    env = {REPLAY_ENV: str(plan)}
    base = tmp_path / "results/ordered/CdTe"
    target = "results/ordered/CdTe/tables/provenance.json"
    proc = replay_snakemake(tmp_path, config, target, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    before = read_csv(base / "tables/formation_energies.csv")[0]
    assert not (base / "tables/spin_orbit_levels.csv").exists()

    shifts = _shifts(0.05, -0.30)
    (base / "spin_orbit").mkdir()
    shifts.to_json(base / "spin_orbit/soc_shifts.json")
    config = {**config, "band_edges": {"soc": "gpaw"}}
    proc = replay_snakemake(tmp_path, config, target, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rule spin_orbit_shifts" not in proc.stdout + proc.stderr
    prov = json.loads((base / "tables/provenance.json").read_text())
    old, new = prov["band_edges_without_soc"], prov["band_edges"]
    assert new["vbm"] == pytest.approx(old["vbm"] + 0.05)
    assert new["cbm"] == pytest.approx(old["cbm"] - 0.30)
    assert "spin-orbit shifts (GPAW test" in new["source"]
    assert prov["spin_orbit_shifts"].endswith("spin_orbit/soc_shifts.json")
    after = read_csv(base / "tables/formation_energies.csv")[0]
    for key, value in before.items():
        if key.startswith("E_f["):
            assert after[key] == pytest.approx(value + (-2) * 0.05, abs=1e-9)  # q = -2
    rows = read_csv(base / "tables/spin_orbit_levels.csv")
    assert [(r["defect"], r["q/q'"]) for r in rows] == [("V_Cd", "none")]  # one charge state
    notes = (base / "tables/transition_levels.md").read_text()
    assert "Spin-orbit coupling: VBM +0.050 eV, CBM -0.300 eV" in notes
    assert f"gap {old['gap']:.3f} eV without, {new['gap']:.3f} eV with SOC" in notes
    assert f"band gap {old['gap']:.3f} eV (HSE06, no spin-orbit coupling)" in notes
