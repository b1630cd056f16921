"""Benchmark: reading a ~100 MB vasprun.xml with the streaming reader and with pymatgen.

No 100 MB vasprun from a real run is available here, so the script builds two from the
real CdTe reference run (``../shared/reference/cdte_vcd_m2/bulk_vasp_gam``, 37 MB
uncompressed, 64 atoms, HSE06, LORBIT), by repeating its real XML blocks:

- ``dos_heavy``: the whole ``<calculation>`` block (SCF steps, structure, forces,
  eigenvalues, total and partial DOS, projections) three times: three ionic steps of a
  LORBIT run, ~111 MB.
- ``many_steps``: the ``<calculation>`` block without DOS, projections and eigenvalues
  repeated until ~100 MB, then the complete original block last: a long relaxation
  (thousands of ionic steps), the worst case for the streaming reader, which parses
  everything except the DOS and projections.

Both are also read gzipped, and the real 37 MB reference file itself is read as it is.
Each file is read by ``perovskite_defects.engines.vasprun.read_vasprun`` (what the VASP
parser uses) and by ``pymatgen.io.vasp.Vasprun`` with the settings the project used before
(``parse_dos=False, parse_eigen=True, parse_potcar_file=False``). CPU time
(``time.process_time``) is reported next to wall time because the machine may be shared.
Both readers must give the same final energy.

Usage: ``PYTHONPATH=workflow python bench/bench_vasprun.py [--reference DIR] [--workdir DIR]``
Results go to ``bench/results/vasprun_parse.json`` and are printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REFERENCE = ROOT.parent / "shared" / "reference" / "cdte_vcd_m2"
TARGET_BYTES = 100_000_000


def build_files(reference: Path, workdir: Path) -> dict[str, Path]:
    with gzip.open(reference / "bulk_vasp_gam" / "vasprun.xml.gz", "rt") as fh:
        text = fh.read()
    start = text.index("<calculation>")
    end = text.index("</calculation>") + len("</calculation>")
    head, calc, tail = text[:start], text[start:end], text[end:]
    files = {}

    dos_heavy = workdir / "dos_heavy_vasprun.xml"
    dos_heavy.write_text(head + "\n".join([calc] * 3) + tail)
    files["dos_heavy"] = dos_heavy

    light = re.sub(r"<dos>.*?</dos>", "", calc, flags=re.S)
    light = re.sub(r"<projected>.*?</projected>", "", light, flags=re.S)
    light = re.sub(r"<eigenvalues>.*?</eigenvalues>", "", light, flags=re.S)
    n = max(1, (TARGET_BYTES - len(calc)) // len(light))
    many = workdir / "many_steps_vasprun.xml"
    with open(many, "w") as fh:
        fh.write(head)
        for _ in range(n):
            fh.write(light + "\n")
        fh.write(calc + tail)
    files["many_steps"] = many
    # the same, gzipped (how finished runs are usually kept), and the real file itself
    for label in ("dos_heavy", "many_steps"):
        gz = workdir / f"{files[label].name}.gz"
        with open(files[label], "rb") as src, gzip.open(gz, "wb", compresslevel=6) as dst:
            dst.write(src.read())
        files[f"{label}.gz"] = gz
    real = workdir / "reference_bulk_vasprun.xml.gz"
    real.write_bytes((reference / "bulk_vasp_gam" / "vasprun.xml.gz").read_bytes())
    files["reference (real, 37 MB unzipped)"] = real
    return files


def time_call(func):
    wall, cpu = time.perf_counter(), time.process_time()
    result = func()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--skip-pymatgen", action="store_true")
    args = parser.parse_args()
    if not (args.reference / "bulk_vasp_gam" / "vasprun.xml.gz").is_file():
        print(f"reference run not found under {args.reference}", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT / "workflow"))
    from perovskite_defects.engines.vasprun import read_vasprun

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_vasprun_"))
    workdir.mkdir(parents=True, exist_ok=True)
    files = build_files(args.reference, workdir)
    _, import_wall, _ = time_call(lambda: __import__("pymatgen.io.vasp"))
    rows = []
    for label, path in files.items():
        data, wall, cpu = time_call(lambda p=path: read_vasprun(p))
        row = {
            "file": label,
            "size_on_disk_MB": round(path.stat().st_size / 1e6, 1),
            "ionic_steps": data.n_ionic_steps,
            "streaming_wall_s": round(wall, 2),
            "streaming_cpu_s": round(cpu, 2),
            "final_energy_eV": data.final_energy,
        }
        if not args.skip_pymatgen:
            from pymatgen.io.vasp import Vasprun

            ref, wall, cpu = time_call(
                lambda p=path: Vasprun(
                    str(p), parse_dos=False, parse_eigen=True, parse_potcar_file=False
                )
            )
            row.update(pymatgen_wall_s=round(wall, 2), pymatgen_cpu_s=round(cpu, 2))
            if ref.final_energy != data.final_energy:
                raise SystemExit(f"{label}: energies differ: {ref.final_energy} vs ours")
        rows.append(row)
        path.unlink()
    result = {
        "machine": platform.platform(),
        "python": platform.python_version(),
        "pymatgen_import_wall_s": round(import_wall, 2),
        "source": str(args.reference / "bulk_vasp_gam" / "vasprun.xml.gz"),
        "rows": rows,
    }
    out = ROOT / "bench" / "results" / "vasprun_parse.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
