"""VASP output parser: a finished run folder -> the engine-neutral CalcRecord (eV, Å).

Split from :mod:`perovskite_defects.engines.vasp` (settings, input writer and runner) so
that each module has one job; the engine class there calls :func:`parse_vasp_dir`.

Parsing reads vasprun.xml(.gz) with the streaming reader of :mod:`.vasprun` (not
pymatgen's ``Vasprun``, which is slow on large files), and OUTCAR(.gz) for the core-level
site potentials.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from perovskite_defects.engines.atomic_populations import vasp_record_populations
from perovskite_defects.engines.base import CalcRecord, EngineError
from perovskite_defects.engines.vasprun import read_vasprun

#: Occupations above this count as occupied when locating the band edges.
OCCUPIED_THRESHOLD = 0.5

# ZVAL lines of a POTCAR or an OUTCAR header (vasp.check_nelect reads POTCARs with it too).
_ZVAL_RE = re.compile(r"POMASS\s*=\s*[-\d.]+\s*;\s*ZVAL\s*=\s*([-\d.]+)")
_SITE_POT_HEADER = "average (electrostatic) potential at core"
_SITE_POT_PAIR_RE = re.compile(r"(\d+)\s*(-?\d+\.\d+)")


def parse_vasp_dir(path: str | Path) -> CalcRecord:
    """Parse a finished VASP run folder into a :class:`CalcRecord`.

    Energy is the last ionic step's ``energy(sigma->0)`` (``e_0_energy``), the number
    pymatgen's ``Vasprun.final_energy`` and doped use: for the CdTe V_Cd^-2 reference pair
    it gives the raw difference of 7.4480 eV. vasprun.xml(.gz) is read by the streaming
    reader of :mod:`.vasprun` (timings against pymatgen in ``bench/README.md``).

    The charge is (sum of POTCAR valences over the atoms, from vasprun's ``atominfo`` or
    else the OUTCAR header) - NELECT; when neither source has the valences it is recorded as
    0 with ``extra["charge_known"] = False``. An unconverged run is still returned
    (``scf_converged`` / ``geometry_converged`` False): callers decide, e.g. with
    :meth:`CalcRecord.require_converged`; the workflow never writes a record for it.
    """
    run_dir = Path(path)
    vasprun_file = _first_existing(run_dir, ("vasprun.xml", "vasprun.xml.gz"))
    if vasprun_file is None:
        raise EngineError(f"{run_dir}: no vasprun.xml or vasprun.xml.gz in the run folder")
    vrun = read_vasprun(vasprun_file)
    if vrun.n_ionic_steps == 0 or "e_0_energy" not in vrun.ionic_energies:
        raise EngineError(f"{vasprun_file}: no ionic step with an energy in vasprun")
    source_files = [vasprun_file.name]

    nelect = float(vrun.parameters["NELECT"]) if "NELECT" in vrun.parameters else None
    outcar_file = _first_existing(run_dir, ("OUTCAR", "OUTCAR.gz"))
    if outcar_file is not None:
        source_files.append(outcar_file.name)
    neutral = vrun.neutral_electrons
    if neutral is None and outcar_file is not None:
        neutral = _neutral_electron_count(outcar_file)
    charge = _charge(neutral, nelect, run_dir)

    vbm, cbm = band_edges(vrun.eigenvalues) if vrun.eigenvalues else (None, None)
    locpot = _first_existing(run_dir, ("LOCPOT", "LOCPOT.gz"))
    meta = _calc_meta(run_dir)
    settings: dict[str, Any] = {
        "incar": _plain(vrun.incar),
        "kpoints": {k: v for k, v in vrun.kpoints.items() if k not in ("kpoints", "weights")},
    }
    for key in ("settings", "kpoint_mesh", "potcar_symbols"):
        if key in meta:
            settings[key] = meta[key]
    generator = vrun.generator
    return CalcRecord(
        engine="vasp",
        engine_version=generator.get("version", "unknown") or "unknown",
        energy=float(vrun.final_energy),
        initial_energy=vrun.initial_energy if vrun.is_relaxation else None,
        charge=charge if charge is not None else 0,
        scf_converged=vrun.converged_electronic,
        geometry_converged=vrun.converged_ionic,
        structure=vrun.structure_dict(),
        nelect=nelect,
        vbm=vbm,
        cbm=cbm,
        potential_file=locpot.name if locpot is not None else None,
        site_potential_file=outcar_file.name if outcar_file is not None else None,
        run_dir=str(run_dir),
        source_files=source_files,
        settings=settings,
        extra={
            "charge_known": charge is not None,
            "is_spin": len(vrun.eigenvalues or {}) == 2,
            "efermi": vrun.efermi,
            "n_ionic_steps": vrun.n_ionic_steps,
            "n_electronic_steps": vrun.n_electronic_steps,
            "e_fr_energy": vrun.ionic_energies.get("e_fr_energy"),
            "e_wo_entrp": vrun.ionic_energies.get("e_wo_entrp"),
            "potcar_symbols": vrun.potcar_symbols,
            "vasp_subversion": generator.get("subversion", ""),
            "calc_kind": meta.get("calc_kind"),
            "atomic_populations": _populations(outcar_file, vrun.atoms),
        },
    )


def _populations(outcar: Path | None, elements: list[str]) -> dict[str, Any]:
    """Per-atom sphere charges and moments of the OUTCAR (LORBIT runs), else {}.

    ``elements``: the element symbol of each atom (vasprun's atom list; reading them from
    a pymatgen structure would import pymatgen for nothing)."""
    if outcar is None:
        return {}
    return vasp_record_populations(_read_text(outcar), elements, outcar)


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


def _calc_meta(run_dir: Path) -> dict[str, Any]:
    """calc.json of a run folder (written by vasp.write_input), or {} without one."""
    path = Path(run_dir) / "calc.json"
    if not path.is_file():
        return {}
    meta: dict[str, Any] = json.loads(path.read_text())
    return meta
