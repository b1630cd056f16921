"""Hosts outside the perovskite family (host.framework any) and chemical potentials given
in the config: validation, sites and multiplicities, and the limits' table path."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from perovskite_defects import config as cfg
from perovskite_defects.engines.base import CalcRecord
from perovskite_defects.hosts.any_structure import (
    auto_multiples,
    build_structure_defect_set,
    build_structure_host,
    plan_structure_host,
)
from perovskite_defects.hosts.perovskite import min_image_distance
from perovskite_defects.steps import hosts as steps_hosts
from perovskite_defects.steps import params as sp
from perovskite_defects.steps import phases as steps_phases
from perovskite_defects.steps.common import host_plan
from perovskite_defects.study import AnyHostPlan, defect_requests, plan_hosts
from perovskite_defects.thermodynamics.formation import DefectChargeEntry
from perovskite_defects.thermodynamics.given_limits import CONSISTENCY_TOLERANCE, limits_from_config
from perovskite_defects.thermodynamics.phase_limits import ChemicalPotentialLimits
from perovskite_defects.thermodynamics.rows import formation_energy_table

A_CDTE = 6.48  # Å, zincblende CdTe (experimental)


def zincblende() -> Structure:
    """Conventional 8-atom zincblende CdTe cell (4 formula units)."""
    return Structure.from_spacegroup(
        "F-43m", Lattice.cubic(A_CDTE), ["Cd", "Te"], [[0, 0, 0], [0.25, 0.25, 0.25]]
    )


def converged_record(structure: Structure, energy: float, charge: int = 0, **edges) -> CalcRecord:
    """A hand-made converged VASP record: these tests check bookkeeping (which energy,
    cell and charge go where), so the numbers are chosen to be solved by hand."""
    return CalcRecord(
        engine="vasp",
        engine_version="test",
        energy=energy,
        charge=charge,
        scf_converged=True,
        geometry_converged=True,
        structure=structure.as_dict(),
        **edges,
    )


@pytest.fixture
def cdte_file(tmp_path: Path) -> Path:
    path = tmp_path / "CdTe.vasp"
    zincblende().to(filename=str(path), fmt="poscar")
    return path


def any_config(cdte_file: Path, **extra) -> dict:
    raw = {
        "host": {
            "framework": "any",
            "structure": str(cdte_file),
            "supercell": [2, 2, 2],
            "relax": False,
        },
        "defects": [{"name": "V_Cd", "charges": [0, -1, -2]}],
        "chemical_potentials": {
            "source": "test",
            "limits": {"Cd-rich": {"Cd": -1.0, "Te": -3.0}, "Te-rich": {"Cd": -2.0, "Te": -2.0}},
        },
    }
    raw.update(extra)
    return raw


def test_framework_any_host_plan_and_supercell(cdte_file: Path) -> None:
    config = cfg.validate(any_config(cdte_file))
    assert cfg.host_name(config) == "CdTe"
    plan = plan_structure_host(config["host"], None, None)
    assert (plan.multiples, plan.n_atoms, plan.formula) == ((2, 2, 2), 64, "CdTe")
    assert plan.end_members == ()  # relax: false, the file's cell as it is
    host = build_structure_host(plan)
    assert host.metadata["formula_units"] == 32
    assert host.metadata["min_image_distance"] == pytest.approx(2 * A_CDTE)
    # nothing of the perovskite schema is needed, and a relaxed host relaxes its own cell
    relaxed = cfg.validate(any_config(cdte_file, host={**config["host"], "relax": True}))
    assert plan_structure_host(relaxed["host"], None, None).end_members == ("CdTe",)


def test_both_plan_kinds_give_what_the_rules_read(cdte_file: Path) -> None:
    any_plan = plan_hosts(cfg.validate(any_config(cdte_file)))[0]
    (perovskite_plan,) = plan_hosts(cfg.validate({}))
    for plan in (any_plan, perovskite_plan):
        assert isinstance(plan, AnyHostPlan), type(plan).__name__
        assert plan.lattice_mode == "vegard"
    assert (any_plan.framework, perovskite_plan.framework) == ("any", "perovskite")


def test_dry_run_of_a_framework_any_study(cdte_file: Path, tmp_path: Path) -> None:
    """The rule files evaluate a structure-file host (no DFT: snakemake -n)."""
    from workflow_runner import snakemake

    config = any_config(cdte_file, study="cdte_dry")
    for relax in (False, True):
        config["host"]["relax"] = relax
        proc = snakemake(tmp_path, config, "--cores", "1", "-n")
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "results/cdte_dry/CdTe/bulk/record.json" in proc.stdout
        assert ("results/cdte_dry/CdTe/unitcell/record.json" in proc.stdout) == relax


def test_auto_supercell_of_an_oblique_cell_keeps_images_apart() -> None:
    # hexagonal cell: the planes (100) are a*sqrt(3)/2 = 2.598 Å apart, not a = 3 Å, so
    # 12 Å needs 5 cells along a and b (4 would give 10.4 Å), and 3 along c = 5 Å
    hexagonal = Structure(Lattice.hexagonal(3.0, 5.0), ["Zn"], [[0, 0, 0]])
    multiples = auto_multiples(hexagonal, 12.0)
    assert multiples == (5, 5, 3)
    big = hexagonal.make_supercell(np.diag(multiples), in_place=False)
    assert min_image_distance(big) >= 12.0 - 1e-9


def test_vacancy_site_multiplicity_and_atom_index(cdte_file: Path) -> None:
    config = cfg.validate(any_config(cdte_file))
    host = build_structure_host(plan_structure_host(config["host"], None, None))
    entries, built = build_structure_defect_set(host, defect_requests(config["defects"]))
    (entry,) = entries
    # zincblende: one Cd site, one per formula unit; the centre-nearest Cd is removed
    assert (entry.id, entry.multiplicity, entry.class_size) == ("V_Cd", 1.0, 32)
    assert built[0][1].composition.as_dict() == {"Cd": 31.0, "Te": 32.0}
    assert np.allclose(entry.frac_coords, [0.5, 0.5, 0.5])
    # atom_index picks the atom itself (here the Cd at the origin)
    cd0 = next(i for i, s in enumerate(host.structure) if np.allclose(s.frac_coords, 0))
    chosen = cfg.validate(any_config(cdte_file, defects=[{"name": "V_Cd", "charges": [-2]}]))
    chosen["defects"][0]["atom_index"] = cd0
    (entry,), _ = build_structure_defect_set(host, defect_requests(chosen["defects"]))
    assert entry.remove == [cd0] and np.allclose(entry.frac_coords, 0)


def test_atom_index_of_another_species_is_refused(cdte_file: Path) -> None:
    config = cfg.validate(any_config(cdte_file))
    host = build_structure_host(plan_structure_host(config["host"], None, None))
    te = next(i for i, s in enumerate(host.structure) if s.specie.symbol == "Te")
    config["defects"][0]["atom_index"] = te
    with pytest.raises(ValueError, match=f"atom_index {te} of CdTe is Te, not Cd"):
        build_structure_defect_set(host, defect_requests(config["defects"]))


def test_interstitial_types_of_zincblende(cdte_file: Path) -> None:
    # Two tetrahedral holes (one surrounded by Cd, one by Te), 1 per formula unit each;
    # every Voronoi type keeps its own id, and its multiplicity is per formula unit.
    defects = [{"name": "Na_i", "charges": [1, 0], "all_sites": True}]
    mus = {"a": {"Cd": -1.0, "Te": -4.0, "Na": -1.5}}
    given = {"source": "test", "limits": mus}
    config = cfg.validate(any_config(cdte_file, defects=defects, chemical_potentials=given))
    host = build_structure_host(plan_structure_host(config["host"], None, None))
    entries, built = build_structure_defect_set(
        host, defect_requests(config["defects"]), min_distance=1.5
    )
    assert [e.id for e in entries] == [f"Na_i-s{k}" for k in range(len(entries))]
    tetrahedral = []
    for entry, structure in built:
        assert structure.composition["Na"] == 1
        na = structure[len(structure) - 1]
        neighbours = structure.get_neighbors(na, 2.9)
        if len(neighbours) == 4 and len({n.specie.symbol for n in neighbours}) == 1:
            d = [n.nn_distance for n in neighbours]
            assert d == pytest.approx([A_CDTE * math.sqrt(3) / 4] * 4, abs=1e-3)
            tetrahedral.append((neighbours[0].specie.symbol, entry.multiplicity))
    assert sorted(tetrahedral) == [("Cd", 1.0), ("Te", 1.0)]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"defects": [{"name": "V_I", "charges": [1]}]}, "'V_I' uses the site of I, which is not"),
        ({"defects": [{"name": "V_X", "charges": [1]}]}, "'X' in 'V_X' is not an element"),
        ({"defects": [{"name": "V_Cd"}]}, "config key 'defects.0.charges': required for"),
        ({"defects": [{"name": "Na_Cd+V_Te", "charges": [0]}]}, "only available for perovskite"),
        (
            {"defects": [{"name": "V_Cd", "charges": [-2], "atom_index": 64}]},
            "config key 'defects.0.atom_index': 64 is beyond the 64 atoms",
        ),
        (
            {"defects": [{"name": "Na_i", "charges": [1], "atom_index": 0}]},
            "an interstitial removes no atom",
        ),
        ({"sweep": {"grid": {"A": ["Cs"], "X": ["I"], "x": [0]}}}, "config key 'sweep'"),
        (
            {"chemical_potentials": {"source": "x", "limits": {"Cd-rich": {"Cd": -1.0}}}},
            "'chemical_potentials.limits.Cd-rich': no chemical potential for ['Te']",
        ),
        (
            {"chemical_potentials": {"source": "x", "limits": {"a": {"Cd": 0, "Te": 0, "Na": 0}}}},
            "['Na'] are neither host elements nor dopants",
        ),
        (
            {"chemical_potentials": {"limits": {"a": {"Cd": 0, "Te": 0}}}},
            "config key 'chemical_potentials': 'source' is a required property",
        ),
        (
            {"chemical_potentials": {"source": "x", "limits": {"a b": {"Cd": 0, "Te": 0}}}},
            "config key 'chemical_potentials.limits'",
        ),
        ({"chemical_potentials": None}, "no elemental reference phase for ['Cd', 'Te']"),
    ],
)
def test_bad_framework_any_input_is_one_line(cdte_file: Path, change, expected) -> None:
    with pytest.raises(cfg.ConfigError) as err:
        cfg.validate(any_config(cdte_file, **change))
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"host": {"framework": "any"}}, "config key 'host.structure': required for"),
        (
            {"defects": [{"name": "V_I", "charges": [1], "atom_index": 3}]},
            "config key 'defects.0.atom_index': only for host.framework any",
        ),
        (
            {"sweep": {"grid": {"A": ["Cs"], "X": ["I", "Br"], "x": [0]}}}
            | {"chemical_potentials": {"source": "x", "limits": {"a": {"Cs": 0}}}},
            "given limits hold for one host, but the study has 2",
        ),
        (
            {"chemical_potentials": {"source": "x", "limits": {"I-rich": {"Cs": 0, "Pb": 0}}}},
            "no chemical potential for ['I', 'Na']",
        ),
    ],
)
def test_bad_perovskite_input_for_the_new_keys(raw, expected) -> None:
    with pytest.raises(cfg.ConfigError) as err:
        cfg.validate(raw)
    assert expected in str(err.value)


def test_given_limits_replace_competing_phases_and_keep_their_source(
    cdte_file: Path, tmp_path: Path
) -> None:
    config = cfg.validate(any_config(cdte_file))
    assert steps_phases.host_phases(config, "CdTe") == []  # nothing is computed
    # bulk of 4 formula units at -20 eV: E(CdTe) = -5 eV per formula unit; Cd-rich lies
    # on the boundary (-1 + -4 = -5), Te-rich 0.4 eV above it (-2.0 + -2.6 = -4.6)
    limits_cfg = {"Cd-rich": {"Cd": -1.0, "Te": -4.0}, "Te-rich": {"Cd": -2.0, "Te": -2.6}}
    config["chemical_potentials"]["limits"] = limits_cfg
    config["chemical_potentials"]["source"] = "Doe et al. (2099), HSE06"
    bulk = converged_record(zincblende(), -20.0, vbm=1.0, cbm=2.5)
    bulk.to_json(tmp_path / "bulk.json")
    out = tmp_path / "chemical_potentials.json"
    params = sp.chemical_potentials_params(config, host_plan(config, "CdTe"))
    steps_phases.chemical_potentials("CdTe", tmp_path / "bulk.json", {}, out, **params)
    limits = ChemicalPotentialLimits.from_json(out)
    assert limits.limit_names == ["Cd-rich", "Te-rich"]
    assert limits.mu("Cd-rich") == {"Cd": -1.0, "Te": -4.0}
    assert limits.source == "config chemical_potentials: Doe et al. (2099), HSE06"
    assert limits.host_consistency == pytest.approx({"Cd-rich": 0.0, "Te-rich": 0.4})
    assert CONSISTENCY_TOLERANCE < 0.4
    assert any("Te-rich +0.400 eV per CdTe" in n for n in limits.notes)
    assert not any("Cd-rich +" in n for n in limits.notes[1:])

    # formation energies from the given absolute values, by hand: V_Cd^-2 in a cell at
    # -14 eV: E_f(VBM) = -14 - (-20) - (-1) mu_Cd + (-2)(1.0) + 0.3
    defect = converged_record(zincblende(), -14.0, charge=-2)
    entry = DefectChargeEntry.from_records(
        "V_Cd", defect, bulk, {"Cd": -1}, limits.limits, correction=0.3
    )
    rows = formation_energy_table([entry], limits.limit_names)
    assert rows[0]["E_f[Cd-rich] (eV)"] == pytest.approx(6.0 - 1.0 - 2.0 + 0.3)
    assert rows[0]["E_f[Te-rich] (eV)"] == pytest.approx(6.0 - 2.0 - 2.0 + 0.3)


def test_elemental_references_give_delta_mu_and_formation_enthalpy() -> None:
    settings = {
        "source": "test",
        "limits": {"Cd-rich": {"Cd": -1.0, "Te": -4.0}},
        "elemental": {"Cd": -1.0, "Te": -3.0},
    }
    limits = limits_from_config(settings, {"Cd": 4, "Te": 4}, -20.0)
    assert limits.delta_mu("Cd-rich") == pytest.approx({"Cd": 0.0, "Te": -1.0})
    # Delta H = E(CdTe) - mu_Cd^0 - mu_Te^0 = -5 + 1 + 3
    assert limits.host_formation_energy == pytest.approx(-1.0)
    json.dumps(limits.to_dict())  # the JSON the tables read


def test_relaxed_host_gives_the_supercell_of_the_relaxed_cell(
    cdte_file: Path, tmp_path: Path
) -> None:
    """relax: true -> bulk = the same supercell (same site order) of the relaxed cell."""
    raw = any_config(cdte_file, engine="vasp")
    raw["host"]["relax"] = True
    config = cfg.validate(raw)
    plan = host_plan(config, "CdTe")
    steps_hosts.build_host_files(tmp_path / "structures", **sp.host_structure_params(config, plan))
    steps_hosts.prepare_host(tmp_path / "unitcell", **sp.host_inputs_params(config, plan))
    unit = Structure.from_file(str(tmp_path / "unitcell" / "initial.vasp"))
    assert json.loads((tmp_path / "unitcell" / "calc.json").read_text())["calc_kind"] == (
        "relax_cell"
    )
    relaxed = unit.copy()
    relaxed.scale_lattice(unit.volume * 1.03**3)  # the engine found a 3 % larger cell
    converged_record(relaxed, -20.0).to_json(tmp_path / "unitcell" / "record.json")
    bulk_dir = tmp_path / "bulk"
    steps_hosts.prepare_bulk(
        tmp_path / "structures" / "host.json",
        {"CdTe": tmp_path / "unitcell" / "record.json"},
        bulk_dir,
        **sp.bulk_inputs_params(config, plan),
    )
    bulk = Structure.from_dict(json.loads((bulk_dir / "supercell.json").read_text())["structure"])
    host = Structure.from_file(str(tmp_path / "structures" / "host.vasp"))
    assert bulk.lattice.abc == pytest.approx([2 * 1.03 * A_CDTE] * 3)
    assert [s.specie.symbol for s in bulk] == [s.specie.symbol for s in host]
    assert np.allclose(bulk.frac_coords, host.frac_coords, atol=1e-8)
