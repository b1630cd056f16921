"""Command-line interface: ``perovskite-defects``.

``correct`` applies the analysis to one finished bulk/defect pair made outside the
workflow (CP2K or VASP folders), so old calculations can be used without Snakemake.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from perovskite_defects.engines.base import CalcRecord, EngineError
from perovskite_defects.engines.folders import parse_folder, potential_path


def correct(
    bulk_dir: Path,
    defect_dir: Path,
    charge: int,
    dielectric: float | list[float],
    scheme: str = "fnv",
    site_radius: float = 1.0,
) -> dict[str, Any]:
    """Raw energy difference, FNV or eFNV correction (with parts), bulk VBM and gap, in eV.

    eFNV takes the site potentials from VASP's OUTCAR (core-level potentials) or, for
    CP2K, from the Hartree cube averaged in spheres of ``site_radius`` Å.
    """
    from perovskite_defects.corrections import efnv_correction, fnv_correction, locate_defect
    from perovskite_defects.engines.potentials import read_potential_grid

    bulk = parse_folder(bulk_dir).require_converged()
    defect = parse_folder(defect_dir).require_converged()
    kind, frac = locate_defect(bulk.structure, defect.structure)
    eps: float | list[float] = (
        dielectric[0] if isinstance(dielectric, list) and len(dielectric) == 1 else dielectric
    )
    result: dict[str, Any] = {
        "raw_energy_difference": defect.energy - bulk.energy,
        "vbm": bulk.vbm,
        "band_gap": bulk.band_gap,
        "charge": charge,
        "dielectric": eps,
        "defect_kind": kind,
        "defect_frac_coords": [float(x) for x in frac],
        "engine": bulk.engine,
        "engine_version": bulk.engine_version,
    }
    key = f"{scheme}_correction"
    if charge == 0:
        result.update({key: 0.0, f"{scheme}_parts": {"point_charge": 0.0, "alignment": 0.0}})
        return result
    if scheme == "fnv":
        corr: Any = fnv_correction(
            charge,
            eps,
            read_potential_grid(potential_path(bulk, bulk_dir)),
            read_potential_grid(potential_path(defect, defect_dir)),
            frac,
        )
    else:
        pots = [
            _site_potentials(rec, d, site_radius)
            for rec, d in ((bulk, bulk_dir), (defect, defect_dir))
        ]
        corr = efnv_correction(
            charge, eps, pots[0], pots[1], bulk.pmg_structure(), defect.pmg_structure(), frac
        )
    summary = corr.summary()
    result[key] = corr.total
    result[f"{scheme}_parts"] = {k: v for k, v in summary.items() if k != "total"}
    return result


def _site_potentials(record: CalcRecord, folder: Path, radius: float):
    """Potentials at the atoms: VASP core-level potentials, else sphere averages of the grid."""
    from perovskite_defects.engines.potentials import read_potential_grid, site_potentials

    if record.engine == "vasp":
        from perovskite_defects.engines.vasp import read_outcar_site_potentials

        return read_outcar_site_potentials(folder)
    grid = read_potential_grid(potential_path(record, folder))
    return site_potentials(grid, record.pmg_structure().frac_coords, radius)


def _print_human(result: dict[str, Any]) -> None:
    units = {"sampling_radius": "Å", "delta_v": "V", "axis_delta_v": "V"}

    def fmt(value: Any, unit: str = "eV") -> str:
        return "n/a" if value is None else f"{value:.4f} {unit}"

    scheme = "efnv" if "efnv_correction" in result else "fnv"
    label = f"{scheme.upper()} correction"
    print(f"engine                 {result['engine']} {result['engine_version']}")
    print(f"defect                 {result['defect_kind']} at {result['defect_frac_coords']}")
    print(f"raw energy difference  {fmt(result['raw_energy_difference'])}")
    print(f"{label:<23}{fmt(result[scheme + '_correction'])}  (charge {result['charge']:+d})")
    for key, value in result[f"{scheme}_parts"].items():
        if isinstance(value, float):
            print(f"  {key:<20} {fmt(value, units.get(key, 'eV'))}")
    print(f"bulk VBM               {fmt(result['vbm'])}")
    print(f"bulk band gap          {fmt(result['band_gap'])}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perovskite-defects",
        description="Defect analysis for halide perovskites (the workflow's science as a CLI).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    corr = sub.add_parser(
        "correct",
        help="finite-size correction and raw energies of one finished bulk/defect pair",
        description="Read one finished bulk/defect pair (CP2K folder, or VASP folder with "
        "vasprun.xml(.gz) and LOCPOT(.gz)) and print the raw energy difference, the FNV "
        "correction with its parts, the bulk VBM and band gap (eV).",
    )
    corr.add_argument("--bulk", required=True, type=Path, help="bulk supercell run folder")
    corr.add_argument("--defect", required=True, type=Path, help="defect supercell run folder")
    corr.add_argument("--charge", required=True, type=int, help="defect charge state q")
    corr.add_argument(
        "--dielectric",
        required=True,
        type=float,
        nargs="+",
        metavar="EPS",
        help="dielectric constant: one value (isotropic) or three (diagonal)",
    )
    corr.add_argument(
        "--correction",
        choices=("fnv", "efnv"),
        default="fnv",
        help="fnv: Freysoldt (planar averages); efnv: Kumagai-Oba (atomic-site potentials)",
    )
    corr.add_argument(
        "--site-radius",
        type=float,
        default=1.0,
        help="eFNV with CP2K: radius (Å) of the sphere averaging the Hartree potential",
    )
    corr.add_argument("--json", action="store_true", help="print one JSON object")
    from perovskite_defects.hosts.stability_run import add_arguments

    stab = sub.add_parser(
        "check-stability",
        help="bring a host supercell to a dynamically stable structure (phonopy + CP2K)",
        description="Relax the host from a rattled start, compute its Gamma phonons "
        "(phonopy finite displacements, CP2K forces), follow imaginary modes and relax "
        "again until none remains; prints space group, Glazer tilts, energy lowering. "
        "Exit code 0 = stable, 3 = imaginary modes remain, 1 = error.",
    )
    add_arguments(stab)
    stab.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "check-stability":
        from perovskite_defects.hosts.stability_run import main_check_stability

        return main_check_stability(args)
    if args.command == "correct":
        if len(args.dielectric) not in (1, 3):
            print("error: --dielectric takes one value or three values", file=sys.stderr)
            return 2
        if any(e <= 1.0 for e in args.dielectric):
            print("error: --dielectric values must be greater than 1", file=sys.stderr)
            return 2
        try:
            result = correct(
                args.bulk,
                args.defect,
                args.charge,
                list(args.dielectric),
                scheme=args.correction,
                site_radius=args.site_radius,
            )
        except (EngineError, FileNotFoundError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps(result, indent=1))
        else:
            _print_human(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
