"""Competing-phase structures from the Materials Project, with the user's own API key.

Optional (``pip install 'perovskite-defects[mp]'`` brings ``mp-api``; it is imported only
here, only when a fetch is needed). For every formula asked for, the thermo documents of
that formula in the chosen hull (``thermo_type``: "GGA_GGA+U" by default, the PBE(+U)
hull that matches a PBE workflow; "GGA_GGA+U_R2SCAN" or "R2SCAN") are requested and the
one with the lowest energy above the hull is kept. Its structure is the relaxed cell of the
calculation that gave that hull energy (``energy_type``: GGA, GGA+U or r2SCAN), written as
``structures/phases/<formula>.cif`` with a ``# Source:`` line naming the mp-id, functional,
hull type, energy above hull, MP database version and fetch date, and ``# Relaxation:
cell`` (the workflow relaxes it again with its own engine and settings).

A file that already exists is never fetched again; it must carry a ``# Source:`` line.
All requests are made before anything is written, so a failure (no key, no network,
unknown formula) leaves structures/phases/ as it was. Errors are one line
(:class:`MaterialsProjectError`).

The Materials Project's own client (``mp_api.client.MPRester``) does the HTTP work; this
module only chooses the entry and writes the file (the selection rule and the provenance
header are ours, so they are written here).
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pymatgen.core import Composition, Structure

from perovskite_defects.config import PHASES_DIR

THERMO_TYPES = ("GGA_GGA+U", "GGA_GGA+U_R2SCAN", "R2SCAN")
DEFAULT_KEY_ENV = "MP_API_KEY"
_FIELDS = [
    "material_id",
    "formula_pretty",
    "thermo_type",
    "energy_type",
    "energy_above_hull",
    "entries",
    "last_updated",
    "deprecated",
]
_STEM = re.compile(r"^[A-Za-z0-9]+$")
_SOURCE = re.compile(r"^# Source:\s*\S", re.M)
_WHERE = "competing_phases_source.materials_project"


class MaterialsProjectError(RuntimeError):
    """A fetch from the Materials Project cannot be done (one-line message)."""


@dataclass(frozen=True)
class MaterialsProjectSettings:
    """The ``competing_phases_source.materials_project`` block of the config.

    Attributes:
        api_key_env: name of the environment variable holding the user's API key (the key
            itself is never written into a config or a file).
        thermo_type: Materials Project hull to choose the entry from.
    """

    api_key_env: str = DEFAULT_KEY_ENV
    thermo_type: str = "GGA_GGA+U"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> MaterialsProjectSettings | None:
        """Settings from a config mapping; None when no Materials Project source is set."""
        source = config.get("competing_phases_source") or {}
        block = source.get("materials_project") if isinstance(source, Mapping) else None
        if block is None:
            return None
        if not isinstance(block, Mapping):
            raise MaterialsProjectError(f"config key '{_WHERE}': must be a mapping")
        unknown = sorted(set(block) - {"api_key_env", "thermo_type"})
        if unknown:
            raise MaterialsProjectError(
                f"config key '{_WHERE}': unknown key(s) {unknown}; allowed: "
                "['api_key_env', 'thermo_type']"
            )
        settings = cls(
            str(block.get("api_key_env", DEFAULT_KEY_ENV)),
            str(block.get("thermo_type", "GGA_GGA+U")),
        )
        if settings.thermo_type not in THERMO_TYPES:
            raise MaterialsProjectError(
                f"config key '{_WHERE}.thermo_type': {settings.thermo_type!r} is not one of "
                f"{list(THERMO_TYPES)}"
            )
        return settings


@dataclass(frozen=True)
class FetchedPhase:
    """The entry chosen for one formula, with everything its Source line records."""

    formula: str
    material_id: str
    functional: str
    thermo_type: str
    energy_above_hull: float
    database_version: str
    last_updated: str
    structure: Structure


class ThermoSource(Protocol):
    """What a fetch needs from the Materials Project (mp-api, or a stand-in in tests)."""

    def database_version(self) -> str: ...

    def thermo_docs(self, formula: str, thermo_type: str) -> list[dict[str, Any]]: ...


class MPApiSource:
    """:class:`ThermoSource` on top of ``mp_api.client.MPRester``.

    ``rester`` may be given (an object with the MPRester interface) instead of an API key;
    the client is otherwise created here, which is where mp-api is imported.
    """

    def __init__(self, api_key: str | None = None, rester: Any = None) -> None:
        if rester is None:
            try:
                from mp_api.client import MPRester
            except ImportError as err:
                raise MaterialsProjectError(
                    f"config key '{_WHERE}': needs the optional package mp-api "
                    "(pip install 'perovskite-defects[mp]')"
                ) from err
            rester = _call(lambda: MPRester(api_key=api_key, mute_progress_bars=True))
        self._rester = rester

    def database_version(self) -> str:
        version = getattr(self._rester, "db_version", None)
        if not version and hasattr(self._rester, "get_database_version"):
            version = _call(self._rester.get_database_version)
        return str(version) if version else "not reported"

    def thermo_docs(self, formula: str, thermo_type: str) -> list[dict[str, Any]]:
        docs = _call(
            lambda: self._rester.materials.thermo.search(
                formula=[formula], thermo_types=[thermo_type], all_fields=False, fields=_FIELDS
            )
        )
        # Fields are read as attributes, not with model_dump(): emmet's MPID serialises to
        # another form there ("mp-149" -> "mp-aaaaaaft"), which would be a wrong citation.
        return [
            dict(doc) if isinstance(doc, Mapping) else {f: getattr(doc, f, None) for f in _FIELDS}
            for doc in docs
        ]


def _call(request: Any) -> Any:
    """Run one Materials Project request, turning its failures into one-line errors."""
    try:
        return request()
    except OSError as err:  # requests' ConnectionError/Timeout are OSErrors
        raise MaterialsProjectError(
            f"cannot reach the Materials Project (no network?): {_first_line(err)}; "
            "nothing was written"
        ) from err
    except Exception as err:  # mp-api raises MPRestError/ValueError for refused requests
        raise MaterialsProjectError(
            f"the Materials Project refused the request: {_first_line(err)}; nothing was written"
        ) from err


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def select_lowest(
    formula: str, docs: Sequence[Mapping[str, Any]], thermo_type: str, database_version: str
) -> FetchedPhase:
    """The non-deprecated document of ``formula`` lowest above the hull (ties: lower mp-id)."""
    target = _reduced(formula)
    usable = [
        d
        for d in docs
        if not d.get("deprecated")
        and _reduced(str(d.get("formula_pretty") or "")) == target
        and d.get("energy_above_hull") is not None
    ]
    if not usable:
        raise MaterialsProjectError(
            f"the Materials Project has no {thermo_type} entry for formula {formula!r}"
        )
    best = min(usable, key=lambda d: (float(d["energy_above_hull"]), _id_number(d)))
    functional = str(_plain(best.get("energy_type")) or "")
    entries = best.get("entries") or {}
    entry = entries.get(functional) if functional else None
    if entry is None and len(entries) == 1:
        functional, entry = next(iter(entries.items()))
    if entry is None:
        raise MaterialsProjectError(
            f"{formula}: Materials Project entry {best.get('material_id')} has no structure for "
            f"its energy type {functional!r} (entries: {sorted(entries)})"
        )
    return FetchedPhase(
        formula=formula,
        material_id=str(best["material_id"]),
        functional=functional,
        thermo_type=str(_plain(best.get("thermo_type")) or thermo_type),
        energy_above_hull=float(best["energy_above_hull"]),
        database_version=database_version,
        last_updated=str(best.get("last_updated") or "not reported"),
        structure=_entry_structure(entry),
    )


def _reduced(formula: str) -> str | None:
    try:
        return Composition(formula).reduced_formula
    except Exception:  # pymatgen raises several types for unreadable formulas
        return None


def _plain(value: Any) -> Any:
    """Enum members (emmet's ThermoType/RunType) as their value."""
    return getattr(value, "value", value)


def _id_number(doc: Mapping[str, Any]) -> int:
    digits = re.sub(r"\D", "", str(doc.get("material_id", "")))
    return int(digits) if digits else 0


def _entry_structure(entry: Any) -> Structure:
    """Structure of a ComputedStructureEntry given as an object or as its dict."""
    structure = getattr(entry, "structure", None)
    if structure is None and isinstance(entry, Mapping):
        structure = entry.get("structure")
    if isinstance(structure, Mapping):
        structure = Structure.from_dict(dict(structure))
    if not isinstance(structure, Structure) or len(structure) == 0:
        raise MaterialsProjectError("a Materials Project entry came without a structure")
    return structure


def phase_cif_text(phase: FetchedPhase, fetched_on: str) -> str:
    """CIF with the provenance header the shipped phase files carry."""
    from pymatgen.io.cif import CifWriter

    header = (
        f"# {phase.formula}: starting structure for a competing-phase calculation.\n"
        f"# Source: Materials Project {phase.material_id} ({phase.functional} relaxed "
        f"structure; hull {phase.thermo_type}; energy above hull "
        f"{phase.energy_above_hull:.4f} eV/atom, the lowest of this formula), database "
        f"version {phase.database_version}, entry updated {phase.last_updated}, fetched "
        f"{fetched_on} with mp-api. A computed cell: only the start of a cell relaxation.\n"
        "# Relaxation: cell (cell and ions)\n"
    )
    return header + str(CifWriter(phase.structure))


def cached_source(path: Path) -> str:
    """The ``# Source:`` line of an existing phase file (error naming the file without one)."""
    text = path.read_text(errors="replace")
    if not _SOURCE.search(text):
        raise MaterialsProjectError(
            f"{path}: cached competing-phase file has no '# Source: ...' line; add where the "
            "structure comes from, or delete the file to fetch it again"
        )
    line = next(ln for ln in text.splitlines() if ln.startswith("# Source:"))
    return line.split(":", 1)[1].strip()


def fetch_phases(
    formulas: Sequence[str],
    settings: MaterialsProjectSettings,
    directory: Path = PHASES_DIR,
    source: ThermoSource | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Make sure ``directory/<formula>.cif`` exists for every formula; fetch missing ones.

    Returns formula -> "cached" or "fetched <mp-id> (<functional>)". ``source`` replaces
    the mp-api client (tests); ``environ`` the process environment.
    """
    missing: list[str] = []
    report: dict[str, str] = {}
    for formula in formulas:
        _check_formula(formula)
        path = directory / f"{formula}.cif"
        if path.is_file():
            cached_source(path)
            report[formula] = "cached"
        elif formula not in missing:
            missing.append(formula)
    if not missing:
        return report
    if source is None:
        env = os.environ if environ is None else environ
        key = env.get(settings.api_key_env, "").strip()
        if not key:
            raise MaterialsProjectError(
                f"config key '{_WHERE}.api_key_env': environment variable "
                f"{settings.api_key_env} is not set; put your Materials Project API key there "
                f"to fetch {missing}"
            )
        source = MPApiSource(api_key=key)
    version = source.database_version()
    fetched = [
        select_lowest(f, source.thermo_docs(f, settings.thermo_type), settings.thermo_type, version)
        for f in missing
    ]
    today = _dt.date.today().isoformat()
    directory.mkdir(parents=True, exist_ok=True)
    for phase in fetched:
        path = directory / f"{phase.formula}.cif"
        tmp = path.with_suffix(".cif.part")
        tmp.write_text(phase_cif_text(phase, today))
        tmp.replace(path)
        report[phase.formula] = f"fetched {phase.material_id} ({phase.functional})"
    return report


def _check_formula(formula: str) -> None:
    if not _STEM.match(formula):
        raise MaterialsProjectError(
            f"competing phase {formula!r}: not a formula (letters and digits, e.g. SnI2)"
        )
    from pymatgen.core import Element

    unknown = [s for s in re.findall(r"[A-Z][a-z]?", formula) if not Element.is_valid_symbol(s)]
    if unknown or _reduced(formula) is None or re.match(r"^[a-z0-9]", formula):
        raise MaterialsProjectError(
            f"competing phase {formula!r}: not a formula (unknown element(s) {unknown})"
        )


def fetch_for_config(
    config: Mapping[str, Any],
    directory: Path = PHASES_DIR,
    source: ThermoSource | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Fetch the listed ``competing_phases`` of a (raw) config that have no file yet."""
    settings = MaterialsProjectSettings.from_config(config)
    if settings is None:
        raise MaterialsProjectError(
            f"config key '{_WHERE}' is not set: nothing says where to fetch phases from"
        )
    phases = config.get("competing_phases") or []
    if not isinstance(phases, list) or not all(isinstance(p, str) for p in phases):
        raise MaterialsProjectError("config key 'competing_phases': must be a list of formulas")
    return fetch_phases(phases, settings, directory, source, environ)
