"""VASP parser against the CdTe V_Cd^-2 reference runs, plus small synthetic cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from perovskite_defects.engines.base import CalcRecord, EngineError
from perovskite_defects.engines.vasp_output import (
    band_edges,
    parse_vasp_dir,
    read_outcar_site_potentials,
)

FOLDERS = {
    "bulk": "bulk_vasp_gam",
    "bulk_alt": "bulk_vasp_gam_alt",
    "defect": "v_Cd_-2_vasp_gam",
    "defect_alt": "v_Cd_-2_choppy_changy_vasp_gam",
}


@pytest.fixture(scope="module")
def records(cdte_reference: Path) -> dict[str, CalcRecord]:
    """The four reference runs, parsed once for the module (vasprun parsing is slow)."""
    return {key: parse_vasp_dir(cdte_reference / name) for key, name in FOLDERS.items()}


@pytest.mark.reference
def test_raw_energy_difference(records: dict[str, CalcRecord]) -> None:
    diff = records["defect"].energy - records["bulk"].energy
    assert diff == pytest.approx(7.4480, abs=1e-3)


@pytest.mark.reference
def test_reordered_atoms_give_identical_energies(records: dict[str, CalcRecord]) -> None:
    assert records["bulk_alt"].energy == pytest.approx(records["bulk"].energy, abs=1e-6)
    assert records["defect_alt"].energy == pytest.approx(records["defect"].energy, abs=1e-6)


@pytest.mark.reference
def test_bulk_band_edges(records: dict[str, CalcRecord]) -> None:
    bulk = records["bulk"]
    assert bulk.vbm == pytest.approx(1.5968, abs=1e-3)
    assert bulk.band_gap == pytest.approx(1.469, abs=5e-3)


@pytest.mark.reference
def test_charge_nelect_and_flags(records: dict[str, CalcRecord]) -> None:
    for key in ("bulk", "bulk_alt"):
        assert (records[key].charge, records[key].nelect) == (0, 576.0)
    for key in ("defect", "defect_alt"):  # the reordered run has three POTCAR blocks
        assert (records[key].charge, records[key].nelect) == (-2, 566.0)
    for rec in records.values():
        assert rec.engine == "vasp"
        assert rec.scf_converged is True
        assert rec.geometry_converged is None  # single points (NSW <= 1)
        assert rec.require_converged() is rec
        assert rec.potential_file == "LOCPOT.gz"
        assert rec.source_files == ["vasprun.xml.gz", "OUTCAR.gz"]
        assert rec.extra["charge_known"] is True
    assert records["bulk"].engine_version == "6.3.0"
    assert records["defect"].engine_version == "6.4.1"
    assert records["defect"].settings["incar"]["NSW"] == 0
    assert records["defect"].settings["kpoints"]["n_kpoints"] == 1
    assert len(records["defect"].pmg_structure()) == 63


@pytest.mark.reference
def test_record_json_round_trip(records: dict[str, CalcRecord], tmp_path: Path) -> None:
    path = tmp_path / "record.json"
    records["defect"].to_json(path)
    back = CalcRecord.from_json(path)
    assert back.energy == records["defect"].energy
    assert back.charge == -2
    assert back.settings == records["defect"].settings


@pytest.mark.reference
def test_site_potentials(cdte_reference: Path) -> None:
    defect = read_outcar_site_potentials(cdte_reference / FOLDERS["defect"])
    defect_alt = read_outcar_site_potentials(cdte_reference / FOLDERS["defect_alt"] / "OUTCAR.gz")
    bulk = read_outcar_site_potentials(cdte_reference / FOLDERS["bulk"])
    assert (defect.size, bulk.size) == (63, 64)
    assert defect[:3] == pytest.approx([-32.9201, -32.9201, -33.0173])
    # same potentials, listed in another atom order
    np.testing.assert_allclose(np.sort(defect), np.sort(defect_alt), atol=1e-4)


def test_missing_vasprun_names_folder(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=rf"{tmp_path}.*vasprun\.xml"):
        parse_vasp_dir(tmp_path)


@pytest.mark.reference
def test_without_outcar_charge_comes_from_vasprun(cdte_reference: Path, tmp_path: Path) -> None:
    # vasprun's <atominfo> holds the POTCAR valences, so the charge needs no OUTCAR
    (tmp_path / "vasprun.xml.gz").symlink_to(cdte_reference / FOLDERS["defect"] / "vasprun.xml.gz")
    rec = parse_vasp_dir(tmp_path)
    assert rec.charge == -2
    assert rec.extra["charge_known"] is True
    assert rec.potential_file is None
    assert rec.site_potential_file is None
    assert rec.source_files == ["vasprun.xml.gz"]


def test_truncated_vasprun_names_file(tmp_path: Path) -> None:
    (tmp_path / "vasprun.xml").write_text("<?xml version='1.0'?>\n<modeling>\n <generator>\n")
    with pytest.raises(EngineError, match=r"vasprun\.xml: cannot parse"):
        parse_vasp_dir(tmp_path)


def test_band_edges_spin_aware() -> None:
    # (energy, occupation) per k-point and band; spin down has one more empty state
    up = np.array([[[-1.0, 1.0], [0.5, 1.0], [2.0, 0.0]]])
    down = np.array([[[-1.0, 1.0], [0.2, 0.3], [1.8, 0.0]]])
    assert band_edges({"up": up, "down": down}) == (0.5, 0.2)
    assert band_edges({"up": up[:, :2]}) == (0.5, None)


def test_site_potential_block_errors(tmp_path: Path) -> None:
    outcar = tmp_path / "OUTCAR"
    outcar.write_text("nothing here\n")
    with pytest.raises(EngineError, match=r"OUTCAR.*no 'average"):
        read_outcar_site_potentials(outcar)
    outcar.write_text(
        " average (electrostatic) potential at core\n"
        "  the test charge radii are     1.0698  1.1897\n"
        "       1 -32.9201       3 -33.0173\n\n"
    )
    with pytest.raises(EngineError, match=r"malformed"):
        read_outcar_site_potentials(outcar)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EngineError, match=r"no OUTCAR"):
        read_outcar_site_potentials(empty)


def _relaxation_vasprun(energies: list[float], nsw: int) -> str:
    """A minimal vasprun.xml of an ionic relaxation, one <calculation> per energy.

    Synthetic (parser mechanics only): a real VASP relaxation output is not in the
    repository. Each step's last electronic step agrees with its ionic energies, so the
    e_0_energy fix of the parser leaves them as written.
    """

    def calculation(e0: float) -> str:
        block = (
            f'<i name="e_fr_energy">{e0 - 0.001:.8f}</i><i name="e_wo_entrp">{e0:.8f}</i>'
            f'<i name="e_0_energy">{e0:.8f}</i>'
        )
        return (
            f"<calculation><scstep><energy>{block}</energy></scstep>"
            f"<energy>{block}</energy></calculation>"
        )

    structure = (
        '<structure name="finalpos"><crystal><varray name="basis">'
        "<v>4 0 0</v><v>0 4 0</v><v>0 0 4</v></varray></crystal>"
        '<varray name="positions"><v>0 0 0</v></varray></structure>'
    )
    return (
        "<?xml version='1.0'?>\n<modeling>"
        '<generator><i name="version">6.4.2</i></generator>'
        f'<parameters><i type="int" name="NSW">{nsw}</i><i type="int" name="IBRION">2</i>'
        '<i name="NELECT">1.0</i></parameters>'
        '<atominfo><array name="atoms"><set><rc><c>H</c><c>1</c></rc></set></array></atominfo>'
        + "".join(calculation(e) for e in energies)
        + structure
        + "</modeling>\n"
    )


def test_relaxation_keeps_the_energy_of_its_first_ionic_step(tmp_path: Path) -> None:
    (tmp_path / "vasprun.xml").write_text(_relaxation_vasprun([-10.0, -10.3, -10.25], nsw=50))
    rec = parse_vasp_dir(tmp_path)
    assert rec.geometry_converged is True
    assert rec.energy == pytest.approx(-10.25)
    assert rec.initial_energy == pytest.approx(-10.0)
    assert rec.relaxation_energy == pytest.approx(-0.25)


def test_single_point_has_no_initial_energy(tmp_path: Path) -> None:
    (tmp_path / "vasprun.xml").write_text(_relaxation_vasprun([-10.0], nsw=0))
    rec = parse_vasp_dir(tmp_path)
    assert rec.initial_energy is None and rec.relaxation_energy is None
    assert rec.energy == pytest.approx(-10.0)
