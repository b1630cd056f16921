"""Benchmark: parse + FNV + eFNV of the CdTe V_Cd(-2) reference pair, whole processes.

Every side runs as fresh Python processes (imports included) on the same files in
``../shared/reference/cdte_vcd_m2`` (VASP: vasprun.xml.gz, OUTCAR.gz, LOCPOT.gz):

- ``ours, 2 CLI calls``: what a user types, ``perovskite-defects correct ... --correction
  fnv`` and then ``... --correction efnv`` (two processes; their times are added);
- ``ours, 1 CLI call``: the same with ``--correction both``;
- ``ours, in-process``: one Python process calling the library (parse both runs, FNV from
  the LOCPOTs, eFNV from the OUTCAR core potentials);
- ``doped 3.2.1`` (a Python with doped, e.g. ``python3 -m venv /tmp/doped-venv &&
  /tmp/doped-venv/bin/pip install doped==3.2.1``): ``DefectParser.from_paths`` (parses
  and applies eFNV), then ``get_freysoldt_correction``, in one process.

The sides run in turn, in a rotated order each round, ``--repeat`` rounds; the median
wall and CPU (user + sys of the child processes) seconds and the ratios doped / ours are
reported. The machine is shared, so the ratio of sides measured side by side is the
number to read, not the absolute times.

Numbers: raw energy difference and FNV must agree with doped to 1 meV. eFNV differs by
design: doped/pydefect sample one of the three Cd atoms lying exactly on the sampling
sphere (by floating-point rounding), we sample none (``corrections/sampling.py``,
``ON_SPHERE_TOL``): 0.7490 against 0.7509 eV, 1.9 meV, checked to be below 2 meV. Our
``ON_SPHERE_TOL = 0`` variant (computed once, untimed) must agree with doped to 1 meV.

    PYTHONPATH=workflow .venv/bin/python bench/bench_cdte.py [--doped-python PY] [--repeat 5]

Prints a table and one JSON line (``BENCH {...}``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference" / "cdte_vcd_m2"
BULK, DEFECT = REFERENCE / "bulk_vasp_gam", REFERENCE / "v_Cd_-2_vasp_gam"
CLI = str(Path(sys.executable).parent / "perovskite-defects")
CLI_ARGS = ["correct", "--bulk", str(BULK), "--defect", str(DEFECT), "--charge", "-2",
            "--dielectric", "9.13", "--json"]  # fmt: skip
#: eFNV: our value differs from doped's by the on-sphere atoms (see the module docstring).
EFNV_DESIGN_TOL_EV = 2e-3

IN_PROCESS = """
import json, sys
from pathlib import Path
from perovskite_defects.corrections import efnv_correction, fnv_correction, locate_defect
from perovskite_defects.engines.folders import parse_folder
from perovskite_defects.engines.potentials import read_potential_grid
from perovskite_defects.engines.vasp_output import read_outcar_site_potentials
bulk_dir, defect_dir = Path(sys.argv[1]), Path(sys.argv[2])
bulk = parse_folder(bulk_dir).require_converged()
defect = parse_folder(defect_dir).require_converged()
_, frac = locate_defect(bulk.structure, defect.structure)
efnv = efnv_correction(defect.charge, 9.13, read_outcar_site_potentials(bulk_dir),
                       read_outcar_site_potentials(defect_dir), bulk.structure,
                       defect.structure, frac)
fnv = fnv_correction(defect.charge, 9.13, read_potential_grid(bulk_dir / "LOCPOT.gz"),
                     read_potential_grid(defect_dir / "LOCPOT.gz"), frac)
if len(sys.argv) > 3:  # the ON_SPHERE_TOL = 0 variant (numbers check only, untimed)
    from perovskite_defects.corrections import sampling
    sampling.ON_SPHERE_TOL = 0.0
    efnv = efnv_correction(defect.charge, 9.13, read_outcar_site_potentials(bulk_dir),
                           read_outcar_site_potentials(defect_dir), bulk.structure,
                           defect.structure, frac)
print(json.dumps({"raw": defect.energy - bulk.energy, "fnv": fnv.total, "efnv": efnv.total,
                  "vbm": bulk.vbm, "n_sampled": efnv.n_sampled}))
"""

DOPED = """
import json, sys, warnings
warnings.filterwarnings("ignore")
from doped.analysis import DefectParser
bulk_dir, defect_dir = sys.argv[1], sys.argv[2]
dp = DefectParser.from_paths(defect_dir, bulk_dir, dielectric=9.13, charge_state=-2)
entry = dp.defect_entry
efnv = sum(v for k, v in entry.corrections.items() if "kumagai" in k.lower())
fnv = entry.get_freysoldt_correction(
    dielectric=9.13, defect_locpot=defect_dir + "/LOCPOT.gz",
    bulk_locpot=bulk_dir + "/LOCPOT.gz").correction_energy
print(json.dumps({"raw": entry.sc_entry.energy - entry.bulk_entry.energy, "fnv": fnv,
                  "efnv": efnv, "vbm": entry.calculation_metadata.get("vbm")}))
"""


def _process(cmd: list[str], env: dict[str, str]) -> tuple[float, float, dict]:
    """Wall and CPU seconds of one whole process, and the JSON object it printed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed:\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    text = proc.stdout
    return wall, cpu, json.loads(text[text.index("{") :])


def _sides(doped_python: str | None) -> dict:
    """name -> function running that side once: (wall s, CPU s, numbers)."""
    ours = dict(os.environ, PYTHONPATH=str(ROOT / "workflow"))

    def two_calls() -> tuple[float, float, dict]:
        w1, c1, fnv = _process([CLI, *CLI_ARGS, "--correction", "fnv"], ours)
        w2, c2, efnv = _process([CLI, *CLI_ARGS, "--correction", "efnv"], ours)
        return w1 + w2, c1 + c2, _cli_numbers({**fnv, **efnv})

    def one_call() -> tuple[float, float, dict]:
        wall, cpu, out = _process([CLI, *CLI_ARGS, "--correction", "both"], ours)
        return wall, cpu, _cli_numbers(out)

    def in_process() -> tuple[float, float, dict]:
        return _process([sys.executable, "-c", IN_PROCESS, str(BULK), str(DEFECT)], ours)

    sides = {
        "ours, 2 CLI calls": two_calls,
        "ours, 1 CLI call (both)": one_call,
        "ours, in-process": in_process,
    }
    if doped_python:
        cmd = [doped_python, "-c", DOPED, str(BULK), str(DEFECT)]
        sides["doped 3.2.1"] = lambda: _process(cmd, dict(os.environ))
    return sides


def _cli_numbers(out: dict) -> dict:
    return {"raw": out["raw_energy_difference"], "fnv": out["fnv_correction"],
            "efnv": out["efnv_correction"], "vbm": out["vbm"]}  # fmt: skip


def import_times() -> dict[str, float]:
    """Cumulative import seconds of each top-level package in one ``--correction both`` call
    (``python -X importtime``; wall time, so inflated on a loaded machine)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "workflow"))
    cmd = [sys.executable, "-X", "importtime", CLI, *CLI_ARGS, "--correction", "both"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    out: dict[str, float] = {}
    for cumulative, name in re.findall(r"^import time:\s+\d+ \|\s+(\d+) \| (\S.*)$",
                                       proc.stderr, re.M):  # fmt: skip
        if not name.startswith(" "):  # top level: not imported by another module
            root = name.split(".")[0]
            out[root] = out.get(root, 0.0) + int(cumulative) / 1e6
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def compare_numbers(results: dict, tol0: dict) -> dict:
    """Differences to doped (eV) and whether each is within its tolerance."""
    doped = results["doped 3.2.1"]["numbers"]
    checks: dict = {}
    for name, res in results.items():
        if name == "doped 3.2.1":
            continue
        num = res["numbers"]
        diffs = {k: abs(num[k] - doped[k]) for k in ("raw", "fnv", "efnv")}
        checks[name] = {
            "differences_eV": diffs,
            "raw_fnv_within_1meV": max(diffs["raw"], diffs["fnv"]) <= 1e-3,
            "efnv_within_2meV_by_design": diffs["efnv"] <= EFNV_DESIGN_TOL_EV,
        }
    diff0 = abs(tol0["efnv"] - doped["efnv"])
    checks["ours, ON_SPHERE_TOL = 0"] = {
        "efnv": tol0["efnv"],
        "n_sampled": tol0["n_sampled"],
        "difference_eV": diff0,
        "within_1meV": diff0 <= 1e-3,
    }
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--doped-python", default="/tmp/doped-venv/bin/python")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    if not REFERENCE.is_dir():
        print(f"reference data {REFERENCE} not present", file=sys.stderr)
        return 1
    doped = args.doped_python if Path(args.doped_python).is_file() else None
    if doped is None:
        print(f"(doped not found at {args.doped_python}: only our sides are timed)")
    sides = _sides(doped)
    names = list(sides)
    runs: dict[str, list[tuple[float, float, dict]]] = {n: [] for n in names}
    load_start = os.getloadavg()
    for round_ in range(args.repeat):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            runs[name].append(sides[name]())
    results = {
        name: {
            "wall_s": statistics.median(w for w, _, _ in r),
            "cpu_s": statistics.median(c for _, c, _ in r),
            "walls": [round(w, 2) for w, _, _ in r],
            "cpus": [round(c, 2) for _, c, _ in r],
            "numbers": r[-1][2],
        }
        for name, r in runs.items()
    }
    summary: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "repeat": args.repeat,
                     "load_average_start": load_start, "load_average_end": os.getloadavg(),
                     "results": results}  # fmt: skip
    print(f"{'':26s}{'raw':>9s}{'fnv':>9s}{'efnv':>9s}{'wall (s)':>10s}{'CPU (s)':>9s}")
    for name, r in results.items():
        n = r["numbers"]
        print(f"{name:26s}{n['raw']:9.4f}{n['fnv']:9.4f}{n['efnv']:9.4f}"
              f"{r['wall_s']:10.2f}{r['cpu_s']:9.2f}")  # fmt: skip
    if doped:
        d = results["doped 3.2.1"]
        summary["speedup"] = {
            name: {"wall": d["wall_s"] / r["wall_s"], "cpu": d["cpu_s"] / r["cpu_s"]}
            for name, r in results.items() if name != "doped 3.2.1"
        }  # fmt: skip
        for name, s in summary["speedup"].items():
            print(f"doped / {name}: {s['wall']:.1f}x wall, {s['cpu']:.1f}x CPU")
        _, _, tol0 = _process([sys.executable, "-c", IN_PROCESS, str(BULK), str(DEFECT), "tol0"],
                              dict(os.environ, PYTHONPATH=str(ROOT / "workflow")))  # fmt: skip
        summary["numbers"] = compare_numbers(results, tol0)
        print(json.dumps(summary["numbers"], indent=1))
    summary["import_s_by_package"] = import_times()
    print("imports of one CLI call (s, -X importtime):", summary["import_s_by_package"])
    print("BENCH " + json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
