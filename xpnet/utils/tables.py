"""The one table renderer: every table xpnet prints (``train``/``compare`` rows, seed statistics, ``bench``,
the reproduction pages, the GPU figures) is a Markdown table with aligned columns, readable in a terminal
and on GitHub; ``Sequential.summary`` prints the same columns without the pipes (:func:`plain_table`)."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["markdown_table", "plain_table"]


def _widths(header: Sequence[str], body: Sequence[Sequence[str]]) -> list[int]:
    return [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]


def markdown_table(header: Sequence[str], body: Sequence[Sequence[str]], align: str = "left") -> str:
    """A Markdown table whose columns are padded to their widest cell (``align``: ``"left"`` or ``"right"``)."""
    if align not in ("left", "right"):
        raise ValueError(f"align must be 'left' or 'right', got {align!r}")
    widths = _widths(header, body)

    def line(r: Sequence[str]) -> str:
        cells = (c.ljust(w) if align == "left" else c.rjust(w) for c, w in zip(r, widths, strict=True))
        return "| " + " | ".join(cells) + " |"

    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, body)])


def plain_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart, a dashed rule under the header (no pipes)."""
    widths = _widths(header, body)
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *body]]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])
