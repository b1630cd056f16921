"""Benchmark: planning a 3 A x 3 X x 6 x composition sweep, and V_X jobs in a 50 % Sn SQS.

Run from the project root (the machine is shared: run it under nice and read the CPU
seconds as well as the wall time):

    PYTHONPATH=workflow nice -n 19 .venv/bin/python bench/bench_sweep_dag.py [DIR]

DIR (optional) keeps the study folder: a second run on it skips step 2 (the manifests are
there) and the fresh dry run (they are not fresh).

1. ``snakemake -n`` on a fresh directory (before any defect manifest exists: the DAG up to
   the ``defect_manifest`` checkpoints), timed three times.
2. The checkpoint jobs themselves (``host_structure`` + ``defect_manifest``: SQS and
   defect sets of all 54 hosts, pure Python) run once, timed.
3. ``snakemake -n`` again, now with every manifest in place: the full DAG with every
   defect job, timed three times.
4. V_X in CsSn0.5Pb0.5I3 SQS (2x2x2, 4x2x2 and 4x4x2 supercells: 24, 48, 96 halide
   sites): the DFT jobs with site-class grouping (the default 2 representatives per
   class) against one job per halide site and against one per spglib-distinct site.

Results go to ``bench/results/sweep_dag.json`` and are summarised in ``bench/README.md``.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")

# x values a 2x2x2 supercell (8 B sites) holds exactly.
SWEEP = {
    "study": "bench_sweep",
    "sweep": {
        "grid": {
            "A": ["Cs", "FA", "MA"],
            "X": ["I", "Br", "Cl"],
            "x": [0, 0.25, 0.375, 0.5, 0.75, 1],
        }
    },
    # the default defect set (schema default: V_X, V_A, V_B, Na_A, Na_B, Na_i and, since
    # issue 12, the natives X_i, B_i, A_i, X_B, B_X, A_B, B_A)
    "competing_phases": [
        "Cs", "Pb", "Sn", "Na", "I2", "Br2", "Cl2", "C", "H2", "N2",
        "CsI", "CsBr", "CsCl", "PbI2", "Cs2SnI6", "NaI", "NaBr", "NaCl",
    ],
}  # fmt: skip


def _run(workdir: Path, *args: str) -> tuple[float, float, str]:
    """Wall and child CPU seconds and the output of one snakemake call."""
    cmd = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(workdir)]
    cmd += ["--configfile", str(workdir / "study.yaml"), "--cores", "2", *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    env = dict(os.environ, PYTHONPATH=str(ROOT / "workflow"))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"snakemake failed:\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stdout + proc.stderr


def _jobs(output: str) -> dict[str, int]:
    table = output[output.index("Job stats:") :]
    return {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)$", table, re.M)}


def _dry_runs(workdir: Path, repeats: int = 3) -> dict:
    runs = [_run(workdir, "-n") for _ in range(repeats)]
    return {
        "wall_s": [round(w, 2) for w, _, _ in runs],
        "cpu_s": [round(c, 2) for _, c, _ in runs],
        "jobs": _jobs(runs[-1][2]),
    }


def vacancy_jobs(multiples: list[int]) -> dict:
    """V_X structures of a 50 % Sn SQS: site classes against one per (distinct) site."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    from perovskite_defects.defects.manifest import DefectRequest
    from perovskite_defects.defects.names import default_charges
    from perovskite_defects.defects.site_classes import build_defect_set
    from perovskite_defects.hosts.composition import choose_supercell, parse_composition
    from perovskite_defects.hosts.perovskite import build_host

    comp = parse_composition({"A": "Cs", "X": "I", "x": 0.5}, "host")
    a = comp.literature_lattice()
    choice = choose_supercell(comp, [a] * 3, multiples, 12.0, 1000, 0.02, "host")
    host = build_host(comp, a, choice.multiples, choice.counts, seed=0)
    entries, _ = build_defect_set(host, [DefectRequest("V_X")], representatives=2)
    s = host.structure
    halides = [i for i, site in enumerate(s) if site.specie.symbol == "I"]
    equivalent = SpacegroupAnalyzer(s, symprec=0.01).get_symmetry_dataset().equivalent_atoms
    distinct = len({int(equivalent[i]) for i in halides})
    classes: dict[str, int] = {}
    for e in entries:
        classes[e.site_class] = classes.get(e.site_class, 0) + 1
    n_q = len(default_charges("V_I"))
    return {
        "host": host.name,
        "supercell": multiples,
        "sqs": host.metadata.get("sqs"),
        "halide_sites": len(halides),
        "spglib_distinct_halide_sites": distinct,
        "site_classes": classes,
        "structures_with_classes": len(entries),
        "charges_per_structure": n_q,
        "dft_jobs_with_classes": len(entries) * n_q,
        "dft_jobs_one_per_site": len(halides) * n_q,
        "dft_jobs_one_per_distinct_site": distinct * n_q,
    }


def main() -> None:
    result: dict = {"cpus": os.cpu_count(), "load_average_start": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "study.yaml").write_text(yaml.safe_dump(SWEEP))
        from perovskite_defects import config as cfg
        from perovskite_defects.study import plan_hosts

        hosts = [h.name for h in plan_hosts(cfg.validate(SWEEP), cfg.PROJECT_ROOT)]
        result["hosts"] = len(hosts)
        targets = [f"results/bench_sweep/{h}/defects/manifest.tsv" for h in hosts]
        if not all((workdir / t).is_file() for t in targets):
            result["fresh_dry_run"] = _dry_runs(workdir)
            wall, cpu, _ = _run(workdir, *targets)
            result["checkpoint_jobs"] = {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1)}
        result["full_dry_run"] = _dry_runs(workdir)
        result["load_average_after_dry_runs"] = os.getloadavg()
    result["vacancy_jobs_50pct_sqs"] = [vacancy_jobs(m) for m in ([2, 2, 2], [4, 2, 2], [4, 4, 2])]
    result["load_average_end"] = os.getloadavg()
    out = ROOT / "bench" / "results" / "sweep_dag.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
