"""Spin-orbit corrections to the study's band edges (config ``band_edges.soc``).

The embedded engine (CP2K) has no spin-orbit coupling (SOC); in Pb/Sn halides SOC splits
the B-p conduction band and lowers the CBM by ~1 eV, while the VBM (B-s/X-p antibonding)
moves little. With ``band_edges.soc: gpaw`` the host cell is computed once more with GPAW
at the same structure, and the SOC shifts of its edges::

    ΔVBM = VBM(SOC) - VBM(no SOC),   ΔCBM = CBM(SOC) - CBM(no SOC)

are added to the study's edges (bulk supercell, or the external run). Both eigenvalue sets
come from one GPAW calculation (the SOC routine with coupling 1 and 0), so they share the
energy zero and the difference is the SOC effect alone. Adding it to another code's edges
assumes the shift is a property of the material, not of the code (PAW vs GTH
pseudopotentials both reproduce the scalar-relativistic bands), the usual additive
"ΔSOC" correction. Transition levels stay fixed in absolute energy: only their position
relative to the moved edges, and so their shallow/deep class, changes. The table
``spin_orbit_levels`` shows every level and class against both edge sets.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from perovskite_defects.engines.base import CalcRecord, EngineError
from perovskite_defects.engines.gpaw import gpaw_settings
from perovskite_defects.reporting.tables import write_csv, write_markdown
from perovskite_defects.thermodynamics.band_edges import BandEdges
from perovskite_defects.thermodynamics.formation import transition_levels
from perovskite_defects.thermodynamics.trap_classes import classify_level, state_consistent_class

SOC_ENGINES = ("none", "gpaw")


@dataclass(frozen=True)
class SocShifts:
    """SOC shifts of the band edges of one host and where they come from (eV, Å).

    Attributes:
        vbm_shift, cbm_shift: SOC minus no-SOC edge (eV; the CBM shift is negative).
        gap_without, gap_with: the SOC engine's own gaps without and with SOC (eV).
        k_vbm, k_cbm: fractional k-points of the SOC edges.
        engine, engine_version: e.g. "gpaw", "GPAW 22.8.0 (ASE 3.22.1)".
        setups: the PAW setup files used.
        kpoint_mesh: Gamma-centred mesh of the run (contains the zone boundary).
        settings: the engine's numerical settings.
        structure_source: record file whose final structure was computed.
        formula, lattice_abc: of that structure.
        timings_s: wall times of the SCF and the SOC step.
    """

    vbm_shift: float
    cbm_shift: float
    gap_without: float
    gap_with: float
    k_vbm: list[float]
    k_cbm: list[float]
    engine: str
    engine_version: str
    setups: list[str]
    kpoint_mesh: list[int]
    settings: dict[str, Any]
    structure_source: str
    formula: str
    lattice_abc: list[float]
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def gap_shift(self) -> float:
        return self.cbm_shift - self.vbm_shift

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self) | {"gap_shift": self.gap_shift}, indent=1))

    @classmethod
    def from_json(cls, path: str | Path) -> SocShifts:
        p = Path(path)
        if not p.is_file():
            raise EngineError(f"{p}: spin-orbit shift file is missing")
        try:
            data = json.loads(p.read_text())
        except json.JSONDecodeError as err:
            raise EngineError(f"{p}: spin-orbit shift file is not valid JSON ({err})") from err
        data.pop("gap_shift", None)
        return cls(**data)


def shifts_from_record(record: CalcRecord, structure_source: str | Path) -> SocShifts:
    """SOC shifts from a converged record of the SOC engine (``extra['soc']``/``['no_soc']``)."""
    record.require_converged()
    soc, ref = record.extra.get("soc"), record.extra.get("no_soc")
    if not soc or not ref:
        raise EngineError(
            f"{record.run_dir}: no band edges with and without spin-orbit coupling "
            "(a spin-polarised or fractionally filled cell has no single VBM/CBM)"
        )
    if not ref["cbm"] > ref["vbm"] or not soc["cbm"] > soc["vbm"]:
        raise EngineError(
            f"{record.run_dir}: no gap (without SOC {ref['vbm']:.3f}/{ref['cbm']:.3f} eV, "
            f"with SOC {soc['vbm']:.3f}/{soc['cbm']:.3f} eV); the shifts would be meaningless"
        )
    structure = record.pmg_structure()
    return SocShifts(
        vbm_shift=soc["vbm"] - ref["vbm"],
        cbm_shift=soc["cbm"] - ref["cbm"],
        gap_without=ref["cbm"] - ref["vbm"],
        gap_with=soc["cbm"] - soc["vbm"],
        k_vbm=list(soc["k_vbm"]),
        k_cbm=list(soc["k_cbm"]),
        engine=record.engine,
        engine_version=record.engine_version,
        setups=list(record.extra.get("setups") or []),
        kpoint_mesh=list(record.settings.get("kpoint_mesh") or []),
        settings=dict(record.settings.get("settings") or {}),
        structure_source=str(structure_source),
        formula=structure.composition.reduced_formula,
        lattice_abc=[round(float(x), 6) for x in structure.lattice.abc],
        timings_s=dict(record.extra.get("timings_s") or {}),
    )


def apply_shifts(edges: BandEdges, shifts: SocShifts, shifts_file: str | Path) -> BandEdges:
    """The study's edges moved by the SOC shifts; ``source`` names both origins."""
    vbm, cbm = edges.vbm + shifts.vbm_shift, edges.cbm + shifts.cbm_shift
    if not cbm > vbm:
        raise EngineError(
            f"{shifts_file}: with the spin-orbit shifts ({shifts.vbm_shift:+.3f}, "
            f"{shifts.cbm_shift:+.3f} eV) the gap of {edges.source} ({edges.gap:.3f} eV) "
            "closes; the band edges of this host need a better functional"
        )
    source = f"{edges.source} + spin-orbit shifts ({shifts.engine_version}, {shifts_file})"
    return BandEdges(vbm, cbm, source, edges.offset, edges.bulk_vbm, edges.bulk_cbm)


def soc_note(without: BandEdges, shifts: SocShifts) -> str:
    """One table note: the shifts, where they come from, and both gaps."""
    return (
        f"Spin-orbit coupling: VBM {shifts.vbm_shift:+.3f} eV, CBM {shifts.cbm_shift:+.3f} eV "
        f"({shifts.engine_version}, PBE, k-mesh {shifts.kpoint_mesh}, {shifts.formula} cell "
        f"a,b,c = {', '.join(f'{x:.3f}' for x in shifts.lattice_abc)} Å); gap "
        f"{without.gap:.3f} eV without, {without.gap + shifts.gap_shift:.3f} eV with SOC. "
        "Levels and classes against both edge sets: spin_orbit_levels."
    )


# --- levels against both edge sets ---------------------------------------------------------

LEVEL_NO_SOC = "level above VBM, no SOC (eV)"
CLASS_NO_SOC = "class, no SOC"
LEVEL_SOC = "level above VBM, with SOC (eV)"
CLASS_SOC = "class, with SOC"
CHANGED = "class changed"


def level_comparison_rows(
    lines: Mapping[str, Mapping[int, float] | None],
    without: BandEdges,
    with_soc: BandEdges,
    shallow_threshold: float,
    states: Mapping[tuple[str, int], Any] | None = None,
) -> list[dict[str, Any]]:
    """One row per transition level, placed and classified against both edge sets.

    Args:
        lines: defect -> charge -> formation energy at E_F = VBM of ``with_soc`` (any one
            chemical-potential limit: levels do not depend on it); None for a defect with
            a failed charge state (one row "missing").
        without, with_soc: band edges without and with the SOC shifts.
        shallow_threshold: as config ``trap_levels.shallow_threshold``.
        states: (defect, q) -> DefectStates, as for the transition_levels table: a donor
            PHS in q' or an acceptor PHS in q makes a level shallow in both frames (the
            characters come from the eigenvalues of the runs, without SOC).

    The levels are searched over the union of both gaps, so one list of levels (fixed in
    absolute energy) is placed in both: level(no SOC) = level(SOC) + VBM(SOC) - VBM(no SOC).
    """

    states = states or {}

    dv = with_soc.vbm - without.vbm
    window = (min(0.0, -dv), max(with_soc.gap, without.cbm - with_soc.vbm))
    rows: list[dict[str, Any]] = []
    for name, defect_lines in lines.items():
        if not defect_lines:
            label = "missing" if defect_lines is None else "none"
            rows.append({"defect": name, "q/q'": label})
            continue
        levels = transition_levels(defect_lines, with_soc.gap, window)
        if not levels:
            rows.append({"defect": name, "q/q'": "none"})
        for lev in levels:
            no_soc = lev.level + dv
            found = states.get((name, lev.q)), states.get((name, lev.q_prime))
            cls_without, _ = state_consistent_class(
                classify_level(no_soc, without.gap, shallow_threshold), *found
            )
            cls_with, _ = state_consistent_class(
                classify_level(lev.level, with_soc.gap, shallow_threshold), *found
            )
            rows.append(
                {
                    "defect": name,
                    "q/q'": lev.label,
                    LEVEL_NO_SOC: no_soc,
                    CLASS_NO_SOC: cls_without,
                    LEVEL_SOC: lev.level,
                    CLASS_SOC: cls_with,
                    CHANGED: cls_without != cls_with,
                }
            )
    return rows


COLUMNS = ("defect", "q/q'", LEVEL_NO_SOC, CLASS_NO_SOC, LEVEL_SOC, CLASS_SOC, CHANGED)


def write_level_comparison(
    out_dir: Path,
    lines: Mapping[str, Mapping[int, float] | None],
    without: BandEdges,
    with_soc: BandEdges,
    shallow_threshold: float,
    notes: Sequence[str],
    states: Mapping[tuple[str, int], Any] | None = None,
) -> None:
    """spin_orbit_levels.csv/.md in ``out_dir``."""

    rows = level_comparison_rows(lines, without, with_soc, shallow_threshold, states)
    head = [
        f"Without SOC: VBM {without.vbm:.4f}, CBM {without.cbm:.4f} eV ({without.source}); "
        f"with SOC: VBM {with_soc.vbm:.4f}, CBM {with_soc.cbm:.4f} eV.",
        "The levels are fixed in absolute energy; each is given above its own VBM and "
        "classified against its own gap (shallow within the threshold of an edge, deep "
        "inside, resonant outside; a donor PHS in q' or an acceptor PHS in q makes it "
        "shallow, as in transition_levels).",
    ]
    write_csv(rows, out_dir / "spin_orbit_levels.csv", columns=COLUMNS)
    write_markdown(
        rows,
        out_dir / "spin_orbit_levels.md",
        "Transition levels without and with spin-orbit coupling",
        [*head, *notes],
        columns=COLUMNS,
    )


# --- config -----------------------------------------------------------


def check_config(config: Mapping[str, Any]) -> None:
    """ValueError naming the key when ``band_edges.soc`` cannot work with this config."""
    soc = config.get("band_edges", {}).get("soc", "none")
    if soc not in SOC_ENGINES:
        raise ValueError(f"config key 'band_edges.soc': {soc!r} is not one of {SOC_ENGINES}")
    if soc == "none":
        return
    if config.get("engine") == "vasp" and config.get("vasp", {}).get("settings", {}).get("soc"):
        raise ValueError(
            "config key 'band_edges.soc': the VASP runs already include spin-orbit coupling "
            "(vasp.settings.soc: true); adding GPAW's shifts would count it twice"
        )

    gpaw_settings(config)
