"""Text gauges of PgBouncer pools: one row per pool, and the totals against the global limits.

Colours come from the theme through :class:`PoolTable`'s component classes (styled in
app.tcss); every state is also shown by a symbol and a word.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

from rich.style import Style
from rich.text import Text

from console.core.pools.monitor import PoolSnapshot, PoolView
from console.ui.widgets.keyed_table import KeyedTable

GAUGE_WIDTH = 16
ACTIVE, IDLE, FREE = "█", "▒", "·"
ALERT_MARKS = {
    "WAITING": "⚠",
    "MAXWAIT RISING": "↑",
    "PAUSED": "‖",
    "DISABLED": "⊘",
    "NO SERVER": "✗",
}
URGENT = frozenset({"WAITING", "MAXWAIT RISING", "NO SERVER"})
COLUMNS = (
    ("pool", "Pool"),
    ("gauge", f"{ACTIVE} active {IDLE} idle {FREE} free"),
    ("state", "State"),
    ("cl_active", "cl_act"),
    ("cl_waiting", "cl_wait"),
    ("sv_active", "sv_act"),
    ("sv_idle", "sv_idle"),
    ("sv_used", "sv_used"),
    ("maxwait", "maxwait"),
    ("size", "size+res"),
    ("util", "util"),
    ("tx", "tx/s"),
    ("q", "q/s"),
    ("wait_ms", "wait ms"),
)


class CellStyles(NamedTuple):
    """Rich styles of the gauge parts and states (resolved from the theme)."""

    active: Style = Style()
    idle: Style = Style()
    free: Style = Style()
    alert: Style = Style()
    warn: Style = Style()
    ok: Style = Style()


class PoolTable(KeyedTable[Text]):
    """The pools table (keyed by alias); its component classes carry the theme's colours for
    the cells."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "pool-table--active",
        "pool-table--idle",
        "pool-table--free",
        "pool-table--alert",
        "pool-table--warn",
        "pool-table--ok",
    }

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(key_column="pool", id=id, cursor_type="row", zebra_stripes=True)
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    def cell_styles(self) -> CellStyles:
        """The component styles as Rich styles (foreground and text style only)."""
        return CellStyles(
            *(
                self.get_component_rich_style(f"pool-table--{name}", partial=True)
                for name in CellStyles._fields
            )
        )


def _cells(count: int, total: int, width: int) -> int:
    """Cells of ``width`` for ``count`` of ``total``: at least one when count > 0."""
    if count <= 0 or total <= 0:
        return 0
    return min(width, max(1, round(count * width / total)))


def gauge(view: PoolView, styles: CellStyles, width: int = GAUGE_WIDTH) -> Text:
    """``███▒▒·········· +3 wait``: active and idle server connections against the pool size
    (the scale grows when the reserve is in use), then the waiting clients."""
    pool = view.pool
    idle = pool.sv_idle + pool.sv_used
    scale = max(view.pool_size, pool.sv_active + idle, 1)
    active_n = _cells(pool.sv_active, scale, width)
    idle_n = min(width - active_n, _cells(idle, scale, width))
    text = Text(no_wrap=True, end="")
    text.append(ACTIVE * active_n, styles.active)
    text.append(IDLE * idle_n, styles.idle)
    text.append(FREE * (width - active_n - idle_n), styles.free)
    if pool.cl_waiting:
        text.append(f" +{pool.cl_waiting} wait", styles.alert)
    return text


def state_text(view: PoolView, styles: CellStyles) -> Text:
    """``⚠ WAITING ↑ MAXWAIT RISING``, ``‖ PAUSED``, ``⊘ DISABLED`` or ``✓ ok``."""
    alerts = view.alerts
    if not alerts:
        return Text("✓ ok", styles.ok, end="")
    text = Text(no_wrap=True, end="")
    for n, word in enumerate(alerts):
        text.append(("" if n == 0 else " ") + f"{ALERT_MARKS[word]} {word}")
        text.stylize(styles.alert if word in URGENT else styles.warn, len(text) - len(word) - 2)
    return text


def _number(value: str) -> Text:
    return Text(value, justify="right", end="")


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def pool_cells(view: PoolView, styles: CellStyles) -> tuple[Text, ...]:
    """The table cells of one pool, in COLUMNS order."""
    pool, rates = view.pool, view.rates
    urgent = bool(URGENT & set(view.alerts))
    return (
        Text(view.name, styles.alert if urgent else Style(), end=""),
        gauge(view, styles),
        state_text(view, styles),
        _number(str(pool.cl_active)),
        _number(str(pool.cl_waiting)),
        _number(str(pool.sv_active)),
        _number(str(pool.sv_idle)),
        _number(str(pool.sv_used)),
        _number(f"{pool.maxwait_s:.1f}s"),
        _number(f"{view.pool_size}+{view.reserve_pool}"),
        _number(f"{view.utilisation:.0%}"),
        _number(_rate(None if rates is None else rates.xact_per_s)),
        _number(_rate(None if rates is None else rates.query_per_s)),
        _number(_rate(None if rates is None else rates.avg_wait_ms)),
    )


def bar(used: int, limit: int, styles: CellStyles, width: int = 30) -> Text:
    """A bar of ``used`` against ``limit`` (0: unlimited, drawn empty)."""
    filled = _cells(used, limit, width) if limit > 0 else 0
    text = Text(no_wrap=True, end="")
    share = used / limit if limit > 0 else 0.0
    text.append(ACTIVE * filled, styles.alert if share >= 0.9 else styles.active)
    text.append(FREE * (width - filled), styles.free)
    return text


def summary(snapshot: PoolSnapshot, styles: CellStyles) -> Text:
    """Three lines: clients against max_client_conn, waiting clients, servers and the busiest
    database against max_db_connections."""
    limits = snapshot.limits
    text = Text(no_wrap=True, end="")
    text.append("clients  ")
    text.append(bar(snapshot.clients, limits.max_client_conn, styles))
    share = snapshot.clients / limits.max_client_conn if limits.max_client_conn else 0.0
    text.append(
        f" {snapshot.clients:>5} / {limits.max_client_conn} max_client_conn ({share:.0%})\n"
    )
    text.append("waiting  ")
    if snapshot.waiting:
        text.append(f"⚠ {snapshot.waiting} client(s) WAITING for a server", styles.alert)
    else:
        text.append("✓ none", styles.ok)
    waiting_pools = sum(1 for p in snapshot.pools if p.pool.cl_waiting)
    text.append(f" · {waiting_pools} of {len(snapshot.pools)} pool(s) with waiting clients\n")
    text.append("servers  ")
    text.append(bar(snapshot.busiest_servers, limits.max_db_connections, styles))
    if limits.max_db_connections:
        share = snapshot.busiest_servers / limits.max_db_connections
        cap = f"/ {limits.max_db_connections} max_db_connections ({share:.0%})"
    else:
        cap = "(max_db_connections unlimited)"
    text.append(
        f" {snapshot.busiest_servers:>5} {cap} on the busiest database · "
        f"{snapshot.servers} server connection(s) in all"
    )
    return text
