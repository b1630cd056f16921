"""Native interstitials and antisites (X_i, B_i, A_i, X_B, B_X, A_B, B_A): names, charge rule,
supercells in CsPbI3 and a 50 % Sn SQS, validation and the planned jobs. No DFT.

The charge rule is checked against its two references (defects/names.py): doped's vacancy
rule (padding 1: ``doped.generation._get_vacancy_charge_states``, from the vacancy's
oxidation state to the opposite +-1) extended to native interstitials and antisites, and
the amphoteric iodine interstitial of Meggiolaro et al., Energy Environ. Sci. 11, 702
(2018), which is stable in +1 and -1.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml

from perovskite_defects import config as cfg
from perovskite_defects.defects.manifest import DefectRequest
from perovskite_defects.defects.names import (
    NATIVE_ROLE_NAMES,
    atoms_added,
    concrete_names,
    default_charges,
    unbuilt_names,
)
from perovskite_defects.defects.site_classes import build_defect_set
from perovskite_defects.hosts.composition import choose_supercell, parse_composition
from perovskite_defects.hosts.perovskite import build_host
from perovskite_defects.thermodynamics.concentrations import dopants_of

ROOT = Path(__file__).resolve().parents[1]
CSPBI3 = {"Cs", "Pb", "I"}


@pytest.mark.parametrize(
    ("name", "charges"),
    [
        # vacancies: doped's rule, unchanged
        ("V_I", [1, 0, -1]),
        ("V_Pb", [1, 0, -1, -2]),
        ("V_Cs", [1, 0, -1]),
        # native interstitials: q0 (the host oxidation state) .. 0, padded by one
        ("I_i", [1, 0, -1]),  # Meggiolaro et al. 2018: I_i(+1) and I_i(-1)
        ("Pb_i", [2, 1, 0, -1]),
        ("Cs_i", [1, 0, -1]),
        # native antisites: q0 = oxidation-state difference .. 0, padded by one
        ("Pb_I", [3, 2, 1, 0, -1]),
        ("I_Pb", [1, 0, -1, -2, -3]),
        ("Cs_Pb", [1, 0, -1]),
        ("Pb_Cs", [1, 0, -1]),
        # dopants keep q0 .. 0
        ("Na_i", [1, 0]),
        ("Na_Pb", [0, -1]),
        ("Na_Cs", [0]),
        ("Sn_Pb", [0]),  # Sn is foreign to CsPbI3
        ("Sn_i", [2, 1, 0]),
        ("Na_Pb+V_I", [1, 0, -1]),
    ],
)
def test_charge_rule_in_cspbi3(name: str, charges: list[int]) -> None:
    assert default_charges(name, CSPBI3) == charges


def test_native_is_decided_by_the_host() -> None:
    """Sn_i is a dopant in CsPbI3 and native in an Sn-Pb alloy."""
    assert default_charges("Sn_i", {"Cs", "Sn", "Pb", "I"}) == [2, 1, 0, -1]
    assert default_charges("Sn_i", CSPBI3) == [2, 1, 0]


def test_role_names_expand_per_host() -> None:
    alloy = ("Cs", ["Pb", "Sn"], ["I"])
    assert concrete_names("X_i", *alloy) == ["I_i"]
    assert concrete_names("B_i", *alloy) == ["Pb_i", "Sn_i"]
    assert concrete_names("X_B", *alloy) == ["I_Pb", "I_Sn"]
    assert concrete_names("B_X", *alloy) == ["Pb_I", "Sn_I"]
    assert concrete_names("A_B", *alloy) == ["Cs_Pb", "Cs_Sn"]
    assert concrete_names("B_A", *alloy) == ["Pb_Cs", "Sn_Cs"]
    assert concrete_names("X_i", "Cs", ["Pb"], ["I", "Br"]) == ["I_i", "Br_i"]
    # a molecule is never placed on an interstitial or B site; the left-out names are named
    fa = ("FA", ["Pb"], ["I"])
    assert concrete_names("A_i", *fa) == [] and unbuilt_names("A_i", *fa) == ["FA_i"]
    assert concrete_names("A_B", *fa) == [] and unbuilt_names("A_B", *fa) == ["FA_Pb"]
    assert concrete_names("B_A", *fa) == ["Pb_FA"]


def test_natives_bring_no_dopant_and_na_does() -> None:
    alloy = {"Cs", "Sn", "Pb", "I"}
    for name in ("I_i", "Pb_i", "Sn_i", "Cs_i", "I_Pb", "Sn_I", "Cs_Sn", "Pb_Cs"):
        assert dopants_of(atoms_added(name), alloy) == [], name
    assert dopants_of(atoms_added("Na_Sn"), alloy) == ["Na"]
    assert atoms_added("Pb_FA") == {"Pb": 1, "C": -1, "N": -2, "H": -5}


# --------------------------------------------------------------------------- supercells


def _host(x: float):
    comp = parse_composition({"A": "Cs", "X": "I", "x": x}, "host")
    a = comp.literature_lattice()
    choice = choose_supercell(comp, [a] * 3, [2, 2, 2], 12.0, 1000, 0.02, "host")
    return build_host(comp, a, choice.multiples, choice.counts, seed=0)


@pytest.fixture(scope="module")
def pure_set():
    host = _host(0.0)
    requests = [DefectRequest(n) for n in (*NATIVE_ROLE_NAMES, "Na_i")]
    return host, build_defect_set(host, requests)[1]


@pytest.fixture(scope="module")
def alloy_set():
    host = _host(0.5)
    requests = [DefectRequest(n) for n in (*NATIVE_ROLE_NAMES, "V_X", "Na_i")]
    return host, build_defect_set(host, requests)[1]


def _check_structure(host, entry, structure) -> None:
    """Atom count, formula change = atoms_added, nothing closer than 1.5 Å (the default
    interstitial_min_distance) to the defect, charges by the rule."""
    before = Counter({el.symbol: int(n) for el, n in host.structure.composition.items()})
    after = Counter({el.symbol: int(n) for el, n in structure.composition.items()})
    change = {el: after[el] - before[el] for el in set(before) | set(after)}
    assert {k: v for k, v in change.items() if v} == entry.atoms_added, entry.id
    assert len(structure) == len(host.structure) + sum(entry.atoms_added.values()), entry.id
    if entry.kind == "interstitial":
        assert len(structure) == len(host.structure) + 1
    else:
        assert len(structure) == len(host.structure)
    species, frac = entry.add[0]
    index = next(i for i, s in enumerate(structure) if np.allclose(s.frac_coords, frac))
    assert structure[index].specie.symbol == species
    d = structure.lattice.get_all_distances([frac], structure.frac_coords)[0]
    d[index] = np.inf
    assert d.min() > 1.5, entry.id
    symbols = {"Cs", *(s.specie.symbol for s in host.structure if s.specie.symbol != "Cs")}
    assert entry.charges == default_charges(entry.defect, symbols)


def test_every_native_in_cspbi3(pure_set) -> None:
    host, built = pure_set
    by_defect = {e.defect: (e, s) for e, s in built}
    assert set(by_defect) == {"I_i", "Pb_i", "Cs_i", "I_Pb", "Pb_I", "Cs_Pb", "Pb_Cs", "Na_i"}
    for entry, structure in built:
        _check_structure(host, entry, structure)
    formulas = {d: s.composition.formula.replace(" ", "") for d, (_, s) in by_defect.items()}
    assert formulas["I_i"] == "Cs8Pb8I25"
    assert formulas["Pb_I"] == "Cs8Pb9I23"
    assert formulas["Pb_Cs"] == "Cs7Pb9I24"
    # one site class in a pure host; multiplicities per ABX3 from the sublattice sizes
    assert {d: e.multiplicity for d, (e, _) in by_defect.items() if e.kind != "interstitial"} == {
        "I_Pb": 1.0,
        "Pb_I": 3.0,
        "Cs_Pb": 1.0,
        "Pb_Cs": 1.0,
    }
    # the native interstitials use the Voronoi site of Na_i (same machinery, site_index 0)
    na = by_defect["Na_i"][0]
    for name in ("I_i", "Pb_i", "Cs_i"):
        entry = by_defect[name][0]
        assert entry.frac_coords == pytest.approx(na.frac_coords)
        assert entry.multiplicity == na.multiplicity


def test_every_native_on_every_site_class_of_an_alloy(alloy_set) -> None:
    host, built = alloy_set
    entries = [e for e, _ in built]
    for entry, structure in built:
        if entry.defect not in ("V_I", "Na_i"):
            _check_structure(host, entry, structure)

    def classes(defect: str) -> set[str]:
        return {e.site_class for e in entries if e.defect == defect}

    def multiplicity(defect: str) -> float:
        seen = {(e.site_class, e.multiplicity) for e in entries if e.defect == defect}
        return sum(m for _, m in seen)

    # antisites on X sites take the X site classes of V_I (B neighbours Pb2, PbSn, Sn2)
    assert classes("Pb_I") == classes("Sn_I") == classes("V_I") == {"Pb2", "PbSn", "Sn2"}
    assert multiplicity("Pb_I") == multiplicity("Sn_I") == pytest.approx(3.0)
    # X_B and A_B on each B species: 4 Pb and 4 Sn of 8 B sites
    for name in ("I_Pb", "I_Sn", "Cs_Pb", "Cs_Sn"):
        assert multiplicity(name) == pytest.approx(0.5), name
    for name in ("Pb_Cs", "Sn_Cs"):
        assert multiplicity(name) == pytest.approx(1.0), name
    # interstitials: the classes of Na_i (Voronoi type and nearest B atoms)
    assert classes("I_i") == classes("Pb_i") == classes("Sn_i") == classes("Na_i")
    assert multiplicity("I_i") == pytest.approx(multiplicity("Na_i"))
    # Pb and Sn both native in the alloy: the native rule for either
    sn_i = next(e for e in entries if e.defect == "Sn_i")
    assert sn_i.charges == [2, 1, 0, -1]


def test_fa_host_builds_b_on_a_and_skips_molecules_on_b_sites() -> None:
    comp = parse_composition({"A": "FA", "X": "I", "x": 0}, "host")
    a = comp.literature_lattice()
    choice = choose_supercell(comp, [a] * 3, [2, 2, 2], 12.0, 1000, 0.02, "host")
    host = build_host(comp, a, choice.multiples, choice.counts, seed=0)
    entries, built = build_defect_set(host, [DefectRequest(n) for n in ("A_i", "A_B", "B_A")])
    # the FA orientations make every A site its own orbit: 2 representatives, as for Na_FA
    assert [e.defect for e in entries] == ["Pb_FA", "Pb_FA"]
    for entry, structure in built:
        assert len(structure) == len(host.structure) - 8 + 1  # C N2 H5 out, Pb in
        assert structure.composition["Pb"] == host.structure.composition["Pb"] + 1
        assert entry.charges == [1, 0, -1]


# --------------------------------------------------------------------------- validation


def _sweep(defects: list[dict], x: tuple[float, ...] = (0.0, 0.5)) -> dict:
    return {
        "host": {"supercell": [2, 2, 2]},
        "sweep": {"compositions": [{"A": "Cs", "X": "I", "x": v} for v in x]},
        "defects": defects,
        "competing_phases": ["Cs", "Pb", "Sn", "I2", "CsI", "PbI2", "Na", "NaI"],
    }


def test_native_role_names_and_rule_charges_validate() -> None:
    raw = _sweep([{"name": n} for n in NATIVE_ROLE_NAMES])
    assert [d["name"] for d in cfg.validate(raw)["defects"]] == list(NATIVE_ROLE_NAMES)
    # the rule's own charges written out are accepted, even 3-4 away from q0
    written = [
        {"name": "B_X", "charges": [3, 2, 1, 0, -1]},
        {"name": "X_B", "charges": [1, 0, -1, -2, -3]},
        {"name": "V_B", "charges": [1, 0, -1, -2]},
    ]
    cfg.validate(_sweep(written))


@pytest.mark.parametrize(
    ("defect", "expected"),
    [
        ({"name": "X_X"}, "'X_X' gives I_I in CsPbI3, a species on its own site"),
        ({"name": "X_I"}, "'X_I' gives I_I in CsPbI3, a species on its own site"),
        ({"name": "Q_i"}, "config key 'defects.0.name': 'Q' is not an element"),
        ({"name": "FA_i"}, "config key 'defects.0.name': 'FA_i' does not match"),
        ({"name": "X_i", "charges": [4]}, "charge +4 makes no sense for I_i"),
        ({"name": "I_Sn"}, "uses the site of Sn, which is not in the host CsPbI3"),
    ],
)
def test_bad_native_names_give_one_line(defect: dict, expected: str) -> None:
    with pytest.raises(cfg.ConfigError) as err:
        cfg.validate(_sweep([defect]))
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


# --------------------------------------------------------------------------- workflow


def _job_stats(output: str) -> dict[str, int]:
    table = output[output.index("Job stats:") :]
    return {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_dry_run_plans_every_native_charge_state(tmp_path: Path) -> None:
    """The manifest checkpoint (pure Python) runs for real; snakemake -n then plans one
    defect job per structure and charge of the rule: 26 in CsPbI3."""
    from workflow_runner import snakemake

    study = {
        "study": "natives",
        "host": {"lattice_constant": 6.3, "supercell": [2, 2, 2]},
        "defects": [{"name": n} for n in NATIVE_ROLE_NAMES],
        "competing_phases": ["Cs", "Pb", "I2", "CsI", "PbI2"],
    }
    manifest = "results/natives/CsPbI3/defects/manifest.tsv"
    proc = snakemake(tmp_path, study, "--cores", "1", manifest, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = snakemake(tmp_path, study, "--cores", "1", "-n", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    planned = set(re.findall(r"defects/([A-Za-z_]+_q-?\d+)/calc\.json", proc.stdout))
    expected = {
        f"{name}_q{q}"
        for name in ("I_i", "Pb_i", "Cs_i", "I_Pb", "Pb_I", "Cs_Pb", "Pb_Cs")
        for q in default_charges(name, CSPBI3)
    }
    assert len(expected) == 26
    assert planned == expected
    assert _job_stats(proc.stdout)["defect_inputs"] == 26


def test_shipped_study_validates_and_dry_runs(tmp_path: Path) -> None:
    """studies/na_in_cs_sn_pb_iodide.yaml: valid, and snakemake -n plans its four hosts
    (SQS for the alloys) up to the manifest checkpoints."""
    from workflow_runner import snakemake

    path = ROOT / "studies" / "na_in_cs_sn_pb_iodide.yaml"
    config = cfg.load(path)
    assert {d["name"] for d in config["defects"]} >= set(NATIVE_ROLE_NAMES)
    assert "Cs2SnI6" in config["competing_phases"]
    assert cfg.unlisted_phases({"Cs", "Sn", "Pb", "Na", "I"}, config["competing_phases"]) == []
    raw = yaml.safe_load(path.read_text())  # the shipped file as it is, run from study.yaml
    proc = snakemake(tmp_path, raw, "--cores", "1", "-n", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = _job_stats(proc.stdout)
    assert stats["host_structure"] == 4
    assert stats["defect_manifest"] == 4
    assert stats["phase_inputs"] == len(config["competing_phases"])
    hosts = {"CsPbI3", "CsSn0.25Pb0.75I3", "CsSn0.5Pb0.5I3", "CsSnI3"}
    assert (
        set(re.findall(r"results/na_in_cs_sn_pb_iodide/(\w[\w.]*)/defects/manifest", proc.stdout))
        == hosts
    )
    assert yaml.safe_load(path.read_text())["study"] == "na_in_cs_sn_pb_iodide"
