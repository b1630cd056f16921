"""Where the eFNV correction samples its potential alignment: atoms outside a sphere.

Kumagai and Oba, PRB 89, 195205 (2014), align the DFT potential to the point-charge model
with the mean of the site-potential difference over the atoms far from the defect, outside
a sphere centred on it. Two radii for that sphere are defined here:

- ``"half_max_face_distance"`` (the default): half the LARGEST of the three distances
  between opposite faces of the supercell, V / |a_j x a_k| / 2. This is the radius of
  pydefect, the implementation of Kumagai's group (``calc_max_sphere_radius``, the
  default ``HalfMaxFaceDistanceDefectRegion(sample_radius_ratio=1.0)`` of
  ``make_efnv_correction``, checked in pydefect 0.9.x), which doped's eFNV also calls; it
  is taken as the established definition. Like pydefect it uses the supercell vectors as
  given: for a strongly skewed basis it can leave no atom outside (an error then).
- ``"ws_inscribed_sphere"``: the sphere inscribed in the supercell's Wigner-Seitz cell,
  half the SHORTEST lattice vector (the definition used here before). It samples more
  atoms, but in an elongated cell they include atoms only half the short period from the
  defect, where its short-range potential need not have decayed.

In a cubic supercell both are L/2. In a 2:1 tetragonal cell (a, a, 2a) they are a and
a/2: on CP2K runs of a 10-atom 2x1x1 CsPbI3 cell (a = 6.40 Å) with the test tensor
eps = diag(8, 8, 12), the eFNV corrections are -0.0556 eV (2 atoms sampled) against
-0.2876 eV (8 atoms) for V_I(+1), and 0.9664 (3) against 0.7079 eV (7) for Na_i(+1);
pydefect 0.10.1 on the same site potentials gives the first of each pair to 1e-10 eV, and
the second when given the 3.2 Å radius (``tests/test_efnv_elongated.py``). That cell is
far too small for a physical correction; it shows how much the choice matters.

Atoms ON the sphere (within :data:`ON_SPHERE_TOL`, i.e. up to the rounding of the
coordinates in the output files) are not outside it and are never sampled. pydefect
compares the raw floats (``distance > radius``), so for such atoms, which symmetric
supercells often have (e.g. the image of a vacancy's own site half a period away), its
choice follows the last bits of the rounding: in the CdTe V_Cd^-2 reference it samples 1
of the 3 equivalent Cd atoms lying at exactly L/2 (33 atoms, 0.75086 eV, as doped 3.2.1),
and gives 0.74901 eV, this code's value, when its radius is raised by 1e-3 Å (checked with
pydefect 0.10.1). In the V_I(+1) cell above its rounding left the on-sphere atom out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

#: Names of the sampling regions, the default first (see the module docstring).
SAMPLING_REGIONS = ("half_max_face_distance", "ws_inscribed_sphere")
DEFAULT_SAMPLING = SAMPLING_REGIONS[0]
#: Atoms whose distance from the defect is within this (Å) of the radius lie on the sphere:
#: far above the ~1e-6 Å rounding of coordinates in VASP/CP2K files, far below any relaxation.
ON_SPHERE_TOL = 1e-3


def sampling_radius(lattice: Sequence[Sequence[float]] | np.ndarray, sampling: str) -> float:
    """Radius (Å) of the sphere around the defect beyond which atoms are sampled."""
    if sampling == "half_max_face_distance":
        return half_max_face_distance(lattice)
    if sampling == "ws_inscribed_sphere":
        return inscribed_sphere_radius(lattice)
    raise ValueError(f"eFNV sampling {sampling!r} is not one of {', '.join(SAMPLING_REGIONS)}")


def half_max_face_distance(lattice: Sequence[Sequence[float]] | np.ndarray) -> float:
    """Half the largest distance (Å) between opposite faces of the cell spanned by the rows
    of ``lattice`` (pydefect's defect-region radius)."""
    matrix = np.asarray(lattice, dtype=float)
    volume = abs(float(np.linalg.det(matrix)))
    face_areas = [float(np.linalg.norm(np.cross(matrix[j], matrix[k]))) for j, k in _PAIRS]
    return 0.5 * volume / min(face_areas)


_PAIRS = ((1, 2), (2, 0), (0, 1))


def inscribed_sphere_radius(lattice: Sequence[Sequence[float]] | np.ndarray) -> float:
    """Radius (Å) of the sphere inscribed in the Wigner-Seitz cell: half the shortest lattice
    vector, found exactly whatever the cell shape (no reduced basis needed)."""
    matrix = np.asarray(lattice, dtype=float)
    shortest_basis = float(np.linalg.norm(matrix, axis=1).min())
    points = lattice_points(matrix, np.eye(3), shortest_basis * (1.0 + 1e-9))
    return 0.5 * float(np.linalg.norm(points, axis=1).min())


def outside(distances: np.ndarray, radius: float) -> np.ndarray:
    """Mask of the atoms outside the sphere (on-sphere atoms excluded, see ON_SPHERE_TOL)."""
    return np.asarray(distances) > radius + ON_SPHERE_TOL


@dataclass(frozen=True)
class SampledAlignment:
    """Alignment of one sampling region; energies in eV, potentials in V.

    ``delta_v`` and ``error`` are None when fewer than two atoms lie outside the sphere
    (no mean, or no standard error).
    """

    sampling: str
    radius: float
    n_sampled: int
    delta_v: float | None
    error: float | None

    @classmethod
    def of(
        cls, sampling: str, radius: float, distances: np.ndarray, site_dv: np.ndarray, charge: int
    ) -> SampledAlignment:
        """Mean of ``site_dv`` over the atoms beyond ``radius``, with |q| x its std error."""
        values = np.asarray(site_dv)[outside(distances, radius)]
        if values.size < 2:
            return cls(sampling, float(radius), int(values.size), None, None)
        error = abs(charge) * float(np.std(values, ddof=1)) / math.sqrt(values.size)
        return cls(sampling, float(radius), int(values.size), float(np.mean(values)), error)

    def to_dict(self, charge: int, point_charge: float) -> dict[str, Any]:
        """JSON-ready numbers, with the alignment (q x delta_v) and the total they give."""
        known = self.delta_v is not None
        alignment = charge * self.delta_v if self.delta_v is not None else None
        return {
            "sampling_radius": self.radius,
            "n_sampled": self.n_sampled,
            "delta_v": self.delta_v,
            "alignment": alignment,
            "total": point_charge - alignment if alignment is not None else None,
            "error": self.error if known else None,
        }


def lattice_points(
    basis: np.ndarray, metric: np.ndarray, cutoff: float, *, include_origin: bool = False
) -> np.ndarray:
    """All points n @ basis (integer n) with (n @ basis) . metric . (n @ basis) <= cutoff^2.

    The integer box |n_i| <= cutoff * sqrt((M^-1)_ii), M = basis . metric . basis^T, holds
    every point of the ellipsoid, so the search is exact for any cell shape.
    """
    gram = basis @ metric @ basis.T
    bounds = np.floor(cutoff * np.sqrt(np.diag(np.linalg.inv(gram))) + 1e-9).astype(int)
    axes = [np.arange(-b, b + 1) for b in bounds]
    ints = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    norms = np.einsum("ij,jk,ik->i", ints, gram, ints)
    keep = norms <= cutoff * cutoff
    if not include_origin:
        keep &= np.any(ints != 0, axis=1)
    return ints[keep] @ basis
