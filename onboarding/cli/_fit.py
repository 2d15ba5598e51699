"""Tables that fit the terminal by dropping columns, never by cutting the ones that matter.

Rich squeezes a table that is too wide by cutting every column with an ellipsis, the state and
the channel id included (``complet…``). Here each column has a priority: columns marked
:data:`KEEP` are never dropped nor cut; the others go, lowest priority first, until the rest fits
the console. Wrapping columns (free text) count only a minimum width. ``wide`` keeps every
column and prints as wide as the table needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from onboarding.escaping import plain

__all__ = ["KEEP", "Column", "print_fitted"]

KEEP = 1_000  # a priority above any column that may be dropped
_EDGES = 1  # the table's left border
_PER_COLUMN = 3  # one space each side of a cell and the border after it


@dataclass(frozen=True)
class Column:
    """One column: its header, how much it matters, whether it may wrap (and how narrow)."""

    header: str
    priority: int
    wrap: bool = False
    min_width: int = 12


def _cell_width(value: str) -> int:
    return plain(value).cell_len


def _widths(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> list[int]:
    """Each column's natural width: its header or its widest cell."""
    return [
        max([_cell_width(column.header), *(_cell_width(row[index]) for row in rows)])
        for index, column in enumerate(columns)
    ]


def _needed(columns: Sequence[Column], natural: Sequence[int], kept: Sequence[int]) -> int:
    """The width the ``kept`` columns need, wrapping columns at their minimum."""
    cells = sum(
        min(natural[i], columns[i].min_width) if columns[i].wrap else natural[i] for i in kept
    )
    return _EDGES + cells + _PER_COLUMN * len(kept)


def print_fitted(
    console: Console,
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    *,
    title: str | None = None,
    wide: bool = False,
) -> list[str]:
    """Print ``rows`` as a table that fits ``console`` (all columns when ``wide``).

    Returns the headers shown, so a caller can say which were left out.
    """
    natural = _widths(columns, rows)
    kept = list(range(len(columns)))
    if not wide:
        by_priority = sorted(kept, key=lambda i: (columns[i].priority, -i))
        for index in by_priority:
            if _needed(columns, natural, kept) <= console.width:
                break
            if columns[index].priority < KEEP:
                kept.remove(index)
    # Every cell is outside text (or next to it): plain Text, never read as rich markup.
    table = Table(title=plain(title) if title else None)
    for i in kept:
        column = columns[i]
        if column.wrap:
            table.add_column(column.header, overflow="fold", min_width=min(natural[i], 8))
        else:
            table.add_column(column.header, no_wrap=True, min_width=natural[i])
    for row in rows:
        table.add_row(*(plain(row[i]) for i in kept))
    if not wide:
        console.print(table)
        return [columns[i].header for i in kept]
    # As wide as the table needs (print's own width= never goes past the console's).
    width = console.width
    console.width = max(width, _EDGES + sum(natural) + _PER_COLUMN * len(columns))
    try:
        console.print(table, crop=False)
    finally:
        console.width = width
    return [columns[i].header for i in kept]
