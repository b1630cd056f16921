"""Readers for electrostatic-potential grids: VASP LOCPOT and Gaussian cube (CP2K).

Both return a :class:`~perovskite_defects.engines.base.PotentialGrid` in Å and eV, holding
the potential energy of an electron (VASP LOCPOT sign convention).

Why hand-written, measured on the reference CdTe LOCPOT.gz (80^3, 2.7 MB gzipped) on the
shared 2-core machine, arrays identical (``np.array_equal``): this reader takes 0.14 s;
pymatgen 2026.10's ``Locpot.from_file`` now has a compiled number parser and takes 0.07 s,
but needs ``pymatgen.io.vasp`` imported first (0.8-1.5 s) and builds a Structure. So speed
is not the reason. The reasons are: no pymatgen import for callers that only need a grid
(the CP2K path), one parser for LOCPOT and cube, only the first grid is parsed, and failures
raise EngineError naming the file (pymatgen raises a bare ValueError such as "Expected
512000 values, got 249630").
"""

from __future__ import annotations

import gzip
import math
import warnings
import zlib
from pathlib import Path

import numpy as np

from perovskite_defects.engines.base import EngineError, PotentialGrid

BOHR_TO_ANGSTROM = 0.529177210903
HARTREE_TO_EV = 27.211386245988

# CP2K counts electron density as positive and the Gaussian core charges as negative, so
# its V_HARTREE_CUBE is already the potential energy of an electron, as in a VASP LOCPOT:
# measured on cubic CsPbI3, -8.4 Ha at the Cs nucleus. No sign flip.
CP2K_CUBE_SIGN = 1.0


def read_potential_grid(path: str | Path) -> PotentialGrid:
    """Read a LOCPOT(.gz) or a .cube(.gz) file, choosing the reader by file name.

    Cube files are assumed to come from CP2K, whose Hartree cube already follows the
    LOCPOT sign (:data:`CP2K_CUBE_SIGN`); call :func:`read_cube` directly for another
    convention.
    """
    p = Path(path)
    name = p.name.lower()
    if name.startswith("locpot"):
        return read_locpot(p)
    if name.endswith((".cube", ".cube.gz")):
        return read_cube(p, sign=CP2K_CUBE_SIGN)
    raise EngineError(f"{p}: unknown potential file type (expected LOCPOT* or *.cube)")


def read_locpot(path: str | Path) -> PotentialGrid:
    """Read a VASP LOCPOT (optionally gzipped) into a :class:`PotentialGrid`.

    Only the first grid is read: anything after it (augmentation data, a second spin
    block) is ignored. Values are already eV with the electron-energy sign.
    """
    p = Path(path)
    raw = _read_bytes(p)
    lines = _LineReader(raw, p)
    lines.next()  # comment
    scale = _floats(lines.next(), p, "scale factor")
    vectors = np.array([_floats(lines.next(), p, "lattice vector") for _ in range(3)])
    lattice = _scaled_lattice(vectors, scale, p)
    natoms = _locpot_atom_count(lines, p)
    mode = lines.next().strip().lower()
    if mode.startswith("s"):  # "Selective dynamics" comes before Direct/Cartesian
        lines.next()
    for _ in range(natoms):
        lines.next()
    dims = _grid_dims(lines.next_nonblank(), p)
    data = _parse_block(raw, lines.pos, math.prod(dims), p, first_block_only=True)
    # LOCPOT order: x runs fastest, so Fortran order gives data[ix, iy, iz].
    return PotentialGrid(lattice=lattice, data=data.reshape(dims, order="F"))


def read_cube(path: str | Path, sign: float) -> PotentialGrid:
    """Read a Gaussian cube file (e.g. CP2K's V_HARTREE_CUBE) into a :class:`PotentialGrid`.

    Lengths are converted from bohr to Å (an axis with a negative voxel count is already in
    Å, per the cube convention), values from Hartree to eV, and multiplied by ``sign``.
    """
    p = Path(path)
    raw = _read_bytes(p)
    lines = _LineReader(raw, p)
    lines.next()
    lines.next()  # two comment lines
    header = _floats(lines.next(), p, "atom count and origin")
    natoms = int(header[0])
    if natoms < 0:
        raise EngineError(
            f"{p}: multi-dataset (orbital) cube files are not supported; "
            "expected a single potential grid"
        )
    dims: list[int] = []
    lattice = np.empty((3, 3))
    for i in range(3):
        row = _floats(lines.next(), p, "voxel vector")
        if len(row) != 4:
            raise EngineError(f"{p}: malformed voxel line {i + 1} in the cube header")
        count = int(row[0])
        if count == 0:
            raise EngineError(f"{p}: zero voxel count on axis {i} in the cube header")
        unit = 1.0 if count < 0 else BOHR_TO_ANGSTROM  # negative count: lengths in Å
        dims.append(abs(count))
        lattice[i] = abs(count) * np.asarray(row[1:]) * unit
    for _ in range(natoms):
        lines.next()
    data = _parse_block(raw, lines.pos, math.prod(dims), p, first_block_only=False)
    # Cube order: x slowest, z fastest, i.e. C order.
    return PotentialGrid(lattice=lattice, data=data.reshape(dims) * (HARTREE_TO_EV * sign))


class _LineReader:
    """Walks through the header lines of a byte buffer, remembering the offset."""

    def __init__(self, raw: bytes, path: Path) -> None:
        self.raw = raw
        self.path = path
        self.pos = 0

    def next(self) -> str:
        if self.pos >= len(self.raw):
            raise EngineError(f"{self.path}: file ends inside the header (truncated?)")
        end = self.raw.find(b"\n", self.pos)
        end = len(self.raw) if end < 0 else end
        line = self.raw[self.pos : end].decode("ascii", errors="replace")
        self.pos = end + 1
        return line

    def next_nonblank(self) -> str:
        line = self.next()
        while not line.strip():
            line = self.next()
        return line


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise EngineError(f"{path}: potential file is missing")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:
        raise EngineError(f"{path}: cannot read file ({err}); truncated or corrupt?") from err


def _floats(line: str, path: Path, what: str) -> list[float]:
    try:
        values = [float(x) for x in line.split()]
    except ValueError:
        values = []
    if not values:
        raise EngineError(f"{path}: expected the {what} in the header, got {line.strip()!r}")
    return values


def _scaled_lattice(vectors: np.ndarray, scale: list[float], path: Path) -> np.ndarray:
    """Apply the POSCAR scale line: one factor, a negative target volume, or three factors."""
    if len(scale) == 3:
        return vectors * np.asarray(scale)
    if scale[0] < 0:
        volume = abs(float(np.linalg.det(vectors)))
        return vectors * (-scale[0] / volume) ** (1.0 / 3.0)
    return vectors * scale[0]


def _locpot_atom_count(lines: _LineReader, path: Path) -> int:
    """Total atom count from the species/counts lines (VASP 5 names line is optional)."""
    line = lines.next()
    tokens = line.split()
    if not all(t.isdigit() for t in tokens):
        line = lines.next()  # that was the element-names line
        tokens = line.split()
    if not tokens or not all(t.isdigit() for t in tokens):
        raise EngineError(f"{path}: expected atom counts in the header, got {line.strip()!r}")
    return sum(int(t) for t in tokens)


def _grid_dims(line: str, path: Path) -> tuple[int, int, int]:
    tokens = line.split()
    if len(tokens) != 3 or not all(t.isdigit() for t in tokens):
        raise EngineError(f"{path}: expected three grid dimensions, got {line.strip()!r}")
    nx, ny, nz = (int(t) for t in tokens)
    return nx, ny, nz


def _parse_block(
    raw: bytes, start: int, count: int, path: Path, first_block_only: bool
) -> np.ndarray:
    """Parse ``count`` whitespace-separated floats starting at byte ``start``.

    With ``first_block_only`` the block is cut after as many lines as ``count`` values need
    (LOCPOT files may carry more data after the grid, including numeric lines); otherwise
    the whole remainder must be exactly the grid. ``np.fromstring`` is used because it
    parses text at C speed; it must never be given ``count`` (it then pads a short input
    with garbage), so the size is checked afterwards instead.
    """
    body = raw[start:]
    if first_block_only:
        body = _first_lines(body, count)
    try:
        with warnings.catch_warnings():
            # numpy warns (instead of raising) on non-numeric text; treat it as corruption
            warnings.simplefilter("error", DeprecationWarning)
            values = np.fromstring(body, sep=" ") if body.strip() else np.empty(0)
    except (ValueError, DeprecationWarning) as err:
        raise EngineError(f"{path}: non-numeric data in the grid block ({err})") from err
    if values.size != count:
        raise EngineError(
            f"{path}: expected {count} grid values, found {values.size} "
            "(truncated or corrupt file?)"
        )
    return values


def _first_lines(body: bytes, count: int) -> bytes:
    """The leading lines of ``body`` that hold ``count`` values, judged by the first line."""
    first_end = body.find(b"\n")
    first = body if first_end < 0 else body[:first_end]
    per_line = len(first.split())
    if per_line == 0:
        return b""
    nlines = -(-count // per_line)
    newlines = np.flatnonzero(np.frombuffer(body, dtype=np.uint8) == ord("\n"))
    if len(newlines) < nlines:
        return body  # short file: the size check reports it
    return body[: newlines[nlines - 1]]


def site_potentials(
    grid: PotentialGrid, frac_coords: np.ndarray, radius: float = 1.0
) -> np.ndarray:
    """Potential at each atom: the grid average in a sphere of ``radius`` Å around it (eV).

    The stand-in for VASP's core-level site potentials where an engine has none (CP2K):
    with the same sphere in bulk and defect cells, the difference of two such averages
    is the electrostatic-potential change at the site that eFNV needs. The sign follows
    the grid (electron potential energy, like VASP's core potentials).
    """
    frac_coords = np.atleast_2d(np.asarray(frac_coords, dtype=float))
    shape = np.array(grid.data.shape)
    lattice = np.asarray(grid.lattice, dtype=float)
    # Grid points within the sphere, as integer offsets from the nearest grid point: the
    # same stencil serves every atom (grids are regular), so this stays O(atoms x stencil).
    spacing = np.linalg.norm(lattice, axis=1) / shape
    reach = np.ceil(radius / spacing).astype(int) + 1
    offsets = np.stack(
        np.meshgrid(*[np.arange(-r, r + 1) for r in reach], indexing="ij"), axis=-1
    ).reshape(-1, 3)
    values = np.empty(len(frac_coords))
    for i, frac in enumerate(frac_coords):
        centre = np.mod(frac, 1.0) * shape
        nearest = np.round(centre).astype(int)
        points = nearest + offsets
        cart = ((points - centre) / shape) @ lattice
        inside = np.einsum("ij,ij->i", cart, cart) <= radius**2
        if not inside.any():
            raise ValueError(f"sphere of radius {radius} Å holds no grid point; grid too coarse")
        idx = np.mod(points[inside], shape)
        values[i] = grid.data[idx[:, 0], idx[:, 1], idx[:, 2]].mean()
    return values
