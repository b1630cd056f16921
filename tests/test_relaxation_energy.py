"""The energy of the first geometry of a relaxation (vertical, unrelaxed) from real outputs.

Data (tests/data/cp2k/README.md): ``pbi2_relax_ions`` (a converged fixed-cell relaxation),
``cspbi3_5atom_resumed_cellopt`` (a cell relaxation killed after its first step and
resumed by engines/recovery.py: its own output starts at the saved geometry),
``cspbi3_v_i_q1_relaxed`` (V_I(+1) of the default study relaxed at the fast settings,
with the same cell as a single point) and ``cspbi3_bulk_2x2x2`` (a single point).
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from perovskite_defects.engines import cp2k_output

DATA = Path(__file__).parent / "data" / "cp2k"
HARTREE = 27.211386245988


def _copy(name: str, tmp_path: Path) -> Path:
    """A stored real run in tmp_path with its gzipped outputs unpacked (cubes stay packed)."""
    dst = tmp_path / name
    shutil.copytree(DATA / name, dst)
    for packed in dst.rglob("*.out.gz"):
        packed.with_suffix("").write_bytes(gzip.decompress(packed.read_bytes()))
        packed.unlink()
    return dst


def _energies(path: Path) -> list[float]:
    """Every 'ENERGY| Total FORCE_EVAL' value of an output (eV)."""
    return [
        float(line.split()[-1]) * HARTREE
        for line in path.read_text().splitlines()
        if "ENERGY| Total FORCE_EVAL" in line
    ]


def test_relaxation_keeps_its_first_energy(tmp_path: Path) -> None:
    run = _copy("pbi2_relax_ions", tmp_path)
    record = cp2k_output.parse(run)
    energies = _energies(run / "cp2k.out")
    assert len(energies) > 1
    assert record.initial_energy == pytest.approx(energies[0], abs=1e-9)
    assert record.energy == pytest.approx(energies[-1], abs=1e-9)
    assert record.relaxation_energy == pytest.approx(energies[-1] - energies[0], abs=1e-9)
    assert record.relaxation_energy <= 0.0


def test_resumed_relaxation_takes_the_first_energy_of_the_killed_attempt(tmp_path: Path) -> None:
    run = _copy("cspbi3_5atom_resumed_cellopt", tmp_path)
    record = cp2k_output.parse(run)
    killed = _energies(run / "restart" / "attempt-1.out")
    resumed = _energies(run / "cp2k.out")
    # the resumed output starts at the geometry the killed attempt saved, 11 meV lower
    assert resumed[0] < killed[0] - 5e-3
    assert record.initial_energy == pytest.approx(killed[0], abs=1e-9)
    assert record.energy == pytest.approx(resumed[-1], abs=1e-9)


def test_resumed_relaxation_without_its_first_output_has_no_initial_energy(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = _copy("cspbi3_5atom_resumed_cellopt", tmp_path)
    (run / "restart" / "attempt-1.out").unlink()
    record = cp2k_output.parse(run)
    assert record.initial_energy is None and record.relaxation_energy is None
    assert "no initial energy" in caplog.text


def test_single_point_has_no_initial_energy(tmp_path: Path) -> None:
    record = cp2k_output.parse(_copy("cspbi3_bulk_2x2x2", tmp_path))
    assert record.geometry_converged is None
    assert record.initial_energy is None and record.relaxation_energy is None


# ``cspbi3_v_i_q1_relaxed``: V_I(+1) in the 40-site CsPbI3 supercell of the default study
# (a = 6.388 Å), relaxed at the fast settings within 6 Å, and the same cell as a single
# point (``single_point/``); the measurement behind the fast level's relax_radius.


def test_first_geometry_energy_is_the_single_point_energy(tmp_path: Path) -> None:
    run = _copy("cspbi3_v_i_q1_relaxed", tmp_path)
    relaxed = cp2k_output.parse(run)
    single = cp2k_output.parse(run / "single_point")
    assert relaxed.converged and relaxed.geometry_converged is True
    assert single.initial_energy is None
    # same ideal-site cell: Broyden (optimiser) and Pulay (single point) mixing agree to 2 µeV
    assert relaxed.initial_energy == pytest.approx(single.energy, abs=1e-5)
    assert relaxed.relaxation_energy == pytest.approx(-0.3233, abs=1e-4)


def test_relaxed_vacancy_opens_between_its_lead_neighbours(tmp_path: Path) -> None:
    from perovskite_defects.defects.local_environment import geometry_summary
    from perovskite_defects.defects.local_geometry import local_geometry
    from perovskite_defects.hosts.perovskite import cubic_prototype, supercell

    relaxed = cp2k_output.parse(_copy("cspbi3_v_i_q1_relaxed", tmp_path))
    bulk = supercell(cubic_prototype("Cs", "Pb", "I", 6.388), [2, 2, 2])
    geometry = local_geometry(bulk, relaxed.pmg_structure())
    # the +1 vacancy pushes its two Pb2+ neighbours apart; their Pb-I bonds shorten
    assert geometry_summary(geometry.to_dict()) == "Pb-Pb across V_I 6.580 (host 6.388)"
    (bonds,) = geometry.bonds
    assert bonds.defect_mean < bonds.host_mean - 0.03
