"""Special quasirandom structures (SQS) for Sn/Pb and mixed-halide disorder, with icet.

icet (https://icet.materialsmodeling.org) is the maintained cluster-expansion library of the
field; its simulated-annealing SQS search matches the cluster vector of the supercell to
that of the infinite random alloy (Zunger et al., PRL 65, 353 (1990); the objective of
van de Walle et al., Calphad 42, 13 (2013)). We use it rather than hand-written annealing.

The ordered parent (every B site Pb, every X site the first halide; molecular A cations are
represented by Cs during the search, as the A sublattice does not take part) is decorated
in place, so site order and positions are those of the parent supercell.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from pymatgen.core import Structure

DEFAULT_CUTOFFS = (1.75, 1.45)  # pair and triplet cutoffs in units of the lattice constant


@dataclass(frozen=True)
class SqsQuality:
    """How close the supercell's correlations are to those of the random alloy.

    Attributes:
        pair_rms_error: root-mean-square difference of the pair correlation functions
            (all pair orbits within the cutoff) from the random alloy's.
        pair_max_error: largest absolute pair-correlation difference.
        max_error: largest difference over all orbits (pairs and triplets).
        score: icet's objective (van de Walle et al. 2013) for the same vectors.
        n_pair_orbits: number of pair orbits compared.
        cutoffs: cluster cutoffs (Å) of the comparison.
    """

    pair_rms_error: float
    pair_max_error: float
    max_error: float
    score: float
    n_pair_orbits: int
    cutoffs: tuple[float, ...]

    def as_dict(self) -> dict:
        return asdict(self)


def _cluster_space(parent_prim: Structure, allowed: dict[str, list[str]], cutoffs):
    from icet import ClusterSpace
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(parent_prim)
    symbols = [allowed.get(s.specie.symbol, [s.specie.symbol]) for s in parent_prim]
    return ClusterSpace(atoms, list(cutoffs), symbols), atoms


def _targets(cs, counts: dict[str, int]) -> dict[str, dict[str, float]]:
    """Per-sublattice concentrations from exact species counts."""
    targets: dict[str, dict[str, float]] = {}
    for sub in cs.get_sublattices(cs.primitive_structure):
        symbols = list(sub.chemical_symbols)
        total = sum(counts.get(s, 0) for s in symbols)
        if total:
            targets[sub.symbol] = {s: counts.get(s, 0) / total for s in symbols}
    return targets


def quality(cs, atoms, targets) -> SqsQuality:
    from icet.tools.structure_generation import _get_sqs_cluster_vector, compare_cluster_vectors

    target_cv = _get_sqs_cluster_vector(cs, targets)
    cv = cs.get_cluster_vector(atoms)
    orbits = cs.as_list
    diff = np.abs(cv - target_cv)
    pairs = [i for i, o in enumerate(orbits) if o["order"] == 2]
    return SqsQuality(
        pair_rms_error=float(np.sqrt(np.mean(diff[pairs] ** 2))) if pairs else 0.0,
        pair_max_error=float(diff[pairs].max()) if pairs else 0.0,
        max_error=float(diff[1:].max()) if len(diff) > 1 else 0.0,
        score=float(compare_cluster_vectors(cv, target_cv, orbits)),
        n_pair_orbits=len(pairs),
        cutoffs=tuple(float(c) for c in cs.cutoffs),
    )


def decorate(
    parent_prim: Structure,
    parent_supercell: Structure,
    allowed: dict[str, list[str]],
    counts: dict[str, int],
    seed: int,
    cutoffs: tuple[float, ...],
    n_steps: int | None = None,
    method: str = "sqs",
) -> tuple[Structure, SqsQuality]:
    """Decorate the ordered parent supercell with the exact species ``counts``.

    Args:
        parent_prim: the ordered primitive cell (5 atoms, placeholder species).
        parent_supercell: the ordered supercell to decorate (its site order is kept).
        allowed: placeholder species -> species allowed on its sublattice, e.g.
            {"Pb": ["Pb", "Sn"], "I": ["I", "Br"]}.
        counts: species -> number of atoms in the supercell (exact).
        seed: random seed (same seed, same structure).
        cutoffs: cluster cutoffs in Å (pairs, triplets, ...).
        n_steps: annealing steps (icet's default when None).
        method: "sqs" (icet's annealing) or "random" (icet's random occupation with the
            same counts, the baseline an SQS must beat).
    """
    from icet.tools.structure_generation import (
        generate_sqs_from_supercells,
        occupy_structure_randomly,
    )
    from pymatgen.io.ase import AseAtomsAdaptor

    cs, _ = _cluster_space(parent_prim, allowed, cutoffs)
    atoms = AseAtomsAdaptor.get_atoms(parent_supercell)
    targets = _targets(cs, counts)
    if method == "sqs":
        result = generate_sqs_from_supercells(
            cs, [atoms], targets, n_steps=n_steps, random_seed=seed
        )
    elif method == "random":
        result = atoms.copy()
        occupy_structure_randomly(result, cs, targets, random_seed=seed)
    else:
        raise ValueError(f"decoration method {method!r} is not 'sqs' or 'random'")
    if not np.allclose(result.get_positions(), atoms.get_positions(), atol=1e-6):
        raise RuntimeError("icet returned a structure whose sites differ from the parent's")
    decorated = parent_supercell.copy()
    for i, symbol in enumerate(result.get_chemical_symbols()):
        if decorated[i].specie.symbol != symbol:
            decorated.replace(i, symbol)
    found = decorated.composition.as_dict()
    for species, n in counts.items():
        if any(species in v for v in allowed.values()) and round(found.get(species, 0)) != n:
            raise RuntimeError(f"SQS has {found.get(species, 0)} {species}, expected {n}")
    return decorated, quality(cs, result, targets)
