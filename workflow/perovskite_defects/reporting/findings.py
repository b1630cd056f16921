"""The findings page of a study: plain sentences written from its tables, every number cited.

Per composition (host): the setup it was computed with (engine and version, settings,
band edges, correction and dielectric constant, chemical-potential source, all from its
``provenance.json``), its deep levels and the densities of the deep-trap defects at each
chemical-potential limit beside the Fermi level and carriers, what the dopants (Na)
change (its ``dopant_effect`` table), what is missing (failed or absent defects, absent
competing phases), and its figures. Across compositions: what the dopants change at each
composition, from the aggregated ``tables/dopant_effect.csv``.

Pure: :class:`StudyInput` (rows as :func:`~perovskite_defects.reporting.tables.read_csv`
gives them, JSON as loaded) in, Markdown or HTML text out; the step
:mod:`perovskite_defects.steps.report` reads the files. The wording follows the numbers
(a change is "unchanged" when both numbers print alike at the tables' precision: 3
decimals in eV, 4 significant digits in cm^-3); no number is written that is not read from
a file, except differences and ratios of two cited numbers, which say so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from perovskite_defects.defects.names import expand_roles
from perovskite_defects.reporting import page
from perovskite_defects.reporting.cited import JsonFile, Table, density, energy, plain, tensor_text
from perovskite_defects.reporting.page import Inline, Link, Missing, sentence
from perovskite_defects.thermodynamics.rows import (
    CHARGE,
    CONVERGED,
    DEFECT,
    DEPTH,
    LEVEL,
    MISSING,
    NO_LEVEL,
    TRANSITION,
)

EDGE_DEPTH = "depth from nearest edge (eV)"
FERMI = "Fermi level above VBM (eV)"
F_NATIVE, F_DOPED = "Fermi level, native only (eV)", "Fermi level, with dopants (eV)"
N_NATIVE, N_DOPED = "n, native only (cm^-3)", "n, with dopants (cm^-3)"
P_NATIVE, P_DOPED = "p, native only (cm^-3)", "p, with dopants (cm^-3)"
D_NATIVE = "deep-trap density, native only (cm^-3)"
D_DOPED = "deep-trap density, with dopants (cm^-3)"
N_WORDS, P_WORDS = ("n goes from ", "n stays at "), ("p from ", "p stays at ")


@dataclass(frozen=True)
class HostInput:
    """The files of one host (composition) that the page reads.

    Attributes:
        name: host folder name (e.g. "CsPbI3").
        formation, levels, fermi, concentrations, dopant_effect: its tables.
        provenance: its ``tables/provenance.json``.
        chemical_potentials: its ``chemical_potentials.json``.
        figures: (chemical-potential limit, figure path) of its formation-energy diagrams.
    """

    name: str
    formation: Table
    levels: Table
    fermi: Table
    concentrations: Table
    dopant_effect: Table
    provenance: JsonFile
    chemical_potentials: JsonFile
    figures: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class StudyInput:
    """Everything the page reads: the hosts, the aggregated dopant table and provenance."""

    study: str
    hosts: tuple[HostInput, ...]
    provenance: JsonFile  # tables/provenance.json (config, hosts and their compositions)
    dopant_effect: Table  # tables/dopant_effect.csv, every host
    figures: tuple[str, ...] = field(default_factory=tuple)  # study-wide (trap levels)


# --------------------------------------------------------------------------- per host


def _composition(study: StudyInput, host: str) -> tuple[Inline, ...]:
    comp = study.provenance.get("hosts", host, "composition") or {}
    if "formula" in comp:
        return (f"{host}: formula ", study.provenance.cite("hosts", host, "composition", "formula"))
    if "x" not in comp:
        return (Missing(f"{host}: composition missing from {study.provenance.path}"),)
    anions = comp.get("X") or {}
    x_site = "+".join(f"{el}{frac:g}" if len(anions) > 1 else el for el, frac in anions.items())
    return sentence(
        f"{host}: A = {comp.get('A')}, Sn fraction x = ",
        study.provenance.cite("hosts", host, "composition", "x", show=lambda v: f"{v:g}"),
        f", X = {x_site} (as achieved in the supercell)",
    )


_SETTINGS = (
    ("functional", "functional ", ""),
    ("basis", "basis ", ""),
    ("cutoff_ry", "cutoff ", " Ry"),
    ("encut", "ENCUT ", " eV"),
)


def _setup(study: StudyInput, host: HostInput) -> page.Paragraph:
    """Engine, settings, band edges, correction and dielectric, chemical potentials."""
    prov = host.provenance
    parts: list[Inline | None] = [*_composition(study, host.name), ". Computed with "]
    parts += [prov.cite("records", 0, "engine"), " (", prov.cite("records", 0, "engine_version")]
    parts.append(")")
    if prov.get("records", 0, "replayed_from"):  # the test-only replay engine
        parts += [", replayed from the recording ", prov.cite("records", 0, "replayed_from")]
    if prov.get("records", 0, "engine") == "cp2k":  # VASP takes vasp.settings, not a level
        parts += [", settings level ", prov.cite("config", "level")]
    settings = prov.get("records", 0, "settings", "settings") or {}
    for key, label, unit in _SETTINGS:
        if key in settings:
            value = prov.cite("records", 0, "settings", "settings", key, show=plain, unit=unit)
            parts += [f", {label}", value]
    parts += [", bulk k-mesh ", prov.cite("records", 0, "settings", "kpoint_mesh"), ". "]
    parts += ["Band edges from ", prov.cite("band_edges", "source"), ": VBM at "]
    parts += [prov.cite("band_edges", "vbm", show=energy, unit=" eV"), ", band gap "]
    parts += [prov.cite("band_edges", "gap", show=energy, unit=" eV")]
    if prov.get("band_edges_without_soc"):
        parts += [" with the spin-orbit shifts of ", prov.cite("spin_orbit_shifts"), " (gap "]
        parts += [
            prov.cite("band_edges_without_soc", "gap", show=energy, unit=" eV"),
            " without them)",
        ]
    parts += [". Finite-size correction ", prov.cite("config", "correction"), *_dielectric(prov)]
    parts += [". Chemical potentials: ", host.chemical_potentials.cite("source"), "."]
    return page.Paragraph(sentence(*parts))


def _dielectric(prov: JsonFile) -> list[Inline]:
    """The dielectric constant the corrections used, and its source."""
    source = [" (source: ", prov.cite("config", "dielectric", "source"), ")"]
    if prov.get("config", "dielectric", "value") is not None:
        value = prov.cite("config", "dielectric", "value", show=tensor_text)
        return [" with dielectric constant ", value, *source]
    for i, record in enumerate(prov.get("records") or []):
        if (record.get("correction") or {}).get("dielectric_tensor") is not None:
            tensor = prov.cite("records", i, "correction", "dielectric_tensor", show=tensor_text)
            return [" with dielectric constant ", tensor, *source]
    return [", ", Missing("dielectric constant not recorded (no correction holds one)"), *source]


def _level_label(levels: Table, i: int) -> str:
    return f"{levels.rows[i][DEFECT]}({levels.rows[i][TRANSITION]})"


def _level_rows(levels: Table, trap_class: str | None = None) -> list[int]:
    """Rows holding a level (not "none" or "missing"), of one class when given."""
    return [
        i
        for i, row in enumerate(levels.rows)
        if row.get(LEVEL) is not None and (trap_class is None or row.get("class") == trap_class)
    ]


def _why(levels: Table, i: int) -> str:
    """What set the class when it was not the position alone."""
    row = levels.rows[i]
    reason = row.get("class from")
    if reason and reason != "position":
        return f" (class from {reason}; by position {row.get('class by position')})"
    return ""


def deepest_level(levels: Table) -> int | None:
    """The deep level furthest from its nearest band edge (first in table order on a tie)."""
    deep = [i for i in _level_rows(levels, "deep") if levels.rows[i].get(EDGE_DEPTH) is not None]
    return max(deep, key=lambda i: levels.rows[i][EDGE_DEPTH], default=None)


def deep_defects(levels: Table) -> list[str]:
    """Defects with a deep level, in table order."""
    return list(dict.fromkeys(levels.rows[i][DEFECT] for i in _level_rows(levels, "deep")))


def _levels_blocks(levels: Table) -> list[page.Block]:
    """The deep levels (the deepest named), the other levels, and defects without one."""
    blocks: list[page.Block] = []
    deep = _level_rows(levels, "deep")
    items = [
        (f"{_level_label(levels, i)}: ", levels.cite(i, LEVEL, energy, " eV"), " above the VBM, ")
        + (levels.cite(i, DEPTH, energy, " eV"), " below the CBM", _why(levels, i))
        for i in deep
    ]
    if not deep:
        blocks.append(page.Paragraph(("No transition level of this host is deep.",)))
    else:
        blocks.append(page.Paragraph(("Deep levels (class deep in the levels table):",)))
        blocks.append(page.Bullets(tuple(items)))
        i = deepest_level(levels)
        if i is not None:
            words: list[Inline] = [f"The deepest is {_level_label(levels, i)}, "]
            words += [levels.cite(i, EDGE_DEPTH, energy, " eV"), " from the "]
            words += [levels.cite(i, "nearest edge"), ", its nearest band edge."]
            blocks.append(page.Paragraph(tuple(words)))
    others = [i for i in _level_rows(levels) if i not in deep]
    if others:
        parts: list[Inline] = ["Other levels: "]
        for n, i in enumerate(others):
            parts += ["; " if n else "", f"{_level_label(levels, i)} ", levels.cite(i, "class")]
            parts += [", ", levels.cite(i, EDGE_DEPTH, energy, " eV"), " from the "]
            parts += [levels.cite(i, "nearest edge"), _why(levels, i)]
        blocks.append(page.Paragraph((*parts, ".")))
    none = [r[DEFECT] for r in levels.rows if r.get(TRANSITION) == NO_LEVEL]
    if none:
        blocks.append(page.Paragraph((f"No transition level: {', '.join(none)}.",)))
    return blocks


def _limit_item(host: HostInput, i: int, deep: Sequence[str]) -> tuple[Inline, ...]:
    """One limit: the deepest trap's density, the other deep traps', the Fermi level."""
    fermi, conc, levels = host.fermi, host.concentrations, host.levels
    limit = fermi.rows[i]["limit"]
    parts: list[Inline] = [f"At the {limit} limit"]
    deepest = deepest_level(levels)
    order = list(deep)
    if deepest is not None:
        name = levels.rows[deepest][DEFECT]
        order = [name] + [d for d in deep if d != name]
        parts += [f", the deepest trap, {_level_label(levels, deepest)}, has a density of "]
        parts += [*_density(conc, limit, name), f" ({name} in all its charge states)"]
    for n, name in enumerate(order[1:]):
        parts += ["; other deep traps: " if n == 0 else ", ", f"{name} "]
        parts += _density(conc, limit, name)
    parts += ["; the Fermi level settles " if deep else ", the Fermi level settles "]
    parts += [fermi.cite(i, FERMI, energy, " eV"), " above the VBM", *_outside_gap(host, i)]
    parts += [" at ", fermi.cite(i, "temperature (K)", lambda v: f"{v:g}", " K"), ", with n = "]
    parts += [fermi.cite(i, "n (cm^-3)", density, " cm^-3"), " and p = "]
    parts += [fermi.cite(i, "p (cm^-3)", density, " cm^-3")]
    if fermi.rows[i].get("synthesis temperature (K)") is not None:
        parts += ["; the defects were equilibrated at "]
        parts += [fermi.cite(i, "synthesis temperature (K)", lambda v: f"{v:g}", " K")]
        parts += [", where the Fermi level was "]
        parts += [fermi.cite(i, "synthesis Fermi level (eV)", energy, " eV")]
    if not deep:
        parts.append("; no defect has a deep level, so there is no deep-trap density")
    return (*parts, ".")


def _density(conc: Table, limit: str, name: str) -> list[Inline]:
    i = conc.find(limit=limit, defect=name)
    if i is None:
        return [Missing(f"missing (no {name} row at {limit} in {conc.path})")]
    return [conc.cite(i, "defect total (cm^-3)", density, " cm^-3")]


def _outside_gap(host: HostInput, i: int) -> list[Inline]:
    """Says so when the Fermi level lies in a band (compared with the cited gap)."""
    level, gap = host.fermi.rows[i].get(FERMI), host.provenance.get("band_gap")
    if level is None or gap is None or 0.0 <= level <= gap:
        return []
    where = "below the VBM" if level < 0 else "above the CBM"
    return [f" ({where}: gap ", host.provenance.cite("band_gap", show=energy, unit=" eV"), ")"]


def _change(
    table: Table, i: int, columns: tuple[str, str], show: Any, unit: str, words: tuple[str, str]
) -> list[Inline]:
    """ "<moved> a to b" of two cited columns (native only, with dopants), or "<kept> b
    (native defects alone: a)" when they print alike; ``words`` = (moved, kept)."""
    before, after = columns
    a, b = table.rows[i].get(before), table.rows[i].get(after)
    cite_a, cite_b = table.cite(i, before, show, unit), table.cite(i, after, show, unit)
    if a is not None and b is not None and show(a) == show(b):
        return [words[1], cite_b, " (native defects alone: ", cite_a, ")"]
    return [words[0], cite_a, " (native defects alone) to ", cite_b]


def _verb(table: Table, i: int, before: str, after: str, show: Any) -> str:
    """ "raises", "lowers" or "leaves" (printed alike), "changes" when a number is missing."""
    a, b = table.rows[i].get(before), table.rows[i].get(after)
    if a is None or b is None:
        return "changes"
    if show(a) == show(b):
        return "leaves"
    return "raises" if b > a else "lowers"


def dopant_sentence(
    table: Table, i: int, subject: Sequence[Inline], carriers: bool = True
) -> tuple[Inline, ...]:
    """What the dopants change in one row of a dopant_effect table, after ``subject``
    (e.g. "At the I-rich limit"): Fermi level, n and p (with ``carriers``), deep traps."""
    row = table.rows[i]
    words = ("the Fermi level moves from ", "the Fermi level stays at ")
    parts: list[Inline] = [*subject, f", with {row.get('dopants')} "]
    parts += _change(table, i, (F_NATIVE, F_DOPED), energy, " eV", words)
    a, b = row.get(F_NATIVE), row.get(F_DOPED)
    if a is not None and b is not None and energy(a) != energy(b):
        toward = "the VBM" if b < a else "the CBM"
        parts.append(f", {energy(abs(b - a))} eV toward {toward} (difference of the two)")
    if carriers:
        parts += ["; ", *_change(table, i, (N_NATIVE, N_DOPED), density, " cm^-3", N_WORDS)]
        parts += [", ", *_change(table, i, (P_NATIVE, P_DOPED), density, " cm^-3", P_WORDS)]
    traps = row.get("deep-trap defects")
    if not traps:
        return (*parts, "; no defect has a deep level, so there is no deep-trap density to change.")
    verb = _verb(table, i, D_NATIVE, D_DOPED, density)
    words = (
        f"{row.get('dopants')} {verb} the deep-trap density ({traps}) from ",
        f"the deep-trap density ({traps}) stays at ",
    )
    parts += ["; ", *_change(table, i, (D_NATIVE, D_DOPED), density, " cm^-3", words)]
    if verb in ("raises", "lowers") and row[D_NATIVE] > 0 and row[D_DOPED] > 0:
        ratio = row[D_DOPED] / row[D_NATIVE]
        factor, word = (ratio, "higher") if ratio > 1 else (1 / ratio, "lower")
        parts.append(f", {factor:.3g} times {word} (ratio of the two)")
    return (*parts, ".")


def _dopant_blocks(host: HostInput) -> list[page.Block]:
    table = host.dopant_effect
    dopants = sorted({str(r.get("dopants")) for r in table.rows})
    title = f"What {' '.join(dopants)} changes" if dopants else "What dopants change"
    blocks: list[page.Block] = [page.Heading(3, title)]
    if not table.rows:
        text = "The study has no dopant defect: nothing to compare ("
        return [*blocks, page.Paragraph((text, Link(table.path, table.path), " has no rows)."))]
    items = [
        dopant_sentence(table, i, (f"At the {r['limit']} limit",)) for i, r in enumerate(table.rows)
    ]
    return [*blocks, page.Bullets(tuple(items))]


def _missing_items(study: StudyInput, host: HostInput) -> list[tuple[Inline, ...]]:
    """Failed, unconverged and absent defects, missing levels, absent competing phases."""
    fe, items = host.formation, list[tuple[Inline, ...]]()
    for i, row in enumerate(fe.rows):
        status = row.get(CONVERGED)
        if status is True:
            continue
        what = "did not converge (numbers kept)" if status is False else "no formation energy"
        label = Missing(f"{row.get(DEFECT)} in charge {row.get(CHARGE)}: {what}")
        items.append((label, " (converged: ", fe.cite(i, CONVERGED), ")."))
    for i, row in enumerate(host.levels.rows):
        if row.get(TRANSITION) == MISSING:
            why = " (a charge state failed, so a level could be hidden)."
            label = Missing(f"{row.get(DEFECT)}: transition levels missing")
            items.append((label, " (q/q': ", host.levels.cite(i, TRANSITION), ")", why))
    for name in absent_defects(study, host):
        items.append((Missing(f"{name}: requested in the config, no row in {fe.path}"),))
    for i, note in enumerate(host.chemical_potentials.get("notes") or []):
        if " is not in the calculation" in note:
            phase = note.split(" is not in the calculation")[0]
            cited = host.chemical_potentials.cite("notes", i, show=lambda v: v.split(":")[0])
            how = " (the note says how far it could move the limits)."
            items.append((Missing(f"competing phase {phase} absent"), ": ", cited, how))
    if not host.fermi.rows:
        items.append((Missing(f"no Fermi level: {host.fermi.path} has no rows"),))
    return items


def absent_defects(study: StudyInput, host: HostInput) -> list[str]:
    """Requested defects (config names, role letters expanded for the host's species, e.g.
    V_X -> V_I) without a row in the formation-energy table; a row's id may carry a site
    class (V_I-Pb2)."""
    comp = study.provenance.get("hosts", host.name, "composition") or {}
    ids = {str(r.get(DEFECT)) for r in host.formation.rows}
    absent = []
    for defect in host.provenance.get("config", "defects") or []:
        name = str(defect.get("name"))
        concrete = [name]
        if "x" in comp:  # a perovskite: A, B and X stand for the host's species
            b = [el for el, on in (("Pb", comp["x"] < 1), ("Sn", comp["x"] > 0)) if on]
            concrete = expand_roles(name, comp.get("A", "A"), b, list(comp.get("X") or {}))
        for n in concrete:
            if not any(i == n or i.startswith(f"{n}-") for i in ids):
                absent.append(n if n == name else f"{n} (from {name})")
    return absent


def host_blocks(study: StudyInput, host: HostInput) -> list[page.Block]:
    """The section of one host."""
    blocks: list[page.Block] = [page.Heading(2, host.name), _setup(study, host)]
    blocks += [page.Heading(3, "Deep traps"), *_levels_blocks(host.levels)]
    deep = deep_defects(host.levels)
    limits = [_limit_item(host, i, deep) for i in range(len(host.fermi.rows))]
    if limits:
        blocks.append(page.Bullets(tuple(limits)))
    blocks += _dopant_blocks(host)
    blocks.append(page.Heading(3, "Missing"))
    missing = _missing_items(study, host)
    if missing:
        blocks.append(page.Bullets(tuple(missing)))
    else:
        table = Link(host.formation.path, host.formation.path)
        rest = " converged, every requested defect has rows, no competing phase is absent."
        blocks.append(page.Paragraph(("Nothing: every defect charge state of ", table, rest)))
    if host.figures:
        blocks.append(page.Heading(3, "Figures"))
        for limit, path in host.figures:
            blocks.append(page.Image(f"Formation energies of {host.name}, {limit} limit", path))
    return [*blocks, page.SourceList()]


# --------------------------------------------------------------------------- across hosts


def _host_label(table: Table, i: int) -> tuple[Inline, ...]:
    row = table.rows[i]
    if row.get("x") is None:
        return (str(row.get("host")),)
    return (f"{row.get('host')} (x = ", table.cite(i, "x", lambda v: f"{v:g}"), ")")


def _across_limit(table: Table, limit: str, hosts: Sequence[str]) -> list[page.Block]:
    """One limit across the hosts: who gains and who loses deep traps, then the numbers."""
    rows = {
        table.rows[i].get("host"): i
        for i in range(len(table.rows))
        if table.rows[i].get("limit") == limit
    }
    groups: dict[str, list[str]] = {}
    for host, i in rows.items():
        if table.rows[i].get("deep-trap defects"):
            groups.setdefault(_verb(table, i, D_NATIVE, D_DOPED, density), []).append(str(host))
    dopants = " ".join(sorted({str(table.rows[i].get("dopants")) for i in rows.values()}))
    said = [
        f"{verb} it{' unchanged' if verb == 'leaves' else ''} in {', '.join(names)}"
        for verb, names in sorted(groups.items())
    ]
    summary = f"At the {limit} limit no composition has a deep-trap density."
    if said:
        summary = f"At the {limit} limit, {dopants} " + "; ".join(said)
        summary = summary.replace(" it", " the deep-trap density", 1) + "."
    items = [
        dopant_sentence(table, i, ("In ", *_host_label(table, i)), False) for i in rows.values()
    ]
    for host in hosts:
        if host not in rows:
            items.append((Missing(f"{host}: no {limit} row in {table.path}"),))
    return [page.Paragraph((summary,)), page.Bullets(tuple(items))]


def across_blocks(study: StudyInput) -> list[page.Block]:
    """What the dopants change at each composition, from the aggregated table."""
    table = study.dopant_effect
    hosts = [h.name for h in study.hosts]
    blocks: list[page.Block] = [page.Heading(2, "Across compositions")]
    link = Link(table.path, table.path)
    if len(hosts) < 2:
        text = f"The study has one composition ({', '.join(hosts)}): nothing to compare ("
        blocks.append(page.Paragraph((text, link, " holds its rows as above).")))
    elif not table.rows:
        blocks.append(page.Paragraph(("No composition has a dopant defect (", link, " is empty).")))
    else:
        limits = list(dict.fromkeys(str(r.get("limit")) for r in table.rows))
        for limit in limits:
            blocks += _across_limit(table, limit, hosts)
    for path in study.figures:
        blocks.append(page.Image("Charge-transition levels of every composition", path))
    return [*blocks, page.SourceList()]


def findings_blocks(study: StudyInput) -> list[page.Block]:
    """The whole page: introduction, one section per host, the comparison across hosts."""
    intro = (
        f"Written from the tables of study {study.study} alone (rule findings). After each "
        "number, [n] links to the file it was read from; the list closing each section names "
        "the row and column (or JSON key) and the value as written. Differences and ratios "
        "are of two cited numbers. A number that is not there is marked missing, in bold. "
        "Every record behind the tables: ",
        Link(study.provenance.path, study.provenance.path),
        " and each host's tables/provenance.json.",
    )
    blocks: list[page.Block] = [page.Heading(1, f"Findings: {study.study}"), page.Paragraph(intro)]
    for host in study.hosts:
        blocks += host_blocks(study, host)
    return blocks + across_blocks(study)


def findings_markdown(study: StudyInput) -> str:
    """The findings page as Markdown."""
    return page.to_markdown(findings_blocks(study))


def findings_html(study: StudyInput) -> str:
    """The findings page as one standalone HTML file."""
    return page.to_html(findings_blocks(study), f"Findings: {study.study}")
