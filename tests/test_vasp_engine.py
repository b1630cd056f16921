"""VASP input writing, run-command rules, POTCAR handling and the streaming vasprun reader.

VASP cannot run here: inputs are checked key by key, NELECT against hand counts and the
recorded CdTe runs, and the reader against the CdTe reference outputs and pymatgen.
"""

from __future__ import annotations

import bz2
import gzip
import json
import re
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import yaml

from perovskite_defects import config as cfg
from perovskite_defects.engines import get_engine, vasp, vasp_output
from perovskite_defects.engines.base import CalcSpec, EngineError, validate_command
from perovskite_defects.engines.vasprun import read_vasprun
from perovskite_defects.hosts.perovskite import cubic_prototype, supercell


@pytest.fixture(autouse=True)
def no_potcar_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    """Behave as on a machine without POTCARs (this one has none), whatever the user set."""
    from pymatgen.core import SETTINGS

    monkeypatch.delenv("PMG_VASP_PSP_DIR", raising=False)
    monkeypatch.delitem(SETTINGS, "PMG_VASP_PSP_DIR", raising=False)


def gz_text(path: Path) -> str:
    with gzip.open(path, "rt") as fh:
        return fh.read()


def settings(**overrides) -> vasp.VaspSettings:
    return vasp.VaspSettings.from_config(overrides)


def incar(folder: Path) -> dict:
    from pymatgen.io.vasp.inputs import Incar

    return dict(Incar.from_file(str(folder / "INCAR")))


def cdte_vacancy_cell():
    """Zinc-blende CdTe, 2x2x2 conventional cells (64 atoms, a = 6.5434 Å), one Cd removed."""
    from pymatgen.core import Lattice, Structure

    conv = Structure.from_spacegroup(
        "F-43m", Lattice.cubic(6.5434), ["Cd", "Te"], [[0, 0, 0], [0.25, 0.25, 0.25]]
    )
    cell = supercell(conv, [2, 2, 2])
    cell.remove_sites([0])
    return cell


# --------------------------------------------------------------------------- INCAR per kind


def test_incar_keys_per_calculation_kind(tmp_path: Path) -> None:
    unit = cubic_prototype("Cs", "Pb", "I", 6.4)
    sc = supercell(unit, [2, 2, 2])
    s = settings()
    vasp.write_input(unit, CalcSpec("relax_cell", "host", keep_symmetry="CUBIC"), s, tmp_path / "h")
    vasp.write_input(unit, CalcSpec("relax_ions", "phase"), s, tmp_path / "p")
    vasp.write_input(sc, CalcSpec("static", "bulk", band_edges=True), s, tmp_path / "b")
    defect = sc.copy()
    defect.remove_sites([20])  # an iodine
    fixed = (0, 1, 2, 3)
    spec = CalcSpec("relax_ions", "defect", charge=1, fixed_atoms=fixed)
    vasp.write_input(defect, spec, s, tmp_path / "d")

    host, phase, bulk, dfc = (incar(tmp_path / k) for k in "hpbd")
    for tags in (host, phase, bulk, dfc):
        assert tags["ISPIN"] == 2
        assert tags["ENCUT"] == 400.0
        assert tags["ISMEAR"] == 0 and tags["SIGMA"] == 0.05
        assert tags["NELM"] == 100
        assert "LHFCALC" not in tags and "LSORBIT" not in tags
    # host: variable cell, symmetry kept (no ISYM), no potential needed
    assert (host["IBRION"], host["ISIF"], host["NSW"], host["EDIFFG"]) == (2, 3, 200, -0.02)
    assert "ISYM" not in host and "LVHAR" not in host
    assert phase["ISIF"] == 2
    # bulk supercell: single point with the potential and core-level site potentials
    assert bulk["NSW"] == 0 and bulk.get("IBRION", -1) == -1  # pymatgen drops IBRION at NSW=0
    assert "ISIF" not in bulk
    for tags in (bulk, dfc):
        assert (tags["ISYM"], tags["LVHAR"], tags["ICORELEVEL"]) == (0, True, 0)
    # defect: fixed cell, ions relax; the fixed atoms are flagged in POSCAR
    assert (dfc["IBRION"], dfc["ISIF"]) == (2, 2)
    poscar = (tmp_path / "d" / "POSCAR").read_text()
    assert "Selective dynamics" in poscar
    assert poscar.count("F F F") == len(fixed)
    assert poscar.count("T T T") == len(defect) - len(fixed)
    # electron counts with Cs_sv (9), Pb_d (14), I (7): 44 per formula unit
    assert host["NELECT"] == 44.0
    assert bulk["NELECT"] == 8 * 44.0
    assert dfc["NELECT"] == 8 * 44.0 - 7 - 1  # one I removed, charge +1
    meta = json.loads((tmp_path / "d" / "calc.json").read_text())
    assert (meta["calc_kind"], meta["charge"], meta["n_fixed_atoms"]) == ("relax_ions", 1, 4)


def test_nelect_of_charged_cdte_vacancy(tmp_path: Path) -> None:
    cell = cdte_vacancy_cell()
    spec = CalcSpec("static", "defect", charge=-2)
    vasp.write_input(cell, spec, settings(), tmp_path)
    # 31 Cd x 12 + 32 Te x 6 = 564 neutral; charge -2 adds two electrons: the 566 of the
    # recorded reference run (v_Cd_-2_vasp_gam/INCAR).
    assert incar(tmp_path)["NELECT"] == 564.0 + 2
    neutral = tmp_path / "neutral"
    vasp.write_input(cell, CalcSpec("static", "defect", charge=0), settings(), neutral)
    assert incar(neutral)["NELECT"] == 564.0


@pytest.mark.reference
def test_nelect_matches_recorded_cdte_runs(cdte_reference: Path, tmp_path: Path) -> None:
    from pymatgen.io.vasp.inputs import Incar

    for folder, charge in (("v_Cd_-2_vasp_gam", -2), ("bulk_vasp_gam", 0)):
        structure = read_vasprun(cdte_reference / folder / "vasprun.xml.gz").structure()
        role = "defect" if charge else "bulk"
        vasp.write_input(structure, CalcSpec("static", role, charge), settings(), tmp_path / folder)
        recorded = read_vasprun(cdte_reference / folder / "vasprun.xml.gz").parameters["NELECT"]
        assert incar(tmp_path / folder)["NELECT"] == pytest.approx(recorded)
    assert Incar.from_file(str(cdte_reference / "v_Cd_-2_vasp_gam" / "INCAR"))["NELECT"] == 566


def test_kpoints_from_density(tmp_path: Path) -> None:
    from pymatgen.core import Lattice, Structure
    from pymatgen.io.vasp.inputs import Kpoints

    def mesh(structure, spec, **kw) -> tuple[str, list[int]]:
        folder = tmp_path / f"k{len(list(tmp_path.iterdir()))}"
        vasp.write_input(structure, spec, settings(**kw), folder)
        kp = Kpoints.from_file(str(folder / "KPOINTS"))
        return kp.style.name, [int(k) for k in kp.kpts[0]]

    unit = cubic_prototype("Cs", "Pb", "I", 6.4)
    host = CalcSpec("relax_cell", "host")
    bulk = CalcSpec("static", "bulk")
    # n_i = ceil(24 Å / a_i): 24/6.4 = 3.75 -> 4; 24/12.8 -> 2 (the same k-points)
    assert mesh(unit, host) == ("Gamma", [4, 4, 4])
    assert mesh(supercell(unit, [2, 2, 2]), bulk) == ("Gamma", [2, 2, 2])
    slab = Structure(Lattice.orthorhombic(4.0, 7.9, 30.0), ["Cs"], [[0, 0, 0]])
    assert mesh(slab, CalcSpec("static", "phase")) == ("Gamma", [6, 4, 1])
    assert mesh(unit, host, kpoint_density=40.0) == ("Gamma", [7, 7, 7])
    # Gamma-only applies to supercells only
    assert mesh(supercell(unit, [2, 2, 2]), bulk, supercell_kpoints="gamma") == (
        "Gamma",
        [1, 1, 1],
    )
    assert mesh(unit, host, supercell_kpoints="gamma") == ("Gamma", [4, 4, 4])


def test_hse06_and_soc_options(tmp_path: Path) -> None:
    unit = cubic_prototype("Cs", "Sn", "Br", 5.9)
    vasp.write_input(unit, CalcSpec("static", "host"), settings(functional="hse06"), tmp_path / "h")
    tags = incar(tmp_path / "h")
    assert (tags["LHFCALC"], tags["HFSCREEN"], tags["AEXX"], tags["ALGO"]) == (
        True,
        0.2,
        0.25,
        "All",
    )
    vasp.write_input(unit, CalcSpec("static", "host"), settings(soc=True), tmp_path / "s")
    tags = incar(tmp_path / "s")
    assert tags["LSORBIT"] is True
    assert tags["ISYM"] == 0
    assert np.array(tags["MAGMOM"]).shape == (len(unit), 3)  # non-collinear: a vector per atom
    vasp.write_input(
        unit, CalcSpec("static", "host"), settings(incar={"NCORE": 16}), tmp_path / "o"
    )
    assert incar(tmp_path / "o")["NCORE"] == 16


# --------------------------------------------------------------------------- POTCARs


def test_potcar_spec_without_psp_dir(tmp_path: Path) -> None:
    unit = cubic_prototype("Cs", "Pb", "I", 6.4)
    vasp.write_input(unit, CalcSpec("relax_cell", "host"), settings(), tmp_path)
    assert not (tmp_path / "POTCAR").exists()
    assert (tmp_path / "POTCAR.spec").read_text().split() == ["Cs_sv", "Pb_d", "I"]
    meta = json.loads((tmp_path / "calc.json").read_text())
    assert meta["zval_source"] == "RECOMMENDED_ZVAL table"
    # the job stops before anything runs, naming the setting
    config = cfg.validate({"engine": "vasp"})
    with pytest.raises(EngineError, match=r"no POTCAR and PMG_VASP_PSP_DIR is not set.*Cs_sv"):
        vasp.run(config, tmp_path, 1)
    assert not (tmp_path / vasp.OUTPUT_NAME).exists()


def test_unknown_potcar_without_psp_dir_names_the_setting(tmp_path: Path) -> None:
    unit = cubic_prototype("Cs", "Sn", "I", 6.3)
    with pytest.raises(
        EngineError, match=r"no ZVAL known for POTCAR\(s\) \['Sn'\].*PMG_VASP_PSP_DIR"
    ):
        vasp.write_input(unit, CalcSpec("static", "host"), settings(potcars={"Sn": "Sn"}), tmp_path)


def test_zval_table_against_pymatgen_potcar_data() -> None:
    """The table's valences equal those in pymatgen's bundled PBE_54 POTCAR summary."""
    import pymatgen.io.vasp as pmg_vasp

    stats_file = Path(pmg_vasp.__file__).parent / "potcar-summary-stats.json.bz2"
    with bz2.open(stats_file) as fh:
        stats = json.loads(fh.read())["PBE_54"]
    found: dict[str, set[float]] = {}
    for entries in stats.values():
        for entry in entries:
            found.setdefault(entry["symbol"], set()).add(float(entry["ZVAL"]))
    for symbol, zval in vasp.RECOMMENDED_ZVAL.items():
        assert found[symbol] == {zval}, symbol
    # and the table covers pymatgen's recommended POTCAR for every perovskite element
    from pymatgen.io.vasp.sets import _load_yaml_config

    recommended = _load_yaml_config("PBE54Base")["POTCAR"]
    for element in ("Cs", "Rb", "K", "Na", "Sn", "Pb", "Cl", "Br", "I", "H", "C", "N"):
        assert recommended[element] in vasp.RECOMMENDED_ZVAL


@pytest.mark.reference
def test_zval_table_against_cdte_outcar(cdte_reference: Path) -> None:
    text = gz_text(cdte_reference / "bulk_vasp_gam" / "OUTCAR.gz")
    titles = re.findall(r"TITEL\s*=\s*PAW_PBE (\S+)", text)[:2]
    zvals = [float(z) for z in re.findall(r"ZVAL\s*=\s*([\d.]+)", text)[:2]]
    assert titles == ["Cd", "Te"]
    assert [vasp.RECOMMENDED_ZVAL[t] for t in titles] == zvals


@pytest.mark.reference
def test_nelect_checked_against_the_potcar_in_use(cdte_reference: Path, tmp_path: Path) -> None:
    vasp.write_input(cdte_vacancy_cell(), CalcSpec("static", "defect", -2), settings(), tmp_path)
    # a POTCAR made of the real header lines of the reference run's POTCARs (Cd, Te)
    text = gz_text(cdte_reference / "bulk_vasp_gam" / "OUTCAR.gz")
    headers = re.findall(r"^.*POMASS\s*=.*ZVAL.*$", text, re.M)[:2]
    (tmp_path / "POTCAR").write_text("\n".join(headers) + "\n")
    vasp.check_nelect(tmp_path)
    path = tmp_path / "INCAR"
    path.write_text(path.read_text().replace("NELECT = 566.0", "NELECT = 564.0"))
    with pytest.raises(EngineError, match=r"NELECT 564 does not match the POTCAR valences \(564\)"):
        vasp.check_nelect(tmp_path)


# --------------------------------------------------------------------------- run command


@pytest.mark.parametrize(
    "command", ["srun vasp_std; rm -rf ~", "vasp_std | tee out", "$VASP", "vasp `x`", "a && b",
                "vasp_std > log", "'vasp_std'", "vasp_std\nrm"],
)  # fmt: skip
def test_run_command_refuses_shell_metacharacters(command: str) -> None:
    with pytest.raises(EngineError, match=r"config key 'vasp.command'.*shell metacharacters"):
        validate_command(command, "vasp.command")
    with pytest.raises(cfg.ConfigError, match=r"vasp.command"):
        cfg.validate({"engine": "vasp", "vasp": {"command": command}})


def test_run_command_binaries_match_the_inputs(tmp_path: Path) -> None:
    unit = cubic_prototype("Cs", "Pb", "I", 6.4)
    sc = supercell(unit, [2, 2, 2])

    def command(run_dir: Path, **vasp_options) -> list[str]:
        config = cfg.validate({"engine": "vasp", "vasp": vasp_options})
        return get_engine("vasp").command(config, run_dir, 4)

    std, gam, ncl = tmp_path / "std", tmp_path / "gam", tmp_path / "ncl"
    vasp.write_input(unit, CalcSpec("static", "host"), settings(), std)
    vasp.write_input(sc, CalcSpec("static", "bulk"), settings(supercell_kpoints="gamma"), gam)
    vasp.write_input(unit, CalcSpec("static", "host"), settings(soc=True), ncl)
    assert command(std) == ["srun", "vasp_std"]
    mpirun = command(std, command="mpirun vasp_std")
    assert mpirun[0] == "mpirun" and mpirun[-1] == "vasp_std"
    assert mpirun[mpirun.index("-np") + 1] == "4"
    assert command(gam, gamma_command="srun vasp_gam") == ["srun", "vasp_gam"]
    assert command(gam) == ["srun", "vasp_std"]  # vasp_std runs Gamma-only meshes too
    with pytest.raises(EngineError, match="vasp_gam runs Γ-only meshes"):
        command(std, command="srun vasp_gam")
    with pytest.raises(EngineError, match="soc needs the non-collinear binary vasp_ncl"):
        command(ncl)
    assert command(ncl, command="srun vasp_ncl") == ["srun", "vasp_ncl"]
    with pytest.raises(EngineError, match="vasp_ncl is for soc"):
        command(std, command="srun vasp_ncl")


# --------------------------------------------------------------------------- config


def test_schema_defaults_are_the_dataclass_defaults() -> None:
    schema = yaml.safe_load(cfg.SCHEMA_PATH.read_text())
    props = schema["properties"]["vasp"]["properties"]["settings"]["properties"]
    assert {k: v["default"] for k, v in props.items()} == asdict(vasp.VaspSettings())
    assert all(v.get("description") for v in props.values())
    assert "vasp" in schema["properties"]["engine"]["enum"]
    assert "replay-recorded-test-only" not in schema["properties"]["engine"]["enum"]


def test_replay_engine_is_not_selectable_from_config() -> None:
    with pytest.raises(cfg.ConfigError, match="'replay-recorded-test-only' is not one of"):
        cfg.validate({"engine": "replay-recorded-test-only"})
    with pytest.raises(EngineError, match="not an engine"):
        get_engine("replay-recorded-test-only")


def test_replay_engine_refuses_to_start_without_the_test_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from perovskite_defects.engines import REPLAY_ENV, engine_for_run
    from perovskite_defects.engines.replay_recorded import ReplayRecordedEngine

    monkeypatch.delenv(REPLAY_ENV, raising=False)
    config = cfg.validate({"engine": "vasp"})
    assert engine_for_run(config).name == "vasp"
    with pytest.raises(EngineError, match="for tests only"):
        ReplayRecordedEngine(get_engine("vasp"), tmp_path / "plan.json")


# --------------------------------------------------------------------------- reading vasprun


@pytest.mark.reference
def test_streaming_reader_agrees_with_pymatgen(cdte_reference: Path) -> None:
    """Energy, edges, structure and parameters as pymatgen's full Vasprun gives them."""
    from pymatgen.io.vasp import Vasprun

    path = cdte_reference / "v_Cd_-2_choppy_changy_vasp_gam" / "vasprun.xml.gz"
    ours = read_vasprun(path)
    ref = Vasprun(str(path), parse_potcar_file=False, parse_dos=True, parse_eigen=True)
    assert ours.final_energy == ref.final_energy
    assert ours.converged_electronic is ref.converged_electronic is True
    assert ours.efermi == pytest.approx(ref.efermi)
    assert ours.parameters["NELECT"] == ref.parameters["NELECT"]
    assert ours.n_electronic_steps == len(ref.ionic_steps[-1]["electronic_steps"])
    assert ours.structure() == ref.final_structure
    assert ours.potcar_symbols == [s.strip() for s in ref.potcar_symbols]
    ref_eigs = {spin.value if spin.value == 1 else 2: v for spin, v in ref.eigenvalues.items()}
    for spin, values in ours.eigenvalues.items():
        np.testing.assert_array_equal(values, ref_eigs[spin])


def _edited_vasprun(src: Path, dst: Path, edit) -> Path:
    text = gz_text(src)
    dst.mkdir(parents=True, exist_ok=True)
    out = dst / "vasprun.xml.gz"
    with gzip.open(out, "wt", compresslevel=1) as fh:
        fh.write(edit(text))
    return out


@pytest.mark.reference
def test_electronically_unconverged_run_is_flagged(cdte_reference: Path, tmp_path: Path) -> None:
    # The real bulk run needed 21 electronic steps; with NELM = 21 it would have stopped
    # there unconverged.
    src = cdte_reference / "bulk_vasp_gam" / "vasprun.xml.gz"
    nelm = re.compile(r'(<i type="int" name="NELM">)\s*\d+(</i>)')

    def cap(text: str) -> str:
        assert nelm.search(text)
        return nelm.sub(r"\g<1>     21\g<2>", text)

    _edited_vasprun(src, tmp_path, cap)
    record = vasp_output.parse_vasp_dir(tmp_path)
    assert record.extra["n_electronic_steps"] == 21
    assert record.scf_converged is False
    with pytest.raises(EngineError, match="SCF did not converge; not a result"):
        record.require_converged()


@pytest.mark.reference
def test_relaxation_that_hit_nsw_is_not_converged(cdte_reference: Path, tmp_path: Path) -> None:
    # Two copies of the real ionic step make a 2-step relaxation; NSW = 2 means VASP
    # stopped at its step limit (as pymatgen judges it), NSW = 5 that it finished early.
    src = cdte_reference / "bulk_vasp_gam" / "vasprun.xml.gz"

    def two_steps(nsw: int):
        def edit(text: str) -> str:
            start, end = text.index("<calculation>"), text.index("</calculation>") + 14
            text = text[:end] + "\n" + text[start:end] + text[end:]
            text = re.sub(r'(<i type="int" name="NSW">)\s*\d+', rf"\g<1> {nsw}", text)
            return re.sub(r'(<i type="int" name="IBRION">)\s*-?\d+', r"\g<1> 2", text)

        return edit

    _edited_vasprun(src, tmp_path / "a", two_steps(2))
    _edited_vasprun(src, tmp_path / "b", two_steps(5))
    stopped, finished = (vasp_output.parse_vasp_dir(tmp_path / k) for k in "ab")
    assert stopped.extra["n_ionic_steps"] == finished.extra["n_ionic_steps"] == 2
    assert stopped.geometry_converged is False
    assert finished.geometry_converged is True


@pytest.mark.reference
def test_truncated_vasprun_is_an_error(cdte_reference: Path, tmp_path: Path) -> None:
    raw = gz_text(cdte_reference / "bulk_vasp_gam" / "vasprun.xml.gz").encode()
    with gzip.open(tmp_path / "vasprun.xml.gz", "wb") as fh:
        fh.write(raw[: len(raw) // 2])  # a killed job: the file stops mid-way
    with pytest.raises(EngineError, match=r"vasprun\.xml\.gz: .*truncated"):
        vasp_output.parse_vasp_dir(tmp_path)


@pytest.mark.reference
def test_plain_and_gzipped_vasprun_read_alike(cdte_reference: Path, tmp_path: Path) -> None:
    src = cdte_reference / "v_Cd_-2_vasp_gam" / "vasprun.xml.gz"
    (tmp_path / "vasprun.xml").write_text(gz_text(src))
    a, b = read_vasprun(src), read_vasprun(tmp_path / "vasprun.xml")
    assert a.final_energy == b.final_energy
    assert a.efermi == b.efermi


# --------------------------------------------------------------------------- one interface


def test_cp2k_behind_the_interface_writes_what_it_wrote_before(tmp_path: Path) -> None:
    """The CP2K wrapper passes a CalcSpec through to the unchanged CP2K input writer."""
    from perovskite_defects.engines import cp2k, cp2k_settings

    config = cfg.validate({})
    engine = get_engine("cp2k")
    assert engine.name == "cp2k"
    s = engine.settings(config)
    assert s == cp2k_settings.Cp2kSettings.for_level("fast", {})
    sc = supercell(cubic_prototype("Cs", "Pb", "I", 6.4), [2, 2, 2])
    spec = CalcSpec("relax_ions", "defect", charge=-1, fixed_atoms=(0, 5))
    engine.write_input(sc, spec, s, tmp_path / "new")
    cp2k.write_input(
        sc, "relax_ions", -1, s, tmp_path / "old", is_supercell=True, fixed_atoms=(0, 5)
    )
    for name in ("cp2k.inp", "calc.json"):
        assert (tmp_path / "new" / name).read_text() == (tmp_path / "old" / name).read_text()


def test_both_engines_give_the_settings_the_steps_need() -> None:
    for name, config in (("cp2k", {}), ("vasp", {"engine": "vasp"})):
        s = get_engine(name).settings(cfg.validate(config))
        assert isinstance(s.relax_radius, float)
        assert isinstance(s.phase_cell_relax, bool)
