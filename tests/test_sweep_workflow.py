"""A two-composition sweep (CsPbI3 and CsSn0.5Pb0.5I3) through the real workflow with CP2K.

The study is tests/configs/two_compositions.yaml at the tiny CP2K settings: a [2, 1, 1]
supercell (10 atoms, two B sites: the smallest that holds x = 0.5), one defect type (V_I)
in two charge states, 150 Ry, a 10 Å k-point length: 18 DFT jobs of at most 12 atoms.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
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
    assert {e.defect for e in pure} == {"V_I"}
    assert {e.site_class for e in mixed} == {"Pb2", "PbSn", "Sn2"}
    # multiplicities per formula unit add up to the 3 iodide sites of ABX3
    assert sum(e.multiplicity for e in pure) == pytest.approx(3.0)
    assert sum(e.multiplicity for e in mixed) == pytest.approx(3.0)

    # Per-host tables: every manifest entry in both charge states, finite energies.
    for host, entries in (("CsPbI3", pure), ("CsSn0.5Pb0.5I3", mixed)):
        rows = _csv(results / host / "tables/formation_energies.csv")
        assert {(r["defect"], int(r["charge"])) for r in rows} == {
            (e.id, q) for e in entries for q in (1, 0)
        }
        columns = [c for c in rows[0] if c.startswith("E_f[")]
        assert columns
        for row in rows:
            assert row["converged"] == "True"
            assert all(math.isfinite(float(row[c])) for c in columns)
        # V_I is a donor: at E_F = VBM the +1 state lies below the neutral one.
        for entry in entries:
            by_q = {int(r["charge"]): r for r in rows if r["defect"] == entry.id}
            assert float(by_q[1][columns[0]]) < float(by_q[0][columns[0]])

    # Aggregated tables across the two compositions.
    tables = results / "tables"
    fe = _csv(tables / "formation_energies.csv")
    assert {r["host"] for r in fe} == set(HOSTS)
    assert {float(r["x"]) for r in fe} == {0.0, 0.5}
    averages = _csv(tables / "class_averages.csv")
    alloy_rows = [r for r in averages if r["host"] == "CsSn0.5Pb0.5I3"]
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
    assert {r["site class"] for r in conc if r["host"] == "CsSn0.5Pb0.5I3"} == {
        "Pb2",
        "PbSn",
        "Sn2",
    }
    assert all(float(r["concentration (cm^-3)"]) >= 0 for r in conc)
    for host in HOSTS:
        for limit in ("I-rich", "I-poor"):
            png = results / "plots" / f"formation_energy_{host}_{limit}.png"
            assert png.stat().st_size > 1000
