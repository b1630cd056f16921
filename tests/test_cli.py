"""perovskite-defects correct: the analysis for calculations made outside the workflow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from perovskite_defects.cli import main
from perovskite_defects.engines.folders import detect_engine

CLI = str(Path(sys.executable).parent / "perovskite-defects")


@pytest.mark.reference
def test_correct_on_the_cdte_reference_json(cdte_reference: Path) -> None:
    proc = subprocess.run(
        [CLI, "correct", "--bulk", str(cdte_reference / "bulk_vasp_gam"),
         "--defect", str(cdte_reference / "v_Cd_-2_vasp_gam"),
         "--charge", "-2", "--dielectric", "9.13", "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result = json.loads(proc.stdout)
    assert result["raw_energy_difference"] == pytest.approx(7.4480, abs=1e-3)
    assert result["fnv_correction"] == pytest.approx(0.7278, abs=0.01)
    assert result["fnv_parts"]["point_charge"] == pytest.approx(0.6839, abs=1e-3)
    assert result["vbm"] == pytest.approx(1.5968, abs=1e-3)
    assert result["band_gap"] == pytest.approx(1.469, abs=5e-3)


@pytest.mark.reference
def test_correct_reordered_atoms_give_the_same(cdte_reference: Path, capsys) -> None:
    def run(bulk: str, defect: str) -> dict:
        code = main(["correct", "--bulk", str(cdte_reference / bulk),
                     "--defect", str(cdte_reference / defect),
                     "--charge", "-2", "--dielectric", "9.13", "--json"])  # fmt: skip
        assert code == 0
        return json.loads(capsys.readouterr().out)

    ordered = run("bulk_vasp_gam", "v_Cd_-2_vasp_gam")
    shuffled = run("bulk_vasp_gam_alt", "v_Cd_-2_choppy_changy_vasp_gam")
    assert shuffled["raw_energy_difference"] == pytest.approx(
        ordered["raw_energy_difference"], abs=1e-6
    )
    assert shuffled["fnv_correction"] == pytest.approx(ordered["fnv_correction"], abs=1e-4)


@pytest.mark.reference
def test_human_output_and_errors(cdte_reference: Path, tmp_path: Path, capsys) -> None:
    assert main(["correct", "--bulk", str(cdte_reference / "bulk_vasp_gam"),
                 "--defect", str(cdte_reference / "v_Cd_-2_vasp_gam"),
                 "--charge", "-2", "--dielectric", "9.13"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "FNV correction" in out and "0.7278 eV" in out

    assert main(["correct", "--bulk", str(tmp_path), "--defect", str(tmp_path),
                 "--charge", "1", "--dielectric", "5"]) == 1  # fmt: skip
    assert "cannot tell which engine" in capsys.readouterr().err
    assert main(["correct", "--bulk", str(tmp_path), "--defect", str(tmp_path),
                 "--charge", "1", "--dielectric", "5", "6"]) == 2  # fmt: skip
    assert "one value or three" in capsys.readouterr().err


def test_detect_engine(tmp_path: Path) -> None:
    (tmp_path / "cp2k.out").write_text("")
    assert detect_engine(tmp_path) == "cp2k"
    (tmp_path / "vasprun.xml.gz").write_text("")
    assert detect_engine(tmp_path) == "vasp"


@pytest.mark.reference
def test_both_schemes_in_one_call_equal_two_calls(cdte_reference: Path, capsys) -> None:
    def run(scheme: str) -> dict:
        code = main(["correct", "--bulk", str(cdte_reference / "bulk_vasp_gam"),
                     "--defect", str(cdte_reference / "v_Cd_-2_vasp_gam"), "--charge", "-2",
                     "--dielectric", "9.13", "--correction", scheme, "--json"])  # fmt: skip
        assert code == 0
        return json.loads(capsys.readouterr().out)

    both = run("both")
    assert both == {**run("fnv"), **run("efnv")}
    assert both["fnv_correction"] == pytest.approx(0.7278, abs=0.01)  # doped 3.2.1
    assert both["efnv_correction"] == pytest.approx(0.7490, abs=1e-4)  # see kumagai.py


@pytest.mark.reference
def test_correct_imports_neither_scipy_nor_pymatgen(cdte_reference: Path) -> None:
    """Startup imports were most of a call (scipy.optimize alone ~0.8 s CPU): keep them off."""
    code = (
        "import sys\n"
        "from perovskite_defects.cli import main\n"
        f"main(['correct', '--bulk', {str(cdte_reference / 'bulk_vasp_gam')!r}, "
        f"'--defect', {str(cdte_reference / 'v_Cd_-2_vasp_gam')!r}, '--charge', '-2', "
        "'--dielectric', '9.13', '--correction', 'both', '--json'])\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'scipy', 'pymatgen'}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip().splitlines()[-1] == "[]"
