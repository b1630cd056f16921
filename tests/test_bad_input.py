"""Bad input, tried systematically: every kind listed here must give one line naming the
key or file and what is wrong, and must leave no result that a later run takes as finished.

tests/test_config.py holds 24 further config cases (misspelled top-level key, bad enums,
missing charges, unknown element, missing phase file, ...); they are not repeated here.
Kinds in this module: 35 (the KINDS list below plus the workflow-level cases).
"""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from workflow_runner import snakemake

from perovskite_defects import config as cfg
from perovskite_defects.engines import cp2k, recovery
from perovskite_defects.engines.base import CalcRecord, EngineError
from perovskite_defects.engines.failures import read_failures
from perovskite_defects.hosts.structure_checks import StructureError, check_phase_structure

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "cp2k" / "pbi2_relax_ions"
CIF_HEADER = "# Source: test\n# Relaxation: ions\n"
ERRORS = (cfg.ConfigError, EngineError, StructureError)


def _config(raw: dict) -> Callable[[Path], object]:
    return lambda tmp: cfg.validate(raw)


# (kind, bad config, expected text of the one-line error)
CONFIG_CASES = [
    (
        "misspelled nested key",
        {"host": {"lattice_constnt": 6.4}},
        "unknown key(s) ['lattice_constnt']",
    ),
    (
        "misspelled defect key",
        {"defects": [{"name": "V_I", "charges": [1], "site_idx": 0}]},
        "unknown key(s) ['site_idx']",
    ),
    (
        "misspelled engine setting",
        {"cp2k": {"settings": {"cutof_ry": 300}}},
        "config key 'cp2k.settings.cutof_ry': unknown setting",
    ),
    ("study name of wrong type", {"study": 123}, "config key 'study': 123 is not of type 'string'"),
    (
        "boolean given as text",
        {"host": {"relax": "yes"}},
        "config key 'host.relax': 'yes' is not of type 'boolean'",
    ),
    (
        "charges not a list",
        {"defects": [{"name": "V_I", "charges": "1,0"}]},
        "config key 'defects.0.charges'",
    ),
    (
        "engine setting of wrong type",
        {"cp2k": {"settings": {"cutoff_ry": "high"}}},
        "'high' is not of type float",
    ),
    (
        "integer setting given a fraction",
        {"cp2k": {"settings": {"max_scf": 2.5}}},
        "2.5 is not of type int",
    ),
    (
        "supercell too large",
        {"host": {"supercell": [7, 7, 7]}},
        "config key 'host': CsPbI3 needs a 7x7x7 supercell of 1715 atoms",
    ),
    (
        "lattice constant out of range",
        {"host": {"lattice_constant": 12.0}},
        "config key 'host.lattice_constant'",
    ),
    ("site radius out of range", {"site_radius": 5.0}, "config key 'site_radius'"),
    ("too many SCF retries", {"scf_retries": 9}, "config key 'scf_retries'"),
    (
        "negative cutoff",
        {"cp2k": {"settings": {"cutoff_ry": -100}}},
        "config key 'cp2k.settings.cutoff_ry': -100 must be > 0",
    ),
    ("mixing above 1", {"cp2k": {"settings": {"mixing_alpha": 1.5}}}, "must be in (0, 1]"),
    (
        "input-file injection in a setting",
        {"cp2k": {"settings": {"basis": "DZVP\n&EXT_RESTART"}}},
        "config key 'cp2k.settings.basis'",
    ),
    (
        "shell syntax in the MPI launcher",
        {"cp2k": {"mpi_launcher": "mpirun; rm -rf ~"}},
        "config key 'cp2k.mpi_launcher'",
    ),
    (
        "MPI launcher that is not one",
        {"cp2k": {"mpi_launcher": "bash -c"}},
        "config key 'cp2k.mpi_launcher'",
    ),
    (
        "command substitution as executable",
        {"cp2k": {"executable": "$(reboot)"}},
        "config key 'cp2k.executable'",
    ),
    ("option-like executable", {"cp2k": {"executable": "-rf"}}, "config key 'cp2k.executable'"),
    ("study name with a slash", {"study": "a/b"}, "config key 'study'"),
    ("empty study name", {"study": ""}, "config key 'study'"),
    (
        "shell syntax in a defect name",
        {"defects": [{"name": "V_I;ls", "charges": [0]}]},
        "config key 'defects.0.name'",
    ),
    ("path in a phase name", {"competing_phases": ["../Cs"]}, "config key 'competing_phases.0'"),
    (
        "charge that makes no sense (vacancy)",
        {"defects": [{"name": "V_I", "charges": [1, -3]}]},
        "charge -3 makes no sense for V_I",
    ),
    (
        "charge that makes no sense (interstitial)",
        {"defects": [{"name": "Na_i", "charges": [-2]}]},
        "charge -2 makes no sense for Na_i",
    ),
    (
        "dielectric constant as text",
        {"dielectric": {"value": "ten"}},
        "config key 'dielectric.value'",
    ),
]


def _phase_cif(tmp: Path, name: str, body: str | None) -> Path:
    path = tmp / f"{name}.cif"
    path.write_text("" if body is None else CIF_HEADER + body)
    return path


def _cif(species_coords: list[tuple[str, tuple[float, float, float]]], a: float = 4.5) -> str:
    lines = [
        "data_test",
        f"_cell_length_a {a}",
        f"_cell_length_b {a}",
        f"_cell_length_c {a}",
        "_cell_angle_alpha 90",
        "_cell_angle_beta 90",
        "_cell_angle_gamma 90",
        "_symmetry_space_group_name_H-M 'P 1'",
        "loop_",
        "_atom_site_label",
        "_atom_site_type_symbol",
        "_atom_site_fract_x",
        "_atom_site_fract_y",
        "_atom_site_fract_z",
        "_atom_site_occupancy",
    ]
    for i, (el, (x, y, z)) in enumerate(species_coords):
        lines.append(f"{el}{i + 1} {el} {x} {y} {z} 1.0")
    return "\n".join(lines) + "\n"


STRUCTURE_CASES = [
    (
        "overlapping atoms",
        "CsI",
        _cif([("Cs", (0, 0, 0)), ("I", (0.02, 0, 0))]),
        "are 0.090 Å apart (overlapping",
    ),
    (
        "missing sublattice",
        "CsI",
        _cif([("Cs", (0, 0, 0))]),
        "no I sites, but the phase is CsI (missing sublattice",
    ),
    (
        "element that does not belong",
        "CsI",
        _cif([("Cs", (0, 0, 0)), ("I", (0.5, 0.5, 0.5)), ("Na", (0.5, 0, 0))]),
        "element(s) ['Na'] do not belong to CsI",
    ),
    ("not a structure file", "CsI", "this is not a CIF\n", "not a readable structure file"),
    ("empty structure file", "CsI", None, "structure file is empty"),
]


def _calc_dir(tmp: Path) -> Path:
    """A real CP2K run folder (PbI2 relaxation) laid out as results/<study>/phases/PbI2."""
    calc = tmp / "results" / "study" / "phases" / "PbI2"
    calc.mkdir(parents=True)
    for name in ("cp2k.inp", "calc.json", "cp2k-1.restart"):
        shutil.copy(DATA / name, calc / name)
    with gzip.open(DATA / "cp2k.out.gz", "rt") as fh:
        (calc / "cp2k.out").write_text(fh.read())
    return calc


def _truncate(calc: Path, good: str) -> None:
    (calc / "cp2k.out").write_text(good[: len(good) // 2])


def _empty(calc: Path, good: str) -> None:
    (calc / "cp2k.out").write_text("")


def _missing(calc: Path, good: str) -> None:
    pass  # the engine wrote nothing


def _vasp_output(calc: Path, good: str) -> None:
    # The head of a real VASP OUTCAR: an output file from the wrong engine.
    (calc / "cp2k.out").write_text(
        " vasp.6.3.0 18Jan22 (build Feb 02 2022) complex\n"
        " executed on             LinuxIFC date 2022.03.01  10:00:00\n"
        " running on   16 total cores\n POSCAR found :  2 types and      63 ions\n"
    )


ENGINE_CASES = [
    ("truncated engine output", _truncate, "CP2K output is truncated"),
    ("empty engine output", _empty, "CP2K output file is empty"),
    ("missing engine output", _missing, "CP2K output file is missing"),
    ("output of the wrong engine", _vasp_output, "not a CP2K output file"),
]


def _one_line(err: BaseException) -> str:
    message = str(err)
    assert message, f"{type(err).__name__} without a message"
    assert "\n" not in message, f"message is not one line: {message!r}"
    return message


@pytest.mark.parametrize(
    ("kind", "raw", "expected"), CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES]
)
def test_bad_config(kind: str, raw: dict, expected: str) -> None:
    with pytest.raises(cfg.ConfigError) as err:
        cfg.validate(raw)
    assert expected in _one_line(err.value)


@pytest.mark.parametrize(
    ("kind", "formula", "body", "expected"), STRUCTURE_CASES, ids=[c[0] for c in STRUCTURE_CASES]
)
def test_bad_structure_file(tmp_path: Path, kind: str, formula: str, body, expected: str) -> None:
    path = _phase_cif(tmp_path, formula, body)
    with pytest.raises(StructureError) as err:
        check_phase_structure(path, formula)
    message = _one_line(err.value)
    assert expected in message and str(path) in message


def test_bad_structure_file_stops_the_config(tmp_path: Path, monkeypatch) -> None:
    """Through config validation: the error names the config key and the file."""
    monkeypatch.setattr(cfg, "PHASES_DIR", tmp_path)
    for name in ("Cs", "Pb", "I2"):
        shutil.copy(cfg.PROJECT_ROOT / "structures" / "phases" / f"{name}.cif", tmp_path)
    _phase_cif(tmp_path, "CsI", _cif([("Cs", (0, 0, 0))]))
    with pytest.raises(cfg.ConfigError) as err:
        cfg.validate(
            {
                "defects": [{"name": "V_I", "charges": [1]}],
                "competing_phases": ["Cs", "Pb", "I2", "CsI"],
            }
        )
    assert "config key 'competing_phases.3'" in _one_line(err.value)
    assert "no I sites" in str(err.value)


@pytest.mark.parametrize(
    ("kind", "damage", "expected"), ENGINE_CASES, ids=[c[0] for c in ENGINE_CASES]
)
def test_bad_engine_output_leaves_no_result(
    tmp_path: Path, kind: str, damage, expected: str
) -> None:
    """The rule's own code path (recovery.finish): error, no record.json, a failures.csv row."""
    calc = _calc_dir(tmp_path)
    cp2k.parse(calc).require_converged()  # the undamaged real output is a valid result
    good = (calc / "cp2k.out").read_text()

    def engine_writes_damaged_output():  # stands in for the engine run: real files, damaged
        damage(calc, good)
        return cp2k.parse(calc)

    config = cfg.validate({})
    with pytest.raises(EngineError) as err:
        recovery.finish(config, calc, engine_writes_damaged_output, "record.json")
    assert expected in _one_line(err.value)
    assert not (calc / "record.json").exists()
    failures = read_failures(tmp_path / "results" / "study")
    assert expected in failures["phases/PbI2"]


@pytest.mark.parametrize(
    ("kind", "content", "expected"),
    [
        ("truncated record file", '{"engine": "cp2k", "energy": ', "record file is not valid JSON"),
        ("empty record file", "", "record file is not valid JSON"),
    ],
)
def test_bad_record_file(tmp_path: Path, kind: str, content: str, expected: str) -> None:
    path = tmp_path / "record.json"
    path.write_text(content)
    with pytest.raises(EngineError) as err:
        CalcRecord.from_json(path)
    assert expected in _one_line(err.value)


def test_cp2k_output_given_to_the_vasp_parser(tmp_path: Path) -> None:
    from perovskite_defects.engines.vasp_output import parse_vasp_dir

    with gzip.open(DATA / "cp2k.out.gz", "rt") as fh:
        (tmp_path / "vasprun.xml").write_text(fh.read())
    with pytest.raises(EngineError) as err:
        parse_vasp_dir(tmp_path)
    assert "cannot parse vasprun" in _one_line(err.value)


def test_results_directory_not_writable(tmp_path: Path) -> None:
    """Checked before any job, through Snakemake, as one line and no traceback."""
    (tmp_path / "results").write_text("a file where the results folder should be\n")
    with pytest.raises(cfg.ConfigError) as err:
        cfg.check_writable(tmp_path / "results" / "study")
    assert "exists and is not a directory" in _one_line(err.value)

    proc = snakemake(tmp_path, {"study": "blocked"}, "-n", "--cores", "1", timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    expected = "invalid configuration: results directory results/blocked: results exists"
    assert f"{expected} and is not a directory" in out
    assert "Traceback" not in out


def test_kinds_are_counted() -> None:
    """The module covers at least 30 kinds of bad input (the issue's bar)."""
    kinds = len(CONFIG_CASES) + len(STRUCTURE_CASES) + len(ENGINE_CASES) + 2 + 1 + 1
    assert kinds >= 30
