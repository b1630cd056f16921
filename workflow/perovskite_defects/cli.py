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
    for name, region in result[f"{scheme}_parts"].get("by_sampling", {}).items():
        where = f"{region['n_sampled']} atoms beyond {region['sampling_radius']:.3f} Å"
        print(f"  {name:<26} total {fmt(region['total'])} ({where})")
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
    fetch = sub.add_parser(
        "fetch-phases",
        help="fetch missing competing-phase structures from the Materials Project",
        description="For every competing phase of CONFIG without a structures/phases/ file, "
        "fetch the Materials Project entry lowest above the hull (config key "
        "competing_phases_source.materials_project; API key from the environment variable "
        "it names) and write it with its Source line. Existing files are never refetched.",
    )
    fetch.add_argument("config", type=Path, help="study config (YAML)")
    fetch.add_argument(
        "--formula", nargs="+", help="fetch these formulas instead of the config's phase list"
    )
    return parser


def fetch_phases_command(config_path: Path, formulas: list[str] | None) -> int:
    """``perovskite-defects fetch-phases``: one line per phase, or one error line."""
    import yaml

    from perovskite_defects.hosts.materials_project import MaterialsProjectError, fetch_for_config

    try:
        raw = yaml.safe_load(config_path.read_text()) or {}
        if not isinstance(raw, dict):
            raise MaterialsProjectError(f"config file {config_path}: top level must be a mapping")
        if formulas:
            raw = {**raw, "competing_phases": list(formulas)}
        report = fetch_for_config(raw)
    except (OSError, yaml.YAMLError) as err:
        print(f"error: config file {config_path}: {str(err).splitlines()[0]}", file=sys.stderr)
        return 1
    except MaterialsProjectError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for formula, status in report.items():
        print(f"{formula:<12} {status}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "check-stability":
        from perovskite_defects.hosts.stability_run import main_check_stability

        return main_check_stability(args)
    if args.command == "fetch-phases":
        return fetch_phases_command(args.config, args.formula)
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
