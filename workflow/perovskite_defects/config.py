"""Study configuration: JSON-schema validation with defaults, and the checks a schema cannot do.

Every error is one line that names the key, the value and what is allowed, raised as
:class:`ConfigError` before any job starts.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from perovskite_defects.corrections.dielectric import (
    DielectricError,
    is_computed,
    screening,
    screening_tensor,
    total_tensor,
)
from perovskite_defects.defects.names import (
    OXIDATION,
    ROLES,
    concrete_names,
    default_charges,
    parse_name,
)
from perovskite_defects.engines.cp2k_settings import Cp2kSettings
from perovskite_defects.hosts.any_structure import PEROVSKITE, framework
from perovskite_defects.hosts.composition import CompositionError, parse_composition
from perovskite_defects.hosts.structure_checks import StructureError, check_phase_structure
from perovskite_defects.thermodynamics.given_limits import ChemicalPotentialError, check_config
from perovskite_defects.thermodynamics.spin_orbit_edges import check_config as check_soc

PACKAGE_ROOT = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_ROOT.parents[1]
SCHEMA_PATH = PROJECT_ROOT / "workflow" / "schemas" / "config.schema.yaml"
PHASES_DIR = PROJECT_ROOT / "structures" / "phases"


class ConfigError(ValueError):
    """The study configuration is invalid; the message is one line naming the key."""


def load_schema() -> dict[str, Any]:
    # libyaml's loader when PyYAML has it: the same dict, 8x faster (every Snakefile parse)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    schema: dict[str, Any] = yaml.load(SCHEMA_PATH.read_text(), Loader=loader)  # noqa: S506
    return schema


def _fill_defaults(instance: Any, schema: Mapping[str, Any]) -> Any:
    """Fill defaults recursively (objects, and the items of arrays of objects)."""
    if schema.get("type") == "object" and isinstance(instance, dict):
        for key, sub in schema.get("properties", {}).items():
            if key not in instance and "default" in sub:
                instance[key] = copy.deepcopy(sub["default"])
            if key in instance:
                instance[key] = _fill_defaults(instance[key], sub)
    elif schema.get("type") == "array" and isinstance(instance, list) and "items" in schema:
        instance = [_fill_defaults(item, schema["items"]) for item in instance]
    return instance


def _format_error(error) -> str:
    path = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        return f"config key '{path}': unknown key(s) {extra}; allowed: {allowed}"
    if error.validator == "enum":
        return f"config key '{path}': {error.instance!r} is not one of {error.validator_value}"
    if error.validator == "pattern":
        return (
            f"config key '{path}': {error.instance!r} does not match the allowed pattern "
            f"{error.validator_value}"
        )
    if error.validator == "required":
        return f"config key '{path}': {error.message}"
    return f"config key '{path}': {error.message}"


def validate(raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate a config mapping against the schema and return it with defaults filled."""
    import jsonschema

    config = copy.deepcopy(dict(raw or {}))
    schema = load_schema()
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError(_format_error(errors[0]))
    config = _fill_defaults(config, schema)
    if config["ground_state_search"] is False:  # YAML 1.1 reads an unquoted off as false
        config["ground_state_search"] = "off"
    _check_semantics(config)
    return config


def load(path: str | Path) -> dict[str, Any]:
    """Read and validate a YAML config file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {p} is not valid YAML: {err}".splitlines()[0]) from err
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"config file {p}: top level must be a mapping of keys")
    return validate(raw)


@dataclass(frozen=True)
class DefectSpec:
    """A defect as named in config: V_X (vacancy), D_S (substitution), D_i (interstitial)."""

    name: str
    kind: str  # "vacancy" | "substitution" | "interstitial"
    species: str | None  # the added species (None for vacancies)
    site: str | None  # the species whose site is used (None for interstitials)
    charges: tuple[int, ...]
    site_index: int = 0

    @property
    def atoms_added(self) -> dict[str, int]:
        """n_i of the formation energy: +1 for atoms added, -1 for atoms removed."""
        added: dict[str, int] = {}
        if self.species:
            added[self.species] = added.get(self.species, 0) + 1
        if self.site:
            added[self.site] = added.get(self.site, 0) - 1
        return added


_NAME = re.compile(r"^(?:(V)_([A-Z][a-z]?)|([A-Z][a-z]?)_([A-Z][a-z]?|i))$")


def parse_defect(entry: Mapping[str, Any], host: Collection[str] = ()) -> DefectSpec:
    """The DefectSpec of a config entry; ``host`` (its species names) decides which
    interstitials and antisites are native for the charge rule (defects/names.py)."""
    match = _NAME.match(entry["name"])
    if not match:
        raise ConfigError(f"config key 'defects': {entry['name']!r} is not a defect name")

    charges = tuple(int(q) for q in (entry.get("charges") or default_charges(entry["name"], host)))
    index = int(entry.get("site_index", 0))
    if match.group(1):
        return DefectSpec(entry["name"], "vacancy", None, match.group(2), charges, index)
    species, site = match.group(3), match.group(4)
    if site == "i":
        return DefectSpec(entry["name"], "interstitial", species, None, charges, index)
    return DefectSpec(entry["name"], "substitution", species, site, charges, index)


def host_name(config: Mapping[str, Any]) -> str:
    """Name of the ``host`` composition (CsPbI3, CsSn0.5Pb0.5I3, ...)."""

    if framework(config) != PEROVSKITE:  # framework any: host.name or the file's formula
        # why: study loads pymatgen.core (defect manifests); every job imports config
        from perovskite_defects.study import plan_hosts

        return str(plan_hosts(config, PROJECT_ROOT)[0].name)

    return parse_composition(config["host"], "host").name


def host_species(config: Mapping[str, Any]) -> dict[str, str]:
    host = config["host"]
    return {"A": host["A"], "B": host["B"], "X": host["X"]}


def defect_specs(config: Mapping[str, Any]) -> list[DefectSpec]:
    host = {v for v in host_species(config).values() if isinstance(v, str)}
    return [parse_defect(entry, host) for entry in config["defects"]]


def _element_set(formula: str) -> set[str]:
    return set(re.findall(r"[A-Z][a-z]?", formula))


def shipped_phases() -> list[str]:
    """Names of the competing-phase structure files in structures/phases/."""
    return sorted(p.stem for p in PHASES_DIR.glob("*.cif"))


def unlisted_phases(elements: set[str], phases: list[str]) -> list[str]:
    """Shipped phases made of ``elements`` that ``phases`` leaves out.

    Each bears on the chemical-potential limits of a host of these elements: without it
    the limits can come out too wide. Not an error (a quick study may use the elements
    alone); the chemical-potential step writes them into the notes of the tables.
    """
    return [p for p in shipped_phases() if _element_set(p) <= elements and p not in phases]


def _check_computed_dielectric(config: dict[str, Any]) -> None:
    """``dielectric.source: computed``: no cited numbers beside it, and the CP2K engine."""
    # imported here: importing the config module needs no numpy (corrections/)

    dielectric = config["dielectric"]
    if not is_computed(dielectric):
        return
    given = [k for k in ("value", "electronic", "ionic") if dielectric.get(k) is not None]
    if given:
        raise ConfigError(
            f"config key 'dielectric.{given[0]}': must be null when 'dielectric.source' is "
            "'computed' (the computed tensor replaces it)"
        )
    if config["engine"] != "cp2k":
        raise ConfigError(
            "config key 'dielectric.source': 'computed' needs engine cp2k, "
            f"got {config['engine']!r}"
        )


def _check_semantics(config: dict[str, Any]) -> None:
    """Compositions, supercells, structure files, defects and phases of every host."""
    # why: study loads pymatgen.core (defect manifests); every job imports config
    from perovskite_defects.study import check_defects, plan_hosts

    try:
        total_tensor(config["dielectric"])
        screening(config["dielectric"])
        if not is_computed(config["dielectric"]):
            screening_tensor(config["dielectric"])
    except DielectricError as err:
        raise ConfigError(str(err)) from None
    _check_computed_dielectric(config)

    names = [d["name"] for d in config["defects"]]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"config key 'defects': defect(s) listed twice: {duplicates}")
    try:
        hosts = plan_hosts(config, PROJECT_ROOT)
        dopants = check_defects(config, hosts)
    except CompositionError as err:
        raise ConfigError(str(err)) from err
    from pymatgen.core.periodic_table import Element

    for i, entry in enumerate(config["defects"]):
        for part in entry["name"].split("+"):
            head = part.split("_")[0]
            known = ("V", "Cs", "FA", "MA", "Pb", "Sn", *ROLES)
            if head not in known and not Element.is_valid_symbol(head):
                raise ConfigError(f"config key 'defects.{i}.name': {head!r} is not an element")
            _, _, tail = part.partition("_")
            if head == tail:
                raise ConfigError(
                    f"config key 'defects.{i}.name': {part!r} puts a species on its own site"
                )
    _check_charges(config, hosts)
    _check_engine_settings(config)
    _check_stability(config)

    try:
        check_soc(config)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if config.get("chemical_potentials"):
        # Given limits replace the competing phases (none is computed): see user_chempots.py.

        try:
            check_config(
                config["chemical_potentials"],
                set().union(*(h.elements for h in hosts)) | dopants,
                len(hosts),
            )
        except ChemicalPotentialError as err:
            raise ConfigError(str(err)) from None
        return
    phases = config["competing_phases"]
    for i, phase in enumerate(phases):
        if not (PHASES_DIR / f"{phase}.cif").is_file():
            available = sorted(p.stem for p in PHASES_DIR.glob("*.cif"))
            fetch = (
                "; fetch it with `perovskite-defects fetch-phases CONFIG`"
                if (config.get("competing_phases_source") or {}).get("materials_project")
                is not None
                else ""
            )
            raise ConfigError(
                f"config key 'competing_phases.{i}': no structure file structures/phases/"
                f"{phase}.cif (available: {available}){fetch}"
            )
        _check_phase_file(phase, i)
    covered = set().union(*(_element_set(p) for p in phases)) if phases else set()
    elemental = {p for p in phases if len(_element_set(p)) == 1}
    for host in hosts:
        needed = host.elements | dopants
        missing_refs = sorted(
            el for el in needed if not any(_element_set(p) == {el} for p in elemental)
        )
        if missing_refs:
            raise ConfigError(
                f"config key 'competing_phases': no elemental reference phase for {missing_refs} "
                f"(needed for chemical potentials of {host.name}; covered elements: "
                f"{sorted(covered)})"
            )


CHARGE_WINDOW = 2


def nominal_charges(name: str) -> set[int]:
    """Charges the ionic picture gives a concrete defect (V_I: +1, Na_Pb: -1, Na_i: +1, ...).

    Vacancy of an ion with oxidation state o: -o; substitution D on S: o(D) - o(S);
    interstitial D: o(D); a complex sums its parts. Host ions take their formal states
    (defects/names.py OXIDATION: A+ B2+ X-, Na+); other dopants every common oxidation state.
    """
    from pymatgen.core.periodic_table import Element

    def states(el: str | None) -> set[int]:
        if el is None:
            return {0}
        if el in OXIDATION:
            return {OXIDATION[el]}
        return set(Element(el).common_oxidation_states) or {0}

    total = {0}
    for part in name.split("+"):
        _, species, site = parse_name(part)
        total = {t + a - r for t in total for a in states(species) for r in states(site)}
    return total


def _check_charges(config: Mapping[str, Any], hosts: list[Any]) -> None:
    """Reject charge states far from anything the ionic picture allows, in every host.

    A charge more than CHARGE_WINDOW away from every nominal charge (e.g. V_I in -3: an
    iodide vacancy that binds four extra electrons) has no bound state in a halide
    perovskite; computing it would only produce a delocalised, meaningless number. The
    charges of the documented rule (defects/names.py) are always accepted: writing the
    default out must not turn it into an error (V_Pb +1, Pb_I -1 lie 3-4 from q0).
    """

    for i, entry in enumerate(config["defects"]):
        for host in hosts:
            species: set[str] = set()
            if host.framework != "perovskite":  # element names only: no role expansion
                names = [entry["name"]]
            else:
                comp = host.composition
                names = concrete_names(entry["name"], comp.a, comp.b_species, comp.x_species)
                species = {comp.a, *comp.b_species, *comp.x_species}
            for name in names:
                nominal = nominal_charges(name)
                by_rule = set(default_charges(name, species)) if species else set()
                for j, q in enumerate(entry.get("charges") or []):
                    if q not in by_rule and min(abs(q - n) for n in nominal) > CHARGE_WINDOW:
                        raise ConfigError(
                            f"config key 'defects.{i}.charges.{j}': charge {q:+d} makes no "
                            f"sense for {name} (nominal charge(s) {sorted(nominal)}; allowed "
                            f"within +-{CHARGE_WINDOW} of them)"
                        )


_SETTING_STRING = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _check_stability(config: Mapping[str, Any]) -> None:
    """host.stability with check true: CP2K (its forces are parsed) and a perovskite."""

    block = config["host"].get("stability") or {}
    if not block.get("check"):
        return
    if config["engine"] != "cp2k":
        raise ConfigError(
            f"config key 'host.stability.check': needs engine cp2k (forces of {config['engine']} "
            "runs are not parsed); set check: false"
        )
    if framework(config) != PEROVSKITE:
        raise ConfigError("config key 'host.stability.check': only for framework perovskite hosts")


def _check_engine_settings(config: Mapping[str, Any]) -> None:
    """Types and ranges of cp2k.settings (they reach the engine's input file verbatim)."""
    import dataclasses

    overrides = config["cp2k"].get("settings") or {}
    if not isinstance(overrides, dict):
        raise ConfigError("config key 'cp2k.settings': must be a mapping of setting -> value")
    fields = {f.name: f for f in dataclasses.fields(Cp2kSettings)}
    for key, value in overrides.items():
        where = f"config key 'cp2k.settings.{key}'"
        if key not in fields:
            raise ConfigError(f"{where}: unknown setting; allowed: {sorted(fields)}")
        default = fields[key].default
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, (int, float)):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if isinstance(default, int) and not isinstance(default, bool):
                ok = ok and float(value).is_integer()
        else:
            ok = isinstance(value, str)
        if not ok:
            raise ConfigError(
                f"{where}: {value!r} is not of type {type(default).__name__} (default {default!r})"
            )
        if isinstance(value, str) and not _SETTING_STRING.match(value):
            raise ConfigError(
                f"{where}: {value!r} does not match the allowed pattern {_SETTING_STRING.pattern}"
            )
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            zero_ok = key in ("relax_radius",)
            if not (value > 0 or (zero_ok and value == 0)):
                raise ConfigError(f"{where}: {value!r} must be {'>= 0' if zero_ok else '> 0'}")
            if key == "mixing_alpha" and value > 1:
                raise ConfigError(f"{where}: {value!r} must be in (0, 1]")


def _check_phase_file(phase: str, index: int) -> None:
    """The structure file of a competing phase parses and is physically sane."""

    try:
        check_phase_structure(PHASES_DIR / f"{phase}.cif", phase)
    except StructureError as err:
        raise ConfigError(f"config key 'competing_phases.{index}': {err}") from err


def check_writable(results_dir: str | Path) -> None:
    """The study's results folder is (or can be created as) a writable folder.

    Checked before any job, without creating anything: the nearest existing folder on the
    path must be a directory in which a file can be created (tried for real, because
    permission bits do not tell the whole story: root, read-only mounts).
    """
    import tempfile

    path = Path(results_dir)
    for candidate in [path, *path.parents]:
        if candidate.exists() or candidate.is_symlink():
            break
    if not candidate.is_dir():
        raise ConfigError(f"results directory {path}: {candidate} exists and is not a directory")
    try:
        with tempfile.NamedTemporaryFile(dir=candidate, prefix=".write-test-"):
            pass
    except OSError as err:
        raise ConfigError(
            f"results directory {path} is not writable ({candidate}: {err.strerror or err})"
        ) from err
