"""The findings page (reporting/findings.py, steps/report.py) on hand-made tables, no DFT.

The tables are written with the workflow's own CSV writer from hand-made rows (numbers
chosen to make the sentences checkable, not physics): two hosts, where Na lowers the
deep-trap density at one limit and raises it at the other, a failed charge state, a defect
with missing levels, a requested defect that has no row, an absent competing phase and an
empty cell. Checked: the sentences follow the numbers, every quoted number equals the cell
its source names, what is missing is said (in bold), the page is the same on every run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from findings_check import check_page

from perovskite_defects.reporting.tables import write_csv
from perovskite_defects.steps.report import findings, read_study
from perovskite_defects.thermodynamics.concentrations import DOPANT_EFFECT_COLUMNS

LIMITS = ("I-rich", "I-poor")
GAP = 1.52
LEVEL_COLUMNS = (
    "defect",
    "q/q'",
    "level above VBM (eV)",
    "depth below CBM (eV)",
    "nearest edge",
    "depth from nearest edge (eV)",
    "in gap",
    "class by position",
    "class",
    "class from",
)


def level(defect: str, label: str, position: float | None, cls: str = "", why: str = "position"):
    if position is None:
        return {"defect": defect, "q/q'": label}
    edge, depth = ("VBM", position) if position < GAP / 2 else ("CBM", GAP - position)
    return dict(
        zip(
            LEVEL_COLUMNS,
            (defect, label, position, GAP - position, edge, depth, True, cls, cls, why),
            strict=True,
        )
    )


LEVELS = [
    level("I_i", "+1/0", 1.45, "shallow", "states: q' donor PHS (shallow donor)"),
    level("I_i", "0/-1", 0.62, "deep"),
    level("V_Pb", "0/-1", 0.35, "deep"),
    level("Na_Cs", "none", None),
    level("V_I", "missing", None),
]
FORMATION = [
    {
        "defect": "I_i",
        "charge": 0,
        "E_f[I-rich] (eV)": 1.2,
        "E_f[I-poor] (eV)": 2.1,
        "correction (eV)": 0.0,
        "converged": True,
    },
    {
        "defect": "V_Pb",
        "charge": 0,
        "E_f[I-rich] (eV)": 0.9,
        "E_f[I-poor] (eV)": 1.8,
        "correction (eV)": 0.0,
        "converged": True,
    },
    {
        "defect": "V_I",
        "charge": 1,
        "E_f[I-rich] (eV)": None,
        "E_f[I-poor] (eV)": None,
        "correction (eV)": None,
        "converged": "failed: SCF did not converge (test)",
    },
    {
        "defect": "Na_Cs",
        "charge": 0,
        "E_f[I-rich] (eV)": 2.0,
        "E_f[I-poor] (eV)": 2.0,
        "correction (eV)": 0.0,
        "converged": True,
    },
]
# (limit, E_F, n, p): the I-poor n is left empty (a missing number)
FERMI = [("I-rich", 0.8, 3.0e6, 2.0e7), ("I-poor", 0.9, None, 1.0e5)]
# defect totals per limit (cm^-3)
TOTALS = {"I-rich": {"I_i": 1.0e12, "V_Pb": 2.0e3}, "I-poor": {"I_i": 4.0e9, "V_Pb": 5.0e10}}
# limit -> (E_F native, with Na; deep-trap density native, with Na): I-rich lowers, I-poor raises
DOPED = {"I-rich": (0.80, 0.55, 1.0e12, 1.0e9), "I-poor": (0.90, 1.10, 1.0e10, 3.0e11)}


def dopant_rows(doped: dict[str, tuple[float, ...]]) -> list[dict[str, Any]]:
    return [
        dict(
            zip(
                DOPANT_EFFECT_COLUMNS,
                (limit, "Na", f0, f1, 1e6, 2e6, 3e6, 4e6, "I_i V_Pb", d0, d1),
                strict=True,
            )
        )
        for limit, (f0, f1, d0, d1) in doped.items()
    ]


def write_host(results: Path, name: str, x: float, doped: dict[str, tuple[float, ...]]) -> None:
    tables = results / name / "tables"
    tables.mkdir(parents=True)
    write_csv(FORMATION, tables / "formation_energies.csv")
    write_csv(LEVELS, tables / "transition_levels.csv", columns=LEVEL_COLUMNS)
    fermi = [
        dict(
            zip(
                (
                    "limit",
                    "temperature (K)",
                    "Fermi level above VBM (eV)",
                    "n (cm^-3)",
                    "p (cm^-3)",
                ),
                (lim, 300.0, ef, n, p),
                strict=True,
            )
        )
        for lim, ef, n, p in FERMI
    ]
    write_csv(fermi, tables / "fermi_level.csv")
    conc = [
        {
            "limit": lim,
            "defect": d,
            "charge": 0,
            "concentration (cm^-3)": total,
            "defect total (cm^-3)": total,
        }
        for lim, by in TOTALS.items()
        for d, total in by.items()
    ]
    write_csv(conc, tables / "concentrations.csv")
    write_csv(dopant_rows(doped), tables / "dopant_effect.csv", columns=DOPANT_EFFECT_COLUMNS)
    record = {
        "engine": "cp2k",
        "engine_version": "CP2K version 2023.1",
        "settings": {"settings": {"cutoff_ry": 300}, "kpoint_mesh": [2, 2, 2]},
    }
    provenance = {
        "config": {
            "level": "fast",
            "correction": "fnv",
            "dielectric": {"value": 6.5, "source": "hand-made test value"},
            "defects": [
                {"name": "X_i"},
                {"name": "V_B"},
                {"name": "V_X"},
                {"name": "Na_A"},
                {"name": "Na_i"},
            ],
        },
        "band_gap": GAP,
        "band_edges": {"vbm": 1.0, "gap": GAP, "source": "bulk"},
        "records": [record],
    }
    (tables / "provenance.json").write_text(json.dumps(provenance))
    absent = (
        "Cs4PbI6 is not in the calculation (no structure file from a citable source in "
        "structures/phases/): it would narrow the stability region only if ..."
    )
    chempots = {"source": "competing phases computed in this study", "notes": ["stable", absent]}
    (results / name / "chemical_potentials.json").write_text(json.dumps(chempots))


def write_study(results: Path, hosts: dict[str, tuple[float, dict]]) -> Path:
    """results/<study> with the hosts' tables and the aggregated ones; returns the folder."""
    agg = []
    for name, (x, doped) in hosts.items():
        write_host(results, name, x, doped)
        agg += [{"host": name, "A": "Cs", "X": "I", "x": x} | r for r in dopant_rows(doped)]
    (results / "tables").mkdir()
    write_csv(
        agg, results / "tables/dopant_effect.csv", ["host", "A", "X", "x", *DOPANT_EFFECT_COLUMNS]
    )
    comps = {
        n: {"composition": {"A": "Cs", "x": x, "X": {"I": 1.0}}} for n, (x, _) in hosts.items()
    }
    (results / "tables/provenance.json").write_text(
        json.dumps({"config": {"study": "hand"}, "hosts": comps})
    )
    figures = [
        results / "plots" / f"formation_energy_{n}_{lim}.png" for n in hosts for lim in LIMITS
    ]
    findings(results, results / "findings.md", results / "findings.html", figures)
    return results


@pytest.fixture(scope="module")
def one_host(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_study(tmp_path_factory.mktemp("findings") / "hand", {"CsPbI3": (0.0, DOPED)})


def _section(text: str, title: str) -> str:
    return text.split(f"### {title}\n", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]


def test_every_number_equals_the_cell_its_source_names(one_host: Path) -> None:
    check = check_page(one_host)
    # 2 limits x (E_F, T, n, p(, missing n)) + levels + densities + dopant rows ...
    assert len(check.sources) > 40 and check.numbers > 35
    assert check_page(one_host, "findings.md").sources == check.sources


def test_deep_levels_and_the_deepest_trap_with_its_density_at_each_limit(one_host: Path) -> None:
    text = check_page(one_host).text
    assert "- I_i(0/-1): 0.620 eV above the VBM, 0.900 eV below the CBM" in text
    assert "- V_Pb(0/-1): 0.350 eV above the VBM" in text
    # deepest: the larger distance from the nearest edge (0.62 > 0.35 eV from the VBM)
    assert "The deepest is I_i(0/-1), 0.620 eV from the VBM, its nearest band edge." in text
    assert (
        "At the I-rich limit, the deepest trap, I_i(0/-1), has a density of 1.000e+12 "
        "cm^-3 (I_i in all its charge states); other deep traps: V_Pb 2.000e+03 cm^-3; "
        "the Fermi level settles 0.800 eV above the VBM at 300 K"
    ) in text
    # a level shallow by its states is not a trap, and says why
    assert "I_i(+1/0) shallow, 0.070 eV from the CBM (class from states: q' donor PHS" in text
    assert "No transition level: Na_Cs." in text


def test_na_lowering_the_deep_trap_density_is_said_with_its_numbers(one_host: Path) -> None:
    text = _section(check_page(one_host).text, "What Na changes")
    assert (
        "At the I-rich limit, with Na the Fermi level moves from 0.800 eV (native defects "
        "alone) to 0.550 eV, 0.250 eV toward the VBM"
    ) in text
    assert (
        "Na lowers the deep-trap density (I_i V_Pb) from 1.000e+12 cm^-3 (native defects "
        "alone) to 1.000e+09 cm^-3, 1e+03 times lower"
    ) in text


def test_na_raising_the_deep_trap_density_is_said_with_its_numbers(one_host: Path) -> None:
    text = _section(check_page(one_host).text, "What Na changes")
    assert "to 1.100 eV, 0.200 eV toward the CBM" in text
    assert (
        "Na raises the deep-trap density (I_i V_Pb) from 1.000e+10 cm^-3 (native defects "
        "alone) to 3.000e+11 cm^-3, 30 times higher"
    ) in text


@pytest.mark.parametrize(
    ("native", "doped", "said"),
    [(5.0e8, 2.0e8, "lowers"), (2.0e8, 5.0e8, "raises"), (2.0e8, 2.00001e8, "stays at")],
)
def test_the_verb_follows_the_numbers(tmp_path: Path, native, doped, said) -> None:
    """Swap the two densities and the sentence swaps its verb; equal at the tables'
    precision reads as unchanged."""
    results = write_study(tmp_path / "s", {"CsPbI3": (0.0, {"I-rich": (0.8, 0.8, native, doped)})})
    text = check_page(results).text
    assert f"Na {said} the deep-trap density" in text or f"density (I_i V_Pb) {said}" in text
    assert "the Fermi level stays at 0.800 eV (native defects alone: 0.800 eV)" in text


def test_what_is_missing_is_said_in_bold(one_host: Path) -> None:
    md = (one_host / "findings.md").read_text()
    missing = _section(md, "Missing")
    assert "**V_I in charge 1: no formation energy** (converged: failed: SCF did not converge" in (
        re.sub(r" \[\\\[\d+\\\]\]\([^)]*\)", "", missing)
    )
    assert "**V_I: transition levels missing**" in missing
    # role names expanded for the host (X_i -> I_i, V_B -> V_Pb, Na_A -> Na_Cs) are there;
    # Na_i has no row at all
    assert "**Na_i: requested in the config, no row in CsPbI3/tables/formation_energies.csv**" in (
        missing
    )
    assert missing.count("requested in the config") == 1
    assert "**competing phase Cs4PbI6 absent**" in missing
    # the empty n cell at I-poor is shown as missing, naming the file, row and column
    assert (
        "**missing (empty cell: CsPbI3/tables/fermi_level.csv, row 2 (limit I-poor), column "
        '"n (cm^-3)")**'
    ) in md
    html = (one_host / "findings.html").read_text()
    assert '<strong class="missing">Na_i: requested in the config' in html


def test_provenance_and_figures_are_linked(one_host: Path) -> None:
    md = (one_host / "findings.md").read_text()
    text = check_page(one_host).text
    assert "Computed with cp2k (CP2K version 2023.1), settings level fast, cutoff 300 Ry" in text
    assert "dielectric constant 6.5 (source: hand-made test value)" in text
    assert "key config.dielectric.value: `6.5`" in md
    assert "(CsPbI3/tables/provenance.json), key band_edges.gap: `1.52`" in md
    figures = re.findall(r"!\[[^]]*\]\(([^)]*)\)", md)
    assert figures == [f"plots/formation_energy_CsPbI3_{lim}.png" for lim in LIMITS]


def test_across_compositions_compares_what_na_changes_at_each_x(tmp_path: Path) -> None:
    lowers = {"I-rich": (0.8, 0.7, 1.0e12, 1.0e9)}
    raises = {"I-rich": (0.8, 0.9, 1.0e9, 1.0e12)}
    results = write_study(tmp_path / "s", {"CsPbI3": (0.0, raises), "CsSnI3": (1.0, lowers)})
    across = check_page(results).text.split("## Across compositions\n", 1)[1]
    assert (
        "At the I-rich limit, Na lowers the deep-trap density in CsSnI3; raises it in CsPbI3."
        in (across)
    )
    assert "- In CsPbI3 (x = 0), with Na the Fermi level moves from 0.800 eV" in across
    assert "- In CsSnI3 (x = 1), with Na the Fermi level moves from 0.800 eV" in across
    assert "1e+03 times higher" in across and "1e+03 times lower" in across


def test_one_composition_has_nothing_to_compare(one_host: Path) -> None:
    text = check_page(one_host).text
    assert "The study has one composition (CsPbI3): nothing to compare" in text


def test_the_page_is_the_same_on_every_run(one_host: Path, tmp_path: Path) -> None:
    findings(
        one_host,
        tmp_path / "again.md",
        tmp_path / "again.html",
        [one_host / "plots" / f"formation_energy_CsPbI3_{lim}.png" for lim in LIMITS],
    )
    assert (tmp_path / "again.md").read_bytes() == (one_host / "findings.md").read_bytes()
    assert (tmp_path / "again.html").read_bytes() == (one_host / "findings.html").read_bytes()


def test_a_missing_table_is_one_line_naming_the_file(one_host: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(one_host, copy)
    (copy / "CsPbI3/tables/concentrations.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"CsPbI3/tables/concentrations.csv: missing"):
        read_study(copy)


def test_json_keys_with_dots_read_back() -> None:
    """Host names hold dots (CsSn0.5Pb0.5I3): the cited key path must name them whole."""
    from findings_check import _json_value

    from perovskite_defects.reporting.cited import json_path

    data = {"hosts": {"CsSn0.5Pb0.5I3": {"composition": {"x": 0.5}}, "list": [1, 7]}}
    where = json_path(("hosts", "CsSn0.5Pb0.5I3", "composition", "x"))
    assert where == 'hosts["CsSn0.5Pb0.5I3"].composition.x'
    assert _json_value(data, "key " + where) == 0.5
    assert _json_value(data, "key " + json_path(("hosts", "list", 1))) == 7
