"""VASP output parsing: a finished run folder -> :class:`CalcRecord`.

Only parsing lives here (no input writing yet). The heavy lifting of vasprun.xml is left to
pymatgen's ``Vasprun``; the few things it does not expose (POTCAR valences, the OUTCAR
core-level site potentials) are read from OUTCAR with small line scanners.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .base import CalcRecord, EngineError

#: Occupations above this count as occupied when locating the band edges.
OCCUPIED_THRESHOLD = 0.5

_ZVAL_RE = re.compile(r"POMASS\s*=\s*[-\d.]+\s*;\s*ZVAL\s*=\s*([-\d.]+)")
_SITE_POT_HEADER = "average (electrostatic) potential at core"
_SITE_POT_PAIR_RE = re.compile(r"(\d+)\s*(-?\d+\.\d+)")


def parse_vasp_dir(path: str | Path) -> CalcRecord:
    """Parse a finished VASP run folder into a :class:`CalcRecord`.

    Energy is pymatgen's ``Vasprun.final_energy``, the last ionic step's ``energy(sigma->0)``
    (``e_0_energy``), the energy doped uses for defect entries. For the CdTe V_Cd^-2
    reference pair it reproduces the raw difference of 7.4480 eV (with ISMEAR=0 and no
    smearing entropy, ``e_fr_energy`` and ``e_wo_entrp`` give the same number there).

    The charge is (sum of POTCAR ZVALs over the atoms) - NELECT, from OUTCAR; without an
    OUTCAR it cannot be known and is recorded as 0 with ``extra["charge_known"] = False``.
    An electronically unconverged run is still returned (``scf_converged=False``): callers
    decide, e.g. with :meth:`CalcRecord.require_converged`.
    """
    run_dir = Path(path)
    vasprun_file = _first_existing(run_dir, ("vasprun.xml", "vasprun.xml.gz"))
    if vasprun_file is None:
        raise EngineError(f"{run_dir}: no vasprun.xml or vasprun.xml.gz in the run folder")
    vrun = _load_vasprun(vasprun_file)
    if not vrun.ionic_steps:
        raise EngineError(f"{vasprun_file}: no ionic step with an energy in vasprun")
    source_files = [vasprun_file.name]

    params = vrun.parameters
    nelect = float(params["NELECT"]) if "NELECT" in params else None
    outcar_file = _first_existing(run_dir, ("OUTCAR", "OUTCAR.gz"))
    neutral = _neutral_electron_count(outcar_file) if outcar_file is not None else None
    if outcar_file is not None:
        source_files.append(outcar_file.name)
    charge = _charge(neutral, nelect, run_dir)

    vbm, cbm = band_edges(vrun.eigenvalues) if vrun.eigenvalues else (None, None)
    locpot = _first_existing(run_dir, ("LOCPOT", "LOCPOT.gz"))
    last = vrun.ionic_steps[-1]
    return CalcRecord(
        engine="vasp",
        engine_version=str(vrun.generator.get("version", "unknown")).strip(),
        energy=float(vrun.final_energy),
        charge=charge if charge is not None else 0,
        scf_converged=bool(vrun.converged_electronic),
        geometry_converged=_geometry_converged(vrun),
        structure=vrun.final_structure.as_dict(),
        nelect=nelect,
        vbm=vbm,
        cbm=cbm,
        potential_file=locpot.name if locpot is not None else None,
        run_dir=str(run_dir),
        source_files=source_files,
        settings={"incar": _plain(dict(vrun.incar)), "kpoints": _kpoints_summary(vrun)},
        extra={
            "charge_known": charge is not None,
            "is_spin": bool(vrun.is_spin),
            "efermi": None if vrun.efermi is None else float(vrun.efermi),
            "n_ionic_steps": len(vrun.ionic_steps),
            "e_fr_energy": float(last["e_fr_energy"]),
            "e_wo_entrp": float(last["e_wo_entrp"]),
            "potcar_symbols": list(vrun.potcar_symbols),
            "vasp_subversion": str(vrun.generator.get("subversion", "")).strip(),
        },
    )


def band_edges(eigenvalues: dict[Any, np.ndarray]) -> tuple[float | None, float | None]:
    """(VBM, CBM) over all spins and k-points; occupation > 0.5 counts as occupied.

    ``eigenvalues`` maps spin -> array (nkpoints, nbands, 2) of (energy, occupation), as in
    ``Vasprun.eigenvalues``. Either edge is None when no such state exists.
    """
    occupied: list[np.ndarray] = []
    empty: list[np.ndarray] = []
    for values in eigenvalues.values():
        arr = np.asarray(values)
        is_occ = arr[..., 1] > OCCUPIED_THRESHOLD
        occupied.append(arr[..., 0][is_occ])
        empty.append(arr[..., 0][~is_occ])
    occ = np.concatenate(occupied)
    emp = np.concatenate(empty)
    vbm = float(occ.max()) if occ.size else None
    cbm = float(emp.min()) if emp.size else None
    return vbm, cbm


def read_outcar_site_potentials(path: str | Path) -> np.ndarray:
    """Electrostatic potentials at the atomic cores (eV), from the last OUTCAR block.

    ``path`` is an OUTCAR(.gz) file or a run folder holding one. One value per atom, in
    OUTCAR (= POSCAR) atom order; VASP writes them with ICORELEVEL/LVHAR runs. Needed for
    the Kumagai (eFNV) correction.
    """
    outcar = _resolve_outcar(Path(path))
    text = _read_text(outcar)
    start = text.rfind(_SITE_POT_HEADER)
    if start < 0:
        raise EngineError(f"{outcar}: no '{_SITE_POT_HEADER}' block in OUTCAR")
    pairs: list[tuple[int, float]] = []
    for line in text[start:].splitlines()[1:]:
        if not line.strip():
            if pairs:
                break
            continue
        found = _SITE_POT_PAIR_RE.findall(line)
        if found and not line.lstrip().startswith(("the", "(")):
            pairs.extend((int(i), float(v)) for i, v in found)
    indices = [i for i, _ in pairs]
    if not pairs or indices != list(range(1, len(pairs) + 1)):
        raise EngineError(f"{outcar}: malformed site-potential block (truncated?)")
    return np.array([v for _, v in pairs])


def _first_existing(folder: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def _load_vasprun(path: Path, fast: bool = True):  # -> FastVasprun or pymatgen Vasprun
    """The fast reader (:mod:`.vasprun_fast`) where it applies, else pymatgen's Vasprun."""
    if fast:
        from .vasprun_fast import FastParseError, FastVasprun

        try:
            return FastVasprun(path)
        except (FastParseError, KeyError, IndexError, AttributeError, ValueError):
            pass  # unusual file: pymatgen handles it
        except (OSError, EOFError, zlib.error) as err:
            raise EngineError(
                f"{path}: cannot read vasprun ({err}); truncated or corrupt?"
            ) from err
    from pymatgen.io.vasp import Vasprun  # imported lazily: ~1.4 s

    try:
        return Vasprun(str(path), parse_potcar_file=False, parse_dos=False, parse_eigen=True)
    except Exception as err:  # pymatgen raises ParseError, ValueError, EOFError, ...
        raise EngineError(f"{path}: cannot parse vasprun ({type(err).__name__}: {err})") from err


def _geometry_converged(vrun: Any) -> bool | None:
    """None for single points (NSW <= 1 or IBRION = -1), else pymatgen's verdict."""
    nsw = int(vrun.parameters.get("NSW", 0))
    ibrion = int(vrun.parameters.get("IBRION", -1 if nsw <= 0 else 0))
    if nsw <= 1 or ibrion == -1:
        return None
    return bool(vrun.converged_ionic)


def _charge(neutral: float | None, nelect: float | None, run_dir: Path) -> int | None:
    if neutral is None or nelect is None:
        return None
    charge = neutral - nelect
    if abs(charge - round(charge)) > 1e-6:
        raise EngineError(f"{run_dir}: non-integer cell charge {charge:g} (ZVAL sum - NELECT)")
    return int(round(charge))


def _neutral_electron_count(outcar: Path) -> float | None:
    """Sum of ZVAL x ions per POTCAR type, from the OUTCAR header; None if not found."""
    zvals: list[float] = []
    for line in _iter_lines(outcar):
        match = _ZVAL_RE.search(line)
        if match:
            zvals.append(float(match.group(1)))
        elif "ions per type" in line:
            counts = [int(x) for x in line.split("=")[1].split()]
            if len(counts) != len(zvals):
                raise EngineError(
                    f"{outcar}: {len(zvals)} POTCAR ZVAL lines but {len(counts)} ion types"
                )
            return float(sum(z * n for z, n in zip(zvals, counts, strict=True)))
    return None


def _kpoints_summary(vrun: Any) -> dict[str, Any]:
    kp = vrun.kpoints
    return {
        "style": getattr(kp.style, "name", str(kp.style)),
        "kpts": _plain(kp.kpts),
        "shift": _plain(kp.kpts_shift),
        "comment": kp.comment,
        "n_kpoints": len(vrun.actual_kpoints),
    }


def _plain(value: Any) -> Any:
    """Turn numpy scalars/arrays and tuples into JSON-friendly Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _resolve_outcar(path: Path) -> Path:
    if path.is_dir():
        found = _first_existing(path, ("OUTCAR", "OUTCAR.gz"))
        if found is None:
            raise EngineError(f"{path}: no OUTCAR or OUTCAR.gz in the run folder")
        return found
    if not path.is_file():
        raise EngineError(f"{path}: OUTCAR file is missing")
    return path


def _read_text(path: Path) -> str:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", errors="replace") as fh:
                return fh.read()
        return path.read_text(errors="replace")
    except (OSError, EOFError, zlib.error) as err:
        raise EngineError(f"{path}: cannot read file ({err}); truncated or corrupt?") from err


def _iter_lines(path: Path) -> Iterator[str]:
    """Lines of a (possibly gzipped) text file, read lazily so headers are cheap."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", errors="replace") as fh:
            yield from fh
    except (OSError, EOFError, zlib.error) as err:
        raise EngineError(f"{path}: cannot read file ({err}); truncated or corrupt?") from err
