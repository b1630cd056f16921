"""Deep or shallow: classes of charge-transition levels and the character of defect states.

Level classes (config ``trap_levels.shallow_threshold``, default 0.1 eV ~ 4 k_B T at 300 K):

- ``resonant``: the level lies outside the gap (in a band): that charge change never traps.
- ``shallow``: within the threshold of its nearest band edge: thermally ionised, a dopant
  level rather than a recombination centre.
- ``deep``: further inside the gap: a candidate non-radiative recombination centre.

Defect states (pydefect's band-edge-state analysis is the model; this is a smaller version
from eigenvalues and occupations only, since CP2K gives no orbital projections here). The
defect cell's eigenvalues are aligned to the bulk by the shift of the electrostatic
potential far from the defect (mean over the atoms outside the sphere inscribed in the
cell), then compared with the bulk band edges (over all bulk k-points, so a mesh that
misses the edge point of the defect cell cannot fake an in-gap state):

- ``localized``: a state inside the bulk gap, more than ``tolerance`` from both edges. A
  host band state cannot sit there in a dilute supercell, so it is a defect (trap) state.
- ``donor PHS``: no such state, but electrons in states at or above the bulk CBM: the
  defect gave its electrons to a delocalised, perturbed conduction band: a perturbed-host
  state (shallow donor), as pydefect calls it.
- ``acceptor PHS``: holes in states at or below the bulk VBM: a shallow acceptor.
- ``no in-gap state``: the defect cell's edges are the host's.

Unlike pydefect we have no participation ratio or orbital similarity, so a localized state
that happens to lie inside a band is not detected; the in-gap test is the conservative part.

The class of a level follows the states behind it, as in pydefect and doped: when the
electron-rich charge state q' of a level q/q' puts its extra electron into a perturbed-host
(conduction-band-like) state, q' is really "q plus a free electron", the defect is a shallow
donor and the level is not a trap, wherever the energy difference happens to place it in a
finite supercell; likewise a hole of q in a valence-band-like state makes a shallow acceptor.
Such a level's class is ``shallow`` whatever its position, and the table says why
(``class from``). Otherwise the position decides.

Band filling: carriers in host band states of a finite supercell fill states above the
band edge (the defect cell's own dispersion, and a mean-value k-point that is not the edge
point), which raises the energy of that charge state. The estimate of Lany and Zunger,
PRB 78, 235104 (2008), Eq. (4) (the same as pymatgen-analysis-defects' and doped's band-filling
correction), E_bf = -sum_nk w_k f_nk (e_nk - CBM) over occupied states above the aligned bulk
CBM (and -sum_nk w_k (1 - f_nk) (VBM - e_nk) over holes below the VBM), is recorded per charge
state and shown in the tables; it is not added to the formation energy, because a PHS charge
state is a shallow-donor or -acceptor state whose level the table already calls shallow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from perovskite_defects.corrections.kumagai import inscribed_sphere_radius
from perovskite_defects.engines.potentials import site_potentials
from perovskite_defects.thermodynamics.formation import format_charge
from perovskite_defects.thermodynamics.rows import transition_level_table

if TYPE_CHECKING:
    from perovskite_defects.engines.base import PotentialGrid
    from perovskite_defects.engines.eigenvalues import Eigenvalues
    from perovskite_defects.thermodynamics.formation import TransitionLevel

SHALLOW, DEEP, RESONANT = "shallow", "deep", "resonant"
LOCALIZED, DONOR_PHS, ACCEPTOR_PHS, NO_STATE = (
    "localized",
    "donor PHS",
    "acceptor PHS",
    "no in-gap state",
)


@dataclass(frozen=True)
class LevelClass:
    """Where a transition level sits in the gap.

    Attributes:
        depth: distance to the nearest band edge (eV; negative outside the gap).
        nearest_edge: "VBM" or "CBM".
        in_gap: 0 <= level <= gap.
        trap_class: shallow, deep or resonant.
    """

    depth: float
    nearest_edge: str
    in_gap: bool
    trap_class: str


def classify_level(level: float, gap: float, shallow_threshold: float) -> LevelClass:
    """Depth from the nearest band edge and class of one level (eV above the VBM)."""
    if not gap > 0.0:
        raise ValueError(f"band gap must be positive, got {gap}")
    if shallow_threshold < 0.0:
        raise ValueError(f"shallow_threshold must be >= 0, got {shallow_threshold}")
    to_vbm, to_cbm = level, gap - level
    edge, depth = ("VBM", to_vbm) if to_vbm <= to_cbm else ("CBM", to_cbm)
    in_gap = 0.0 <= level <= gap
    if not in_gap:
        cls = RESONANT
    elif depth <= shallow_threshold:
        cls = SHALLOW
    else:
        cls = DEEP
    return LevelClass(float(depth), edge, in_gap, cls)


# --- defect-state character ---------------------------------------------------------------


@dataclass(frozen=True)
class DefectStates:
    """Character of the states of one defect cell near the gap (energies aligned, eV).

    Attributes:
        character: localized, donor PHS, acceptor PHS or no in-gap state.
        in_gap_states: aligned energies of the states inside the bulk gap (all k-points and
            spins, one entry per state), with their occupations.
        potential_shift: electron potential energy shift far from the defect (defect - bulk)
            removed from the defect eigenvalues (eV).
        bulk_vbm, bulk_cbm: bulk edges at the compared k-points (eV).
        band_filling: Lany-Zunger band-filling estimate of carriers in host band states
            (eV, to be added to this charge state's energy; 0 when there are none). Recorded,
            not applied (see the module docstring).
    """

    character: str
    in_gap_states: list[tuple[float, float]]
    potential_shift: float
    bulk_vbm: float
    bulk_cbm: float
    band_filling: float = 0.0

    @property
    def deepest_state_depth(self) -> float | None:
        """Distance (eV) of the in-gap state farthest from both bulk edges, if any."""
        if not self.in_gap_states:
            return None
        return max(min(e - self.bulk_vbm, self.bulk_cbm - e) for e, _ in self.in_gap_states)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"deepest_state_depth": self.deepest_state_depth}


def far_potential_shift(
    bulk_grid: PotentialGrid,
    defect_grid: PotentialGrid,
    defect_structure: Any,
    defect_frac: np.ndarray | list[float],
    radius: float = 1.0,
) -> float:
    """Mean (V_defect - V_bulk) (electron potential energy, eV) at the atoms of the defect cell
    beyond the sphere inscribed in the cell around the defect, in spheres of ``radius`` Å."""

    lattice = np.asarray(defect_structure.lattice.matrix)
    frac = np.asarray(defect_structure.frac_coords)
    dist = np.asarray(defect_structure.lattice.get_all_distances([defect_frac], frac))[0]
    far = dist > inscribed_sphere_radius(lattice)
    if far.sum() < 1:
        raise ValueError("no atom lies far from the defect: supercell too small")
    diff = site_potentials(defect_grid, frac[far], radius) - site_potentials(
        bulk_grid, frac[far], radius
    )
    return float(np.mean(diff))


def defect_state_character(
    bulk: Eigenvalues,
    defect: Eigenvalues,
    potential_shift: float,
    tolerance: float = 0.1,
) -> DefectStates:
    """Classify the states of a defect cell near the gap (see the module docstring).

    Args:
        bulk, defect: eigenvalues of the bulk and defect supercells (same cell, same mesh).
        potential_shift: far-field electron potential energy shift, defect - bulk (eV).
        tolerance: margin (eV) inside the bulk gap before a state counts as in-gap: a
            band state perturbed by the defect's potential in a small cell moves by up to
            ~0.1 eV (the workflow passes ``trap_levels.shallow_threshold``).
    """
    # The bulk edges over ALL its k-points (zero-weight ones too): a host band state of the
    # defect cell can never lie inside that gap, at whatever k-points the defect cell has.
    vbm = float(bulk.energies[bulk.occupied].max())
    cbm = float(bulk.energies[~bulk.occupied].min())
    e = defect.energies - potential_shift
    fill = defect.occupations / defect.spin_degeneracy  # 0..1 per state
    in_gap = (e > vbm + tolerance) & (e < cbm - tolerance)
    pairs = zip(e[in_gap], fill[in_gap], strict=True)
    states = sorted((round(float(x), 4), round(float(f), 4)) for x, f in pairs)
    if in_gap.any():
        character = LOCALIZED
    elif np.any((e >= cbm - tolerance) & (fill > 0.1)):  # electrons in the conduction band
        character = DONOR_PHS
    elif np.any((e <= vbm + tolerance) & (fill < 0.9)):  # holes in the valence band
        character = ACCEPTOR_PHS
    else:
        character = NO_STATE
    filling = band_filling(e, defect.occupations, defect.weights, defect.spin_degeneracy, vbm, cbm)
    return DefectStates(character, states, float(potential_shift), vbm, cbm, filling)


def band_filling(
    energies: np.ndarray,
    occupations: np.ndarray,
    weights: np.ndarray,
    spin_degeneracy: float,
    vbm: float,
    cbm: float,
) -> float:
    """Lany-Zunger band-filling estimate (eV) of carriers in host band states.

    Args:
        energies: aligned defect-cell eigenvalues, shape (n_spins, n_kpoints, n_bands).
        occupations: electrons per state, same shape.
        weights: k-point weights, shape (n_kpoints,), summing to 1 (zero-weight points,
            which did not enter the density, do not count).
        spin_degeneracy: electrons per full state (2 restricted, 1 per spin channel).
        vbm, cbm: the bulk band edges on the same energy scale.

    Returns:
        -sum w_k f (e - CBM) over electrons above the CBM plus -sum w_k (1 - f) (VBM - e)
        over holes below the VBM: negative or zero, to be added to the defect energy.
    """
    w = np.asarray(weights, dtype=float)[None, :, None]
    e = np.asarray(energies, dtype=float)
    occ = np.asarray(occupations, dtype=float)
    electrons = np.where(e > cbm, occ * (e - cbm), 0.0)
    holes = np.where(e < vbm, (spin_degeneracy - occ) * (vbm - e), 0.0)
    return float(-np.sum(w * (electrons + holes)))


# --- table columns ----------------------------------------------------------------------------

NEAREST_EDGE = "nearest edge"
EDGE_DEPTH = "depth from nearest edge (eV)"
IN_GAP = "in gap"
TRAP_CLASS = "class"
POSITION_CLASS = "class by position"
CLASS_FROM = "class from"
STATES_Q = "states of q"
STATES_QP = "states of q'"
BAND_FILLING = "band filling of PHS state (eV)"


def state_consistent_class(
    position: LevelClass, states_q: DefectStates | None, states_qp: DefectStates | None
) -> tuple[str, str]:
    """Class of a level q/q' and what decided it, given the states of q and q'.

    A donor PHS in q' (the extra electron in a conduction-band-like state) or an acceptor
    PHS in q (the hole in a valence-band-like state) makes the level shallow: the carrier is
    free, not trapped. Otherwise the position in the gap decides.
    """
    if states_qp is not None and states_qp.character == DONOR_PHS:
        return SHALLOW, "states: q' donor PHS (shallow donor)"
    if states_q is not None and states_q.character == ACCEPTOR_PHS:
        return SHALLOW, "states: q acceptor PHS (shallow acceptor)"
    if states_q is None or states_qp is None:
        return position.trap_class, "position (states not analysed)"
    if position.trap_class == DEEP and LOCALIZED not in (states_q.character, states_qp.character):
        return DEEP, "position (no localized state in either charge state: check)"
    return position.trap_class, "position"


def transition_level_rows(
    levels: Mapping[str, Sequence[TransitionLevel] | None],
    gap: float,
    shallow_threshold: float,
    states: Mapping[tuple[str, int], DefectStates] | None = None,
) -> list[dict[str, Any]]:
    """Rows of :func:`~perovskite_defects.reporting.tables.transition_level_table` with the columns
    nearest edge, depth from it, in gap, class, and the defect-state character of both
    charge states (empty where the eigenvalues were not analysed)."""

    states = states or {}
    rows = transition_level_table(levels)
    flat = [lev for defect_levels in levels.values() for lev in (defect_levels or [])]
    it = iter(flat)
    for row in rows:
        if row["level above VBM (eV)"] is None:
            row.update({NEAREST_EDGE: None, EDGE_DEPTH: None, IN_GAP: None})
            row.update({POSITION_CLASS: None, TRAP_CLASS: None, CLASS_FROM: None})
            # no level: still say what each computed charge state's states are
            chars = sorted(
                ((q, st.character) for (n, q), st in states.items() if n == row["defect"]),
                reverse=True,
            )
            text = "; ".join(f"{format_charge(q)}: {c}" for q, c in chars)
            row.update({STATES_Q: text or None, STATES_QP: None, BAND_FILLING: None})
            continue
        lev = next(it)
        cls = classify_level(lev.level, gap, shallow_threshold)
        row[NEAREST_EDGE] = cls.nearest_edge
        row[EDGE_DEPTH] = cls.depth
        row[IN_GAP] = cls.in_gap
        name = row["defect"]
        found_q, found_qp = states.get((name, lev.q)), states.get((name, lev.q_prime))
        row[POSITION_CLASS] = cls.trap_class
        row[TRAP_CLASS], row[CLASS_FROM] = state_consistent_class(cls, found_q, found_qp)
        for key, found in ((STATES_Q, found_q), (STATES_QP, found_qp)):
            row[key] = found.character if found is not None else None
        fillings = [
            f"{format_charge(q)}: {found.band_filling:+.3f}"
            for q, found in ((lev.q, found_q), (lev.q_prime, found_qp))
            if found is not None and found.character in (DONOR_PHS, ACCEPTOR_PHS)
        ]
        row[BAND_FILLING] = "; ".join(fillings) or None
    return rows
