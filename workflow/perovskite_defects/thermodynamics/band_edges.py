"""Band edges of the study: from the bulk supercell, or from a more accurate bulk run.

By default the VBM and CBM come from the bulk supercell record, the same calculation the
defect energies are referenced to. Semi-local functionals place the edges poorly (for the
Pb/Sn halides PBE gets the gap about right only because missing spin-orbit coupling and the
PBE error cancel), so config ``band_edges.source: external`` takes them from a separate,
finished bulk calculation (hybrid functional, spin-orbit coupling, a denser k-mesh), e.g.
an existing VASP or CP2K folder.

Alignment by the average electrostatic potential: in periodic codes the eigenvalues of a
cell are referenced to its own average potential, which shifts when the functional (or the
code's conventions) change. With V̄ the cell average of each run's electrostatic-potential
grid (electron potential energy, eV), the external edges are brought to the bulk's energy
scale as::

    E_edge(aligned) = E_edge(external) - V̄(external) + V̄(bulk)

so a constant shift of the external run's potential and eigenvalues cancels exactly, and
aligning a run to itself changes nothing. The average is per volume, so the external run
may use another cell of the same host (e.g. the primitive cell with a dense k-mesh). Both
runs must come from the same engine: VASP's LOCPOT (local + Hartree potential) and CP2K's
Hartree cube (zero average by construction) have different zeros, so mixing them would give
a meaningless offset, and is refused.

What each engine can give here: VASP folders (vasprun.xml + LOCPOT) can hold HSE and
spin-orbit runs (LSORBIT). The embedded CP2K engine writes only PBE without spin-orbit
coupling; a CP2K hybrid run (with its Hartree cube) can be used as the external folder.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from perovskite_defects.engines.base import CalcRecord, EngineError, PotentialGrid
from perovskite_defects.engines.folders import parse_folder, potential_path
from perovskite_defects.engines.potentials import read_potential_grid

log = logging.getLogger("perovskite_defects")


@dataclass(frozen=True)
class BandEdges:
    """VBM and CBM (eV) on the energy scale of the bulk supercell.

    Attributes:
        vbm, cbm: band edges used by the formation energies and levels.
        source: "bulk" or the external folder.
        offset: added to the external eigenvalues, V̄(bulk) - V̄(external) (eV); 0 for "bulk".
        bulk_vbm, bulk_cbm: the bulk supercell's own edges, for comparison.
    """

    vbm: float
    cbm: float
    source: str
    offset: float = 0.0
    bulk_vbm: float | None = None
    bulk_cbm: float | None = None

    @property
    def gap(self) -> float:
        return self.cbm - self.vbm

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"gap": self.gap}


def average_potential(grid: PotentialGrid) -> float:
    """Cell average of an electrostatic-potential grid (eV)."""
    return float(grid.data.mean())


def aligned_edges(
    bulk: CalcRecord, bulk_grid: PotentialGrid, external: CalcRecord, external_grid: PotentialGrid
) -> tuple[float, float, float]:
    """External VBM and CBM moved onto the bulk's scale, and the offset that was added (eV)."""
    if external.vbm is None or external.cbm is None:
        raise EngineError(f"{external.run_dir}: the external bulk run has no VBM/CBM")
    if bulk.engine != external.engine:
        raise EngineError(
            f"band_edges.folder {external.run_dir}: made by {external.engine}, the bulk by "
            f"{bulk.engine}; their average potentials have different zeros, so they cannot "
            "be aligned"
        )
    offset = average_potential(bulk_grid) - average_potential(external_grid)
    return external.vbm + offset, external.cbm + offset, offset


def study_band_edges(
    settings: Mapping[str, Any], bulk: CalcRecord, bulk_dir: str | Path
) -> BandEdges:
    """Band edges for a study, following config key ``band_edges``."""
    if bulk.vbm is None or bulk.cbm is None:
        raise EngineError(f"{bulk_dir}: bulk record has no band edges")
    if settings.get("source", "bulk") == "bulk":
        return BandEdges(bulk.vbm, bulk.cbm, "bulk", 0.0, bulk.vbm, bulk.cbm)

    folder = settings.get("folder")
    if not folder:
        raise EngineError("config key 'band_edges.folder': needed when source is 'external'")
    folder = Path(folder)
    if not folder.is_dir():
        raise EngineError(f"config key 'band_edges.folder': {folder} is not a folder")
    external = parse_folder(folder).require_converged()
    bulk_grid = read_potential_grid(potential_path(bulk, Path(bulk_dir)))
    ext_grid = read_potential_grid(potential_path(external, folder))
    vbm, cbm, offset = aligned_edges(bulk, bulk_grid, external, ext_grid)
    if not cbm > vbm:
        raise EngineError(f"{folder}: the external run has no gap (VBM {vbm}, CBM {cbm} eV)")
    log.info(
        "band edges from %s: VBM %.4f, CBM %.4f eV after a %+.4f eV potential alignment "
        "(bulk supercell: VBM %.4f, CBM %.4f eV)",
        folder,
        vbm,
        cbm,
        offset,
        bulk.vbm,
        bulk.cbm,
    )
    return BandEdges(vbm, cbm, str(folder), offset, bulk.vbm, bulk.cbm)
