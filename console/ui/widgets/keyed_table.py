"""A table whose rows are identified by a string key and updated by diff, never refilled per
tick: rows that went are removed, changed cells updated, new rows added, and the cursor stays
on the same key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist

Cell = TypeVar("Cell")


class KeyedTable(DataTable[Cell]):
    """Rows keyed by strings, shown by :meth:`show` (a whole list) or :meth:`put` (one row).

    ``key_column`` names a column whose cell reads (``str(cell)``) as its row's key: rows that
    came or went and order changes are then applied by diff and a sort on it; without one, a
    changed list of keys refills the table (only cells are diffed).
    ``update_width`` widens a column to a changed cell's content.
    """

    def __init__(
        self, *, key_column: str | None = None, update_width: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._key_column = key_column
        self._update_width = update_width

    def show(self, fresh: Mapping[str, Sequence[Cell]], *, rebuild: bool = False) -> None:
        """Make the table show ``fresh`` (key -> cells in column order, in display order),
        touching only what changed; ``rebuild`` refills it instead. The cursor follows its key."""
        cursor = self.cursor_key()
        order = list(fresh)
        with self.app.batch_update():
            if rebuild or (self._key_column is None and self.row_keys() != order):
                self.clear()
                for key, cells in fresh.items():
                    self.add_row(*cells, key=key)
            else:
                for gone in [key for key in self.row_keys() if key not in fresh]:
                    self.remove_row(gone)
                for key, cells in fresh.items():
                    self.put(key, cells)
                if self.row_keys() != order:
                    rank = {key: n for n, key in enumerate(order)}
                    self.sort(self._key_column or "", key=lambda cell: rank[str(cell)])
            if (
                cursor is not None
                and cursor in fresh
                and self.get_row_index(cursor) != self.cursor_row
            ):
                self.move_cursor(row=self.get_row_index(cursor))

    def put(self, key: str, cells: Sequence[Cell]) -> None:
        """Update the cells of row ``key`` that changed, or add the row at the end."""
        if key not in self.rows:
            self.add_row(*cells, key=key)
            return
        for column, before, after in zip(self.columns, self.get_row(key), cells, strict=True):
            if before != after:
                self.update_cell(key, column, after, update_width=self._update_width)

    def cursor_key(self) -> str | None:
        """The key of the row under the cursor."""
        if self.row_count == 0:
            return None
        try:
            return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)
        except CellDoesNotExist:
            return None

    def row_keys(self) -> list[str]:
        """Row keys in display order."""
        return [str(row.key.value) for row in self.ordered_rows]
