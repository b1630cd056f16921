"""Streaming reader for vasprun.xml(.gz): only what a defect study needs.

Why not pymatgen's ``Vasprun``: it builds the whole document, including the (partial)
density of states and the projections that dominate the file size, and converts all of
it. A defect study needs the final energy, the convergence evidence, the final structure,
the eigenvalues and occupations of the last ionic step, the input parameters and the
valences of the pseudopotentials. This reader decompresses in chunks, cuts the ``<dos>``
and ``<projected>`` blocks out at the byte level (keeping only the Fermi energy at the
start of ``<dos>``), and feeds the rest to an incremental XML parser
(``xml.etree.ElementTree.XMLPullParser``), dropping every element once it has been read.
Timings on a ~110 MB vasprun are in ``bench/README.md`` and docs/benchmarks.md.

A truncated file (a killed job) is a parse error, reported as :class:`EngineError` naming
the file, so an interrupted run can never become a result.
"""

from __future__ import annotations

import gzip
import re
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from perovskite_defects.engines.base import EngineError
from perovskite_defects.engines.structure_dict import structure_as_dict

CHUNK = 1 << 20
# Blocks skipped unparsed; VASP 6 adds *_kpoints_opt variants.
_SKIP_RE = re.compile(
    rb"<(dos|projected|dos_kpoints_opt|projected_kpoints_opt|eigenvalues_kpoints_opt"
    rb"|projected_kpoints_opt)(?=[\s>/])[^>]*>"
)
_EFERMI_RE = re.compile(rb'<i name="efermi">\s*([-+0-9.Ee]+)\s*</i>')
_KEEP = 64  # bytes kept between chunks so a start tag is never split


@dataclass
class VasprunData:
    """The parts of a vasprun.xml that a defect study uses (eV, Å)."""

    path: str
    generator: dict[str, str] = field(default_factory=dict)
    incar: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    kpoints: dict[str, Any] = field(default_factory=dict)
    atoms: list[str] = field(default_factory=list)
    atomtypes: list[dict[str, Any]] = field(default_factory=list)
    n_ionic_steps: int = 0
    n_electronic_steps: int = 0  # of the last ionic step
    ionic_energies: dict[str, float] = field(default_factory=dict)
    last_scstep_energies: dict[str, float] = field(default_factory=dict)
    first_ionic_energies: dict[str, float] = field(default_factory=dict)
    first_scstep_energies: dict[str, float] = field(default_factory=dict)
    lattice: np.ndarray | None = None
    frac_coords: np.ndarray | None = None
    eigenvalues: dict[int, np.ndarray] | None = None
    efermi: float | None = None

    @property
    def final_energy(self) -> float:
        """energy(sigma->0) of the last ionic step, as pymatgen's ``Vasprun.final_energy``.

        Includes pymatgen's fix for VASP versions that write a wrong ``e_0_energy`` in the
        ionic-step block (vasp.at forum t=16942): rebuilt from the last electronic step.
        """
        if "e_0_energy" not in self.ionic_energies:
            raise EngineError(f"{self.path}: no ionic step with an energy in vasprun")
        return _sigma_zero(self.ionic_energies, self.last_scstep_energies)

    @property
    def initial_energy(self) -> float | None:
        """energy(sigma->0) of the first ionic step (the input geometry), with the same fix
        as :attr:`final_energy`; None when the file has no ionic step with an energy."""
        if "e_0_energy" not in self.first_ionic_energies:
            return None
        return _sigma_zero(self.first_ionic_energies, self.first_scstep_energies)

    @property
    def converged_electronic(self) -> bool:
        """The last ionic step stopped before NELM electronic steps (as pymatgen judges it)."""
        if not self.n_electronic_steps:
            return False
        nelm = int(self.parameters.get("NELM", 60))
        return self.n_electronic_steps < nelm

    @property
    def is_relaxation(self) -> bool:
        nsw = int(self.parameters.get("NSW", 0))
        ibrion = int(self.parameters.get("IBRION", -1 if nsw <= 0 else 0))
        return nsw > 1 and ibrion not in (-1, 0)

    @property
    def converged_ionic(self) -> bool | None:
        """None for single points; for relaxations True when VASP stopped before NSW steps."""
        if not self.is_relaxation:
            return None
        return self.n_ionic_steps < int(self.parameters["NSW"])

    @property
    def neutral_electrons(self) -> float | None:
        """Sum of the POTCAR valences (ZVAL) over the atoms, from ``<atominfo>``."""
        if not self.atomtypes or any(t.get("valence") is None for t in self.atomtypes):
            return None
        return float(sum(t["count"] * t["valence"] for t in self.atomtypes))

    @property
    def potcar_symbols(self) -> list[str]:
        return [t["pseudopotential"] for t in self.atomtypes]

    def structure(self):  # -> pymatgen Structure
        # imported here: pymatgen.core is slow to import and most callers need only the dict
        from pymatgen.core import Structure

        return Structure.from_dict(self.structure_dict())

    def structure_dict(self) -> dict[str, Any]:
        """The final structure as pymatgen's ``Structure.as_dict()``, without pymatgen."""
        if self.lattice is None or self.frac_coords is None:
            raise EngineError(f"{self.path}: no final structure in vasprun")
        return structure_as_dict(self.lattice, self.atoms, self.frac_coords)


def read_vasprun(path: str | Path) -> VasprunData:
    """Read ``path`` (vasprun.xml or vasprun.xml.gz) in one streaming pass."""
    p = Path(path)
    data = VasprunData(path=str(p))
    parser: ET.XMLPullParser = ET.XMLPullParser(events=("start", "end"))
    reader = _Reader(data)
    calcs = _Calculations()
    try:
        for piece in calcs.split(_filtered_chunks(p, data)):
            parser.feed(piece)
            reader.consume(parser.read_events())
        parser.close()
        reader.consume(parser.read_events())
        data.n_ionic_steps = calcs.count
        if calcs.last is not None:
            _last_calculation(ET.fromstring(calcs.last), data)
        if calcs.first is not None and calcs.count > 1:
            _first_calculation(ET.fromstring(calcs.first), data)
        else:  # one ionic step: it is its own start
            data.first_ionic_energies = dict(data.ionic_energies)
            data.first_scstep_energies = dict(data.last_scstep_energies)
    except ET.ParseError as err:
        raise EngineError(f"{p}: cannot parse vasprun ({err}); truncated or corrupt?") from err
    except (OSError, EOFError, zlib.error) as err:
        raise EngineError(f"{p}: cannot read vasprun ({err}); truncated or corrupt?") from err
    if not reader.finished or calcs.open:
        raise EngineError(
            f"{p}: vasprun ends before </modeling> (truncated: the run did not finish)"
        )
    return data


class _Calculations:
    """Cuts the ``<calculation>`` blocks (one per ionic step) out of the byte stream.

    Only the first (the energy of the input geometry) and the last one are kept (as bytes)
    and parsed, at the end; the others are only counted. A long relaxation is thousands of
    blocks, whose element-by-element parsing would dominate the reading time.
    """

    START, END = b"<calculation>", b"</calculation>"

    def __init__(self) -> None:
        self.count = 0
        self.first: bytes | None = None
        self.last: bytes | None = None
        self.open = False

    def split(self, pieces):
        buf = b""
        current: list[bytes] = []
        for piece in pieces:
            buf += piece
            while True:
                if not self.open:
                    i = buf.find(self.START)
                    if i < 0:
                        break
                    yield buf[:i]
                    buf = buf[i:]
                    self.open, current = True, []
                else:
                    j = buf.find(self.END)
                    if j < 0:
                        keep = len(self.END)
                        if len(buf) > keep:
                            current.append(buf[:-keep])
                            buf = buf[-keep:]
                        break
                    j += len(self.END)
                    current.append(buf[:j])
                    buf = buf[j:]
                    self.open = False
                    self.count += 1
                    self.last = b"".join(current)
                    if self.first is None:
                        self.first = self.last
            if not self.open and len(buf) > _KEEP:
                yield buf[:-_KEEP]
                buf = buf[-_KEEP:]
        if not self.open:
            yield buf


def _last_calculation(calc: ET.Element, data: VasprunData) -> None:
    """Energies, SCF step count, structure and eigenvalues of the last ionic step."""
    steps = calc.findall("scstep")
    data.n_electronic_steps = len(steps)
    if steps:
        data.last_scstep_energies = _energies(steps[-1].find("energy"))
    data.ionic_energies = _energies(calc.find("energy"))
    structure = calc.find("structure")
    if structure is not None and data.lattice is None:  # "finalpos" wins, as in pymatgen
        data.lattice, data.frac_coords = _structure(structure)
    eigenvalues = calc.find("eigenvalues")
    if eigenvalues is not None:
        data.eigenvalues = _eigenvalues(eigenvalues)


def _first_calculation(calc: ET.Element, data: VasprunData) -> None:
    """Energies of the first ionic step (the input geometry of a relaxation)."""
    steps = calc.findall("scstep")
    if steps:
        data.first_scstep_energies = _energies(steps[-1].find("energy"))
    data.first_ionic_energies = _energies(calc.find("energy"))


def _sigma_zero(ionic: dict[str, float], last_scstep: dict[str, float]) -> float:
    """energy(sigma->0) of one ionic step, rebuilt from its last electronic step where
    VASP wrote a wrong ``e_0_energy`` (see :attr:`VasprunData.final_energy`)."""
    total = ionic["e_0_energy"]
    if "e_0_energy" in last_scstep and "e_fr_energy" in last_scstep and "e_fr_energy" in ionic:
        fixed = round(
            last_scstep["e_0_energy"] - last_scstep["e_fr_energy"] + ionic["e_fr_energy"], 8
        )
        if abs(total - fixed) > 1e-7:
            return fixed
    return total


def _filtered_chunks(path: Path, data: VasprunData):
    """Decompressed bytes of ``path`` without the skipped blocks (see module docstring)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        buf = b""
        skipping: bytes | None = None
        head = b""  # first bytes of a skipped <dos> block, for the Fermi energy
        while True:
            chunk = fh.read(CHUNK)
            buf += chunk
            while True:
                if skipping is None:
                    match = _SKIP_RE.search(buf)
                    if match is None:
                        break
                    yield buf[: match.start()]
                    name = match.group(1)
                    skipping = b"</" + name + b">"
                    buf = buf[match.end() :]
                    head = b"" if name == b"dos" else b"-"
                else:
                    if head != b"-" and len(head) < 2048:
                        head += buf[: 2048 - len(head)]
                        found = _EFERMI_RE.search(head)
                        if found:
                            data.efermi = float(found.group(1))
                            head = b"-"
                    end = buf.find(skipping)
                    if end < 0:
                        buf = buf[-len(skipping) :]
                        break
                    buf = buf[end + len(skipping) :]
                    skipping = None
            if not chunk:
                if skipping is None:
                    yield buf
                return
            if skipping is None and len(buf) > _KEEP:
                yield buf[:-_KEEP]
                buf = buf[-_KEEP:]


class _Reader:
    """Turns pull-parser events into :class:`VasprunData`, freeing elements as it goes."""

    def __init__(self, data: VasprunData) -> None:
        self.data = data
        self.stack: list[str] = []
        self.root: ET.Element | None = None
        self.finished = False

    def consume(self, events) -> None:
        data = self.data
        for event, elem in events:
            if event == "start":
                if self.root is None:
                    self.root = elem
                self.stack.append(elem.tag)
                continue
            self.stack.pop()
            depth = len(self.stack)  # 0 = root (<modeling>), 1 = its children
            tag = elem.tag
            if depth == 0:
                self.finished = tag == "modeling"
                continue
            if depth == 1:
                if tag == "generator":
                    data.generator = {i.get("name", ""): (i.text or "").strip() for i in elem}
                elif tag == "incar":
                    data.incar = _params(elem)
                elif tag == "parameters":
                    data.parameters = _params(elem)
                elif tag == "kpoints":
                    data.kpoints = _kpoints(elem)
                elif tag == "atominfo":
                    _atominfo(elem, data)
                elif tag == "structure" and elem.get("name") == "finalpos":
                    data.lattice, data.frac_coords = _structure(elem)
                if self.root is not None:
                    self.root.remove(elem)  # the document never accumulates


def _value(text: str | None, kind: str | None) -> Any:
    text = (text or "").strip()
    if kind == "string":
        return text
    if kind == "logical":
        return text.upper().startswith(("T", ".T"))
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            return text
    try:
        return float(text)
    except ValueError:
        return text


def _params(elem: ET.Element) -> dict[str, Any]:
    """<i>/<v> name-value pairs anywhere below ``elem`` (parameters are nested)."""
    out: dict[str, Any] = {}
    for item in elem.iter():
        name = item.get("name")
        if item.tag == "i" and name:
            out[name] = _value(item.text, item.get("type"))
        elif item.tag == "v" and name:
            out[name] = [_value(x, item.get("type")) for x in (item.text or "").split()]
    return out


def _floats(elem: ET.Element | None) -> np.ndarray:
    if elem is None:
        return np.empty((0, 3))
    rows = [[float(x) for x in (v.text or "").split()] for v in elem.findall("v")]
    return np.array(rows, dtype=float)


def _kpoints(elem: ET.Element) -> dict[str, Any]:
    gen = elem.find("generation")
    out: dict[str, Any] = {"style": gen.get("param") if gen is not None else "explicit"}
    if gen is not None:
        for v in gen.findall("v"):
            out[v.get("name", "")] = [float(x) for x in (v.text or "").split()]
    kpts = _floats(elem.find("varray[@name='kpointlist']"))
    weights = _floats(elem.find("varray[@name='weights']"))
    out["n_kpoints"] = len(kpts)
    out["kpoints"] = kpts.tolist()
    out["weights"] = weights.ravel().tolist()
    return out


def _atominfo(elem: ET.Element, data: VasprunData) -> None:
    for array in elem.findall("array"):
        rows = [[(c.text or "").strip() for c in rc] for rc in array.iter("rc")]
        if array.get("name") == "atoms":
            data.atoms = [r[0] for r in rows]
        elif array.get("name") == "atomtypes":
            fields = [(f.text or "").strip() for f in array.findall("field")]
            for row in rows:
                entry = dict(zip(fields, row, strict=False))
                data.atomtypes.append(
                    {
                        "count": int(entry.get("atomspertype", 0)),
                        "element": entry.get("element", "").strip(),
                        "valence": float(entry["valence"]) if "valence" in entry else None,
                        "pseudopotential": entry.get("pseudopotential", "").strip(),
                    }
                )


def _energies(elem: ET.Element | None) -> dict[str, float]:
    if elem is None:
        return {}
    out = {}
    for item in elem.findall("i"):
        try:
            out[item.get("name", "")] = float((item.text or "").strip())
        except ValueError:  # VASP writes ******** for overflowing numbers
            continue
    return out


def _structure(elem: ET.Element) -> tuple[np.ndarray, np.ndarray]:
    lattice = _floats(elem.find("crystal/varray[@name='basis']"))
    positions = _floats(elem.find("varray[@name='positions']"))
    if lattice.shape != (3, 3):
        raise EngineError("vasprun structure block without a 3x3 basis")
    return lattice, positions


def _eigenvalues(elem: ET.Element) -> dict[int, np.ndarray]:
    """spin (1, or 1 and 2) -> array (n_kpoints, n_bands, 2) of (energy eV, occupation)."""
    top = elem.find("array/set")
    if top is None:
        return {}
    out: dict[int, np.ndarray] = {}
    for spin_index, spin_set in enumerate(top.findall("set"), start=1):
        blocks = []
        for kset in spin_set.findall("set"):
            text = " ".join(r.text or "" for r in kset.findall("r"))
            blocks.append(np.array(text.split(), dtype=float).reshape(-1, 2))
        out[spin_index] = np.array(blocks)
    return out
