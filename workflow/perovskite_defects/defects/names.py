"""Defect names, their expansion per host, atoms added and the charge rule.

Names: ``V_<S>`` vacancy of species S; ``<D>_<S>`` species D on the site of S;
``<D>_i`` interstitial D; ``<D>_<S>+V_<Y>`` the nearest-neighbour complex. Role letters
stand for a sublattice and expand per host (:func:`concrete_names`): ``X`` every halide,
``B`` every B cation (Pb, Sn), ``A`` the A cation. So V_X -> V_I, V_Br; Na_B -> Na_Pb,
Na_Sn; X_i -> I_i; B_X -> Pb_I, Sn_I; X_B -> I_Pb, I_Sn; A_B -> Cs_Pb; B_A -> Pb_Cs.
In a role name ``B`` is the B sublattice, never boron.

Charge rule (:func:`default_charges`), from the nominal charge q0 of the defect: the
oxidation state of what is added minus that of what is removed, with the formal states
Cs/FA/MA +1, Pb/Sn +2, I/Br/Cl -1, Na +1 (``OXIDATION``):

* native defects (vacancies, native interstitials and antisites: nothing foreign is
  added) take every charge from q0 to 0 and one beyond 0 on the other side, i.e.
  min(q0, -1) .. max(q0, +1). For vacancies this is doped's rule (padding 1,
  ``doped.generation._get_vacancy_charge_states``; Kavanagh et al., JOSS 9, 6433 (2024)):
  V_X {+1,0,-1}, V_A {+1,0,-1}, V_B {+1,0,-1,-2}. The same padding is applied to native
  interstitials and antisites because they are amphoteric in lead halides: the iodine
  interstitial is stable both as I_i(+1) (bound to lattice iodides, an I3-like trimer)
  and as I_i(-1), with the (+/-) level in the gap (Meggiolaro et al., "Iodine chemistry
  determines the defect tolerance of lead-halide perovskites", Energy Environ. Sci. 11,
  702 (2018)). doped (guess_defect_charge_states) always includes the host oxidation
  state of a native interstitial and the oxidation-state difference of an antisite,
  extended to 0 (plus further states from its oxidation-state statistics, which this
  fixed rule does not use: it needs no data and gives the same charges on every
  machine). So I_i {+1,0,-1},
  Pb_i/Sn_i {+2,+1,0,-1}, Cs_i {+1,0,-1}, Pb_I {+3..-1}, I_Pb {+1..-3}, Cs_Pb {+1,0,-1},
  Pb_Cs {+1,0,-1}.
* defects that bring a foreign species (dopants: Na_A {0}, Na_B {0,-1}, Na_i {+1,0})
  keep q0 .. 0, as doped does for the dominant oxidation state of a dopant.
* complexes: q0-1 .. q0+1 (Na_B+V_X {+1,0,-1}).

A charges list in the config overrides the rule.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

OXIDATION = {"Cs": 1, "FA": 1, "MA": 1, "Pb": 2, "Sn": 2, "I": -1, "Br": -1, "Cl": -1, "Na": 1}
ROLE_NAMES = (
    "V_X",
    "V_A",
    "V_B",
    "Na_A",
    "Na_B",
    "Na_i",
    "Na_B+V_X",
    "X_i",
    "B_i",
    "A_i",
    "X_B",
    "B_X",
    "A_B",
    "B_A",
)
NATIVE_ROLE_NAMES = ("X_i", "B_i", "A_i", "X_B", "B_X", "A_B", "B_A")
ROLES = ("X", "B", "A")
HALIDE_SET = ("I", "Br", "Cl")
B_SET = ("Pb", "Sn")
MOLECULE_FORMULA = {"FA": {"C": 1, "N": 2, "H": 5}, "MA": {"C": 1, "N": 1, "H": 6}}

_NAME = re.compile(r"^(?:V_([A-Z][a-zA-Z]?)|([A-Z][a-zA-Z]?)_([A-Z][a-zA-Z]?|i))$")


def parse_name(name: str) -> tuple[str, str | None, str | None]:
    """(kind, species added, site species) of a single (not complex) defect name."""
    m = _NAME.match(name)
    if not m:
        raise ValueError(f"{name!r} is not a defect name")
    if m.group(1):
        return "vacancy", None, m.group(1)
    if m.group(3) == "i":
        return "interstitial", m.group(2), None
    return "substitution", m.group(2), m.group(3)


def nominal_charge(kind: str, species: str | None, site: str | None) -> int:
    """Nominal charge: oxidation state of what is added minus that of what is removed."""
    added = OXIDATION.get(species, 0) if species else 0
    removed = OXIDATION.get(site, 0) if site else 0
    return added - removed


def is_native(name: str, host_species: Collection[str]) -> bool:
    """No part of the defect adds a species foreign to the host (its species names:
    Cs, FA, Pb, I ...)."""
    for part in name.split("+"):
        _, species, _ = parse_name(part)
        if species is not None and species not in host_species:
            return False
    return True


def default_charges(name: str, host_species: Collection[str] = ()) -> list[int]:
    """Charge states by the rule of the module docstring, highest first.

    ``host_species`` (the host's species names) tells native interstitials and antisites
    from dopants; without it only vacancies count as native.
    """
    parts = name.split("+")
    if len(parts) > 1:
        q0 = sum(nominal_charge(*parse_name(p)) for p in parts)
        low, high = q0 - 1, q0 + 1
    else:
        kind, species, site = parse_name(name)
        q0 = nominal_charge(kind, species, site)
        if kind == "vacancy" or is_native(name, host_species):
            low, high = min(q0, -1), max(q0, 1)
        else:
            low, high = min(q0, 0), max(q0, 0)
    return list(range(high, low - 1, -1))


def expand_roles(
    name: str, a: str, b_species: Sequence[str], x_species: Sequence[str]
) -> list[str]:
    """Every name a config name gives in a host (role letters replaced by the host's
    species), before :func:`concrete_names` drops the ones that cannot be built."""
    sub = {"X": list(x_species), "B": list(b_species), "A": [a]}
    out = [""]
    for part_i, part in enumerate(name.split("+")):
        head, _, tail = part.partition("_")
        heads = sub.get(head, [head]) if head != "V" else ["V"]
        tails = sub.get(tail, [tail])
        expanded = [f"{h}_{t}" for h in heads for t in tails]
        out = [f"{o}+{e}" if part_i else e for o in out for e in expanded]
    return out


def concrete_names(
    name: str, a: str, b_species: Sequence[str], x_species: Sequence[str]
) -> list[str]:
    """Concrete defect names of a config name in a host: role names expand (V_X -> V_I, V_Br;
    Na_B -> Na_Pb, Na_Sn; V_A -> V_FA; X_B -> I_Pb, I_Sn ...), element names stay.

    A role name that would put a molecular A cation (FA, MA) on an interstitial or B site
    (A_i, A_B) gives nothing in that host: the molecule would need an orientation, which
    is not chosen here (:func:`unbuilt_names` lists what is left out). Role combinations
    that put a species on its own site (X_X) are left for the caller to refuse.
    """
    return [n for n in expand_roles(name, a, b_species, x_species) if not _molecule_added(n)]


def unbuilt_names(
    name: str, a: str, b_species: Sequence[str], x_species: Sequence[str]
) -> list[str]:
    """Names of a config name in a host that :func:`concrete_names` leaves out (FA_i, MA_Pb)."""
    return [n for n in expand_roles(name, a, b_species, x_species) if _molecule_added(n)]


def _molecule_added(name: str) -> bool:
    """A molecule is added somewhere (FA_i, FA_Pb): the builder cannot orient it."""
    return any(part.split("_")[0] in MOLECULE_FORMULA for part in name.split("+"))


def own_site(name: str) -> str | None:
    """The part of a concrete name that puts a species on its own site (I_I), if any."""
    for part in name.split("+"):
        head, _, tail = part.partition("_")
        if head == tail:
            return part
    return None


def site_species_missing(name: str, host_species: set[str]) -> list[str]:
    """Species whose sites a concrete defect name needs but the host lacks."""
    missing = []
    for part in name.split("+"):
        _, _, site = parse_name(part)
        if site and site not in host_species:
            missing.append(site)
    return missing


def atoms_added(name: str) -> dict[str, int]:
    """n_i of the formation energy (molecular cations expanded into their elements)."""
    out: dict[str, int] = {}

    def add(species: str, n: int) -> None:
        for el, k in MOLECULE_FORMULA.get(species, {species: 1}).items():
            out[el] = out.get(el, 0) + n * k

    for part in name.split("+"):
        _, species, site = parse_name(part)
        if species:
            add(species, 1)
        if site:
            add(site, -1)
    return {k: v for k, v in out.items() if v}
