"""Keep a DataTable equal to a list of keyed rows, touching only what changed."""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

Cell = str | Text
Row = tuple[str, Sequence[Cell]]


def sync_rows(table: DataTable, rows: Sequence[Row], cache: dict[str, tuple]) -> None:
    """Make ``table`` show ``rows`` (key, cells); ``cache`` remembers what each row showed.

    Same keys in the same order: only changed cells are updated. Otherwise the rows are
    rebuilt and the cursor stays on the row with the same key where it still exists.
    """
    keys = [key for key, _ in rows]
    current = [k.value for k in table.rows]
    if keys == current:
        columns = list(table.columns)
        for key, cells in rows:
            old = cache.get(key)
            new = tuple(_plain(c) for c in cells)
            if old == new:
                continue
            for index, cell in enumerate(cells):
                if old is None or old[index] != new[index]:
                    table.update_cell(key, columns[index], cell)
            cache[key] = new
        _fit_columns(table, cache)
        return
    selected = cursor_key(table)
    table.clear()
    cache.clear()
    for key, cells in rows:
        table.add_row(*cells, key=key)
        cache[key] = tuple(_plain(c) for c in cells)
    if selected in keys:
        table.move_cursor(row=keys.index(selected), animate=False)
    _fit_columns(table, cache)


def _fit_columns(table: DataTable, cache: dict[str, tuple]) -> None:
    """Size each column to its label and the rows shown now, not to every value ever shown
    (widths that only grow keep a long, gone reason's width forever and make the layout
    depend on which intermediate states happened to be drawn)."""
    changed = False
    for index, column in enumerate(table.columns.values()):
        widest = max(
            [cell_len(column.label.plain)] + [cell_len(row[index][0]) for row in cache.values()]
        )
        if column.auto_width and column.content_width != widest:
            column.content_width = widest
            changed = True
    if changed:
        table._require_update_dimensions = True
        table.refresh()


def _plain(cell: Cell) -> tuple[str, str]:
    if isinstance(cell, Text):
        return cell.plain, str(cell.style) + "".join(str(s.style) for s in cell.spans)
    return str(cell), ""


def cursor_key(table: DataTable) -> str | None:
    """The key of the row under the cursor (None on an empty table)."""
    if table.row_count == 0:
        return None
    try:
        key: RowKey = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
    except Exception:  # noqa: BLE001 - cursor outside the table
        return None
    return key.value
