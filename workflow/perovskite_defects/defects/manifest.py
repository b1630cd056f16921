"""The defect manifest of a host: one entry per defect structure, written as TSV + JSON.

The TSV (the columns of ``TSV_COLUMNS``) is what the workflow reads to plan one DFT job
per entry and charge; the JSON keeps every field (atoms removed and added) so that a
defect can be rebuilt in the bulk supercell at any lattice.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pymatgen.core import Structure


@dataclass
class ManifestEntry:
    """One defect structure of a host (all its charge states share it).

    Attributes:
        id: unique name in the host: defect, then site class and representative if any
            (V_I, V_I-PbSn-2, Na_i-i0-Pb2).
        defect: concrete defect name (V_I, Na_Sn, Na_Pb+V_I).
        kind: vacancy, substitution, interstitial or complex.
        site_class: local-environment class ("" when the sublattice is uniform).
        representative: 1-based index of the representative within its class.
        n_representatives: how many representatives of the class are computed.
        multiplicity: sites of this class per formula unit ABX3.
        class_size: sites of this class in the supercell.
        charges: charge states to compute.
        structure: path of the defect's JSON (relative to the host's folder).
        remove: host atom indices removed (a whole molecule for V_FA / V_MA).
        add: species and fractional coordinates added.
        frac_coords: position of the defect (fractional; for corrections).
        atoms_added: n_i of the formation energy.
    """

    id: str
    defect: str
    kind: str
    site_class: str
    representative: int
    n_representatives: int
    multiplicity: float
    class_size: int
    charges: list[int]
    structure: str
    remove: list[int] = field(default_factory=list)
    add: list[tuple[str, list[float]]] = field(default_factory=list)
    frac_coords: list[float] = field(default_factory=list)
    atoms_added: dict[str, int] = field(default_factory=dict)

    def apply(self, host: Structure) -> Structure:
        """The defect structure built from ``host`` (same site order as the manifest's host,
        at any lattice: starting, Vegard or relaxed)."""
        out = host.copy()
        out.remove_sites(sorted(self.remove))
        for species, frac in self.add:
            out.append(species, frac)
        return out


TSV_COLUMNS = (
    "id",
    "defect",
    "kind",
    "site_class",
    "representative",
    "n_representatives",
    "multiplicity",
    "class_size",
    "charges",
    "structure",
)


def write_manifest(entries: Sequence[ManifestEntry], directory: str | Path) -> Path:
    """manifest.tsv (the columns of TSV_COLUMNS) and manifest.json (every field)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "manifest.tsv").open("w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t")
        w.writerow(TSV_COLUMNS)
        for e in entries:
            row = asdict(e)
            row["charges"] = ",".join(str(q) for q in e.charges)
            w.writerow([row[c] for c in TSV_COLUMNS])
    (directory / "manifest.json").write_text(json.dumps([asdict(e) for e in entries], indent=1))
    return directory / "manifest.tsv"


def read_manifest(directory: str | Path) -> list[ManifestEntry]:
    """Entries of a manifest written by :func:`write_manifest` (the TSV and JSON must agree)."""
    directory = Path(directory)
    full = json.loads((directory / "manifest.json").read_text())
    entries = [ManifestEntry(**{**e, "add": [tuple(a) for a in e["add"]]}) for e in full]
    with (directory / "manifest.tsv").open(newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    if [r["id"] for r in rows] != [e.id for e in entries]:
        raise ValueError(f"{directory}: manifest.tsv and manifest.json list different defects")
    for r, e in zip(rows, entries, strict=True):
        if [int(q) for q in r["charges"].split(",")] != e.charges:
            raise ValueError(f"{directory}: charges of {e.id} differ between TSV and JSON")
    return entries


def manifest_jobs(directory: str | Path) -> list[tuple[str, int]]:
    """(defect id, charge) of every DFT job of a host, read from its manifest.tsv."""
    with (Path(directory) / "manifest.tsv").open(newline="") as fh:
        return [
            (r["id"], int(q))
            for r in csv.DictReader(fh, delimiter="\t")
            for q in r["charges"].split(",")
        ]


@dataclass(frozen=True)
class DefectRequest:
    """A defect of the config: name (role or element form), charges (None = rule), options."""

    name: str
    charges: tuple[int, ...] | None = None
    representatives: int | None = None
    site_index: int | None = 0
    all_sites: bool = False
    atom_index: int | None = None  # framework any: the host atom removed or replaced
