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

from perovskite_defects.corrections.cells import Cell
from perovskite_defects.corrections.freysoldt import fnv_correction
from perovskite_defects.corrections.kumagai import efnv_correction
from perovskite_defects.corrections.sites import locate_defect
from perovskite_defects.engines.base import CalcRecord, EngineError
from perovskite_defects.engines.folders import parse_folder, potential_path
from perovskite_defects.engines.potentials import read_potential_grid, site_potentials
from perovskite_defects.engines.vasp_output import read_outcar_site_potentials

#: ``--correction`` choices; "both" computes FNV and eFNV from one reading of the runs.
SCHEMES = ("fnv", "efnv", "both")


def correct(
    bulk_dir: Path,
    defect_dir: Path,
    charge: int,
    dielectric: float | list[float],
    scheme: str = "fnv",
    site_radius: float = 1.0,
) -> dict[str, Any]:
    """Raw energy difference, FNV and/or eFNV correction (with parts), bulk VBM and gap, in eV.

    ``scheme`` is "fnv", "efnv" or "both". eFNV takes the site potentials from VASP's
    OUTCAR (core-level potentials) or, for CP2K, from the Hartree cube averaged in spheres
    of ``site_radius`` Å.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"correction scheme {scheme!r} is not one of {', '.join(SCHEMES)}")
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
    pairs = ((bulk, bulk_dir), (defect, defect_dir))
    grids: list[Any] = []  # potential grids, read once when both schemes need them
    for name in ("fnv", "efnv") if scheme == "both" else (scheme,):
        if charge == 0:
            result[f"{name}_correction"] = 0.0
            result[f"{name}_parts"] = {"point_charge": 0.0, "alignment": 0.0}
            continue
        if name == "fnv" or bulk.engine != "vasp":
            grids = grids or [_potential_grid(rec, folder) for rec, folder in pairs]
        corr = _one_correction(name, charge, eps, bulk, defect, frac, grids, pairs, site_radius)
        summary = corr.summary()
        result[f"{name}_correction"] = corr.total
        result[f"{name}_parts"] = {k: v for k, v in summary.items() if k != "total"}
    return result


def _potential_grid(record: CalcRecord, folder: Path):  # -> PotentialGrid
    return read_potential_grid(potential_path(record, folder))


def _one_correction(
    name: str,
    charge: int,
    eps: float | list[float],
    bulk: CalcRecord,
    defect: CalcRecord,
    frac: Any,
    grids: list[Any],
    pairs: tuple[tuple[CalcRecord, Path], ...],
    site_radius: float,
):  # -> FNVResult | EFNVResult
    """One correction of ``correct``; ``grids`` holds the bulk and defect potential grids
    (empty for eFNV from VASP, which reads the OUTCAR site potentials instead)."""
    if name == "fnv":
        return fnv_correction(charge, eps, grids[0], grids[1], frac)
    pots = [
        _site_potentials(rec, folder, grid, site_radius)
        for (rec, folder), grid in zip(pairs, grids or [None, None], strict=True)
    ]
    return efnv_correction(charge, eps, pots[0], pots[1], bulk.structure, defect.structure, frac)


def _site_potentials(record: CalcRecord, folder: Path, grid: Any, radius: float):
    """Potentials at the atoms: VASP core-level potentials, else sphere averages of the grid."""
    if record.engine == "vasp":
        return read_outcar_site_potentials(folder)
    return site_potentials(grid, Cell.of(record.structure).frac_coords, radius)


def _print_human(result: dict[str, Any]) -> None:
    units = {"sampling_radius": "Å", "delta_v": "V", "axis_delta_v": "V"}

    def fmt(value: Any, unit: str = "eV") -> str:
        return "n/a" if value is None else f"{value:.4f} {unit}"

    print(f"engine                 {result['engine']} {result['engine_version']}")
    print(f"defect                 {result['defect_kind']} at {result['defect_frac_coords']}")
    print(f"raw energy difference  {fmt(result['raw_energy_difference'])}")
    for scheme in ("fnv", "efnv"):
        if f"{scheme}_correction" not in result:
            continue
        label = f"{scheme.upper()} correction"
        print(f"{label:<23}{fmt(result[scheme + '_correction'])}  (charge {result['charge']:+d})")
        for key, value in result[f"{scheme}_parts"].items():
            if isinstance(value, float):
                print(f"  {key:<20} {fmt(value, units.get(key, 'eV'))}")
        for name, region in result[f"{scheme}_parts"].get("by_sampling", {}).items():
            where = f"{region['n_sampled']} atoms beyond {region['sampling_radius']:.3f} Å"
            print(f"  {name:<26} total {fmt(region['total'])} ({where})")
    print(f"bulk VBM               {fmt(result['vbm'])}")
    print(f"bulk band gap          {fmt(result['band_gap'])}")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The CLI's parser; given the subcommand about to be parsed, only its arguments are
    built where that costs imports (check-stability's load phonopy and pymatgen)."""
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
        choices=SCHEMES,
        default="fnv",
        help="fnv: Freysoldt (planar averages); efnv: Kumagai-Oba (atomic-site potentials); "
        "both: the two from one reading of the runs",
    )
    corr.add_argument(
        "--site-radius",
        type=float,
        default=1.0,
        help="eFNV with CP2K: radius (Å) of the sphere averaging the Hartree potential",
    )
    corr.add_argument("--json", action="store_true", help="print one JSON object")
    stab = sub.add_parser(
        "check-stability",
        help="bring a host supercell to a dynamically stable structure (phonopy + CP2K)",
        description="Relax the host from a rattled start, compute its Gamma phonons "
        "(phonopy finite displacements, CP2K forces), follow imaginary modes and relax "
        "again until none remains; prints space group, Glazer tilts, energy lowering. "
        "Exit code 0 = stable, 3 = imaginary modes remain, 1 = error.",
    )
    if command in (None, "check-stability"):
        # imported here: its defaults load phonopy and pymatgen, which `correct` never needs
        # why: stability_run loads phonopy and pymatgen: not for the other commands
        from perovskite_defects.hosts.stability_run import add_arguments

        add_arguments(stab)
    stab.add_argument("--json", action="store_true", help="print one JSON object")
    dist = sub.add_parser(
        "distort",
        help="trial structures of a ground-state search (ShakeNBreak method) for one defect",
        description="Bond-distort the defect's nearest neighbours by each distortion and "
        "rattle the other atoms; write one structure file per trial and distortions.json "
        "into --out. The trials are to be relaxed (cheaply) and the lowest relaxed fully.",
    )
    if command in (None, "distort"):
        # why: distort_run loads pymatgen and ase: only for distort
        from perovskite_defects.defects.distort_run import add_arguments as add_distort

        add_distort(dist)
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
    # imported here: only fetch-phases needs YAML and the Materials Project client
    import yaml

    # why: materials_project loads pymatgen: only for fetch-phases
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
    words = sys.argv[1:] if argv is None else argv
    args = build_parser(words[0] if words else None).parse_args(words)
    if args.command == "check-stability":
        # why: stability_run loads phonopy and pymatgen: only for check-stability
        from perovskite_defects.hosts.stability_run import main_check_stability

        return main_check_stability(args)
    if args.command == "distort":
        # why: distort_run loads pymatgen and ase: only for distort
        from perovskite_defects.defects.distort_run import main_distort

        return main_distort(args)
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
