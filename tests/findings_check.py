"""Checks of a written findings page against the files it cites (shared by the tests).

:func:`check_page` reads ``results/<study>/findings.md``, follows every listed source to its
file (CSV row and column, or JSON key) and checks the value as written there, then checks
that every number shown in a sentence is that value at the tables' precision.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perovskite_defects.reporting.cited import cell_text, density, energy
from perovskite_defects.reporting.tables import read_csv

_SOURCE = re.compile(r"^- \[(\d+)\] \[(?P<file>.+?)\]\([^)]*\), (?P<where>.*): `(?P<value>.*)`$")
_ROW = re.compile(r'^row (\d+) \(.*\), column "(.*)"$')
_CITED_NUMBER = re.compile(
    r"(-?[0-9][0-9.]*(?:e[+-][0-9]+)?)( eV| cm\^-3| K| Ry)? \[\\\[(\d+)\\\]\]"
)
_MARKER = re.compile(r" \[\\\[\d+\\\]\]\([^)]*\)")


@dataclass
class PageCheck:
    sources: dict[int, str]  # number -> value as written
    numbers: int  # numbers in sentences checked against their source
    text: str  # the page without source markers (sentences as read)


def _unescape(text: str) -> str:
    return re.sub(r"\\([\\*\[\]])", r"\1", text)


def _json_value(data: Any, where: str) -> Any:
    path = where[len("key ") :]
    for name, index, quoted in re.findall(r'\.?([^.\[\]"]+)|\[(\d+)\]|\["([^"]+)"\]', path):
        data = data[int(index)] if index else data[quoted or name]
    return data


def _value_in_file(results: Path, file: str, where: str) -> str:
    row = _ROW.match(where)
    if row:
        return cell_text(read_csv(results / file)[int(row.group(1)) - 1][row.group(2)])
    assert where.startswith("key "), where
    return cell_text(_json_value(json.loads((results / file).read_text()), where))


def check_page(results: Path, page: str = "findings.md") -> PageCheck:
    """Every source of the page equals its file; every cited number equals its source."""
    md = (results / page).read_text()
    sources: dict[int, str] = {}
    for line in md.splitlines():
        match = _SOURCE.match(line)
        if match:
            file, where = _unescape(match["file"]), _unescape(match["where"])
            assert _value_in_file(results, file, where) == match["value"], line
            sources[int(match.group(1))] = match["value"]
    numbers = 0
    for shown, unit, ref in _CITED_NUMBER.findall(md):
        try:
            value = float(sources[int(ref)])
        except ValueError:  # a text source ending in digits (an engine version)
            continue
        # energies and densities as in the Markdown tables; settings and the rest with %g
        expected = {" eV": energy, " cm^-3": density}.get(unit, lambda v: f"{v:g}")(value)
        assert shown in (expected, f"{value:g}"), (shown, unit, ref, value)
        numbers += 1
    return PageCheck(sources, numbers, _MARKER.sub("", md))
