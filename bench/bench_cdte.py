"""Benchmark: parse + FNV + eFNV of the CdTe V_Cd(-2) reference pair, whole process.

Each side runs in a fresh Python process (import included) on the same files in
``../shared/reference/cdte_vcd_m2`` (VASP: vasprun.xml.gz, OUTCAR.gz, LOCPOT.gz):

- ours: ``perovskite_defects`` (this checkout) parses both runs, computes FNV from the two
  LOCPOTs and eFNV from the OUTCAR core-level potentials;
- doped 3.2.1 (when a Python with doped is given, e.g. a separate venv made with
  ``python3 -m venv /tmp/doped-venv && /tmp/doped-venv/bin/pip install doped==3.2.1``):
  ``DefectParser.from_paths`` (parses and applies eFNV), then ``get_freysoldt_correction``.

Each side is run ``--repeat`` times (median wall time reported); the numbers of both are
compared to 1 meV. Usage::

    python bench/bench_cdte.py [--doped-python /tmp/doped-venv/bin/python] [--repeat 3]

Prints a table and one JSON line (``BENCH {...}``) with the times and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference" / "cdte_vcd_m2"
EPS = 9.13

OURS = """
import json, sys, time
t0 = time.perf_counter()
from perovskite_defects.engines.folders import parse_folder
from perovskite_defects.corrections import efnv_correction, fnv_correction, locate_defect
from perovskite_defects.engines.potentials import read_potential_grid
from perovskite_defects.engines.vasp import read_outcar_site_potentials
t1 = time.perf_counter()
ref = sys.argv[1]
bulk_dir, defect_dir = ref + "/bulk_vasp_gam", ref + "/v_Cd_-2_vasp_gam"
bulk = parse_folder(__import__("pathlib").Path(bulk_dir)).require_converged()
defect = parse_folder(__import__("pathlib").Path(defect_dir)).require_converged()
_, frac = locate_defect(bulk.structure, defect.structure)
bs, ds = bulk.pmg_structure(), defect.pmg_structure()
efnv = efnv_correction(defect.charge, 9.13, read_outcar_site_potentials(bulk_dir),
                       read_outcar_site_potentials(defect_dir), bs, ds, frac)
t2 = time.perf_counter()
fnv = fnv_correction(defect.charge, 9.13, read_potential_grid(bulk_dir + "/LOCPOT.gz"),
                     read_potential_grid(defect_dir + "/LOCPOT.gz"), frac)
t3 = time.perf_counter()
print(json.dumps({"raw": defect.energy - bulk.energy, "efnv": efnv.total, "fnv": fnv.total,
                  "vbm": bulk.vbm, "gap": bulk.band_gap, "import_s": t1 - t0,
                  "parse_efnv_s": t2 - t1, "fnv_s": t3 - t2}))
"""

DOPED = """
import json, sys, time, warnings
warnings.filterwarnings("ignore")
t0 = time.perf_counter()
from doped.analysis import DefectParser
t1 = time.perf_counter()
ref = sys.argv[1]
dp = DefectParser.from_paths(ref + "/v_Cd_-2_vasp_gam", ref + "/bulk_vasp_gam",
                             dielectric=9.13, charge_state=-2)
entry = dp.defect_entry
efnv = sum(v for k, v in entry.corrections.items() if "kumagai" in k.lower())
t2 = time.perf_counter()
fnv = entry.get_freysoldt_correction(
    dielectric=9.13, defect_locpot=ref + "/v_Cd_-2_vasp_gam/LOCPOT.gz",
    bulk_locpot=ref + "/bulk_vasp_gam/LOCPOT.gz").correction_energy
t3 = time.perf_counter()
vbm = entry.calculation_metadata.get("vbm")
gap = entry.calculation_metadata.get("gap")
raw = entry.sc_entry.energy - entry.bulk_entry.energy
print(json.dumps({"raw": raw, "efnv": efnv, "fnv": fnv, "vbm": vbm, "gap": gap,
                  "import_s": t1 - t0, "parse_efnv_s": t2 - t1, "fnv_s": t3 - t2}))
"""


def run(python: str, code: str, env: dict[str, str]) -> tuple[float, dict]:
    """Wall time of one whole process and the JSON it printed last."""
    start = time.perf_counter()
    proc = subprocess.run(
        [python, "-c", code, str(REFERENCE)], capture_output=True, text=True, env=env
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{python} failed:\n{proc.stderr[-3000:]}")
    return wall, json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--doped-python", default="/tmp/doped-venv/bin/python")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    if not REFERENCE.is_dir():
        print(f"reference data {REFERENCE} not present", file=sys.stderr)
        return 1
    env = dict(os.environ, PYTHONPATH=str(ROOT / "workflow"))
    sides = {"ours": (sys.executable, OURS)}
    if Path(args.doped_python).is_file():
        sides["doped 3.2.1"] = (args.doped_python, DOPED)
    else:
        print(f"(doped not found at {args.doped_python}: only our side is timed)")
    results: dict[str, dict] = {}
    for name, (python, code) in sides.items():
        walls, numbers = [], {}
        for _ in range(args.repeat):
            wall, numbers = run(python, code, env if name == "ours" else dict(os.environ))
            walls.append(wall)
        results[name] = {"wall_s": statistics.median(walls), "walls": walls, **numbers}
    keys = ("raw", "fnv", "efnv", "vbm", "gap")
    print(f"{'':14s}" + "".join(f"{k:>10s}" for k in keys) + f"{'wall (s)':>10s}")
    for name, r in results.items():
        values = "".join(f"{r[k]:10.4f}" if r.get(k) is not None else f"{'-':>10s}" for k in keys)
        print(f"{name:14s}{values}{r['wall_s']:10.2f}")
    summary: dict = {"ours_wall_s": results["ours"]["wall_s"], "repeat": args.repeat}
    if "doped 3.2.1" in results:
        d, o = results["doped 3.2.1"], results["ours"]
        diffs = {k: abs(o[k] - d[k]) for k in ("raw", "fnv", "efnv") if d.get(k) is not None}
        summary.update(
            doped_wall_s=d["wall_s"],
            speedup=d["wall_s"] / o["wall_s"],
            max_difference_eV=max(diffs.values()),
            differences_eV=diffs,
            same_to_1meV=all(v <= 1e-3 for v in diffs.values()),
        )
        print(
            f"speed-up {summary['speedup']:.1f}x (doped {d['wall_s']:.2f} s / ours "
            f"{o['wall_s']:.2f} s); largest difference {summary['max_difference_eV'] * 1e3:.2f} meV"
        )
    summary["parts"] = {n: {k: r[k] for k in ("import_s", "parse_efnv_s", "fnv_s")}
                        for n, r in results.items()}  # fmt: skip
    print("BENCH " + json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
