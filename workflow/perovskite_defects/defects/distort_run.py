"""``perovskite-defects distort``: the trial structures of one defect cell, as files.

Writes one structure file per trial (POSCAR or CIF, named by the trial's label) and
``distortions.json`` with what was done (distorted neighbours, their distances before and
after, rattle stdev, d_min and seed per trial). The trials are relaxed elsewhere.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Structure

from perovskite_defects.corrections.sites import locate_defect
from perovskite_defects.defects.distortions import (
    FULL_DISTORTIONS,
    SCREEN_DISTORTIONS,
    DefectCentre,
    TrialSet,
    distorted_neighbour_count,
    trial_structures,
)
from perovskite_defects.defects.names import OXIDATION, parse_name

SETS = {"full": FULL_DISTORTIONS, "screen": SCREEN_DISTORTIONS}
SUFFIX = {"poscar": "POSCAR", "cif": "cif"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``distort``."""
    parser.add_argument("cell", type=Path, help="defect supercell (any format pymatgen reads)")
    parser.add_argument(
        "--site",
        nargs="+",
        metavar="S",
        help="the defect atom's index (0-based), or for a vacancy the three fractional "
        "coordinates of the removed atom; without it the defect is located against --bulk",
    )
    parser.add_argument("--charge", required=True, type=int, help="charge state q")
    parser.add_argument(
        "--defect",
        help="defect name (V_I, Na_i, Na_Pb ...): the number of distorted neighbours "
        "follows from it and the charge",
    )
    parser.add_argument(
        "--neighbours", type=int, help="number of neighbours to distort (instead of --defect)"
    )
    parser.add_argument(
        "--oxidation",
        nargs="+",
        default=[],
        metavar="EL=Q",
        help="oxidation states beyond the perovskite ones (Cs, FA, MA +1; Pb, Sn +2; "
        "I, Br, Cl -1; Na +1), e.g. Cd=2 Te=-2",
    )
    parser.add_argument(
        "--distortions",
        default="full",
        help="full (-0.6..+0.6 step 0.1), screen (-0.4, -0.2, 0, 0.2, 0.4) or a comma "
        "list of bond distortions (e.g. -0.3,0.3)",
    )
    parser.add_argument(
        "--bulk",
        type=Path,
        help="bulk supercell: sets the rattle stdev, and locates the defect without --site",
    )
    parser.add_argument("--stdev", type=float, help="rattle stdev in Å (default: 10%% of bond)")
    parser.add_argument("--d-min", type=float, help="rattle minimum distance in Å")
    parser.add_argument("--format", choices=sorted(SUFFIX), default="poscar")
    parser.add_argument("--out", required=True, type=Path, help="output folder")


def _centre(words: list[str]) -> DefectCentre:
    if len(words) == 1:
        try:
            return DefectCentre(site_index=int(words[0]))
        except ValueError:
            pass
    elif len(words) == 3:
        try:
            x, y, z = (float(w) for w in words)
            return DefectCentre(vacancy_frac=(x, y, z))
        except ValueError:
            pass
    raise ValueError(f"--site {' '.join(words)}: give one atom index or three fractions")


def _distortions(text: str) -> tuple[float, ...]:
    if text in SETS:
        return SETS[text]
    try:
        return tuple(float(w) for w in text.split(","))
    except ValueError:
        raise ValueError(f"--distortions {text}: full, screen or numbers like -0.3,0.3") from None


def _oxidation(words: list[str]) -> dict[str, int]:
    states = dict(OXIDATION)
    for word in words:
        element, _, value = word.partition("=")
        try:
            states[element] = int(value)
        except ValueError:
            raise ValueError(f"--oxidation {word}: write element=integer, e.g. Te=-2") from None
    return states


def _read(path: Path, what: str) -> Structure:
    try:
        return Structure.from_file(path)
    except (OSError, ValueError) as err:
        raise ValueError(f"{what} {path}: {str(err).splitlines()[0]}") from None


def _located(bulk: Structure, cell: Structure, defect: str | None) -> DefectCentre:
    """The defect of ``cell`` found by comparison with ``bulk``; its kind must be that of
    the name ``defect`` where one is given."""
    kind, frac = locate_defect(bulk, cell)
    if kind == "complex":
        raise ValueError("--bulk: the cell differs from the bulk at several sites; give --site")
    if defect is not None and "+" not in defect and parse_name(defect)[0] != kind:
        raise ValueError(f"--defect {defect}: the cell holds a {kind}, located against --bulk")
    if kind == "vacancy":
        x, y, z = (float(v) for v in frac)
        return DefectCentre(vacancy_frac=(x, y, z))
    dists = cell.lattice.get_all_distances([frac], cell.frac_coords)[0]
    return DefectCentre(site_index=int(np.argmin(dists)))


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build and write the trials; the JSON record written to distortions.json."""
    if (args.defect is None) == (args.neighbours is None):
        raise ValueError("give --defect (neighbours from the charge) or --neighbours, not both")
    cell = _read(args.cell, "cell")
    bulk = _read(args.bulk, "--bulk") if args.bulk else None
    if args.site:
        centre = _centre(list(args.site))
    elif bulk is not None:
        centre = _located(bulk, cell, args.defect)
    else:
        raise ValueError("give --site, or --bulk to locate the defect")
    centre.frac(cell)  # checks the site index against the cell
    if args.defect is not None:
        n = distorted_neighbour_count(args.defect, args.charge, _oxidation(args.oxidation))
    elif args.neighbours < 0:
        raise ValueError(f"--neighbours {args.neighbours} is negative")
    else:
        n = args.neighbours
    trials = trial_structures(
        cell, centre, n, _distortions(args.distortions), args.stdev, args.d_min, bulk
    )
    return _write(trials, args, centre)


def _write(trials: TrialSet, args: argparse.Namespace, centre: DefectCentre) -> dict[str, Any]:
    args.out.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {
        "cell": str(args.cell),
        "defect": args.defect,
        "charge": args.charge,
        "defect_site_index": centre.site_index,
        "vacancy_frac_coords": centre.vacancy_frac,
        "n_distorted_neighbours": trials.n_neighbours,
        "omitted_shortest_distance": trials.omitted,
        "trials": [],
    }
    for trial in trials.trials:
        name = f"{trial.label}.{SUFFIX[args.format]}"
        trial.structure.to(filename=str(args.out / name), fmt=args.format)
        record["trials"].append({**trial.metadata(), "file": name})
    (args.out / "distortions.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


def main_distort(args: argparse.Namespace) -> int:
    """Exit code 0 with one line per trial, or 1 with one error line."""
    try:
        record = run(args)
    except (ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{record['n_distorted_neighbours']} distorted neighbour(s); trials in {args.out}:")
    for trial in record["trials"]:
        print(f"  {trial['file']}")
    for label, shortest in record["omitted_shortest_distance"].items():
        print(f"  {label} left out: two atoms {shortest:.2f} Å apart")
    return 0
