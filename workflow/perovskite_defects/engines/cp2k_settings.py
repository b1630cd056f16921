"""CP2K numerical settings: the :class:`Cp2kSettings` fields with the measurement behind
each default, the ``level`` presets (:data:`LEVELS`) and the GTH valences (:data:`VALENCE`).

Split from :mod:`perovskite_defects.engines.cp2k` (input writer and runner), which reads
them; config validation and the stand-alone host runs import them from here without the
writer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Valence charge of the GTH-PBE pseudopotential used for each element (cp2k-data names
# them GTH-PBE-q<valence>). Semicore states are included for Cs and Na.
VALENCE = {
    "H": 1, "C": 4, "N": 5, "Na": 9, "Cl": 7, "Br": 7, "I": 7,
    "Cs": 9, "Sn": 4, "Pb": 4, "Cd": 12, "Te": 6, "K": 9, "Rb": 9,
}  # fmt: skip

LEVELS: dict[str, dict[str, Any]] = {
    # Measured on 2 cores: a 40-atom cell SCF takes ~35-50 s (RKS, DZVP, 250 Ry, one k-point).
    "fast": {},
    # Production settings for clusters: DZVP basis, converged cutoff and k-mesh, spin
    # polarisation everywhere, defects relaxed within 6 Å.
    "accurate": {
        "cutoff_ry": 400.0,
        "rel_cutoff_ry": 50.0,
        "eps_scf": 1e-6,
        "kpoint_length": 30.0,
        "supercell_kpoints": "length",
        "supercell_mixing": "broyden",
        "spin": "always",
        "max_force": 0.025,
        "geo_max_iter": 200,
        "pressure_tolerance_bar": 100.0,
        "relax_radius": 6.0,
        "phase_cell_relax": True,
    },
}


@dataclass(frozen=True)
class Cp2kSettings:
    """Numerical settings of a CP2K calculation (public units: eV, Å, K).

    Attributes:
        basis: MOLOPT basis family (the same name exists for every element used).
        cutoff_ry: plane-wave cutoff of the finest grid (Ry; CP2K's own unit, kept
            because every CP2K convergence study is quoted in it). 250 Ry is the lowest
            that is safe with the semicore Na (q9) potential: the reaction energy
            Na + CsI -> NaI + Cs is 0.42 / 0.51 / 0.56 eV at 200 / 250 / 400 Ry, and at
            200 Ry the Na defects of the default study moved by 1-2.4 eV (grid error)
            while V_I moved by 1 meV.
        rel_cutoff_ry: relative cutoff for mapping Gaussians onto grids (Ry).
        eps_scf: SCF convergence threshold (CP2K's density-matrix criterion). Measured on
            bcc Na (7x7x7 k, 300 K smearing): the energy is stable to 1e-7 Ha once the
            criterion reaches 1e-5, while 1e-6 oscillates for tens of extra steps.
        max_scf: SCF steps before the run counts as not converged.
        smearing_kelvin: Fermi-Dirac electronic temperature.
        mixing_alpha: Broyden mixing parameter.
        supercell_mixing: density mixing of bulk and defect supercells: "pulay" (ALPHA
            0.2, 10 stored densities) or "broyden" (as for all other cells). Measured on
            CsPbI3 (40 atoms, one k-point): Pulay halves the SCF steps of the
            spin-polarised defects (Na_i 0: 17 instead of 36) and gives the same energy to
            0.6 meV. It is not used for small cells and geometry optimisations, where CP2K's
            Pulay step failed here (singular matrix for Cs, PbI2 and I2).
        added_mos: empty orbitals computed per spin (needed for the CBM).
        kpoint_length: k-mesh for periodic cells: n_i = max(1, ceil(length / a_i)) (Å).
        supercell_kpoints: how supercells sample the Brillouin zone. "mean_value": one
            point, (1/4, 1/4, 1/4) of the supercell's reciprocal vectors, Baldereschi's
            mean-value point of a simple cubic cell. Measured on CsPbI3 (40 atoms, 250 Ry):
            E_defect - E_bulk within 1.3 meV of the shifted 2x2x2 mesh for V_I (+1, -1),
            Na_Cs 0, Na_Pb 0 and Na_i 0, and the bulk energy within 0.2 meV, at 0.65-0.8x
            its cost. It is exact for the bulk only when the supercell is cubic; other
            shapes should use "length". "length": the kpoint_length mesh (2x2x2 for a
            12.8 Å cell at 24 Å), reduced by time reversal. "gamma": Gamma only. For
            "mean_value" and "length" the bulk cell adds the supercell's Gamma point at zero
            weight: it adds eigenvalues for the band edges without changing the density
            (Gamma of a 2x2x2 perovskite supercell holds the R point, where the gap is).
            Gamma-only is not safe: measured on CsPbI3, E_defect - E_bulk is off by
            -0.42 eV (V_I+) and -1.80 eV (Na_Pb0) against the 2x2x2 mesh, whose bulk
            energy matches eight 4x4x4 unit cells to 2 meV.
        spin: "auto" (spin-polarised only for odd electron counts) or "always".
        max_force: force threshold of geometry optimisations (eV/Å).
        geo_max_iter: optimisation steps before the run counts as not converged.
        pressure_tolerance_bar: stress threshold of cell optimisations (bar).
        relax_radius: defects relax the atoms within this distance of the defect (Å),
            all others fixed; 0 means ideal-site (unrelaxed) defects. Local relaxation
            keeps a dynamically unstable prototype (cubic CsPbI3) from tilting as a whole,
            which would fold host distortion energy into the defect's formation energy.
        phase_cell_relax: relax the cells of competing phases (True), or only their ions at
            the experimental cell (False; measured for Cs: the cell relaxation lowers the
            energy by 7 meV/atom, for PbI2 (1.8 GPa residual stress) an estimated ~30
            meV/atom, against ~2-3 min per phase on 2 cores).
    """

    basis: str = "DZVP-MOLOPT-SR-GTH"
    cutoff_ry: float = 250.0
    rel_cutoff_ry: float = 40.0
    eps_scf: float = 1e-5
    max_scf: int = 100
    smearing_kelvin: float = 300.0
    mixing_alpha: float = 0.3
    supercell_mixing: str = "pulay"
    added_mos: int = 20
    kpoint_length: float = 24.0
    supercell_kpoints: str = "mean_value"
    spin: str = "auto"
    max_force: float = 0.05
    geo_max_iter: int = 60
    pressure_tolerance_bar: float = 200.0
    relax_radius: float = 0.0
    phase_cell_relax: bool = False

    @classmethod
    def for_level(cls, level: str, overrides: dict[str, Any] | None = None) -> Cp2kSettings:
        """Settings of a level ("fast" or "accurate") with user overrides applied."""
        if level not in LEVELS:
            raise ValueError(f"level must be one of {sorted(LEVELS)}, got {level!r}")
        values = {**LEVELS[level], **(overrides or {})}
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(
                f"cp2k.settings: unknown key(s) {', '.join(sorted(unknown))}; "
                f"allowed: {', '.join(cls.__dataclass_fields__)}"
            )
        settings = cls(**values)
        if settings.spin not in ("auto", "always"):
            raise ValueError(f"cp2k.settings.spin: {settings.spin!r} is not 'auto' or 'always'")
        if settings.supercell_mixing not in ("pulay", "broyden"):
            raise ValueError(
                f"cp2k.settings.supercell_mixing: {settings.supercell_mixing!r} "
                "is not 'pulay' or 'broyden'"
            )
        if settings.supercell_kpoints not in SUPERCELL_KPOINT_MODES:
            raise ValueError(
                f"cp2k.settings.supercell_kpoints: {settings.supercell_kpoints!r} "
                f"is not one of {', '.join(SUPERCELL_KPOINT_MODES)}"
            )
        return settings


SUPERCELL_KPOINT_MODES = ("length", "mean_value", "gamma")
