"""Per-atom electron populations, charges and spin moments as the engines print them.

CP2K prints a Mulliken population analysis (alpha and beta populations, net charge and
spin moment per atom for unrestricted runs; one population and the net charge for
restricted runs) and Hirshfeld charges after every SCF that ends a run or an optimisation
step. VASP prints, with LORBIT set, the electrons inside each atom's projection sphere
("total charge") and, for spin-polarised runs, the moment inside it ("magnetization (x)").
The last block of each kind belongs to the final geometry; that is the one read here.

The numbers are partition-dependent (Mulliken depends on the basis, VASP's spheres miss
the interstitial charge), so they are compared only between cells of the same engine
and settings: a defect cell against its bulk cell, atom by atom.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from perovskite_defects.engines.base import EngineError

log = logging.getLogger(__name__)

#: Keys of ``CalcRecord.extra["atomic_populations"]`` by engine, most useful first.
MULLIKEN, HIRSHFELD, VASP_SPHERES = "mulliken", "hirshfeld", "vasp_spheres"


@dataclass
class AtomicPopulations:
    """One population analysis of a cell, one entry per atom in the structure's order.

    Attributes:
        method: "mulliken", "hirshfeld" (CP2K) or "vasp_spheres" (VASP LORBIT spheres).
        elements: element symbol per atom, as the engine printed it.
        population: valence electrons assigned to each atom (alpha + beta).
        net_charge: valence charge minus population (e); None where the engine gives no
            reference charge (VASP spheres: the part outside the spheres is unassigned).
        spin: alpha - beta population per atom (Bohr magnetons); None for restricted runs.
    """

    method: str
    elements: list[str]
    population: list[float]
    net_charge: list[float] | None = None
    spin: list[float] | None = None

    @property
    def total_population(self) -> float:
        return float(sum(self.population))

    @property
    def total_spin(self) -> float | None:
        return None if self.spin is None else float(sum(self.spin))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AtomicPopulations:
        return cls(**data)


# --------------------------------------------------------------------------- CP2K

_MULLIKEN_HEAD = "Mulliken Population Analysis"
_HIRSHFELD_HEAD = "Hirshfeld Charges"
_NUMBER = r"-?\d+\.\d+"
# "  12  Pb  2  1.904168  1.904160  0.191672  0.000008" (UKS) or "  1  Pb  1  3.686485  0.313515"
_MULLIKEN_ROW = re.compile(rf"^\s*(\d+)\s+([A-Z][a-z]?)\w*\s+\d+\s+((?:{_NUMBER}\s*){{2,4}})$")
# "  41  Na  4  9.000  4.724  4.724  0.000  -0.448" (UKS) or "  1  Pb  1  4.000  3.569  0.431"
_HIRSHFELD_ROW = re.compile(rf"^\s*(\d+)\s+([A-Z][a-z]?)\w*\s+\d+\s+((?:{_NUMBER}\s*){{3,5}})$")


def parse_cp2k_populations(text: str) -> dict[str, AtomicPopulations]:
    """The last Mulliken and Hirshfeld blocks of a CP2K output (absent ones are left out).

    Raises:
        EngineError: when a block is present but cannot be read (truncated or an unknown
            layout): the atoms of a block must be numbered 1, 2, ... without a gap.
    """
    found: dict[str, AtomicPopulations] = {}
    for method, head, row in (
        (MULLIKEN, _MULLIKEN_HEAD, _MULLIKEN_ROW),
        (HIRSHFELD, _HIRSHFELD_HEAD, _HIRSHFELD_ROW),
    ):
        start = text.rfind(head)
        if start >= 0:
            found[method] = _cp2k_block(text[start:], method, row)
    return found


def _cp2k_block(text: str, method: str, row: re.Pattern[str]) -> AtomicPopulations:
    """Rows of one block until its first line that is not an atom row (after the header)."""
    elements: list[str] = []
    values: list[list[float]] = []
    for line in text.splitlines()[3:]:
        match = row.match(line)
        if not match:
            if values:
                break
            continue
        if int(match.group(1)) != len(values) + 1:
            raise EngineError(f"CP2K {method} block: atom {match.group(1)} out of sequence")
        elements.append(match.group(2))
        values.append([float(v) for v in match.group(3).split()])
    widths = {len(v) for v in values}
    if not values or len(widths) != 1:
        raise EngineError(f"CP2K {method} block: no atom rows or rows of mixed layout")
    width = widths.pop()
    unrestricted = width == (4 if method == MULLIKEN else 5)
    if method == MULLIKEN:  # alpha, beta, net, spin | population, net
        pops = [v[0] + v[1] for v in values] if unrestricted else [v[0] for v in values]
        net = [v[2] for v in values] if unrestricted else [v[1] for v in values]
    else:  # reference, alpha, beta, spin, net | reference, population, net
        pops = [v[1] + v[2] for v in values] if unrestricted else [v[1] for v in values]
        net = [v[-1] for v in values]
    spin = [v[3] for v in values] if unrestricted else None
    return AtomicPopulations(method, elements, pops, net, spin)


def cp2k_record_populations(text: str, where: str | Path) -> dict[str, dict[str, Any]]:
    """What the CP2K parser keeps in ``CalcRecord.extra``: the analyses as plain dicts.

    A malformed block is logged and left out: the energy of the run is still good.
    """
    try:
        return {k: v.to_dict() for k, v in parse_cp2k_populations(text).items()}
    except EngineError as err:
        log.warning("%s: atomic populations not read: %s", where, err)
        return {}


# --------------------------------------------------------------------------- VASP

_VASP_CHARGE_HEAD = re.compile(r"^\s*total charge\s*$")
_VASP_MAG_HEAD = re.compile(r"^\s*magnetization \(x\)\s*$")


def parse_vasp_populations(text: str) -> dict[str, AtomicPopulations]:
    """The last LORBIT "total charge" block, with the last "magnetization (x)" block as its
    spin, of an OUTCAR's text; empty when VASP printed none (LORBIT unset).

    The element symbols are not in these blocks: callers pair the rows with the
    structure (OUTCAR order = POSCAR order); ``elements`` is left empty here.
    """
    lines = text.splitlines()
    charge_at = [i for i, line in enumerate(lines) if _VASP_CHARGE_HEAD.match(line)]
    if not charge_at:
        return {}
    population = _vasp_block(lines, charge_at[-1], "total charge")
    mag_at = [i for i, line in enumerate(lines) if _VASP_MAG_HEAD.match(line)]
    spin = None
    if mag_at and mag_at[-1] > charge_at[-1]:  # the moment of the same (last) step
        spin = _vasp_block(lines, mag_at[-1], "magnetization (x)")
        if len(spin) != len(population):
            raise EngineError("OUTCAR: charge and magnetization blocks differ in atom count")
    return {VASP_SPHERES: AtomicPopulations(VASP_SPHERES, [], population, None, spin)}


def _vasp_block(lines: list[str], head: int, name: str) -> list[float]:
    """The "tot" column of a block: rows "ion s p d (f) tot" between dashed lines."""
    totals: list[float] = []
    for line in lines[head + 4 :]:
        parts = line.split()
        if not parts or parts[0].startswith("---"):
            break
        if int(parts[0]) != len(totals) + 1:
            raise EngineError(f"OUTCAR {name} block: ion {parts[0]} out of sequence")
        totals.append(float(parts[-1]))
    if not totals:
        raise EngineError(f"OUTCAR {name} block has no ion rows")
    return totals


def vasp_record_populations(
    outcar_text: str, elements: list[str], where: str | Path
) -> dict[str, dict[str, Any]]:
    """What the VASP parser keeps in ``CalcRecord.extra`` (``elements`` from the structure).

    A malformed or mismatched block is logged and left out.
    """
    try:
        found = parse_vasp_populations(outcar_text)
    except (EngineError, ValueError) as err:
        log.warning("%s: atomic populations not read: %s", where, err)
        return {}
    for pops in found.values():
        if len(pops.population) != len(elements):
            log.warning("%s: OUTCAR population block does not match the structure", where)
            return {}
        pops.elements = list(elements)
    return {k: v.to_dict() for k, v in found.items()}


def record_populations(extra: dict[str, Any]) -> dict[str, AtomicPopulations]:
    """The analyses a record holds (``CalcRecord.extra``), as objects."""
    stored = extra.get("atomic_populations") or {}
    return {k: AtomicPopulations.from_dict(v) for k, v in stored.items()}
