"""A small page model with cited numbers, written out as Markdown and as HTML.

The findings page (:mod:`perovskite_defects.reporting.findings`) is built as a list of
blocks whose sentences hold :class:`Cite` pieces: a number as shown, and the file, place
and value it was read from. Both writers number the cited sources in order of first use
(one number per distinct source), put the number after each cited value as a link to its
file, and list the sources (file, row and column or JSON key, value as written) where a
:class:`SourceList` block stands. Both are deterministic: the same blocks give the same
bytes.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    """Where a number was read: ``file`` relative to the page, ``where`` in it (row and
    column, or a JSON key), and ``value`` exactly as the file holds it."""

    file: str
    where: str
    value: str


@dataclass(frozen=True)
class Cite:
    """A value in a sentence (``shown``, e.g. "0.620 eV") and its source."""

    shown: str
    source: Source


@dataclass(frozen=True)
class Link:
    """A plain link (a table or a figure)."""

    text: str
    href: str


@dataclass(frozen=True)
class Missing:
    """A number (or a whole result) that is not there, said visibly (bold)."""

    text: str


Inline = str | Cite | Link | Missing


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Paragraph:
    parts: tuple[Inline, ...]


@dataclass(frozen=True)
class Bullets:
    items: tuple[tuple[Inline, ...], ...]


@dataclass(frozen=True)
class Image:
    """A figure: embedded in Markdown, linked from the HTML (which the Snakemake report
    shows without the files beside it)."""

    alt: str
    src: str


@dataclass(frozen=True)
class SourceList:
    """Here: the sources first cited since the previous source list."""


Block = Heading | Paragraph | Bullets | Image | SourceList


def sentence(*parts: Inline | None) -> tuple[Inline, ...]:
    """Inline pieces without the ``None`` ones (optional parts of a sentence)."""
    return tuple(p for p in parts if p is not None)


class _Numbering:
    """Source numbers in order of first use; what each source list still has to show."""

    def __init__(self) -> None:
        self.numbers: dict[Source, int] = {}
        self.pending: list[Source] = []

    def number(self, source: Source) -> int:
        if source not in self.numbers:
            self.numbers[source] = len(self.numbers) + 1
            self.pending.append(source)
        return self.numbers[source]

    def flush(self) -> list[tuple[int, Source]]:
        out = [(self.numbers[s], s) for s in self.pending]
        self.pending = []
        return out


def _md_text(text: str) -> str:
    # Names like Na_Cs stay literal; only characters that would start markup are escaped.
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("[", "\\[").replace("]", "\\]")


def _md_inline(parts: Iterable[Inline], numbering: _Numbering) -> str:
    out = []
    for part in parts:
        if isinstance(part, Cite):
            n = numbering.number(part.source)
            out.append(f"{_md_text(part.shown)} [\\[{n}\\]]({_href(part.source.file)})")
        elif isinstance(part, Link):
            out.append(f"[{_md_text(part.text)}]({_href(part.href)})")
        elif isinstance(part, Missing):
            out.append(f"**{_md_text(part.text)}**")
        else:
            out.append(_md_text(part))
    return "".join(out)


def _href(path: str) -> str:
    return path.replace(" ", "%20")


def _md_sources(numbering: _Numbering) -> list[str]:
    lines = []
    for n, src in numbering.flush():
        link = f"[{_md_text(src.file)}]({_href(src.file)})"
        lines.append(f"- [{n}] {link}, {_md_text(src.where)}: `{src.value}`")
    return lines


def to_markdown(blocks: Sequence[Block]) -> str:
    """The page as GitHub Markdown."""
    numbering = _Numbering()
    chunks: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            chunks.append("#" * block.level + " " + _md_text(block.text))
        elif isinstance(block, Paragraph):
            chunks.append(_md_inline(block.parts, numbering))
        elif isinstance(block, Bullets):
            chunks.append("\n".join("- " + _md_inline(i, numbering) for i in block.items))
        elif isinstance(block, Image):
            chunks.append(f"![{_md_text(block.alt)}]({_href(block.src)})")
        else:
            lines = _md_sources(numbering)
            if lines:
                chunks.append("Sources of the numbers above:\n\n" + "\n".join(lines))
    return "\n\n".join(chunks) + "\n"


def _html_inline(parts: Iterable[Inline], numbering: _Numbering) -> str:
    out = []
    for part in parts:
        if isinstance(part, Cite):
            n = numbering.number(part.source)
            title = html.escape(f"{part.source.file}, {part.source.where}: {part.source.value}")
            href = html.escape(_href(part.source.file))
            out.append(f'{html.escape(part.shown)} <a href="{href}" title="{title}">[{n}]</a>')
        elif isinstance(part, Link):
            out.append(f'<a href="{html.escape(_href(part.href))}">{html.escape(part.text)}</a>')
        elif isinstance(part, Missing):
            out.append(f'<strong class="missing">{html.escape(part.text)}</strong>')
        else:
            out.append(html.escape(part))
    return "".join(out)


_STYLE = (
    "body{font-family:sans-serif;max-width:60em;margin:1em auto;line-height:1.45}"
    "code{font-size:90%}.sources{font-size:85%;color:#333}.missing{color:#a00}"
)


def to_html(blocks: Sequence[Block], title: str) -> str:
    """The page as one standalone HTML file (no scripts, no external resources)."""
    numbering = _Numbering()
    body: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            body.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            body.append(f"<p>{_html_inline(block.parts, numbering)}</p>")
        elif isinstance(block, Bullets):
            items = "".join(f"<li>{_html_inline(i, numbering)}</li>" for i in block.items)
            body.append(f"<ul>{items}</ul>")
        elif isinstance(block, Image):
            href = html.escape(_href(block.src))
            body.append(f'<p>Figure: <a href="{href}">{html.escape(block.alt)}</a></p>')
        else:
            rows = [
                f'<li>[{n}] <a href="{html.escape(_href(s.file))}">{html.escape(s.file)}</a>, '
                f"{html.escape(s.where)}: <code>{html.escape(s.value)}</code></li>"
                for n, s in numbering.flush()
            ]
            if rows:
                body.append(
                    '<div class="sources"><p>Sources of the numbers above:</p>'
                    f"<ul>{''.join(rows)}</ul></div>"
                )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
