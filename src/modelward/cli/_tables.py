"""Tables for the terminal, readable at 80 columns.

Rich shares a narrow terminal out by squeezing every column that may wrap, down to a character or
two: headers came out as "mode/l" and "descr/iptio/n", and a JSON column one character a line. Here
ids, versions and times never wrap (a column of them is as wide as its widest cell); free text wraps
between words, in a column never narrower than its header or :data:`TEXT_FLOOR`; and when that is
still too wide for the terminal, the columns that may be dropped are left out, in their ``drop`` order.
Cells are printed as they are: text from users and models ("[onnx]", "[bold]") is never read as
Rich markup.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

__all__ = ["TEXT_FLOOR", "Column", "print_table", "table"]

TEXT_FLOOR = 12
"""A free-text column is never squeezed below this many characters (or its text, when shorter)."""

_BORDERS = 3  # Rich's default box: a rule and one space of padding either side, per column


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    wrap: bool = False  # free text: wraps between words; a word longer than the column is folded
    drop: int = 0  # when the terminal cannot show every column: left out, 1 first, then 2, ...; 0 never
    floor: int = 0  # free text: the narrowest to wrap it in, before columns are dropped (TEXT_FLOOR)
    justify: Literal["left", "right"] = "left"


def _cell(value: str | Text) -> Text:
    from rich.text import Text

    return value if isinstance(value, Text) else Text(value)


def _fits(columns: Sequence[Column], cells: Sequence[Sequence[Text]]) -> list[int]:
    """The narrowest each column may be: its widest cell, or for free text its floor."""
    widths = []
    for i, column in enumerate(columns):
        widest = max([len(column.header), *(row[i].cell_len for row in cells)])
        floor = max(column.floor or TEXT_FLOOR, len(column.header))
        widths.append(min(widest, floor) if column.wrap else widest)
    return widths


def table(
    columns: Sequence[Column],
    rows: Iterable[Sequence[str | Text]],
    *,
    width: int,
    title: str | None = None,
) -> Table:
    """A table of ``rows`` for a terminal ``width`` characters wide."""
    from rich.table import Table

    cells = [[_cell(value) for value in row] for row in rows]
    keep = list(range(len(columns)))
    floors = _fits(columns, cells)
    for i in sorted((i for i, c in enumerate(columns) if c.drop), key=lambda i: columns[i].drop):
        if sum(floors[k] + _BORDERS for k in keep) + 1 <= width:
            break
        keep.remove(i)
    out = Table(title=None if title is None else _cell(title), title_justify="left")
    for k in keep:
        column = columns[k]
        if column.wrap:
            out.add_column(column.header, overflow="fold", min_width=floors[k], justify=column.justify)
        else:
            out.add_column(column.header, no_wrap=True, justify=column.justify)
    for row in cells:
        out.add_row(*(row[k] for k in keep))
    return out


def print_table(
    columns: Sequence[Column],
    rows: Iterable[Sequence[str | Text]],
    *,
    title: str | None = None,
    console: Console | None = None,
    **print_options: Any,
) -> None:
    from rich.console import Console

    console = console or Console()
    console.print(table(columns, rows, width=console.width, title=title), **print_options)
