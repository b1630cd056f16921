"""GPAW engine: PBE single points with spin-orbit coupling, for band-edge corrections.

CP2K, the embedded engine, has no spin-orbit coupling (SOC); in Pb/Sn halides SOC lowers
the CBM by about 1 eV. GPAW (PAW, plane waves) adds SOC non-self-consistently on top of a
scalar-relativistic PBE run (:func:`gpaw.spinorbit.soc_eigenstates`), cheap enough for
the 5-atom host unit cell on a laptop. This engine only runs single points (``static``);
relaxations stay with CP2K/VASP, and the structure comes from them.

Which GPAW: Debian's ``gpaw`` (22.8.0) and ``gpaw-data`` (PAW setups in
/usr/share/gpaw-setups) packages, run in a subprocess by Debian's ``/usr/bin/python3``
(script :mod:`.gpaw_worker`). Measured alternative: ``pip install gpaw`` in the project
venv finds only a source distribution (26.7.0) that needs a C compiler, BLAS and libxc
headers; its build failed here (with --no-build-isolation at the metadata step, a setuptools
incompatibility; with isolation at linking, no libxc), and the PAW setups would still
have to come from somewhere. The subprocess keeps the project venv free of compiled GPAW
and lets any interpreter with GPAW be named in config (``gpaw.python``), e.g. a conda
environment on a cluster. Measured cost (cubic CsPbI3, 5 atoms, one core): the SCF
~40 s at 300 eV on a 2x2x2 mesh, ~4 min at 400 eV on 4x4x4; the full diagonalisation
for the SOC basis (``soc_bands``) costs ~N_pw^3 per irreducible k-point (N_pw ~3100 at
300 eV, ~4700 at 400 eV): 11 min for the 4 k-points of 2x2x2 at 300 eV on a shared,
loaded core (2026-12-01).

Not in :data:`perovskite_defects.engines.ENGINES` (config key ``engine``): it cannot
relax, so it cannot run a study; ``band_edges.soc: gpaw`` selects it for the shifts.

Units: eV and Å (GPAW's own through ASE).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from perovskite_defects.engines.base import CalcRecord, CalcSpec, Engine, EngineError

WORKER = Path(__file__).with_name("gpaw_worker.py")
INPUT_NAME = "gpaw_input.json"
RESULT_NAME = "gpaw_result.json"
LOG_NAME = "gpaw.txt"
#: Debian's interpreter, the one its ``gpaw`` package is built for.
DEBIAN_PYTHON = "/usr/bin/python3"


@dataclass(frozen=True)
class GpawSettings:
    """Numerical settings of a GPAW band-edge run (eV, Å).

    Attributes:
        python: interpreter that imports gpaw ("auto": /usr/bin/python3, else python3).
        cutoff: plane-wave cutoff (eV).
        kpoint_density: Gamma-centred mesh n_i = ceil(kpoint_density / a_i) (Å, the
            convention of the CP2K and VASP engines), rounded up to an even number so that
            the zone-boundary points (R of the cubic perovskite, where its gap is) are
            on the mesh; the BZ of any supercell of it folds R onto Gamma or its boundary.
        empty_bands: bands above the occupied ones in the SCF (the SOC basis when
            ``soc_bands`` is 0).
        soc_bands: scalar-relativistic bands in the basis in which SOC is diagonalised,
            from a full (dense) diagonalisation of the converged PW Hamiltonian; 0 = the
            SCF's own bands. The VBM shift is second order and needs 200 bands or
            more for the 5-atom ABX3 cell (docs/physics-and-settings.md).
        smearing: Fermi-Dirac width (eV).
        eigenstates: SCF convergence of the eigenstates (eV^2 per electron, GPAW's).
        max_scf: SCF iterations before the run counts as unconverged.
        relax_radius, phase_cell_relax: required by the workflow steps; no relaxations.
    """

    python: str = "auto"
    cutoff: float = 400.0
    kpoint_density: float = 24.0
    empty_bands: int = 24
    soc_bands: int = 200
    smearing: float = 0.01
    eigenstates: float = 1e-8
    max_scf: int = 200
    relax_radius: float = 0.0
    phase_cell_relax: bool = False


def gpaw_settings(config: Mapping[str, Any]) -> GpawSettings:
    """Settings from config key ``gpaw`` (ValueError naming the key if one is bad)."""
    block = config.get("gpaw") or {}
    overrides = block.get("settings") or {}
    fields = GpawSettings.__dataclass_fields__
    values: dict[str, Any] = {}
    for key, value in overrides.items():
        where = f"config key 'gpaw.settings.{key}'"
        if key not in fields or key in ("python", "relax_radius", "phase_cell_relax"):
            raise ValueError(f"{where}: not a GPAW setting")
        # soc_bands may be 0 (SOC in the SCF's own bands)
        lowest_ok = value >= 0 if key == "soc_bands" else value > 0
        if isinstance(value, bool) or not isinstance(value, int | float) or not lowest_ok:
            what = "a number >= 0" if key == "soc_bands" else "a positive number"
            raise ValueError(f"{where}: must be {what}, got {value!r}")
        if key in ("empty_bands", "max_scf", "soc_bands"):
            if int(value) != value:
                raise ValueError(f"{where}: must be a whole number, got {value!r}")
            value = int(value)
        values[key] = value
    return GpawSettings(python=str(block.get("python", "auto")), **values)


def kpoint_mesh(lattice_lengths: tuple[float, float, float], density: float) -> list[int]:
    """Even Gamma-centred mesh from the k-point density (Å): 0 and 1/2 on every axis."""
    mesh = []
    for length in lattice_lengths:
        n = max(1, math.ceil(density / length))
        mesh.append(n + n % 2)
    return mesh


def find_python(python: str) -> str:
    """The interpreter that runs the worker; EngineError naming ``gpaw.python`` if none
    imports gpaw."""
    candidates = [DEBIAN_PYTHON, "python3"] if python == "auto" else [python]
    for cand in candidates:
        exe = shutil.which(cand)
        if exe is None:
            continue
        probe = subprocess.run([exe, "-c", "import gpaw"], capture_output=True, text=True)
        if probe.returncode == 0:
            return exe
    raise EngineError(
        f"config key 'gpaw.python': no interpreter among {candidates} imports gpaw; "
        "install Debian's packages (apt-get install gpaw gpaw-data) or name a Python with GPAW"
    )


def write_input(structure: Any, spec: CalcSpec, settings: GpawSettings, run_dir: Path) -> Path:
    """Write ``gpaw_input.json`` and ``calc.json`` for a single point of ``structure``."""
    if spec.kind != "static":
        raise EngineError(
            f"{run_dir}: the GPAW engine runs single points only (band edges with "
            f"spin-orbit coupling), not {spec.kind!r}; relaxations are CP2K's or VASP's"
        )
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    lengths = tuple(float(x) for x in structure.lattice.abc)
    mesh = kpoint_mesh(lengths, settings.kpoint_density)  # type: ignore[arg-type]
    data = {
        "symbols": [site.specie.symbol for site in structure],
        "frac_coords": structure.frac_coords.tolist(),
        "lattice": structure.lattice.matrix.tolist(),
        "charge": spec.charge,
        "kpoint_mesh": mesh,
        # GPAW: nbands = -n means the occupied bands of its setups plus n
        "nbands": -settings.empty_bands,
        "settings": {
            "cutoff": settings.cutoff,
            "xc": "PBE",
            "smearing": settings.smearing,
            "eigenstates": settings.eigenstates,
            "max_scf": settings.max_scf,
            "soc_bands": settings.soc_bands,
        },
    }
    (run_dir / INPUT_NAME).write_text(json.dumps(data, indent=1))
    meta = {
        "engine": "gpaw",
        "spec": asdict(spec),
        "settings": asdict(settings),
        "kpoint_mesh": mesh,
        "structure": structure.as_dict(),
    }
    (run_dir / "calc.json").write_text(json.dumps(meta, indent=1))
    return run_dir / INPUT_NAME


def command(python: str, run_dir: Path) -> list[str]:
    """Serial worker command (GPAW on one core; the unit cell needs no more)."""
    return [python, str(WORKER), str(Path(run_dir).resolve())]


def run(settings: GpawSettings, run_dir: Path) -> CalcRecord:
    """Run the worker in a prepared ``run_dir`` and return the parsed record."""
    run_dir = Path(run_dir)
    if not (run_dir / INPUT_NAME).is_file():
        raise EngineError(f"{run_dir / INPUT_NAME}: GPAW input is missing")
    cmd = command(find_python(settings.python), run_dir)
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    with open(run_dir / "engine.stdout", "w") as out:
        proc = subprocess.run(cmd, cwd=run_dir, stdout=out, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        tail = (run_dir / "engine.stdout").read_text(errors="replace").splitlines()[-15:]
        raise EngineError(
            f"{run_dir}: GPAW exited with code {proc.returncode} ({' '.join(cmd)}); "
            "last output lines:\n" + "\n".join(tail)
        )
    return parse(run_dir)


def parse(run_dir: Path) -> CalcRecord:
    """Record of a finished worker run: no-SOC edges as vbm/cbm, SOC edges in extra."""
    run_dir = Path(run_dir)
    path = run_dir / RESULT_NAME
    if not path.is_file():
        raise EngineError(f"{path}: GPAW result file is missing (run not finished?)")
    try:
        result = json.loads(path.read_text())
        meta = json.loads((run_dir / "calc.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise EngineError(f"{run_dir}: unreadable GPAW result or calc.json ({err})") from err
    no_soc = result.get("no_soc") or {}
    return CalcRecord(
        engine="gpaw",
        engine_version=f"GPAW {result['gpaw_version']} (ASE {result['ase_version']})",
        energy=float(result["energy"]),
        charge=int(meta["spec"]["charge"]),
        scf_converged=bool(result["scf_converged"]),
        geometry_converged=None,
        structure=meta["structure"],
        nelect=result.get("nelect"),
        vbm=no_soc.get("vbm"),
        cbm=no_soc.get("cbm"),
        run_dir=str(run_dir),
        source_files=[RESULT_NAME, LOG_NAME],
        settings={"settings": meta["settings"], "kpoint_mesh": meta["kpoint_mesh"]},
        extra={
            "soc": result.get("soc"),
            "no_soc": result.get("no_soc"),
            "scalar_scf_edges": result.get("scalar_scf_edges"),
            "cb_manifold": result.get("cb_manifold"),
            "setups": result.get("setups"),
            "n_bz_kpoints": result.get("n_bz_kpoints"),
            "soc_basis_bands": result.get("soc_basis_bands"),
            "soc_scf_basis": result.get("soc_scf_basis"),
            "timings_s": result.get("timings_s"),
        },
    )


class GpawEngine(Engine):
    """GPAW behind the engine interface: static single points with band edges (no SOC as
    the record's vbm/cbm, with SOC in ``extra['soc']``)."""

    name = "gpaw"
    settings_type = GpawSettings

    def settings(self, config: Mapping[str, Any]) -> GpawSettings:
        return gpaw_settings(config)

    def write_input(self, structure: Any, spec: CalcSpec, settings: Any, run_dir: Path) -> Path:
        return write_input(structure, spec, settings, run_dir)

    def command(self, config: Mapping[str, Any], run_dir: Path, nprocs: int) -> list[str]:
        return command(find_python(gpaw_settings(config).python), run_dir)

    def run(self, config: Mapping[str, Any], run_dir: Path, nprocs: int) -> CalcRecord:
        return run(gpaw_settings(config), run_dir)

    def parse(self, run_dir: Path) -> CalcRecord:
        return parse(run_dir)
