"""Values read from the study's tables and JSON files, each carrying where it came from.

:class:`Table` (a CSV as :func:`~perovskite_defects.reporting.tables.read_csv` gives it)
and :class:`JsonFile` turn a cell or a key into a :class:`~perovskite_defects.reporting.page.Cite`
(the value as shown, the file, row and column or key, the value as written), or into a
visible :class:`~perovskite_defects.reporting.page.Missing` when it is empty. The findings
page (:mod:`perovskite_defects.reporting.findings`) writes its numbers only through these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from perovskite_defects.reporting.page import Cite, Inline, Missing, Source

Row = Mapping[str, Any]


def energy(value: float) -> str:
    """An energy as the Markdown tables show it (3 decimals, no "-0.000")."""
    text = f"{value:.3f}"
    return "0.000" if text == "-0.000" else text


def density(value: float) -> str:
    """A concentration as the Markdown tables show it."""
    return f"{value:.3e}"


def cell_text(value: Any) -> str:
    """A value as the CSV (or JSON) holds it: floats in full precision."""
    return repr(value) if isinstance(value, float) else str(value)


def plain(value: Any) -> str:
    """A setting as written, floats without trailing zeros (350.0 -> "350")."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def tensor_text(value: Any) -> str:
    """A dielectric constant or tensor: "10", "diag(5, 5, 7.5)", or the full 3x3 list."""
    if not isinstance(value, list):
        return f"{value:g}"
    diag = [value[i][i] for i in range(3)]
    off = any(value[i][j] for i in range(3) for j in range(3) if i != j)
    if off:
        return str(value)
    return (
        f"{diag[0]:g}" if len(set(diag)) == 1 else "diag(" + ", ".join(f"{d:g}" for d in diag) + ")"
    )


@dataclass(frozen=True)
class Table:
    """One CSV table: its path relative to the page, its rows, and the columns that name a
    row for the reader (e.g. defect and charge)."""

    path: str
    rows: Sequence[Row]
    keys: tuple[str, ...]

    def cite(self, index: int, column: str, show: Any = str, unit: str = "") -> Inline:
        """The cell as a cited value, or a visible "missing" when the cell is empty."""
        row = self.rows[index]
        value = row.get(column)
        where = f'row {index + 1} ({self.row_name(index)}), column "{column}"'
        if value is None:
            return Missing(f"missing (empty cell: {self.path}, {where})")
        return Cite(f"{show(value)}{unit}", Source(self.path, where, cell_text(value)))

    def row_name(self, index: int) -> str:
        return ", ".join(f"{k} {self.rows[index].get(k)}" for k in self.keys)

    def find(self, **match: Any) -> int | None:
        """Index of the first row whose columns equal ``match``."""
        for i, row in enumerate(self.rows):
            if all(row.get(k) == v for k, v in match.items()):
                return i
        return None


def json_path(keys: Sequence[str | int]) -> str:
    """``hosts["CsSn0.5Pb0.5I3"].composition.x``: names joined by dots, list indices and
    names that hold a dot or a bracket (host names do) in brackets, so the path reads back."""
    parts = []
    for key in keys:
        if isinstance(key, int):
            parts.append(f"[{key}]")
        elif any(c in key for c in '.[]"'):
            parts.append(f'["{key}"]')
        else:
            parts.append(f".{key}")
    return "".join(parts).removeprefix(".")


@dataclass(frozen=True)
class JsonFile:
    """One JSON file (e.g. a provenance.json): its path relative to the page and content."""

    path: str
    data: Mapping[str, Any]

    def get(self, *keys: str | int) -> Any:
        node: Any = self.data
        for key in keys:
            try:
                node = node[key]
            except (KeyError, IndexError, TypeError):
                return None
        return node

    def cite(self, *keys: str | int, show: Any = str, unit: str = "") -> Inline:
        """The value at ``keys`` as a cited value, or a visible "missing"."""
        value = self.get(*keys)
        where = "key " + json_path(keys)
        if value is None:
            return Missing(f"missing ({self.path}, {where} is absent or null)")
        return Cite(f"{show(value)}{unit}", Source(self.path, where, cell_text(value)))
