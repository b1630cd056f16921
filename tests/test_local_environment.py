"""Local geometry and carrier localisation of defect cells (issues 11 and 12).

Geometry: hand-made cubic ABX3 supercells (a = 6 Å) with displacements put in by hand,
so every expected distance below is worked out on paper from the displacement. Populations:
real CP2K outputs of tests/data/cp2k (see its README for how they were made).
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from perovskite_defects.corrections.sites import matched_sites
from perovskite_defects.defects.local_geometry import local_geometry
from perovskite_defects.engines.atomic_populations import (
    HIRSHFELD,
    MULLIKEN,
    VASP_SPHERES,
    parse_cp2k_populations,
    parse_vasp_populations,
)

DATA = Path(__file__).parent / "data" / "cp2k"
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "cdte_vcd_m2"
A = 6.0


def cubic_supercell(b_species: dict[tuple[int, int, int], str] | None = None) -> Structure:
    """2x2x2 supercell of cubic CsPbI3-type ABX3 (A at 0, B at the cube centre), a = 6 Å.
    ``b_species`` replaces the B atom of unit cell (i, j, k) (default Pb)."""
    species, coords = [], []
    for i in range(2):
        for j in range(2):
            for k in range(2):
                origin = np.array([i, j, k], dtype=float)
                b = (b_species or {}).get((i, j, k), "Pb")
                for el, frac in (
                    ("Cs", (0, 0, 0)),
                    (b, (0.5, 0.5, 0.5)),
                    ("I", (0, 0.5, 0.5)),
                    ("I", (0.5, 0, 0.5)),
                    ("I", (0.5, 0.5, 0)),
                ):
                    species.append(el)
                    coords.append((origin + frac) * A)
    return Structure(Lattice.cubic(2 * A), species, coords, coords_are_cartesian=True)


def index_at(structure: Structure, cart: tuple[float, float, float]) -> int:
    dist = structure.lattice.get_all_distances(
        structure.lattice.get_fractional_coords(cart), structure.frac_coords
    )[0]
    return int(np.argmin(dist))


def shuffled(structure: Structure, seed: int = 3) -> Structure:
    """The same atoms in another order: matching must go by position, never by index."""
    order = np.random.default_rng(seed).permutation(len(structure))
    return Structure.from_sites([structure[int(i)] for i in order])


def test_vacancy_b_b_distance_and_bonds_by_hand():
    """V_I between B(3,3,3) and B(9,3,3); both B pushed 0.1 Å away along x.

    By hand: B-B across the vacancy 6.0 + 2 x 0.1 = 6.2 Å (host 6.0); B to the empty site
    3.1 Å (host 3.0). Each B keeps 5 bonds: the one opposite the vacancy shortens to
    2.9 Å, the four perpendicular ones become sqrt(3.0^2 + 0.1^2) = 3.001666 Å: mean
    (2.9 + 4 x 3.001666) / 5 = 2.981333 Å (host 3.0 for the same bonds and on average).
    """
    bulk = cubic_supercell({(1, 0, 0): "Sn"})
    defect = bulk.copy()
    defect.remove_sites([index_at(defect, (6, 3, 3))])
    defect.translate_sites([index_at(defect, (3, 3, 3))], [-0.1, 0, 0], frac_coords=False)
    defect.translate_sites([index_at(defect, (9, 3, 3))], [0.1, 0, 0], frac_coords=False)
    geometry = local_geometry(bulk, shuffled(defect))
    assert geometry.kind == "vacancy" and geometry.species == "I"
    assert geometry.displacement is None
    assert geometry.max_displacement == pytest.approx(0.1, abs=1e-9)
    (pair,) = geometry.across
    assert pair.label in ("Pb-Sn across V_I", "Sn-Pb across V_I")
    assert (pair.defect, pair.host) == (pytest.approx(6.2), pytest.approx(6.0))
    shell = {s.element: s for s in geometry.first_shell}
    assert set(shell) == {"Pb", "Sn"}
    assert shell["Pb"].defect_mean == pytest.approx(3.1)
    assert shell["Sn"].host_mean == pytest.approx(3.0)
    bonds = {b.pair: b for b in geometry.bonds}
    assert set(bonds) == {"Pb-I", "Sn-I"}
    for b in bonds.values():
        assert (b.n_b_atoms, b.n_bonds) == (1, 5)
        assert b.defect_mean == pytest.approx((2.9 + 4 * np.hypot(3.0, 0.1)) / 5)
        assert b.defect_min == pytest.approx(2.9)
        assert b.host_mean == pytest.approx(3.0)
        assert b.host_average == pytest.approx(3.0)


def test_substitution_off_centre_by_hand():
    """Na on the B site at (3,3,3), moved 0.3 Å along z; one neighbouring I moved 0.2 Å
    towards it along x.

    By hand: off-centre 0.3 Å. Na-I: z neighbours 2.7 and 3.3 Å, the I at (6,3,3) now at
    5.8: sqrt(2.8^2 + 0.3^2), the other three sideways sqrt(3.0^2 + 0.3^2); host 3.0.
    B shell: 6 Pb sites at 6 Å, which in this 12 Å cell are 3 distinct atoms seen from
    both sides (an atom counts once); their 18 bonds are 3.0 Å except that of the Pb at
    (9,3,3) to the moved I, now 3.2 Å: mean 3.0 + 0.2 / 18.
    """
    bulk = cubic_supercell()
    defect = bulk.copy()
    na = index_at(defect, (3, 3, 3))
    defect.replace(na, "Na")
    defect.translate_sites([na], [0, 0, 0.3], frac_coords=False)
    defect.translate_sites([index_at(defect, (6, 3, 3))], [-0.2, 0, 0], frac_coords=False)
    geometry = local_geometry(bulk, shuffled(defect))
    assert geometry.kind == "substitution" and geometry.species == "Na"
    assert geometry.displacement == pytest.approx(0.3)
    (iodine,) = geometry.first_shell
    expected = [2.7, 3.3, np.hypot(2.8, 0.3)] + 3 * [np.hypot(3.0, 0.3)]
    assert (iodine.element, iodine.count) == ("I", 6)
    assert iodine.defect_mean == pytest.approx(np.mean(expected))
    assert (iodine.defect_min, iodine.defect_max) == (pytest.approx(2.7), pytest.approx(3.3))
    assert iodine.host_mean == pytest.approx(3.0)
    (bonds,) = geometry.bonds
    assert (bonds.pair, bonds.n_b_atoms, bonds.n_bonds) == ("Pb-I", 3, 18)
    assert bonds.defect_mean == pytest.approx(3.0 + 0.2 / 18)
    assert bonds.defect_max == pytest.approx(3.2)


def test_interstitial_across_the_cell_boundary():
    """Na_i at the ideal site (0, 0, 3) (between two A atoms, on the cell face), relaxed by
    -0.25 Å along x so that it wraps to x = 11.75: off-centre 0.25 Å, not ~12 Å."""
    bulk = cubic_supercell()
    defect = bulk.copy()
    ideal = np.array([0.0, 0.0, 3.0]) / (2 * A)
    defect.append("Na", [11.75, 0.0, 3.0], coords_are_cartesian=True)
    geometry = local_geometry(bulk, defect, ideal)
    assert geometry.kind == "interstitial"
    assert geometry.displacement == pytest.approx(0.25)
    assert geometry.max_displaced is None  # nothing else moved
    shell = {s.element: s for s in geometry.first_shell}
    # ideal site: 2 Cs (0,0,0), (0,0,6) and 4 I (0,+-3,3), (+-3,0,3), all at 3.0 Å
    assert (shell["Cs"].count, shell["I"].count) == (2, 4)
    assert shell["Cs"].host_mean == pytest.approx(3.0)
    assert shell["Cs"].defect_mean == pytest.approx(np.hypot(3.0, 0.25))


# --------------------------------------------------------------------------- populations


def cp2k_text(folder: str) -> str:
    with gzip.open(DATA / folder / "cp2k.out.gz", "rt") as handle:
        return handle.read()


def test_mulliken_na_i_q0_sums_to_the_electron_count():
    """Na_i^0 in 40-atom CsPbI3 (spin-polarised): alpha + beta over all atoms is the
    electron count of calc.json (281), and the printed totals line is reproduced."""
    calc = json.loads((DATA / "cspbi3_na_i_q0" / "calc.json").read_text())
    text = cp2k_text("cspbi3_na_i_q0")
    found = parse_cp2k_populations(text)
    mulliken = found[MULLIKEN]
    assert len(mulliken.population) == 41
    assert mulliken.total_population == pytest.approx(calc["n_electrons"], abs=1e-4)
    assert calc["n_electrons"] == 281
    assert mulliken.elements[40] == "Na" and mulliken.elements[8] == "Pb"
    # the totals line CP2K printed: "# Total charge and spin 140.500033 140.499967 ..."
    assert mulliken.total_spin == pytest.approx(140.500033 - 140.499967, abs=1e-5)
    assert sum(mulliken.net_charge or []) == pytest.approx(0.0, abs=1e-4)
    # row "41 Na 4 4.420085 4.420085 0.159830 0.000001": net charge and spin columns
    assert mulliken.net_charge is not None and mulliken.spin is not None
    assert (mulliken.net_charge[40], mulliken.spin[40]) == (0.159830, 0.000001)
    hirshfeld = found[HIRSHFELD]
    assert hirshfeld.total_population == pytest.approx(281, abs=0.01)  # 3 decimals printed
    assert hirshfeld.net_charge is not None and hirshfeld.net_charge[40] == pytest.approx(-0.448)


def test_restricted_cp2k_blocks_have_no_spin():
    """PbI2 (restricted, 5 optimisation steps): the last block, populations 18 electrons."""
    found = parse_cp2k_populations(cp2k_text("pbi2_relax_ions"))
    assert found[MULLIKEN].spin is None
    assert found[MULLIKEN].population == pytest.approx([3.686485, 7.156757, 7.156758])
    assert found[HIRSHFELD].net_charge == pytest.approx([0.431, -0.216, -0.216])


def test_vasp_outcar_sphere_charges_and_moments():
    """CdTe V_Cd^-2 (doped's test data, HSE06, ISPIN 2, LORBIT 12): 63 ions, closed shell."""
    outcar = REFERENCE / "v_Cd_-2_vasp_gam" / "OUTCAR.gz"
    if not outcar.is_file():
        pytest.skip(f"{outcar} not present (shared reference data)")
    with gzip.open(outcar, "rt") as handle:
        found = parse_vasp_populations(handle.read())
    pops = found[VASP_SPHERES]
    assert len(pops.population) == 63
    assert pops.population[0] == pytest.approx(10.292)  # ion 1: s 0.432 p 0.299 d 9.561
    assert pops.total_population == pytest.approx(432.781, abs=0.01)  # its "tot" line
    assert pops.spin is not None and max(map(abs, pops.spin)) == 0.0


def test_cp2k_parser_keeps_populations_in_the_record(tmp_path):
    from perovskite_defects.engines.cp2k import parse

    folder = tmp_path / "run"
    shutil.copytree(DATA / "cspbi3_na_i_q0", folder)
    with gzip.open(folder / "cp2k.out.gz", "rb") as src:
        (folder / "cp2k.out").write_bytes(src.read())
    record = parse(folder)
    stored = record.extra["atomic_populations"]
    assert set(stored) == {MULLIKEN, HIRSHFELD}
    assert sum(stored[MULLIKEN]["population"]) == pytest.approx(281, abs=1e-4)


def test_matched_sites_ignore_atom_order():
    bulk = cubic_supercell()
    defect = shuffled(bulk)
    pairs = matched_sites(bulk, defect)
    assert len(pairs) == 40
    assert all(defect[j].species == bulk[i].species for j, i in pairs.items())
    assert all(np.allclose(defect[j].coords, bulk[i].coords) for j, i in pairs.items())


# --------------------------------------------------------------------------- real hole


def _cp2k_record(tmp_path: Path, folder: str):
    from perovskite_defects.engines.cp2k import parse

    target = tmp_path / folder
    shutil.copytree(DATA / folder, target)
    with gzip.open(target / "cp2k.out.gz", "rb") as src:
        (target / "cp2k.out").write_bytes(src.read())
    return parse(target), target


def test_hole_in_cssni3_2x1x1_is_spread(tmp_path):
    """One hole (charge +1) in the 10-atom CsSnI3 cell (tests/data/cp2k/cssni3_2x1x1_hole).

    Expected by hand: the top valence band of cubic CsSnI3 is the antibonding Sn 5s - I 5p
    state, mostly I 5p; an unrelaxed cell whose two Sn are equivalent by a lattice
    translation (and so are its I pairs) cannot put the hole on one of them. So: the spin
    is equal on equivalent atoms, mostly on I, no atom holds half of it -> "spread".
    Totals: 67 electrons; the net charges change by +1 in all; the moment is 1 minus what
    the 300 K smearing moves to the minority spin (CP2K printed 0.965524).
    """
    from perovskite_defects.defects.local_environment import analyse

    bulk, bulk_dir = _cp2k_record(tmp_path, "cssni3_2x1x1_hole/bulk")
    hole, hole_dir = _cp2k_record(tmp_path, "cssni3_2x1x1_hole/hole_q1")
    pops = hole.extra["atomic_populations"][MULLIKEN]
    assert sum(pops["population"]) == pytest.approx(hole.nelect) and hole.nelect == 67
    spin = np.array(pops["spin"])
    assert spin.sum() == pytest.approx(1.0, abs=0.05)
    elements = pops["elements"]
    sn = [i for i, el in enumerate(elements) if el == "Sn"]
    iodine = [i for i, el in enumerate(elements) if el == "I"]
    assert spin[sn[0]] == pytest.approx(spin[sn[1]], abs=1e-6)
    assert spin[iodine].sum() > 0.5 * spin.sum() > spin[sn].sum()

    result = analyse(bulk, hole, bulk_dir, hole_dir)
    assert result["geometry"]["kind"] == "none"  # same atoms: only a carrier was added
    loc = result["localisation"][MULLIKEN]
    assert result["verdict_method"] == MULLIKEN and loc["basis"] == "spin"
    assert loc["verdict"] == "spread"
    assert loc["fraction"] == pytest.approx(np.abs(spin).max() / np.abs(spin).sum())
    assert loc["fraction"] < 0.5 and elements[loc["sites"][0]] == "I"
    changes = {a["index"]: a["charge_change"] for a in loc["atoms"]}
    bulk_net = bulk.extra["atomic_populations"][MULLIKEN]["net_charge"]
    for i, change in changes.items():  # unrelaxed: atom i of both cells is the same site
        assert change == pytest.approx(pops["net_charge"][i] - bulk_net[i])
    assert sum(pops["net_charge"]) - sum(bulk_net) == pytest.approx(1.0, abs=1e-5)


def test_local_environment_json_and_table_for_v_i(tmp_path):
    """V_I(+1) of the 2x1x1 CsPbI3 eFNV data (unrelaxed, restricted): defect distances
    equal the host's (Pb-Pb across the vacancy = the 6.40 Å cell edge, an atom and its
    image), no moment, so a charge-only verdict; one table row."""
    from perovskite_defects.defects.local_environment import (
        FILE_NAME,
        local_environment_rows,
        write_local_environment,
        write_table,
    )

    for name in ("bulk", "v_i_q1"):
        record, folder = _cp2k_record(tmp_path, f"cspbi3_2x1x1_efnv/{name}")
        record.to_json(folder / "record.json")
    base = tmp_path / "cspbi3_2x1x1_efnv"
    data = write_local_environment(
        base / "bulk", base / "v_i_q1", base / "v_i_q1" / FILE_NAME, "V_I", "vacancy", [0, 0.5, 0]
    )
    (pair,) = data["geometry"]["across"]
    assert pair["label"] == "Pb-Pb across V_I"
    assert pair["defect"] == pytest.approx(6.40) and pair["host"] == pytest.approx(6.40)
    loc = data["localisation"][MULLIKEN]
    assert loc["basis"] == "charge" and loc["total_spin"] is None
    (row,) = local_environment_rows([base / "v_i_q1"])
    assert (row["defect"], row["charge"], row["defect (Å)"]) == ("V_I", 1, pytest.approx(6.40))
    assert row["verdict"].endswith("[mulliken, charge]")
    assert "largest spin (μB)" not in row
    write_table([base / "v_i_q1"], tmp_path)
    assert "Pb-Pb across V_I" in (tmp_path / "local_environment.md").read_text()
