"""Figures of a study (matplotlib, PNG and SVG), drawn from ``tables/levels.json``.

- :func:`formation_energy_diagram`: E_f against E_F across the gap at one
  chemical-potential limit, one line per defect following its lowest-energy charge state
  (the lower envelope), transition levels marked with dots and labelled, gap shaded (band
  regions grey), and the self-consistent Fermi level as a dashed line.
- :func:`trap_level_chart`: levels of every defect in the gap, side by side for each
  composition (host), coloured by class (deep, shallow, resonant).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from perovskite_defects.thermodynamics.formation import (
    envelope_energy,
    format_charge,
    lower_envelope,
)

CLASS_COLOURS = {"deep": "#c0392b", "shallow": "#2e86c1", "resonant": "#7f8c8d"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _save(fig, stem: Path) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    # appended, not with_suffix: host names hold dots (CsSn0.5Pb0.5I3)
    paths = [stem.parent / f"{stem.name}.png", stem.parent / f"{stem.name}.svg"]
    fig.savefig(paths[0], dpi=200, bbox_inches="tight")
    # fixed hash salt and no date: the SVG is byte-identical on every run
    fig.savefig(paths[1], bbox_inches="tight", metadata={"Date": None})
    return paths


def formation_energy_diagram(
    lines: Mapping[str, Mapping[int, float]],
    gap: float,
    title: str,
    stem: str | Path,
    fermi_level: float | None = None,
    margin: float = 0.3,
) -> list[Path]:
    """Draw one formation-energy diagram; returns the PNG and SVG paths.

    Args:
        lines: defect -> charge -> E_f at E_F = VBM (eV); defects with no lines are skipped.
        gap: band gap (eV); E_F runs from -margin to gap + margin.
        title: figure title (composition and limit).
        stem: output path without suffix.
        fermi_level: self-consistent E_F to mark (eV above the VBM), if known.
    """
    import matplotlib

    matplotlib.rcParams["svg.hashsalt"] = "perovskite-defects"
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    x = np.linspace(-margin, gap + margin, 600)
    ymin, ymax = np.inf, -np.inf
    for i, (name, by_q) in enumerate(lines.items()):
        if not by_q:
            continue
        colour = f"C{i % 10}"
        y = envelope_energy({int(q): e for q, e in by_q.items()}, x)
        ax.plot(x, y, color=colour, lw=2, label=name)
        ymin, ymax = min(ymin, y.min()), max(ymax, y.max())
        segments = lower_envelope({int(q): e for q, e in by_q.items()}, (-margin, gap + margin))
        for seg in segments:  # charge labels on each stable segment
            mid = 0.5 * (seg.start + seg.end)
            if seg.end - seg.start > 0.08 * gap:
                e_mid = float(envelope_energy({int(q): e for q, e in by_q.items()}, [mid])[0])
                ax.annotate(
                    format_charge(seg.charge),
                    (mid, e_mid),
                    textcoords="offset points",
                    xytext=(0, 4),
                    ha="center",
                    fontsize=7,
                    color=colour,
                )
        for left, _ in zip(segments, segments[1:], strict=False):
            level = left.end
            e_level = float(envelope_energy({int(q): e for q, e in by_q.items()}, [level])[0])
            ax.plot([level], [e_level], "o", color=colour, ms=5, mec="k", mew=0.5)
    if not np.isfinite(ymin):
        ymin, ymax = 0.0, 1.0
    pad = 0.1 * max(ymax - ymin, 0.5)
    ax.set_ylim(min(ymin, 0.0) - pad, ymax + pad)
    ax.set_xlim(-margin, gap + margin)
    ax.axvspan(-margin, 0.0, color="0.85", zorder=0)
    ax.axvspan(gap, gap + margin, color="0.85", zorder=0)
    ax.axhline(0.0, color="k", lw=0.5)
    if fermi_level is not None and -margin <= fermi_level <= gap + margin:
        ax.axvline(fermi_level, color="k", ls="--", lw=1, label="E_F (neutrality)")
    ax.set_xlabel("Fermi level above VBM (eV)")
    ax.set_ylabel("Formation energy (eV)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    paths = _save(fig, Path(stem))
    plt.close(fig)
    return paths


def trap_level_chart(compositions: Mapping[str, Mapping[str, Any]], stem: str | Path) -> list[Path]:
    """Levels in the gap for each composition.

    Args:
        compositions: host label -> the ``levels.json`` content of its study (needs
            ``gap``, ``levels`` and optionally ``classes``).
        stem: output path without suffix.
    """
    plt = _pyplot()
    hosts = list(compositions)
    names = sorted({n for data in compositions.values() for n in data["levels"]})
    width = max(4.0, 1.2 * len(hosts) * max(1, len(names)) ** 0.5 + 2.0)
    fig, ax = plt.subplots(figsize=(width, 4.5))
    slot = 0.8 / max(1, len(names))
    for h, host in enumerate(hosts):
        data = compositions[host]
        gap = float(data["gap"])
        ax.bar(h, -0.3, bottom=0.0, width=0.9, color="0.85")  # valence band
        ax.bar(h, 0.3, bottom=gap, width=0.9, color="0.85")  # conduction band
        classes = data.get("classes", {})
        for j, name in enumerate(names):
            x0 = h - 0.4 + j * slot
            for lev in data["levels"].get(name, []):
                label = f"{format_charge(lev['q'])}/{format_charge(lev['q_prime'])}"
                cls = classes.get(f"{name} {label}", "deep")
                ax.hlines(lev["level"], x0 + 0.1 * slot, x0 + 0.9 * slot, lw=2.5,
                          color=CLASS_COLOURS.get(cls, "k"))  # fmt: skip
                ax.annotate(f"{name} ({label})", (x0 + 0.5 * slot, lev["level"]),
                            textcoords="offset points", xytext=(0, 3), ha="center",
                            fontsize=6)  # fmt: skip
    gaps = [float(compositions[h]["gap"]) for h in hosts] or [1.0]
    ax.set_ylim(-0.3, max(gaps) + 0.3)
    ax.set_xlim(-0.6, len(hosts) - 0.4)
    ax.set_xticks(range(len(hosts)), hosts)
    ax.set_ylabel("Energy above VBM (eV)")
    ax.set_title("Charge-transition levels", fontsize=10)
    handles = [plt.Line2D([], [], color=c, lw=2.5, label=k) for k, c in CLASS_COLOURS.items()]
    ax.legend(handles=handles, fontsize=7, frameon=False, loc="upper right")
    paths = _save(fig, Path(stem))
    plt.close(fig)
    return paths


def study_plots(levels_json: Sequence[str | Path], out_dir: str | Path) -> list[Path]:
    """All figures of a study: one diagram per composition and limit, and the trap chart."""
    import json

    out_dir = Path(out_dir)
    data = [json.loads(Path(p).read_text()) for p in levels_json]
    paths: list[Path] = []
    for d in data:
        for limit, lines in d["lines"].items():
            paths += formation_energy_diagram(
                lines,
                d["gap"],
                f"{d['host']}, {limit}",
                out_dir / f"formation_energy_{d['host']}_{limit}",
                d.get("fermi_levels", {}).get(limit),
            )
    paths += trap_level_chart({d["host"]: d for d in data}, out_dir / "trap_levels")
    return paths
