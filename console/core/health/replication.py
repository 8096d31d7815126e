"""Replication checks. On a primary: one check per connected standby (state, sent/write/flush/
replay lag in bytes and time; NULL time lag means caught up), a summary naming missing
standbys against ``health.expected_standbys``, and the replication slots. On a standby:
received vs replayed WAL, and whether replay is paused."""

from __future__ import annotations

import asyncpg

from console.config import HealthSettings
from console.core.display import human_size
from console.core.health.model import Check, State, grade, limits, worst
from console.core.health.server import seconds

_STANDBYS = """
SELECT coalesce(nullif(application_name, ''), host(client_addr), pid::text) AS name,
       state, sync_state,
       pg_wal_lsn_diff(pg_current_wal_lsn(), sent_lsn) AS sent_bytes,
       pg_wal_lsn_diff(pg_current_wal_lsn(), write_lsn) AS write_bytes,
       pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn) AS flush_bytes,
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) AS replay_bytes,
       extract(epoch FROM write_lag) AS write_s,
       extract(epoch FROM flush_lag) AS flush_s,
       extract(epoch FROM replay_lag) AS replay_s
FROM pg_stat_replication ORDER BY 1
"""
_SLOTS = """
SELECT slot_name, slot_type, active, wal_status,
       pg_wal_lsn_diff({position}, restart_lsn) AS retained
FROM pg_replication_slots ORDER BY slot_name
"""
# On an idle standby now() - pg_last_xact_replay_timestamp() grows without bound: it is a lag
# only while received WAL waits to be replayed.
_RECEIVER = """
SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()) AS behind,
       CASE WHEN pg_last_wal_receive_lsn() IS NULL
                 OR pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0
            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END AS lag_s,
       pg_get_wal_replay_pause_state() AS pause_state,
       (SELECT status FROM pg_stat_wal_receiver) AS receiver
"""


def _bytes(n: float | None) -> str:
    return human_size(int(n or 0))


def _lag_states(h: HealthSettings, lag_bytes: float, lag_s: float) -> State:
    return worst(
        (
            grade(lag_bytes, h.replication_lag_warn_bytes, h.replication_lag_crit_bytes),
            grade(lag_s, h.replication_lag_warn_s, h.replication_lag_crit_s),
        )
    )


def _threshold(h: HealthSettings) -> str:
    return (
        f"{limits(h.replication_lag_warn_s, h.replication_lag_crit_s, ' s')}; "
        f"warn {_bytes(h.replication_lag_warn_bytes)}, crit {_bytes(h.replication_lag_crit_bytes)}"
    )


async def primary_checks(conn: asyncpg.Connection, h: HealthSettings) -> list[Check]:
    """Per-standby checks, the replication summary (missing standbys) and slot checks."""
    rows = await conn.fetch(_STANDBYS)
    slots = await conn.fetch(_SLOTS.format(position="pg_current_wal_lsn()"))
    checks = []
    worst_bytes = 0.0
    for r in rows:
        replay_s = float(r["replay_s"] or 0)  # NULL: caught up and idle
        replay_bytes = float(r["replay_bytes"] or 0)
        worst_bytes = max(worst_bytes, replay_bytes)
        state = _lag_states(h, replay_bytes, replay_s)
        if r["state"] != "streaming":
            state = worst((state, State.WARN))
        times = "/".join(seconds(float(r[k] or 0)) for k in ("write_s", "flush_s"))
        checks.append(
            Check(
                f"standby {r['name']}",
                "replication",
                state,
                f"replay {_bytes(replay_bytes)} / {seconds(replay_s)} behind",
                _threshold(h),
                f"{r['state']} ({r['sync_state']}); sent {_bytes(r['sent_bytes'])}, write "
                f"{_bytes(r['write_bytes'])}, flush {_bytes(r['flush_bytes'])} behind; "
                f"write/flush lag {times}",
                replay_bytes,
            )
        )
    streaming = sum(1 for r in rows if r["state"] == "streaming")
    missing = max(h.expected_standbys - streaming, 0)
    idle_slots = [s["slot_name"] for s in slots if s["slot_type"] == "physical" and not s["active"]]
    if missing:
        state, shown = State.CRIT, f"{missing} of {h.expected_standbys} standby(s) missing"
    elif rows:
        state, shown = worst(c.state for c in checks), f"{streaming} streaming"
    else:
        state, shown = State.OK, "no standbys"
    detail = f"largest replay lag {_bytes(worst_bytes)}"
    if idle_slots:
        detail += f"; inactive physical slot(s): {', '.join(idle_slots)}"
    checks.insert(
        0,
        Check(
            "replication",
            "replication",
            state,
            shown,
            f"expected standbys {h.expected_standbys}",
            detail,
            worst_bytes,
        ),
    )
    return checks + _slot_checks(slots, h)


async def standby_checks(conn: asyncpg.Connection, h: HealthSettings) -> list[Check]:
    """Received vs replayed WAL, replay paused, the WAL receiver, and slots if any."""
    r = await conn.fetchrow(_RECEIVER)
    assert r is not None
    behind, lag_s = float(r["behind"] or 0), float(r["lag_s"] or 0)
    state = _lag_states(h, behind, lag_s)
    notes = [f"WAL receiver {r['receiver'] or 'not running'}"]
    if r["pause_state"] != "not paused":
        state = worst((state, State.WARN))
        notes.append(f"replay {r['pause_state']}")
    if r["receiver"] is None:
        state = worst((state, State.WARN))
    slots = await conn.fetch(_SLOTS.format(position="pg_last_wal_replay_lsn()"))
    check = Check(
        "replication",
        "replication",
        state,
        f"replay {_bytes(behind)} / {seconds(lag_s)} behind receive",
        _threshold(h),
        "; ".join(notes),
        behind,
    )
    return [check, *_slot_checks(slots, h)]


def _slot_checks(slots: list[asyncpg.Record], h: HealthSettings) -> list[Check]:
    checks = []
    for s in slots:
        retained = float(s["retained"] or 0)
        state = grade(retained, h.slot_retained_warn_bytes, h.slot_retained_crit_bytes)
        status = s["wal_status"]
        if status == "lost":
            state = State.CRIT
        elif status in ("extended", "unreserved") or not s["active"]:
            state = worst((state, State.WARN))
        checks.append(
            Check(
                f"slot {s['slot_name']}",
                "replication",
                state,
                f"{_bytes(retained)} retained",
                f"warn {_bytes(h.slot_retained_warn_bytes)}, "
                f"crit {_bytes(h.slot_retained_crit_bytes)}",
                f"{s['slot_type']}, {'active' if s['active'] else 'inactive'}, wal_status {status}",
                retained,
            )
        )
    return checks
