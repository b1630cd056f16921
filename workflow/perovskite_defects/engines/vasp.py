"""VASP engine: settings, input writer (pymatgen input sets) and run command.

VASP cannot run on a laptop or in this project's CI, so it is the engine for clusters:
``engine: vasp`` in config writes complete inputs (INCAR, KPOINTS, POSCAR, POTCAR or
POTCAR.spec) for every calculation of a study, and the run rule executes the configured
command (e.g. ``srun vasp_std``). Defaults and why are in :class:`VaspSettings` and in the
docs/engines.md ("VASP on a cluster").

POTCARs are licensed and cannot ship with the project. pymatgen finds them in the folder
named by its ``PMG_VASP_PSP_DIR`` setting (``~/.config/.pmgrc.yaml`` or the environment
variable). Without it the inputs are still written, with ``POTCAR.spec`` (the symbols)
instead of POTCAR and NELECT from :data:`RECOMMENDED_ZVAL`; the run step then stops with a
message naming ``PMG_VASP_PSP_DIR``, and whenever a POTCAR is there it checks NELECT
against the POTCAR's own valences before VASP starts.

The parser of the outputs (vasprun.xml, OUTCAR) is :mod:`perovskite_defects.engines.vasp_output`.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from perovskite_defects.engines.base import (
    CalcRecord,
    CalcSpec,
    Engine,
    EngineError,
    mpi_command,
    validate_command,
)
from perovskite_defects.engines.vasp_output import _ZVAL_RE, _calc_meta, parse_vasp_dir

OUTPUT_NAME = "vasp.out"

#: Valence electrons (ZVAL) of the recommended PBE POTCARs (pymatgen's PBE_54 choice for
#: each element), used for NELECT when no POTCAR folder is configured. Checked in the tests
#: against pymatgen's bundled POTCAR summary data and the CdTe reference OUTCARs, and at run
#: time against the POTCAR actually used.
RECOMMENDED_ZVAL: dict[str, float] = {
    "H": 1.0, "C": 4.0, "N": 5.0, "O": 6.0,
    "Li_sv": 3.0, "Na_pv": 7.0, "K_sv": 9.0, "Rb_sv": 9.0, "Cs_sv": 9.0,
    "Mg_pv": 8.0, "Ca_sv": 10.0, "Sr_sv": 10.0, "Ba_sv": 10.0,
    "Cu_pv": 17.0, "Ag": 11.0, "Au": 11.0, "Zn": 12.0, "Cd": 12.0, "Mn_pv": 13.0,
    "In_d": 13.0, "Tl_d": 13.0, "Ge_d": 14.0, "Sn_d": 14.0, "Pb_d": 14.0,
    "Sb": 5.0, "Bi": 5.0, "S": 6.0, "Se": 6.0, "Te": 6.0,
    "F": 7.0, "Cl": 7.0, "Br": 7.0, "I": 7.0,
}  # fmt: skip

POTCAR_FUNCTIONALS = ("PBE_54", "PBE_64", "PBE_52", "PBE")


@dataclass(frozen=True)
class VaspSettings:
    """Numerical settings of VASP calculations (eV, Å). Overridable under ``vasp.settings``.

    Attributes:
        functional: "pbe" (the default, as the CP2K engine) or "hse06" (LHFCALC, HFSCREEN
            0.2, AEXX 0.25, ALGO All as recommended for hybrids).
        soc: spin-orbit coupling (LSORBIT, non-collinear MAGMOM); needs ``vasp_ncl``. It
            lowers the gap of lead and tin halide perovskites by ~1 eV.
        encut: plane-wave cutoff in eV, the same for every calculation of a study because
            their energies are compared. 400 eV is 1.5x the largest ENMAX of the
            recommended POTCARs of the perovskite elements (Na_pv 260 eV) and keeps the
            Pulay stress of cell relaxations small.
        ediff: electronic convergence (eV per cell).
        ediffg: ionic convergence; negative = force threshold in eV/Å (VASP convention).
        nelm: electronic steps before an SCF counts as not converged (never a result).
        nsw: ionic steps before a relaxation counts as not converged.
        ismear, sigma: Gaussian smearing of 0.05 eV: defect levels keep near-integer
            occupations, and metals among the competing phases still converge.
        ispin: 2 = spin-polarised everywhere (defects may have unpaired electrons).
        kpoint_density: Γ-centred k-mesh with n_i = ceil(kpoint_density / a_i) (Å), the
            rule of CP2K's ``kpoint_length``: the unit cell (4x4x4 for 6.4 Å) and the 2x2x2
            supercell (2x2x2) sample the same points, so their energies are consistent.
            (CP2K's ``fast`` level uses one mean-value point for supercells instead, to
            save time on a laptop; on a cluster the full mesh is affordable.)
        supercell_kpoints: "density" (the mesh above; Γ-centred, so the band edges at R of
            the perovskite, folded to Γ of a 2x2x2 supercell, are sampled) or "gamma"
            (Γ only, for large supercells and ``vasp_gam``).
        relax_radius: defects relax the atoms within this distance (Å) at fixed cell
            (ISIF=2, selective dynamics for the others); 0 = unrelaxed ideal sites (static).
            Local relaxation keeps the dynamically unstable cubic prototype from tilting as
            a whole (docs/physics-and-settings.md); set it large (e.g. 100) to relax every atom.
        phase_cell_relax: relax the cells of competing phases (ISIF=3) except molecular
            crystals, which relax ions only.
        potcar_functional: pymatgen POTCAR family (PBE_54: pymatgen's current default).
        potcars: POTCAR symbol per element overriding the recommended ones (e.g. {"Sn": "Sn"}).
        incar: any further INCAR tags, applied last (e.g. {"NCORE": 16, "LREAL": "Auto"}).
    """

    functional: str = "pbe"
    soc: bool = False
    encut: float = 400.0
    ediff: float = 1e-5
    ediffg: float = -0.02
    nelm: int = 100
    nsw: int = 200
    ismear: int = 0
    sigma: float = 0.05
    ispin: int = 2
    kpoint_density: float = 24.0
    supercell_kpoints: str = "density"
    relax_radius: float = 6.0
    phase_cell_relax: bool = True
    potcar_functional: str = "PBE_54"
    potcars: dict[str, str] = field(default_factory=dict)
    incar: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, overrides: Mapping[str, Any] | None) -> VaspSettings:
        values = dict(overrides or {})
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(
                f"vasp.settings: unknown key(s) {', '.join(sorted(unknown))}; "
                f"allowed: {', '.join(cls.__dataclass_fields__)}"
            )
        settings = cls(**values)
        checks = {
            "functional": settings.functional in ("pbe", "hse06"),
            "supercell_kpoints": settings.supercell_kpoints in ("density", "gamma"),
            "ispin": settings.ispin in (1, 2),
            "potcar_functional": settings.potcar_functional in POTCAR_FUNCTIONALS,
            "encut": settings.encut > 0,
            "kpoint_density": settings.kpoint_density > 0,
            "relax_radius": settings.relax_radius >= 0,
        }
        for key, ok in checks.items():
            if not ok:
                raise ValueError(f"vasp.settings.{key}: {getattr(settings, key)!r} is not allowed")
        return settings


# --------------------------------------------------------------------------- inputs


def potcar_dir_configured() -> str | None:
    """pymatgen's PMG_VASP_PSP_DIR (from .pmgrc.yaml or the environment), if it exists."""
    from pymatgen.core import SETTINGS

    path = os.environ.get("PMG_VASP_PSP_DIR") or SETTINGS.get("PMG_VASP_PSP_DIR")
    return str(path) if path and Path(path).is_dir() else None


def _input_set(structure: Any, incar: dict[str, Any], settings: VaspSettings, kpoints: Any):
    """A pymatgen input set: our INCAR on pymatgen's POTCAR choice and MAGMOM defaults."""
    from pymatgen.io.vasp.sets import VaspInputSet, _load_yaml_config

    base = _load_yaml_config(f"{settings.potcar_functional.replace('_', '')}Base")
    config = {
        "INCAR": {"MAGMOM": base["INCAR"]["MAGMOM"], **incar},
        "POTCAR_FUNCTIONAL": settings.potcar_functional,
        "POTCAR": base["POTCAR"],
    }
    return VaspInputSet(
        structure,
        config_dict=config,
        user_potcar_settings=dict(settings.potcars),
        user_kpoints_settings=kpoints,
        sort_structure=False,  # sorted by us, keeping selective-dynamics flags with sites
        force_gamma=True,
    )


def kpoints_for(structure: Any, spec: CalcSpec, settings: VaspSettings):
    """Γ-centred mesh n_i = ceil(kpoint_density / a_i), or Γ only for supercells if asked."""
    from pymatgen.io.vasp.inputs import Kpoints

    if spec.is_supercell and settings.supercell_kpoints == "gamma":
        return Kpoints.gamma_automatic((1, 1, 1))
    mesh = tuple(
        max(1, math.ceil(settings.kpoint_density / a - 1e-6)) for a in structure.lattice.abc
    )
    return Kpoints.gamma_automatic(mesh)  # type: ignore[arg-type]


def incar_for(spec: CalcSpec, settings: VaspSettings, nelect: float, n_atoms: int) -> dict:
    """The INCAR tags of one calculation kind (before pymatgen adds MAGMOM/LMAXMIX)."""
    incar: dict[str, Any] = {
        "PREC": "Accurate",
        "ENCUT": settings.encut,
        "EDIFF": settings.ediff,
        "NELM": settings.nelm,
        "ISMEAR": settings.ismear,
        "SIGMA": settings.sigma,
        "ISPIN": settings.ispin,
        "LASPH": True,
        "ALGO": "Normal",
        "GGA": "PE",
        "NELECT": nelect,
        "LWAVE": False,
        "LCHARG": False,
    }
    if spec.kind == "static":
        incar.update(IBRION=-1, NSW=0)
    else:
        # ISIF=3: cell and ions (host, phases); ISIF=2: ions at fixed cell (defects).
        incar.update(
            IBRION=2, NSW=settings.nsw, EDIFFG=settings.ediffg,
            ISIF=3 if spec.kind == "relax_cell" else 2,
        )  # fmt: skip
    if spec.is_supercell:
        # Symmetry off: a defect breaks it, and bulk and defect must sample alike.
        # LVHAR: the electrostatic potential (LOCPOT) for FNV; ICORELEVEL=0 (VASP's
        # default, written for clarity) keeps the core-level site potentials in OUTCAR
        # for eFNV.
        incar.update(ISYM=0, LVHAR=True, ICORELEVEL=0)
    if settings.functional == "hse06":
        incar.update(LHFCALC=True, HFSCREEN=0.2, AEXX=0.25, ALGO="All")
    if settings.soc:
        incar.update(LSORBIT=True, ISYM=0)  # MAGMOM vectors: see write_input
    incar.update(settings.incar)
    return incar


def neutral_electrons(symbols: list[str], counts: list[int], functional: str) -> float:
    """Valence electrons of the neutral cell: POTCAR ZVALs if configured, else the table."""
    if potcar_dir_configured():
        from pymatgen.io.vasp.inputs import PotcarSingle

        try:
            zvals = [
                PotcarSingle.from_symbol_and_functional(s, functional).nelectrons for s in symbols
            ]
        except Exception as err:  # pymatgen raises OSError/ValueError/RuntimeError here
            raise EngineError(
                f"PMG_VASP_PSP_DIR is set but the POTCARs {symbols} ({functional}) "
                f"cannot be read: {err}"
            ) from err
    else:
        missing = [s for s in symbols if s not in RECOMMENDED_ZVAL]
        if missing:
            raise EngineError(
                f"no ZVAL known for POTCAR(s) {missing} without POTCAR files: set "
                "PMG_VASP_PSP_DIR (pmg config --add PMG_VASP_PSP_DIR <folder>) so the "
                "valences are read from the POTCARs"
            )
        zvals = [RECOMMENDED_ZVAL[s] for s in symbols]
    return float(sum(z * n for z, n in zip(zvals, counts, strict=True)))


def write_input(
    structure: Any, spec: CalcSpec, settings: VaspSettings, run_dir: str | Path
) -> Path:
    """Write INCAR, KPOINTS, POSCAR and POTCAR (or POTCAR.spec) plus calc.json."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    structure = structure.copy()
    if spec.fixed_atoms:
        fixed = set(spec.fixed_atoms)
        flags = [[i not in fixed] * 3 for i in range(len(structure))]
        structure.add_site_property("selective_dynamics", flags)
    # One POSCAR block per element (pymatgen's electronegativity order; a stable sort, so
    # selective-dynamics flags travel with their sites).
    structure = structure.get_sorted_structure()
    kpoints = kpoints_for(structure, spec, settings)
    placeholder = _input_set(
        structure, incar_for(spec, settings, 0.0, len(structure)), settings, kpoints
    )
    symbols = placeholder.potcar_symbols
    counts = [int(n) for n in placeholder.poscar.natoms]
    nelect = neutral_electrons(symbols, counts, settings.potcar_functional) - spec.charge
    incar = incar_for(spec, settings, nelect, len(structure))
    vis = _input_set(structure, incar, settings, kpoints)
    with_potcar = potcar_dir_configured() is not None
    for stale in ("POTCAR", "POTCAR.spec"):
        (run_dir / stale).unlink(missing_ok=True)
    try:
        vasp_input = vis.get_input_set(potcar_spec=not with_potcar)
        if settings.soc:
            # pymatgen's MAGMOM logic is collinear; the non-collinear vectors go in after.
            vasp_input["INCAR"]["MAGMOM"] = [[0.0, 0.0, 0.6] for _ in range(len(structure))]
        vasp_input.write_input(str(run_dir))
    except Exception as err:  # pymatgen: PmgVaspPspDirError, OSError, ValueError
        raise EngineError(
            f"{run_dir}: cannot write VASP inputs ({type(err).__name__}: {err})"
        ) from err
    meta = {
        "engine": "vasp",
        "calc_kind": spec.kind,
        "role": spec.role,
        "charge": spec.charge,
        "n_electrons": nelect,
        "potcar_symbols": symbols,
        "zval_source": "POTCAR" if with_potcar else "RECOMMENDED_ZVAL table",
        "kpoint_mesh": [int(k) for k in kpoints.kpts[0]],
        "n_fixed_atoms": len(spec.fixed_atoms),
        "settings": asdict(settings),
    }
    (run_dir / "calc.json").write_text(json.dumps(meta, indent=1))
    return run_dir / "INCAR"


# --------------------------------------------------------------------------- running


def run_command(config: Mapping[str, Any], run_dir: Path, nprocs: int) -> list[str]:
    """The configured VASP command, validated against the prepared inputs."""
    options = config["vasp"]
    meta = _calc_meta(run_dir)
    gamma_only = meta.get("kpoint_mesh") == [1, 1, 1]
    key = "vasp.gamma_command" if gamma_only and options.get("gamma_command") else "vasp.command"
    words = validate_command(options[key.split(".")[1]], key)
    binaries = {os.path.basename(w) for w in words}
    soc = bool(meta.get("settings", {}).get("soc"))
    if soc and binaries & {"vasp_std", "vasp_gam"}:
        raise EngineError(f"config key '{key}': soc needs the non-collinear binary vasp_ncl")
    if not soc and "vasp_ncl" in binaries:
        raise EngineError(f"config key '{key}': vasp_ncl is for soc: true (use vasp_std)")
    if "vasp_gam" in binaries and not gamma_only:
        raise EngineError(
            f"config key '{key}': vasp_gam runs Γ-only meshes, but {run_dir} uses "
            f"{meta.get('kpoint_mesh')}"
        )
    return mpi_command(words, nprocs)


def ensure_potcar(run_dir: Path) -> Path:
    """The run folder's POTCAR, generated from POTCAR.spec when PMG_VASP_PSP_DIR is set."""
    potcar = run_dir / "POTCAR"
    if potcar.is_file():
        return potcar
    spec_file = run_dir / "POTCAR.spec"
    symbols = spec_file.read_text().split() if spec_file.is_file() else []
    if not potcar_dir_configured():
        raise EngineError(
            f"{run_dir}: no POTCAR and PMG_VASP_PSP_DIR is not set; set it to your VASP "
            "POTCAR folder (pmg config --add PMG_VASP_PSP_DIR <folder>, or export "
            f"PMG_VASP_PSP_DIR=<folder>) so the POTCAR ({' '.join(symbols)}) can be built"
        )
    from pymatgen.io.vasp.inputs import Potcar

    functional = _calc_meta(run_dir).get("settings", {}).get("potcar_functional", "PBE_54")
    try:
        Potcar(symbols, functional=functional).write_file(str(potcar))
    except Exception as err:  # pymatgen raises several types for missing POTCARs
        raise EngineError(f"{run_dir}: cannot build POTCAR from {symbols}: {err}") from err
    return potcar


def check_nelect(run_dir: Path) -> None:
    """NELECT in INCAR must equal sum(ZVAL of the POTCAR in use) - charge."""
    from pymatgen.io.vasp.inputs import Incar, Poscar

    zvals = [float(z) for z in _ZVAL_RE.findall((run_dir / "POTCAR").read_text(errors="replace"))]
    counts = Poscar.from_file(str(run_dir / "POSCAR")).natoms
    if len(zvals) != len(counts):
        raise EngineError(f"{run_dir}: POTCAR has {len(zvals)} elements, POSCAR {len(counts)}")
    neutral = sum(z * n for z, n in zip(zvals, counts, strict=True))
    charge = int(_calc_meta(run_dir).get("charge", 0))
    nelect = float(Incar.from_file(str(run_dir / "INCAR")).get("NELECT", neutral))
    if abs(nelect - (neutral - charge)) > 1e-6:
        raise EngineError(
            f"{run_dir}: INCAR NELECT {nelect:g} does not match the POTCAR valences "
            f"({neutral:g}) minus the charge {charge}; rewrite the inputs with PMG_VASP_PSP_DIR set"
        )


def run(config: Mapping[str, Any], run_dir: str | Path, nprocs: int) -> CalcRecord:
    """Run VASP in a prepared folder and return its record (convergence checked by callers)."""
    run_dir = Path(run_dir)
    if not (run_dir / "INCAR").is_file():
        raise EngineError(f"{run_dir / 'INCAR'}: VASP input is missing")
    cmd = run_command(config, run_dir, nprocs)
    ensure_potcar(run_dir)
    check_nelect(run_dir)
    with open(run_dir / OUTPUT_NAME, "w") as out:
        try:
            proc = subprocess.run(cmd, cwd=run_dir, stdout=out, stderr=subprocess.STDOUT)
        except FileNotFoundError as err:
            raise EngineError(f"{run_dir}: cannot start {cmd[0]!r} (vasp.command): {err}") from err
    if proc.returncode != 0:
        lines = (run_dir / OUTPUT_NAME).read_text(errors="replace").splitlines()[-15:]
        raise EngineError(
            f"{run_dir}: VASP exited with code {proc.returncode} ({' '.join(cmd)}); "
            "last output lines:\n" + "\n".join(lines)
        )
    record = parse_vasp_dir(run_dir)
    check_charge(record, run_dir)
    return record


def check_charge(record: CalcRecord, run_dir: Path) -> None:
    """The parsed cell charge must be the charge the inputs were written for."""
    meta = _calc_meta(run_dir)
    if "charge" in meta and record.charge != int(meta["charge"]):
        raise EngineError(
            f"{run_dir}: the run has charge {record.charge} but was prepared for {meta['charge']}"
        )


class VaspEngine(Engine):
    """VASP behind the common :class:`Engine` interface."""

    name = "vasp"
    settings_type = VaspSettings

    def settings(self, config: Mapping[str, Any]) -> VaspSettings:
        return VaspSettings.from_config(config.get("vasp", {}).get("settings"))

    def write_input(
        self, structure: Any, spec: CalcSpec, settings: VaspSettings, run_dir: Path
    ) -> Path:
        return write_input(structure, spec, settings, run_dir)

    def command(self, config: Mapping[str, Any], run_dir: Path, nprocs: int) -> list[str]:
        return run_command(config, Path(run_dir), nprocs)

    def run(self, config: Mapping[str, Any], run_dir: Path, nprocs: int) -> CalcRecord:
        return run(config, run_dir, nprocs)

    def parse(self, run_dir: Path) -> CalcRecord:
        return parse_vasp_dir(run_dir)
