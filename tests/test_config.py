"""Config validation: defaults, and one clear line for every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from perovskite_defects import config as cfg


def test_defaults_fill_the_default_study() -> None:
    config = cfg.validate({})
    assert config["study"] == "cspbi3_default"
    host = config["host"]
    assert (host["A"], host["B"], host["X"], host["x"]) == ("Cs", "Pb", "I", None)
    assert host["lattice_constant"] == "auto" and host["supercell"] == "auto"
    assert host["min_image_distance"] == 12.0 and host["relax"] is True
    # The default defect set is role-based, so it fits every composition of a sweep.
    names = [d["name"] for d in config["defects"]]
    assert names[:6] == ["V_X", "V_A", "V_B", "Na_A", "Na_B", "Na_i"]
    assert names[6:] == ["X_i", "B_i", "A_i", "X_B", "B_X", "A_B", "B_A"]  # natives
    assert config["defects"][0]["site_index"] == 0
    assert cfg.host_name(config) == "CsPbI3"


def test_repository_config_is_valid() -> None:
    config = cfg.load(Path(__file__).resolve().parents[1] / "config.yaml")
    assert config["engine"] == "cp2k"


def test_every_schema_key_has_description_and_default() -> None:
    schema = cfg.load_schema()

    def walk(node: dict, path: str) -> None:
        for key, sub in node.get("properties", {}).items():
            where = f"{path}.{key}" if path else key
            assert "description" in sub, f"{where} has no description"
            # required keys of list items (a defect's name, charges) have no default
            if key not in node.get("required", []):
                assert "default" in sub, f"{where} has no default"
            walk(sub, where)
        if "items" in node and isinstance(node["items"], dict):
            walk(node["items"], path + "[]")

    walk(schema, "")


def test_ground_state_search_off_unquoted_is_off() -> None:
    import yaml

    raw = yaml.safe_load("ground_state_search: off\n")
    assert raw == {"ground_state_search": False}  # what YAML makes of it
    assert cfg.validate(raw)["ground_state_search"] == "off"
    assert cfg.validate({})["ground_state_search"] == "off"
    for mode in ("screen", "full"):  # run by rules/search.smk
        assert cfg.validate({"ground_state_search": mode})["ground_state_search"] == mode


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"studdy": "x"}, "unknown key(s) ['studdy']"),
        ({"study": "../etc"}, "config key 'study'"),
        ({"study": "a b; rm -rf"}, "does not match the allowed pattern"),
        ({"engine": "abinit"}, "config key 'engine': 'abinit' is not one of"),
        ({"level": "medium"}, "config key 'level'"),
        ({"host": {"B": "Ge"}}, "config key 'host.B': 'Ge' is not one of"),
        ({"host": {"X": "F"}}, "config key 'host.X'"),
        ({"host": {"lattice_constant": -1}}, "config key 'host.lattice_constant'"),
        ({"host": {"lattice_constant": "big"}}, "config key 'host.lattice_constant'"),
        ({"host": {"supercell": [2, 2]}}, "config key 'host.supercell'"),
        ({"host": {"supercell": [2, 0, 2]}}, "config key 'host.supercell'"),
        ({"host": {"x": 1.5}}, "config key 'host.x': Sn fraction 1.5 is outside [0, 1]"),
        ({"host": {"A": "K"}}, "config key 'host.A': 'K' is not one of"),
        ({"host": {"X": {"I": 0.5, "Br": 0.4}}}, "sum to 0.9, not 1"),
        ({"host": {"X": {"I": 0.5, "F": 0.5}}}, "config key 'host.X': 'F' is not one of"),
        ({"host": {"x": 0.3, "supercell": [2, 2, 2]}}, "cannot be held by the 8 B sites"),
        ({"host": {"supercell": [6, 6, 6], "max_atoms": 200}}, "above max_atoms = 200"),
        ({"host": {"structure": "README.md"}}, "config key 'host.structure'"),
        ({"sweep": {"grid": {"A": ["Cs"], "X": ["I"], "x": [2]}}}, "outside [0, 1]"),
        ({"sweep": {"compositions": [{"A": "Cs", "X": "Q"}]}}, "sweep.compositions.0.X"),
        ({"defects": [{"name": "Vac_I", "charges": [0]}]}, "config key 'defects.0.name'"),
        ({"defects": [{"name": "V_I", "charges": [0, 0]}]}, "non-unique"),
        ({"defects": [{"name": "V_I", "charges": [9]}]}, "config key 'defects.0.charges.0'"),
        ({"defects": [{"name": "V_Br", "charges": [1]}]}, "not in the host CsPbI3"),
        ({"defects": [{"name": "Xx_Cs", "charges": [0]}]}, "'Xx' is not an element"),
        (
            {"defects": [{"name": "V_I", "charges": [1]}, {"name": "V_I", "charges": [0]}]},
            "listed twice",
        ),
        ({"competing_phases": ["Cs", "Pb", "Na", "CsI"]}, "no elemental reference phase for ['I']"),
        ({"competing_phases": ["Unobtainium"]}, "no structure file structures/phases/Unobtainium"),
        (
            {"host": {"x": 0.5}, "competing_phases": ["Cs", "Pb", "I2", "Na", "CsI", "PbI2"]},
            "no elemental reference phase for ['Sn']",
        ),
        ({"dielectric": {"value": 0.5}}, "config key 'dielectric.value'"),
        ({"correction": "magic"}, "config key 'correction'"),
        ({"cp2k": {"executable": "cp2k; rm -rf /"}}, "config key 'cp2k.executable'"),
        ({"resources": {"mpi_ranks": -2}}, "config key 'resources.mpi_ranks'"),
        ({"ground_state_search": "on"}, "config key 'ground_state_search'"),
    ],
)
def test_bad_input_gives_one_line_naming_the_key(raw: dict, expected: str) -> None:
    with pytest.raises(cfg.ConfigError) as err:
        cfg.validate(raw)
    message = str(err.value)
    assert expected in message
    assert "\n" not in message


def test_missing_and_malformed_config_files(tmp_path: Path) -> None:
    with pytest.raises(cfg.ConfigError, match="does not exist"):
        cfg.load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("study: [unclosed\n")
    with pytest.raises(cfg.ConfigError, match="not valid YAML"):
        cfg.load(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string\n")
    with pytest.raises(cfg.ConfigError, match="top level must be a mapping"):
        cfg.load(scalar)


def test_defect_names_parse_to_kinds_and_atom_changes() -> None:
    names = ["V_I", "Na_Cs", "Na_Pb", "Na_i"]
    raw = {"defects": [{"name": n} for n in names]}
    specs = {s.name: s for s in cfg.defect_specs(cfg.validate(raw))}
    assert specs["V_I"].kind == "vacancy" and specs["V_I"].atoms_added == {"I": -1}
    assert specs["Na_Cs"].atoms_added == {"Na": 1, "Cs": -1}
    assert specs["Na_Pb"].kind == "substitution"
    assert specs["Na_i"].kind == "interstitial" and specs["Na_i"].atoms_added == {"Na": 1}
    assert specs["Na_i"].charges == (1, 0)


@pytest.mark.parametrize(
    ("host", "phases"),
    [
        ({"X": "Br", "x": 0.5}, ["Cs", "Pb", "Sn", "Br2", "Na", "CsBr", "NaBr"]),
        ({"X": "Cl", "x": 1}, ["Cs", "Sn", "Cl2", "Na", "CsCl", "NaCl"]),
        ({"A": "FA"}, ["C", "H2", "N2", "Pb", "I2", "Na", "PbI2", "NaI"]),
    ],
)
def test_shipped_phases_cover_tin_bromide_chloride_and_molecular_hosts(
    host: dict, phases: list[str]
) -> None:
    config = cfg.validate({"host": host, "competing_phases": phases})
    assert config["competing_phases"] == phases


def test_unlisted_shipped_phases_are_named() -> None:
    listed = ["Cs", "Pb", "Sn", "I2", "Na", "CsI", "PbI2"]
    assert cfg.unlisted_phases({"Cs", "Pb", "Sn", "I", "Na"}, listed) == [
        "Cs2SnI6", "NaI", "SnI2", "SnI4"
    ]  # fmt: skip
    assert cfg.unlisted_phases({"Cs", "Sn", "Br"}, ["Cs", "Sn", "Br2", "CsBr"]) == ["SnBr2"]
    assert cfg.unlisted_phases({"Cs", "Pb", "I"}, ["Cs", "Pb", "I2"]) == ["CsI", "PbI2"]
