"""Composition hosts (SQS, molecules), alloy site classes, charge rules and the manifest."""

from __future__ import annotations

import numpy as np
import pytest

from perovskite_defects.defects.manifest import DefectRequest, read_manifest, write_manifest
from perovskite_defects.defects.names import default_charges
from perovskite_defects.defects.site_classes import build_defect_set
from perovskite_defects.hosts.composition import choose_supercell, parse_composition
from perovskite_defects.hosts.molecules import formamidinium, methylammonium
from perovskite_defects.hosts.perovskite import (
    HostStructure,
    build_host,
    cubic_prototype,
    supercell,
)
from perovskite_defects.hosts.sqs import decorate


def make_host(entry, multiples=(2, 2, 2), steps=1000, seed=1) -> HostStructure:
    comp = parse_composition(entry, "host")
    a = comp.literature_lattice()
    choice = choose_supercell(comp, [a] * 3, list(multiples), 12.0, 1000, 0.05, "host")
    return build_host(comp, a, choice.multiples, choice.counts, seed=seed, sqs_steps=steps)


@pytest.mark.parametrize(
    ("entry", "multiples", "expected"),
    [
        ({"A": "Cs", "X": "I", "x": 0}, (2, 2, 2), {"Cs": 8, "Pb": 8, "I": 24}),
        ({"A": "Cs", "X": "Br", "x": 0.5}, (2, 2, 2), {"Cs": 8, "Pb": 4, "Sn": 4, "Br": 24}),
        ({"A": "Cs", "X": "Cl", "x": 1}, (2, 1, 1), {"Cs": 2, "Sn": 2, "Cl": 6}),
        (
            {"A": "MA", "X": {"I": 0.5, "Br": 0.5}, "x": 0.25},
            (2, 2, 2),
            {"C": 8, "N": 8, "H": 48, "Pb": 6, "Sn": 2, "I": 12, "Br": 12},
        ),
        (
            {"A": "FA", "X": "I", "x": 0.5},
            (2, 1, 1),
            {"C": 2, "N": 4, "H": 10, "Pb": 1, "Sn": 1, "I": 6},
        ),
    ],
)
def test_exact_compositions_and_no_close_atoms(entry, multiples, expected) -> None:
    host = make_host(entry, multiples)
    counts = {k: int(v) for k, v in host.structure.composition.as_dict().items()}
    assert counts == expected
    assert host.metadata["composition_achieved"]["x"] == pytest.approx(entry["x"])
    # Physical thresholds: bonded X-H pairs inside a molecule are 1.0-1.1 Å; anything
    # between different units must be >= 1.7 Å (H...X) and >= 2.5 Å between heavy ions.
    s = host.structure
    same_molecule = {i: k for k, site in enumerate(host.a_sites) for i in site["atoms"]}
    d = s.distance_matrix
    for i in range(len(s)):
        for j in range(i + 1, len(s)):
            if i in same_molecule and same_molecule.get(j) == same_molecule[i]:
                continue
            light = "H" in (s[i].specie.symbol, s[j].specie.symbol)
            assert d[i, j] > (1.7 if light else 2.5), (s[i].specie, s[j].specie, d[i, j])


def _bond_lengths(structure, atoms, mol) -> list[float]:
    return [structure.get_distance(atoms[i], atoms[j]) for i, j, _ in mol.bonds]


@pytest.mark.parametrize(("a_cation", "mol"), [("FA", formamidinium()), ("MA", methylammonium())])
def test_molecule_geometry_survives_the_supercell(a_cation, mol) -> None:
    host = make_host({"A": a_cation, "X": "I", "x": 0}, (2, 2, 2))
    assert len(host.a_sites) == 8
    expected = [length for _, _, length in mol.bonds]
    for site in host.a_sites:
        assert _bond_lengths(host.structure, site["atoms"], mol) == pytest.approx(
            expected, abs=1e-6
        )
        centre = host.structure.lattice.get_cartesian_coords(site["frac_centre"])
        heavy = [i for i in site["atoms"] if host.structure[i].specie.symbol != "H"]
        mean = np.mean([host.structure[i].coords for i in heavy], axis=0)
        assert np.linalg.norm(mean - centre) < 1e-6
    rotations = [np.array(s["rotation"]) for s in host.a_sites]
    assert not np.allclose(rotations[0], rotations[1])  # seeded random, per site
    again = make_host({"A": a_cation, "X": "I", "x": 0}, (2, 2, 2))
    assert again.structure == host.structure  # same seed, same structure


def test_molecule_literature_geometry() -> None:
    fa = formamidinium()
    c, n1, n2 = fa.positions[0], fa.positions[1], fa.positions[2]
    angle = np.degrees(np.arccos(np.dot(n1 - c, n2 - c) / np.linalg.norm(n1 - c) ** 2))
    assert angle == pytest.approx(125.0)
    assert np.ptp(fa.positions[:, 2]) < 1e-9  # planar
    ma = methylammonium()
    assert np.linalg.norm(ma.positions[0] - ma.positions[1]) == pytest.approx(1.48)


def test_site_classes_on_a_layered_sn_pb_arrangement() -> None:
    # Hand-built order: Sn in the B layer at z = 3/4, Pb at z = 1/4 (2x2x2 cell). X sites in
    # the Pb layer are Pb-X-Pb (8), in the Sn layer Sn-X-Sn (8), and the apical X between
    # the layers Pb-X-Sn (8).
    comp = parse_composition({"A": "Cs", "X": "I", "x": 0.5}, "host")
    host = make_host({"A": "Cs", "X": "I", "x": 0}, (2, 2, 2))
    for i, site in enumerate(host.structure):
        if site.specie.symbol == "Pb" and site.frac_coords[2] > 0.5:
            host.structure.replace(i, "Sn")
    host.metadata["composition_requested"] = comp.as_dict()
    entries, _ = build_defect_set(host, [DefectRequest("V_X")], representatives=3)
    sizes = {e.site_class: e.class_size for e in entries}
    assert sizes == {"Pb2": 8, "PbSn": 8, "Sn2": 8}
    # The layered order keeps symmetry: each class is one or two orbits, far fewer than
    # its 8 sites; multiplicities add up to the 3 X per formula unit.
    assert sum({e.site_class: e.multiplicity for e in entries}.values()) == pytest.approx(3.0)


def test_site_classes_count_periodic_images_in_a_two_cell_supercell() -> None:
    # [2, 1, 1] with Pb at x = 0 and Sn at x = 1/2: the two X along the long axis lie
    # between Pb and Sn; the X along b and c of each B atom lie between that atom and its
    # own periodic image (Pb-X-Pb, Sn-X-Sn), although the cell holds one atom of each.
    comp = parse_composition({"A": "Cs", "X": "I", "x": 0.5}, "host")
    host = make_host({"A": "Cs", "X": "I", "x": 0}, (2, 1, 1))
    pb = [i for i, s in enumerate(host.structure) if s.specie.symbol == "Pb"]
    host.structure.replace(max(pb, key=lambda i: host.structure[i].frac_coords[0]), "Sn")
    host.metadata["composition_requested"] = comp.as_dict()
    entries, _ = build_defect_set(host, [DefectRequest("V_X")], representatives=1)
    assert {e.site_class: e.class_size for e in entries} == {"Pb2": 2, "PbSn": 2, "Sn2": 2}
    assert sum(e.multiplicity for e in entries) == pytest.approx(3.0)


def test_fifty_percent_sqs_needs_few_vacancy_jobs() -> None:
    host = make_host({"A": "Cs", "X": "I", "x": 0.5}, (2, 2, 2))
    entries, structures = build_defect_set(host, [DefectRequest("V_X")], representatives=2)
    assert {e.site_class for e in entries} <= {"Pb2", "PbSn", "Sn2"}
    assert len(entries) <= 6 < 24  # against one job per halide site
    for entry, structure in structures:
        assert len(structure) == len(host.structure) - 1
        assert entry.charges == [1, 0, -1]


@pytest.mark.parametrize(
    ("name", "charges"),
    [
        ("V_I", [1, 0, -1]),
        ("V_Br", [1, 0, -1]),
        ("V_Pb", [1, 0, -1, -2]),
        ("V_Sn", [1, 0, -1, -2]),
        ("V_Cs", [1, 0, -1]),
        ("V_FA", [1, 0, -1]),
        ("Na_Cs", [0]),
        ("Na_MA", [0]),
        ("Na_Pb", [0, -1]),
        ("Na_Sn", [0, -1]),
        ("Na_i", [1, 0]),
        ("Na_Pb+V_I", [1, 0, -1]),
    ],
)
def test_charge_rule(name, charges) -> None:
    assert default_charges(name) == charges


def test_sqs_beats_random_decoration_with_the_same_seed() -> None:
    prim = cubic_prototype("Cs", "Pb", "I", 6.3)
    parent = supercell(prim, [4, 2, 2])
    args = (prim, parent, {"Pb": ["Pb", "Sn"]}, {"Pb": 8, "Sn": 8}, 7, (11.0, 9.1))
    sqs, q_sqs = decorate(*args, n_steps=3000)
    rnd, q_rnd = decorate(*args, method="random")
    assert sqs.composition["Sn"] == rnd.composition["Sn"] == 8
    assert q_sqs.pair_rms_error < q_rnd.pair_rms_error


def test_manifest_round_trip(tmp_path) -> None:
    host = make_host({"A": "MA", "X": "I", "x": 0.5}, (2, 1, 1))
    entries, _ = build_defect_set(
        host, [DefectRequest(n) for n in ("V_X", "V_A", "Na_B", "Na_i")], representatives=1
    )
    write_manifest(entries, tmp_path)
    assert read_manifest(tmp_path) == entries
    v_ma = next(e for e in entries if e.defect == "V_MA")
    assert len(v_ma.remove) == 8 and v_ma.atoms_added == {"C": -1, "N": -1, "H": -6}


def test_plots_keep_the_whole_name_of_an_alloy_host(tmp_path) -> None:
    # Host names hold dots (CsSn0.5Pb0.5I3): the file suffix must not eat part of them.
    import json

    from perovskite_defects.reporting.plots import study_plots

    levels = tmp_path / "levels.json"
    data = {
        "host": "CsSn0.5Pb0.5I3",
        "gap": 1.2,
        "vbm": 0.0,
        "lines": {"I-rich": {"V_I-PbSn": {"1": 0.2, "0": 1.3}}},
        "levels": {"V_I-PbSn": [{"q": 1, "q_prime": 0, "level": 1.1}]},
        "fermi_levels": {"I-rich": 0.6},
        "classes": {},
    }
    levels.write_text(json.dumps(data))
    paths = study_plots([levels], tmp_path / "plots")
    names = {p.name for p in paths}
    assert "formation_energy_CsSn0.5Pb0.5I3_I-rich.png" in names
    assert all(p.stat().st_size > 1000 for p in paths)
