"""Molecular A-site cations FA+ (CH(NH2)2) and MA+ (CH3NH3) as real molecules.

Geometries are built from bond lengths and angles (not copied coordinates):

* MA+ (methylammonium, CH3NH3+): C-N 1.48 Å, C-H 1.09 Å, N-H 1.03 Å, tetrahedral angles
  (109.47°) and staggered hydrogens. C-N as in the neutron-diffraction structure of
  MAPbI3, Weller et al., Chem. Commun. 51, 4180 (2015) (C-N 1.48-1.50 Å); C-H and N-H the
  usual X-H lengths of alkylammonium ions (Allen et al., J. Chem. Soc. Perkin Trans. 2,
  S1 (1987): C-H 1.09 Å, N+-H 1.03 Å from neutron data).
* FA+ (formamidinium, CH(NH2)2+): planar, C-N 1.32 Å (delocalised, both equal), N-C-N
  125°, C-H 1.09 Å, N-H 1.01 Å, H-N-H 120° (sp2 nitrogen). C-N and N-C-N as found in
  cubic FAPbI3, Weller et al., J. Phys. Chem. Lett. 6, 3209 (2015) (C-N ~1.30-1.33 Å,
  N-C-N ~120-127°), and in formamidinium salts.

The molecule is centred on the A site by the centroid of its heavy atoms (C and N); the
orientation is a rotation chosen by a seeded rule (see :func:`orientations`) and returned
so it can be recorded with the structure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MA_BONDS = {"C-N": 1.48, "C-H": 1.09, "N-H": 1.03}
FA_BONDS = {"C-N": 1.32, "C-H": 1.09, "N-H": 1.01}
FA_NCN_DEG = 125.0
TETRAHEDRAL = math.degrees(math.acos(-1.0 / 3.0))  # 109.47°


@dataclass(frozen=True)
class Molecule:
    """A molecule in its own frame: species and Cartesian positions (Å), heavy-atom centroid
    at the origin. ``bonds`` lists (i, j, length) of its covalent bonds."""

    name: str
    species: tuple[str, ...]
    positions: np.ndarray
    bonds: tuple[tuple[int, int, float], ...]

    @property
    def formula(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.species:
            out[s] = out.get(s, 0) + 1
        return out


def _centre(species: list[str], pos: np.ndarray) -> np.ndarray:
    heavy = [i for i, s in enumerate(species) if s != "H"]
    return pos - pos[heavy].mean(axis=0)


def methylammonium() -> Molecule:
    """CH3NH3+ with its C-N axis along z, staggered hydrogens."""
    cn, ch, nh = MA_BONDS["C-N"], MA_BONDS["C-H"], MA_BONDS["N-H"]
    c, n = np.array([0.0, 0.0, -cn / 2]), np.array([0.0, 0.0, cn / 2])
    species, pos = ["C", "N"], [c, n]
    sin_t, cos_t = math.sin(math.radians(TETRAHEDRAL)), math.cos(math.radians(TETRAHEDRAL))
    bonds = [(0, 1, cn)]
    for k in range(3):
        phi = 2 * math.pi * k / 3
        # H on C points away from N: angle H-C-N = 109.47°, so the z part is cos(109.47°)
        pos.append(c + ch * np.array([sin_t * math.cos(phi), sin_t * math.sin(phi), cos_t]))
        species.append("H")
        bonds.append((0, len(pos) - 1, ch))
    for k in range(3):
        phi = 2 * math.pi * k / 3 + math.pi / 3  # staggered against the methyl hydrogens
        pos.append(n + nh * np.array([sin_t * math.cos(phi), sin_t * math.sin(phi), -cos_t]))
        species.append("H")
        bonds.append((1, len(pos) - 1, nh))
    return Molecule("MA", tuple(species), _centre(species, np.array(pos)), tuple(bonds))


def _rot2d(v: np.ndarray, deg: float) -> np.ndarray:
    t = math.radians(deg)
    return np.array(
        [v[0] * math.cos(t) - v[1] * math.sin(t), v[0] * math.sin(t) + v[1] * math.cos(t), 0.0]
    )


def formamidinium() -> Molecule:
    """CH(NH2)2+ in the xy plane, N...N along x, C-H along +y."""
    cn, ch, nh = FA_BONDS["C-N"], FA_BONDS["C-H"], FA_BONDS["N-H"]
    half = math.radians(FA_NCN_DEG / 2)
    c = np.zeros(3)
    n1 = c + cn * np.array([math.sin(half), -math.cos(half), 0.0])
    n2 = c + cn * np.array([-math.sin(half), -math.cos(half), 0.0])
    species = ["C", "N", "N", "H"]
    pos = [c, n1, n2, c + np.array([0.0, ch, 0.0])]
    bonds = [(0, 1, cn), (0, 2, cn), (0, 3, ch)]
    for ni, n in ((1, n1), (2, n2)):
        to_c = (c - n) / cn
        for angle in (120.0, -120.0):  # sp2: H-N-C 120°, so H-N-H 120°
            pos.append(n + nh * _rot2d(to_c, angle))
            species.append("H")
            bonds.append((ni, len(pos) - 1, nh))
    return Molecule("FA", tuple(species), _centre(species, np.array(pos)), tuple(bonds))


MOLECULES = {"MA": methylammonium, "FA": formamidinium}


def molecule(name: str) -> Molecule:
    if name not in MOLECULES:
        raise ValueError(f"{name!r} is not a molecular cation (known: {sorted(MOLECULES)})")
    return MOLECULES[name]()


def orientations(n: int, rule: str, seed: int) -> np.ndarray:
    """``n`` rotation matrices (n, 3, 3) for the molecules on the A sites.

    ``random``: independent uniformly random rotations from a generator seeded with
    ``seed`` (the same seed gives the same structure); ``aligned``: the identity for every
    site (all molecules parallel: MA C-N along z, FA in the xy plane with N...N along x).
    """
    if rule == "aligned":
        return np.repeat(np.eye(3)[None], n, axis=0)
    if rule != "random":
        raise ValueError(f"molecule orientation rule {rule!r} is not 'random' or 'aligned'")
    from scipy.spatial.transform import Rotation

    return Rotation.random(n, random_state=np.random.default_rng(seed)).as_matrix().reshape(n, 3, 3)


def placed(mol: Molecule, centre_cart: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """Cartesian positions of ``mol`` rotated by ``rotation`` and centred at ``centre_cart``."""
    return mol.positions @ np.asarray(rotation).T + np.asarray(centre_cart)
