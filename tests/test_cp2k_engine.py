"""CP2K engine: input writer, parser on real CP2K outputs, and a real tiny run (slow)."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from perovskite_defects.engines import cp2k, cp2k_output, cp2k_settings
from perovskite_defects.engines.base import EngineError
from perovskite_defects.engines.eigenvalues import parse_cp2k_eigenvalues
from perovskite_defects.engines.potentials import read_potential_grid
from perovskite_defects.hosts.perovskite import cubic_prototype, supercell

DATA = Path(__file__).parent / "data" / "cp2k"


def _inp(path: Path) -> str:
    return (path / cp2k.INPUT_NAME).read_text()


def test_electron_count_uses_gth_valences() -> None:
    # Cs q9 + Pb q4 + 3 I q7 = 34, as CP2K itself reports for CsPbI3.
    assert cp2k.electron_count(["Cs", "Pb", "I", "I", "I"], 0) == 34
    assert cp2k.electron_count(["Cs", "Pb", "I", "I", "I"], 1) == 33
    with pytest.raises(EngineError, match="Xe"):
        cp2k.electron_count(["Xe"], 0)


def test_kpoint_mesh_from_length() -> None:
    assert cp2k.kpoint_mesh([6.4, 6.4, 6.4], 24.0) == (4, 4, 4)
    assert cp2k.kpoint_mesh([12.8, 12.8, 25.0], 24.0) == (2, 2, 1)
    assert cp2k.kpoint_mesh([6.0, 6.0, 6.0], 24.0) == (4, 4, 4)  # exact multiple


@pytest.mark.parametrize("mesh", [(2, 2, 2), (3, 3, 3), (4, 4, 1), (1, 1, 1), (3, 2, 5)])
def test_monkhorst_pack_points_cover_the_mesh(mesh) -> None:
    points = cp2k.monkhorst_pack_points(mesh)
    assert sum(w for _, w in points) == mesh[0] * mesh[1] * mesh[2]
    # time reversal: no point appears together with its inverse
    keys = {k for k, _ in points}
    for k, w in points:
        minus = tuple(cp2k._wrap(-x) for x in k)
        assert (minus == k and w == 1.0) or (minus not in keys and w == 2.0)
    # Gamma belongs to odd meshes only (CP2K's even Monkhorst-Pack meshes are shifted)
    assert ((0.0, 0.0, 0.0) in keys) == all(n % 2 for n in mesh)


def test_charged_supercell_input(tmp_path: Path) -> None:
    settings = cp2k_settings.Cp2kSettings.for_level("fast")
    cell = supercell(cubic_prototype("Cs", "Pb", "I", 6.4), [2, 2, 2])
    cell.remove_sites([2])  # one iodine: 39 atoms, odd electron count when neutral
    cp2k.write_input(cell, "static", 0, settings, tmp_path, is_supercell=True, band_edges=True)
    text = _inp(tmp_path)
    assert "CHARGE 0" in text
    assert "UKS T" in text and "MULTIPLICITY 2" in text  # 34*8 - 7 = 265 electrons
    # fast level: the mean-value point (1/4, 1/4, 1/4) plus Gamma at zero weight
    assert "SCHEME GENERAL" in text
    assert text.count("KPOINT ") == 2
    assert "KPOINT 0.2500000000 0.2500000000 0.2500000000 1.0" in text
    assert "KPOINT 0.0000000000 0.0000000000 0.0000000000 0.0" in text
    assert "cp2k-RESTART.kp" not in text  # no restart file yet: atomic guess
    assert "PARALLEL_GROUP_SIZE 0" in text  # every k-point's eigenvalues printed
    assert "RUN_TYPE ENERGY" in text
    assert "V_HARTREE_CUBE" in text
    assert text.count("&KIND") == 3
    assert "POTENTIAL GTH-PBE-q9" in text  # Cs semicore

    cp2k.write_input(cell, "static", 1, settings, tmp_path, is_supercell=True)
    text = _inp(tmp_path)
    assert "CHARGE 1" in text
    assert text.count("KPOINT ") == 1  # no zero-weight Gamma without band_edges
    assert "METHOD PULAY_MIXING" in text  # static supercell at the fast level
    assert "UKS T" not in text  # 264 electrons: restricted at the fast level

    shifted = cp2k_settings.Cp2kSettings.for_level("fast", {"supercell_kpoints": "length"})
    cp2k.write_input(cell, "static", 1, shifted, tmp_path, is_supercell=True)
    # 24 Å / 12.8 Å: the shifted 2x2x2 mesh, 4 points by time reversal
    assert _inp(tmp_path).count("KPOINT ") == 4

    accurate = cp2k_settings.Cp2kSettings.for_level("accurate")
    cp2k.write_input(cell, "static", 1, accurate, tmp_path, is_supercell=True)
    text = _inp(tmp_path)
    assert "UKS T" in text and "MULTIPLICITY 1" in text
    # 30 Å / 12.8 Å: a 3x3x3 mesh, which holds Gamma already (weight 1, no extra point)
    assert text.count("KPOINT ") == 14
    assert "KPOINT 0.0000000000 0.0000000000 0.0000000000 1.0" in text
    assert "DZVP-MOLOPT-SR-GTH" in text and "CUTOFF 400" in text
    assert "METHOD BROYDEN_MIXING" in text


def test_relaxation_inputs(tmp_path: Path) -> None:
    settings = cp2k_settings.Cp2kSettings.for_level("fast", {"max_force": 0.05})
    unit = cubic_prototype("Cs", "Pb", "I", 6.4)
    cp2k.write_input(unit, "relax_cell", 0, settings, tmp_path, keep_symmetry="CUBIC")
    text = _inp(tmp_path)
    assert "RUN_TYPE CELL_OPT" in text and "STRESS_TENSOR ANALYTICAL" in text
    assert "SYMMETRY CUBIC" in text and "KEEP_SYMMETRY T" in text
    assert "MONKHORST-PACK 4 4 4" in text
    assert "METHOD BROYDEN_MIXING" in text  # Pulay only for static supercells
    # 0.05 eV/Å in Ha/bohr
    assert f"MAX_FORCE {0.05 * cp2k.BOHR_TO_ANGSTROM / cp2k.HARTREE_TO_EV:.3E}" in text

    cp2k.write_input(unit, "relax_ions", -1, settings, tmp_path, fixed_atoms=[0, 1, 4])
    text = _inp(tmp_path)
    assert "RUN_TYPE GEO_OPT" in text
    assert "LIST 1 2 5" in text  # CP2K counts atoms from 1


def test_settings_reject_unknown_keys_and_values() -> None:
    with pytest.raises(ValueError, match="cp2k.settings: unknown key"):
        cp2k_settings.Cp2kSettings.for_level("fast", {"cutof_ry": 300})
    with pytest.raises(ValueError, match="spin"):
        cp2k_settings.Cp2kSettings.for_level("fast", {"spin": "sometimes"})
    with pytest.raises(ValueError, match="level"):
        cp2k_settings.Cp2kSettings.for_level("ultra")


def test_command_adds_mpi_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    assert cp2k.command(".", 1, "/usr/bin/cp2k.psmp", "mpirun")[0] == "/usr/bin/cp2k.psmp"
    cmd = cp2k.command(".", 2, "/usr/bin/cp2k.psmp", "mpirun")
    assert cmd[0] == "mpirun" and "-np" in cmd and cmd[cmd.index("-np") + 1] == "2"
    srun = cp2k.command(".", 4, "cp2k.psmp", "srun")
    assert srun[:4] == ["srun", "-n", "4", "cp2k.psmp"]  # job steps do not inherit the task count


def test_missing_binary_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(EngineError, match="apt-get install -y cp2k cp2k-data"):
        cp2k.find_executable()


# ----------------------------------------------------------------- parser on real outputs


def _copy(name: str, tmp_path: Path) -> Path:
    """Copy a stored real run into tmp_path, unpacking its gzipped files."""
    import gzip

    dst = tmp_path / name
    shutil.copytree(DATA / name, dst)
    for packed in dst.glob("*.gz"):
        if packed.name.startswith("cp2k.out"):
            packed.with_suffix("").write_bytes(gzip.decompress(packed.read_bytes()))
            packed.unlink()
    return dst


def test_parse_real_relaxation(tmp_path: Path) -> None:
    run = _copy("pbi2_relax_ions", tmp_path)
    record = cp2k.parse(run)
    assert record.engine == "cp2k" and record.engine_version.startswith("CP2K version 2023.1")
    assert record.converged and record.geometry_converged is True
    # energy from the last 'ENERGY| Total FORCE_EVAL' line, converted from Hartree
    last = [ln for ln in (run / "cp2k.out").read_text().splitlines() if "ENERGY| Total" in ln][-1]
    assert record.energy == pytest.approx(float(last.split()[-1]) * 27.211386245988)
    assert record.charge == 0
    structure = record.pmg_structure()
    assert structure.composition.reduced_formula == "PbI2"
    assert structure.lattice.c == pytest.approx(6.979)  # fixed-cell relaxation
    # CP2K printed the eigenvalues of 36 of the 72 k-points (its first k-point group):
    # band edges from that half would be a guess, so the record has none.
    assert record.vbm is None and record.cbm is None
    # The Hartree cube of the final geometry, read with LOCPOT's sign convention: the
    # electron potential energy at the Pb nucleus (origin) lies far below the average.
    assert record.potential_file == "cp2k-v_hartree-1_3.cube.gz"
    grid = read_potential_grid(run / "cp2k-v_hartree-1_3.cube.gz")
    assert grid.data[0, 0, 0] < grid.data.mean() - 5.0


def test_truncated_output_is_not_a_result(tmp_path: Path) -> None:
    run = _copy("pbi2_relax_ions", tmp_path)
    out = run / "cp2k.out"
    lines = out.read_text().splitlines()
    out.write_text("\n".join(lines[: len(lines) // 2]))
    with pytest.raises(EngineError, match=r"cp2k\.out: CP2K output is truncated"):
        cp2k.parse(run)
    out.write_text("")
    with pytest.raises(EngineError, match="truncated"):
        cp2k.parse(run)
    out.unlink()
    with pytest.raises(EngineError, match="output file is missing"):
        cp2k.parse(run)


@pytest.mark.reference
def test_output_of_another_engine_is_rejected(tmp_path: Path, cdte_reference: Path) -> None:
    import gzip

    run = tmp_path / "run"
    run.mkdir()
    with gzip.open(cdte_reference / "bulk_vasp_gam" / "OUTCAR.gz", "rt") as fh:
        (run / "cp2k.out").write_text(fh.read() + "\n PROGRAM ENDED AT\n")
    with pytest.raises(EngineError, match="not a CP2K output"):
        cp2k.parse(run)


def test_unconverged_scf_is_flagged(tmp_path: Path) -> None:
    run = _copy("pbi2_relax_ions", tmp_path)
    out = run / "cp2k.out"
    out.write_text(out.read_text().replace("SCF run converged", "SCF run NOT converged", 1))
    record = cp2k.parse(run)
    assert not record.scf_converged
    with pytest.raises(EngineError, match="SCF did not converge"):
        record.require_converged()


# ----------------------------------------------------------------- real engine


@pytest.mark.slow
def test_real_cp2k_run_on_cubic_cspbi3(tmp_path: Path, cp2k_binary: str) -> None:
    """A 40-atom single point: converged, the known PBE gap, Hartree cube with LOCPOT's sign."""
    settings = cp2k_settings.Cp2kSettings.for_level("fast", {"cutoff_ry": 150, "rel_cutoff_ry": 30})
    cell = supercell(cubic_prototype("Cs", "Pb", "I", 6.39), [2, 2, 2])
    cp2k.write_input(cell, "static", 0, settings, tmp_path, is_supercell=True, band_edges=True)
    record = cp2k.run(tmp_path, nprocs=2, executable=cp2k_binary)
    assert record.converged and np.isfinite(record.energy)
    assert record.nelect == 8 * 34
    assert record.vbm is not None and record.cbm is not None
    # Known answer: the gap of cubic CsPbI3 is direct at R, which the Gamma point of the
    # 2x2x2 supercell samples; PBE without spin-orbit coupling gives ~1.4-1.5 eV there.
    assert record.band_gap == pytest.approx(1.45, abs=0.3)
    grid = read_potential_grid(tmp_path / str(record.potential_file))
    np.testing.assert_allclose(np.diag(grid.lattice), [12.78] * 3, atol=1e-4)
    # The electron potential energy is lowest at the nuclei: the grid point at the Cs
    # nucleus (origin) lies well below the cell average, as in a VASP LOCPOT.
    assert grid.data[0, 0, 0] < grid.data.mean() - 5.0


@pytest.mark.slow
def test_real_cell_relaxation_gives_the_pbe_lattice_constant(
    tmp_path: Path, cp2k_binary: str
) -> None:
    """Known answer: PBE relaxes cubic CsPbI3 to a = 6.39-6.41 Å (experiment 6.29 Å, 634 K)."""
    settings = cp2k_settings.Cp2kSettings.for_level("fast")  # 4x4x4 k-points, 250 Ry
    unit = cubic_prototype("Cs", "Pb", "I", 6.33)
    cp2k.write_input(unit, "relax_cell", 0, settings, tmp_path, keep_symmetry="CUBIC")
    record = cp2k.run(tmp_path, nprocs=2, executable=cp2k_binary)
    assert record.converged and record.geometry_converged is True
    a, b, c = record.pmg_structure().lattice.abc
    assert a == pytest.approx(b) == pytest.approx(c)
    assert a == pytest.approx(6.40, abs=0.05)


@pytest.mark.parametrize(
    ("kind", "level", "charge", "extra"),
    [
        ("relax_cell", "fast", 0, {"keep_symmetry": "CUBIC"}),
        ("relax_ions", "accurate", -1, {"fixed_atoms": [0, 2]}),
        ("static", "fast", 1, {"is_supercell": True}),
        ("static", "accurate", 0, {}),
    ],
)
def test_every_input_kind_passes_cp2k_check(
    tmp_path: Path, cp2k_binary: str, kind: str, level: str, charge: int, extra: dict
) -> None:
    """CP2K's own input parser (--check) accepts what the writer produces."""
    import os
    import subprocess

    settings = cp2k_settings.Cp2kSettings.for_level(level)
    cp2k.write_input(
        cubic_prototype("Cs", "Pb", "I", 6.4), kind, charge, settings, tmp_path, **extra
    )
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    proc = subprocess.run(
        [cp2k_binary, "--check", cp2k.INPUT_NAME],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "ABORT" not in output, output[-2000:]


def _output_text(name: str) -> str:
    with gzip.open(DATA / name / "cp2k.out.gz", "rt") as handle:
        return handle.read()


def test_band_edges_include_zero_weight_gamma() -> None:
    """Real 40-atom bulk output: the gap at R (through Gamma of the supercell), 1.41 eV."""
    text = _output_text("cspbi3_bulk_bands")
    assert parse_cp2k_eigenvalues(text).n_listed == 2
    vbm, cbm = cp2k_output._band_edges(text)
    assert vbm == pytest.approx(1.057531, abs=1e-6)
    assert cbm - vbm == pytest.approx(1.412, abs=1e-3)


def test_band_edges_refused_when_a_kpoint_is_missing(caplog) -> None:
    """Real output where CP2K printed one of two k-points: no band edges rather than wrong ones."""
    text = _output_text("cspbi3_bulk_missing_gamma")
    with caplog.at_level("WARNING"):
        assert cp2k_output._band_edges(text) == (None, None)
    assert "1 of 2 k-points" in caplog.text
