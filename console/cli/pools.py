"""``goconsole pool …``: show (once or --watch), clients, sizes, pause/resume, disable/enable,
reconnect, kill, sync."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys

from console.cli.command import Commands
from console.cli.hints import error_text
from console.cli.render import emit_json, print_event, print_table
from console.core.errors import PgBouncerUnavailable
from console.core.identifiers import schema_for
from console.core.pools.monitor import PoolSnapshot
from console.core.service import ConsoleService


async def _pool_show(service: ConsoleService, args: argparse.Namespace) -> None:
    interval = args.interval or service.settings.pgbouncer.poll_interval
    if not args.watch:
        await service.pools.snapshot()  # baseline for the rates
        await asyncio.sleep(interval)
        snapshot = await service.pools.snapshot()
        if args.json:
            emit_json(snapshot.as_json())
        else:
            _print_pools(snapshot)
        return
    monitor = service.pools.monitor
    taken = 0
    while args.count is None or taken < args.count:
        taken += 1
        last = args.count is not None and taken >= args.count
        try:
            snapshot = await service.pools.snapshot()
        except PgBouncerUnavailable as exc:
            if last:  # the watch ends on a failed sample: exit 1
                raise
            delay = monitor.next_delay(interval)
            print(f"{error_text(exc)}; retrying in {delay:g}s", file=sys.stderr, flush=True)
            await asyncio.sleep(delay)
            continue
        if args.json:
            print(json.dumps(snapshot.as_json(), default=str), flush=True)
        else:
            if sys.stdout.isatty():
                print("\x1b[H\x1b[2J", end="")
            _print_pools(snapshot)
            print(flush=True)
        if not last:
            await asyncio.sleep(monitor.next_delay(interval))


def _print_pools(snapshot: PoolSnapshot) -> None:
    limits = snapshot.limits
    db_limit = str(limits.max_db_connections) if limits.max_db_connections else "unlimited"
    print(
        f"{snapshot.version} at {snapshot.taken_at:%H:%M:%S} UTC "
        f"(snapshot {snapshot.latency_ms:.1f} ms): clients {snapshot.clients}/"
        f"{limits.max_client_conn}, waiting {snapshot.waiting}, server connections "
        f"{snapshot.servers} (busiest database {snapshot.busiest_servers}/{db_limit})"
    )
    if snapshot.rates_reset:
        print("counters went backwards (PgBouncer restarted): rates start again")
    rows = []
    for view in snapshot.pools:
        r = view.rates
        rows.append(
            (
                view.name,
                str(view.pool.cl_active),
                str(view.pool.cl_waiting),
                str(view.pool.sv_active),
                str(view.pool.sv_idle),
                str(view.pool.sv_used),
                f"{view.pool.maxwait_s:.3f}s",
                f"{view.pool_size}+{view.reserve_pool}",
                f"{view.utilisation:.0%}",
                "-" if r is None else f"{r.xact_per_s:.1f}",
                "-" if r is None else f"{r.query_per_s:.1f}",
                "-" if r is None else f"{r.avg_query_ms:.2f}",
                "-" if r is None else f"{r.avg_wait_ms:.2f}",
                ("! " + ", ".join(view.alerts)) if view.alerts else "ok",
            )
        )
    print_table(
        (
            "DATABASE",
            "CL_ACT",
            "CL_WAIT",
            "SV_ACT",
            "SV_IDLE",
            "SV_USED",
            "MAXWAIT",
            "SIZE",
            "UTIL",
            "TX/S",
            "Q/S",
            "AVG_Q_MS",
            "AVG_WAIT_MS",
            "STATE",
        ),
        rows,
    )
    for view in snapshot.pools:
        if view.reason is not None:
            print(f"{view.name}: clients wait with no server connection: {view.reason}")


async def _pool_clients(service: ConsoleService, args: argparse.Namespace) -> None:
    clients = await service.pools.clients(args.key)
    if args.json:
        emit_json([dataclasses.asdict(c) for c in clients])
        return
    print_table(
        ("USER", "ADDRESS", "STATE", "CONNECTED", "LAST REQUEST", "APPLICATION"),
        [
            (
                c.user,
                f"{c.address}:{c.port}",
                c.state,
                c.connected_at,
                c.request_at,
                c.application_name,
            )
            for c in clients
        ],
    )
    print(f"{len(clients)} client(s) on {schema_for(args.key)}")


async def _pool_set_size(service: ConsoleService, args: argparse.Namespace) -> None:
    alias = await service.pools.set_size(args.key, args.size, args.reserve, print_event)
    print(f"{alias.name}: pool_size {alias.pool_size}, reserve_pool {alias.reserve_pool}")


async def _pool_set_default(service: ConsoleService, args: argparse.Namespace) -> None:
    size = await service.pools.set_default(args.size, print_event)
    print(f"default_pool_size is {size}")


async def _pool_pause(service: ConsoleService, args: argparse.Namespace) -> None:
    await service.pools.pause(args.key, args.timeout, print_event)
    print(f"{schema_for(args.key)} is paused: no transaction runs until 'goconsole pool resume'")


async def _pool_simple(service: ConsoleService, args: argparse.Namespace) -> None:
    await service.pools.simple(args.action, args.key, print_event)
    done = {
        "resume": "resumed",
        "disable": "disabled (new clients are refused)",
        "enable": "enabled",
        "reconnect": "recycling its server connections",
    }
    print(f"{schema_for(args.key)} is {done[args.action]}")


async def _pool_kill(service: ConsoleService, args: argparse.Namespace) -> None:
    dropped = await service.pools.kill(args.key, args.keep_paused, print_event)
    state = "left paused" if args.keep_paused else "accepting clients again"
    print(f"{schema_for(args.key)}: {dropped} client(s) dropped; pool {state}")


async def _pool_sync(service: ConsoleService, args: argparse.Namespace) -> None:
    report = await service.pools.sync(print_event)
    if args.json:
        emit_json(report.as_json())
        return
    for line in report.lines():
        print(line)
    print(report.summary())


COMMANDS: Commands = {
    ("pool", "show"): _pool_show,
    ("pool", "clients"): _pool_clients,
    ("pool", "set-size"): _pool_set_size,
    ("pool", "set-default"): _pool_set_default,
    ("pool", "pause"): _pool_pause,
    ("pool", "resume"): _pool_simple,
    ("pool", "disable"): _pool_simple,
    ("pool", "enable"): _pool_simple,
    ("pool", "reconnect"): _pool_simple,
    ("pool", "kill"): _pool_kill,
    ("pool", "sync"): _pool_sync,
}
