"""Fetching competing phases from the Materials Project (hosts/materials_project.py).

No network reaches the Materials Project here and no real recorded response of its thermo
endpoint could be found in a public source (see the report of issue 12), so these tests run
the client against ``tests/data/materials_project/thermo_search_synthetic_not_recorded.json``:
a SYNTHETIC response written by hand, NOT recorded from the server. It follows the document
model of the real service: the fields of emmet-core 0.88.1 ``ThermoDoc``
(emmet/core/thermo.py: material_id, formula_pretty, thermo_type, energy_type,
energy_above_hull, entries keyed by run type holding ComputedStructureEntry dicts,
last_updated, deprecated) as ``MPRester.materials.thermo.search`` returns them, plus
``MPRester.db_version``. Its ids (synthetic-N), dates, energies and energies above hull
are invented; its structures are this repository's CsI.cif/NaCl.cif, some scaled in volume so
the chosen document can be told apart. What is tested is our selection rule, the written
file and its Source line, the cache and the one-line errors, not MP data.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from perovskite_defects.hosts.materials_project import (
    MaterialsProjectError,
    MaterialsProjectSettings,
    MPApiSource,
    fetch_for_config,
    fetch_phases,
)
from perovskite_defects.hosts.phase_files import load_phase

RESPONSE = Path(__file__).parent / "data" / "materials_project"
RESPONSE = RESPONSE / "thermo_search_synthetic_not_recorded.json"


class FakeThermo:
    """Stands in for ``MPRester().materials.thermo``: answers from the response file.

    With ``as_models`` the documents are turned into mp-api's own document objects (its
    ``_convert_to_model`` with emmet's ThermoDoc), as the real client returns them.
    """

    def __init__(
        self, docs: dict[str, list[dict[str, Any]]], fail: Exception | None, as_models: bool
    ) -> None:
        self.docs, self.fail, self.as_models, self.calls = docs, fail, as_models, []

    def search(self, formula, thermo_types, all_fields, fields):  # noqa: ANN001 (mp-api's names)
        self.calls.append((list(formula), list(thermo_types), all_fields, list(fields)))
        if self.fail:
            raise self.fail
        docs = [
            d for f in formula for d in self.docs.get(f, []) if d["thermo_type"] in thermo_types
        ]
        if self.as_models and docs:
            from emmet.core.thermo import ThermoDoc
            from mp_api.client.core.schemas import _convert_to_model

            return _convert_to_model(docs, ThermoDoc, requested_fields=fields)
        return docs


class FakeRester:
    def __init__(self, fail: Exception | None = None, as_models: bool = False) -> None:
        data = json.loads(RESPONSE.read_text())
        self.db_version = data["db_version"]
        self.materials = type("Materials", (), {})()
        self.materials.thermo = FakeThermo(data["docs"], fail, as_models)


def source(fail: Exception | None = None, as_models: bool = False) -> MPApiSource:
    return MPApiSource(rester=FakeRester(fail, as_models))


def test_lowest_entry_is_written_with_its_source(tmp_path: Path) -> None:
    src = source()
    report = fetch_phases(["CsI"], MaterialsProjectSettings(), tmp_path, src)
    assert report == {"CsI": "fetched synthetic-1 (GGA)"}
    phase = load_phase("CsI", tmp_path)  # the workflow's own reader accepts the file
    assert phase.relax == "cell"
    for part in (
        "Materials Project synthetic-1",
        "GGA relaxed",
        "hull GGA_GGA+U",
        "energy above hull 0.0000 eV/atom",
        "database version synthetic-not-recorded",
    ):
        assert part in phase.source  # fmt: skip
    # the chosen (hull) cell, not the deprecated one lower in energy nor the metastable one
    expected = json.loads(RESPONSE.read_text())["docs"]["CsI"][1]["entries"]["GGA"]
    from pymatgen.core import Structure

    assert phase.structure.volume == pytest.approx(
        Structure.from_dict(expected["structure"]).volume, rel=1e-6
    )
    assert src._rester.materials.thermo.calls[0][:3] == (["CsI"], ["GGA_GGA+U"], False)


def test_functional_of_the_hull_energy_is_recorded(tmp_path: Path) -> None:
    settings = MaterialsProjectSettings(thermo_type="GGA_GGA+U_R2SCAN")
    report = fetch_phases(["NaCl"], settings, tmp_path, source())
    assert report == {"NaCl": "fetched synthetic-4 (r2SCAN)"}
    phase = load_phase("NaCl", tmp_path)
    assert "r2SCAN relaxed" in phase.source and "hull GGA_GGA+U_R2SCAN" in phase.source
    nacl = load_phase("NaCl")  # shipped cell; the r2SCAN one in the response is 0.9 x volume
    assert phase.structure.volume == pytest.approx(0.9 * nacl.structure.volume, rel=1e-6)


def test_cached_file_is_not_fetched_again(tmp_path: Path) -> None:
    src = source()
    fetch_phases(["CsI"], MaterialsProjectSettings(), tmp_path, src)
    before = (tmp_path / "CsI.cif").read_text()
    # no key, no client: a cached file needs neither
    again = fetch_phases(["CsI"], MaterialsProjectSettings(), tmp_path, environ={})
    assert again == {"CsI": "cached"}
    assert (tmp_path / "CsI.cif").read_text() == before
    assert len(src._rester.materials.thermo.calls) == 1


def test_cached_file_without_source_line_is_named(tmp_path: Path) -> None:
    (tmp_path / "SnI2.cif").write_text("# Relaxation: cell\ndata_x\n")
    with pytest.raises(MaterialsProjectError, match=r"SnI2\.cif: .*no '# Source: \.\.\.' line"):
        fetch_phases(["SnI2"], MaterialsProjectSettings(), tmp_path, source())


def test_no_key_names_the_environment_variable(tmp_path: Path) -> None:
    settings = MaterialsProjectSettings(api_key_env="MY_MP_KEY")
    with pytest.raises(MaterialsProjectError, match="environment variable MY_MP_KEY is not set"):
        fetch_phases(["CsI"], settings, tmp_path, environ={"MP_API_KEY": "x"})
    assert not list(tmp_path.iterdir())


def test_no_network_says_so_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "Cs.cif").write_text("# Source: kept as it is\n# Relaxation: cell\ndata_x\n")
    down = ConnectionError("Max retries exceeded with url: /materials/thermo/")
    with pytest.raises(MaterialsProjectError, match=r"cannot reach the Materials Project \(no "):
        fetch_phases(["Cs", "CsI", "NaCl"], MaterialsProjectSettings(), tmp_path, source(down))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Cs.cif"]
    assert (tmp_path / "Cs.cif").read_text().startswith("# Source: kept as it is")


def test_unknown_formula_is_named_and_nothing_written(tmp_path: Path) -> None:
    with pytest.raises(MaterialsProjectError, match="no GGA_GGA\\+U entry for formula 'SnI4'"):
        fetch_phases(["CsI", "SnI4"], MaterialsProjectSettings(), tmp_path, source())
    assert not list(tmp_path.iterdir())  # CsI was found but nothing is written on failure
    with pytest.raises(MaterialsProjectError, match="'Xq2': not a formula"):
        fetch_phases(["Xq2"], MaterialsProjectSettings(), tmp_path, source())


def test_missing_mp_api_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "mp_api", None)  # import of mp_api fails
    with pytest.raises(MaterialsProjectError, match=r"needs the optional package mp-api"):
        fetch_phases(["CsI"], MaterialsProjectSettings(), tmp_path, environ={"MP_API_KEY": "k"})


def test_config_block(tmp_path: Path) -> None:
    config = {
        "competing_phases": ["CsI"],
        "competing_phases_source": {"materials_project": {"api_key_env": "MP_API_KEY"}},
    }
    assert fetch_for_config(config, tmp_path, source()) == {"CsI": "fetched synthetic-1 (GGA)"}
    with pytest.raises(
        MaterialsProjectError, match="competing_phases_source.materials_project' is not set"
    ):
        fetch_for_config({"competing_phases": ["CsI"]}, tmp_path, source())
    bad = {"competing_phases_source": {"materials_project": {"thermo_type": "PBE"}}}
    with pytest.raises(MaterialsProjectError, match="thermo_type': 'PBE' is not one of"):
        fetch_for_config(bad, tmp_path, source())


def test_response_follows_the_real_document_model(tmp_path: Path) -> None:
    """The response file validates as mp-api's ThermoDoc objects and is read the same way."""
    pytest.importorskip("mp_api", reason="optional extra mp-api not installed")
    for formula, thermo_type, expected in (
        ("CsI", "GGA_GGA+U", "fetched synthetic-1 (GGA)"),
        ("NaCl", "GGA_GGA+U_R2SCAN", "fetched synthetic-4 (r2SCAN)"),
    ):
        settings = MaterialsProjectSettings(thermo_type=thermo_type)
        report = fetch_phases([formula], settings, tmp_path, source(as_models=True))
        assert report == {formula: expected}
        assert load_phase(formula, tmp_path).structure.is_valid()


def test_real_client_without_network_says_so(tmp_path: Path) -> None:
    """mp-api's MPRester itself, with no route to the server (as on this machine)."""
    pytest.importorskip("mp_api", reason="optional extra mp-api not installed")
    import socket

    try:
        socket.getaddrinfo("api.materialsproject.org", 443)
        pytest.skip("the Materials Project is reachable here")
    except OSError:
        pass
    with pytest.raises(MaterialsProjectError, match=r"cannot reach the Materials Project \(no "):
        fetch_phases(
            ["SnI2"], MaterialsProjectSettings(), tmp_path, environ={"MP_API_KEY": "a" * 32}
        )
    assert not list(tmp_path.iterdir())


def test_cli_without_key_prints_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from perovskite_defects.cli import main

    monkeypatch.delenv("MP_API_KEY", raising=False)
    config = tmp_path / "config.yaml"
    config.write_text("competing_phases_source:\n  materials_project: {}\n")
    assert main(["fetch-phases", str(config), "--formula", "Cs5Sn7I2"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "environment variable MP_API_KEY is not set" in err[0]


def test_config_check_points_to_fetch_phases() -> None:
    from perovskite_defects import config as cfg

    raw = {
        "competing_phases": ["Cs", "Pb", "I2", "Na", "CsI", "PbI2", "NaI", "Cs5Sn7I2"],
        "competing_phases_source": {"materials_project": {}},
    }
    with pytest.raises(cfg.ConfigError, match=r"Cs5Sn7I2\.cif .*fetch it with `perovskite-de"):
        cfg.validate(raw)
    with pytest.raises(cfg.ConfigError, match=r"Cs5Sn7I2\.cif \(available: \[.*\]\)$"):
        cfg.validate({**raw, "competing_phases_source": None})
