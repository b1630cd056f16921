"""A two-composition sweep (CsPbI3 and CsSn0.5Pb0.5I3) through the real workflow with CP2K.

The study is tests/configs/two_compositions.yaml at the tiny CP2K settings: a [2, 1, 1]
supercell (10 atoms, two B sites: the smallest that holds x = 0.5), V_I in two charge
states and the reduced Na study of issue 12 (Na on the A site and on each B site;
studies/na_in_cs_sn_pb_iodide.yaml is the full one), 150 Ry, a 10 Å k-point length: 24 DFT
jobs of at most 12 atoms (28.6 min with Na_i too, 29 jobs, at load 13; 2026-12-01).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from findings_check import check_page
from workflow_runner import snakemake, two_composition_sweep

SWEEP = two_composition_sweep()
HOSTS = ("CsPbI3", "CsSn0.5Pb0.5I3")


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_two_composition_sweep_end_to_end(tmp_path: Path, cp2k_binary: str) -> None:
    proc = snakemake(tmp_path, SWEEP, "--cores", "2", timeout=3600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = tmp_path / "results" / "sweep2"

    # Hosts: exact composition, SQS quality and lattice constant recorded with the structure.
    alloy = json.loads((results / "CsSn0.5Pb0.5I3/structures/host.json").read_text())
    meta = alloy["metadata"]
    assert meta["composition_achieved"]["x"] == 0.5
    assert {"CsPbI3", "CsSnI3"} == set(meta["end_members"])
    for name in ("host.vasp", "host.cif"):
        assert (results / "CsSn0.5Pb0.5I3/structures" / name).is_file()

    # Vegard: the alloy's bulk lattice constant lies between the relaxed end members'.
    bulk = json.loads((results / "CsSn0.5Pb0.5I3/bulk/supercell.json").read_text())
    ends = bulk["end_member_lattice_constants"]
    assert bulk["lattice_constant"] == pytest.approx(sum(ends.values()) / 2)
    assert min(ends.values()) < bulk["lattice_constant"] < max(ends.values())

    # Manifests: the alloy's iodide sites fall into B-neighbour classes, one structure each.
    from perovskite_defects.defects.manifest import read_manifest

    pure = read_manifest(results / "CsPbI3/defects")
    mixed = read_manifest(results / "CsSn0.5Pb0.5I3/defects")
    assert {e.defect for e in pure} == {"V_I", "Na_Cs", "Na_Pb"}
    # Na_B is Na on each B element the alloy holds, one structure per element
    assert {e.defect for e in mixed} == {"V_I", "Na_Cs", "Na_Pb", "Na_Sn"}
    vacancies = [e for e in mixed if e.defect == "V_I"]
    assert {e.site_class for e in vacancies} == {"Pb2", "PbSn", "Sn2"}
    # multiplicities per formula unit add up to the 3 iodide sites of ABX3
    assert sum(e.multiplicity for e in pure if e.defect == "V_I") == pytest.approx(3.0)
    assert sum(e.multiplicity for e in vacancies) == pytest.approx(3.0)
    assert sum(e.multiplicity for e in mixed if e.defect in ("Na_Pb", "Na_Sn")) == (
        pytest.approx(1.0)
    )

    # Per-host tables: every manifest entry in each of its charge states, finite energies.
    for host, entries in (("CsPbI3", pure), ("CsSn0.5Pb0.5I3", mixed)):
        rows = _csv(results / host / "tables/formation_energies.csv")
        assert {(r["defect"], int(r["charge"])) for r in rows} == {
            (e.id, q) for e in entries for q in e.charges
        }
        columns = [c for c in rows[0] if c.startswith("E_f[")]
        assert columns
        for row in rows:
            assert row["converged"] == "True"
            assert all(math.isfinite(float(row[c])) for c in columns)
        # V_I is a donor: at E_F = VBM the +1 state lies below the neutral one.
        for entry in (e for e in entries if e.defect == "V_I"):
            by_q = {int(r["charge"]): r for r in rows if r["defect"] == entry.id}
            assert float(by_q[1][columns[0]]) < float(by_q[0][columns[0]])

    # Aggregated tables across the two compositions.
    tables = results / "tables"
    fe = _csv(tables / "formation_energies.csv")
    assert {r["host"] for r in fe} == set(HOSTS)
    assert {float(r["x"]) for r in fe} == {0.0, 0.5}
    averages = _csv(tables / "class_averages.csv")
    alloy_rows = [
        r for r in averages if r["host"] == "CsSn0.5Pb0.5I3" and r["defect type"] == "V_I"
    ]
    assert {r["site class"] for r in alloy_rows} == {"Pb2", "PbSn", "Sn2"}
    assert {(r["site class"], int(r["charge"])) for r in alloy_rows} >= {
        (c, q) for c in ("Pb2", "PbSn", "Sn2") for q in (1, 0)
    }
    for row in averages:
        low, mean, high = (float(row[f"E_f {k} (eV)"]) for k in ("min", "Boltzmann", "max"))
        assert all(math.isfinite(v) for v in (low, mean, high))
        assert low <= mean + 1e-9 and mean <= high + 1e-9
        assert int(row["representatives"]) == 1  # site_classes.representatives
    for name in ("transition_levels", "class_transition_levels"):
        assert _csv(tables / f"{name}.csv")
        assert (tables / f"{name}.md").read_text().startswith("#")
    assert (tables / "provenance.json").is_file()
    # Fermi level and concentrations of both hosts, and a diagram per host and limit.
    fermi = _csv(tables / "fermi_level.csv")
    assert {(r["host"], r["limit"]) for r in fermi} == {
        (h, lim) for h in HOSTS for lim in ("I-rich", "I-poor")
    }
    assert all(math.isfinite(float(r["Fermi level above VBM (eV)"])) for r in fermi)
    conc = _csv(tables / "concentrations.csv")
    alloy_conc = [r for r in conc if r["host"] == "CsSn0.5Pb0.5I3"]
    assert {r["site class"] for r in alloy_conc if r["defect type"] == "V_I"} == {
        "Pb2",
        "PbSn",
        "Sn2",
    }
    # every Na defect of the alloy has its concentration, Na on both B elements included
    assert {r["defect type"] for r in alloy_conc} >= {"Na_Cs", "Na_Pb", "Na_Sn"}
    assert all(float(r["concentration (cm^-3)"]) >= 0 for r in conc)
    # The bond analysis of Na on the Sn site of the alloy: six iodide neighbours, the
    # host's Sn-I distance beside them (ideal sites at the tiny settings: equal).
    env = json.loads(
        (results / "CsSn0.5Pb0.5I3/defects/Na_Sn_q-1/local_environment.json").read_text()
    )
    shell = env["geometry"]["first_shell"]
    assert [(s["element"], s["count"]) for s in shell] == [("I", 6)]
    assert shell[0]["host_mean"] == pytest.approx(3.15, abs=0.15)  # a/2 of a ~6.3 Å cell
    # What Na changes at each x: the native-only and with-Na Fermi levels of both hosts.
    dopant = _csv(tables / "dopant_effect.csv")
    assert {(r["host"], r["limit"]) for r in dopant} == {
        (h, lim) for h in HOSTS for lim in ("I-rich", "I-poor")
    }
    for row in dopant:
        assert row["dopants"] == "Na"
        for key in ("Fermi level, native only (eV)", "Fermi level, with dopants (eV)"):
            assert math.isfinite(float(row[key]))
    # The findings page says, per limit, what Na does to the deep traps at each x, every
    # number equal to the table cell it cites.
    check = check_page(results)
    across = check.text.split("## Across compositions")[1]
    for limit in ("I-rich", "I-poor"):
        assert f"At the {limit} limit, Na " in across
    for host in HOSTS:
        assert f"In {host} (x = " in across
    for host in HOSTS:
        for limit in ("I-rich", "I-poor"):
            png = results / "plots" / f"formation_energy_{host}_{limit}.png"
            assert png.stat().st_size > 1000
