"""Keep a DataTable equal to a list of keyed rows, touching only what changed; columns that do
not fit the table's width give way, least important first (:func:`fit_columns`)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

Cell = str | Text
Row = tuple[str, Sequence[Cell]]


class FitTable(DataTable):
    """A DataTable whose columns :func:`fit_columns` may rebuild (the cursor's row is kept)."""

    restore_key: str | None = None


def sync_rows(table: DataTable, rows: Sequence[Row], cache: dict[str, tuple]) -> None:
    """Make ``table`` show ``rows`` (key, cells); ``cache`` remembers what each row showed.

    Same keys in the same order: only changed cells are updated. Otherwise the rows are
    rebuilt and the cursor stays on the row with the same key where it still exists.
    """
    keys = [key for key, _ in rows]
    current = [k.value for k in table.rows]
    if not current:
        cache.clear()  # (the columns may have been rebuilt: no row shows anything)
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
    if isinstance(table, FitTable):
        selected, table.restore_key = selected or table.restore_key, None
    table.clear()
    cache.clear()
    for key, cells in rows:
        table.add_row(*cells, key=key)
        cache[key] = tuple(_plain(c) for c in cells)
    if selected in keys:
        table.move_cursor(row=keys.index(selected), animate=False)
    _fit_columns(table, cache)


def fit_columns(
    table: DataTable, labels: Sequence[str], priority: Sequence[int], rows: Sequence[Row]
) -> list[Row]:
    """Show the columns of ``labels`` that fit the table's width, taking them in ``priority``
    order (indices, most important first) and keeping their left-to-right order; returns
    ``rows`` cut to those columns (call before :func:`sync_rows`, which keeps the cursor's row).
    A table not laid out yet (width 0) shows every column."""
    width = table.size.width - 1  # (room for the vertical scrollbar)
    shown = list(range(len(labels)))
    if width > 0:
        pad = 2 * table.cell_padding
        widths = [
            max([cell_len(label)] + [cell_len(_plain(cells[i])[0]) for _, cells in rows]) + pad
            for i, label in enumerate(labels)
        ]
        chosen: set[int] = set()
        used = 0
        for index in priority:
            if not chosen or used + widths[index] <= width:
                chosen.add(index)
                used += widths[index]
        shown = sorted(chosen)
    wanted = [labels[i] for i in shown]
    if [c.label.plain for c in table.columns.values()] != wanted:
        selected = cursor_key(table)
        table.clear(columns=True)
        table.add_columns(*wanted)
        if isinstance(table, FitTable):
            table.restore_key = selected
    return [(key, tuple(cells[i] for i in shown)) for key, cells in rows]


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
