"""Start-up cost of one CLI call: time spent importing, and one provision per process.

    .venv/bin/python bench/startup.py [--runs 5] [--provisions 20] [--pg-bin DIR]   # ~1.5 min

Starts a throwaway cluster, runs ``goconsole init`` on it, then measures ``goconsole
--version``, ``--help``, ``tenants list`` and ``tenants provision KEY``, each in a fresh
process: the time the process spends importing (``python -X importtime``: the cumulative time
of every top-level import, those made lazily at run time included; median of ``--runs``), and
the wall time. Three states, each the same code with different modules loaded first, so they
share the run and the machine's weather: "before" issue 12 (alembic and SQLAlchemy, via the
migration tree, plus all of "eager"), "eager", the state between issue 12's two start-up changes
(psycopg to parse the DSN, every sub-service of the facade and every CLI area imported up front),
and "now". The provision rate is ``--provisions`` separate processes one after
another, the states interleaved; each state's ratio is against "now" in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from console.core.binaries import PgBinaries
from console.devenv.postgres import throwaway_cluster

# What every call loaded up front before the facade and the CLI loaded sub-services and areas
# on first use, and DSNs were parsed without psycopg (issue 12's second start-up change).
EAGER = (
    "import psycopg.conninfo\n"
    "import console.core.bootstrap, console.core.security.privileges\n"
    "import console.core.migrations.runner, console.core.pools.monitor\n"
    "import console.core.tenants.lifecycle, console.core.tenants.provision\n"
    "import console.cli.audit, console.cli.init, console.cli.migrate, console.cli.pools\n"
    "import console.cli.privileges, console.cli.tenants\n"
)
# What `import console.cli` loaded before issue 12 besides (its first start-up change).
BEFORE = (
    "import alembic.command, alembic.config, alembic.script, sqlalchemy, sqlalchemy.pool\n" + EAGER
)
# What a provision did besides, before issue 12, to learn the head revision: alembic read the
# tenant tree (importing every revision file).
BEFORE_PROVISION = (
    BEFORE
    + "from console.core.migrations.tree import script_directory\n"
    + 'script_directory("tenant").get_current_head()\n'
)
# The states measured: label, prelude for a command, prelude for a provision.
STATES = (("before", BEFORE, BEFORE_PROVISION), ("eager ", EAGER, EAGER), ("now   ", "", ""))
ENTRY = "from console.entry import main\nraise SystemExit(main())\n"


def run(args: list[str], before: str = "", importtime: bool = False) -> tuple[float, float | None]:
    """Run ``goconsole ARGS`` in a fresh process after the code ``before``; its wall time and,
    with ``importtime``, the seconds it spent importing."""
    code = before + ENTRY
    flags = ["-X", "importtime"] if importtime else []
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, *flags, "-c", code, *args],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"goconsole {' '.join(args)} failed: {result.stderr[-2000:]}")
    return wall, import_seconds(result.stderr) if importtime else None


def import_seconds(stderr: str) -> float:
    """The sum of the cumulative times of the top-level imports in ``-X importtime`` output."""
    total = 0
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        _, cumulative, name = line.split("|")
        if not name.startswith("  "):  # nested imports are inside their parent's cumulative
            total += int(cumulative)
    return total / 1e6


def import_figures(base: list[str], runs: int) -> None:
    """Median import time and wall time of ``--version`` (answered before the CLI loads), and
    of ``--help`` and ``tenants list`` in each state, with the ratio to "now"."""
    cases = (("--help", ["--help"]), ("tenants list", [*base, "tenants", "list"]))
    reference = [
        subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import asyncio"],
            capture_output=True,
            text=True,
            check=True,
        ).stderr
        for _ in range(runs)
    ]
    scale = statistics.median(import_seconds(r) for r in reference)
    print(f"  reference: `python -c 'import asyncio'` imports for {scale:.3f} s (machine speed)")
    samples = [run(["--version"], "", True) for _ in range(runs)]
    imports = statistics.median(s[1] or 0.0 for s in samples)
    wall = statistics.median(s[0] for s in samples)
    print(f"  {'--version':13s} same  : importing {imports:.3f} s, wall {wall:.3f} s")
    for label, args in cases:
        figures = {}
        for _ in range(runs):  # the states interleaved, so they share the machine's weather
            for state, prelude, _ in STATES:
                figures.setdefault(state, []).append(run(args, prelude, True))
        now = statistics.median(s[1] or 0.0 for s in figures[STATES[-1][0]])
        for state, samples in figures.items():
            imports = statistics.median(s[1] or 0.0 for s in samples)
            wall = statistics.median(s[0] for s in samples)
            print(
                f"  {label:13s} {state}: importing {imports:.3f} s ({imports / now:.2f}x now), "
                f"wall {wall:.3f} s"
            )


def provision_rates(base: list[str], count: int) -> None:
    """``count`` single-tenant provisions per state, one process each, the states interleaved
    (the first state of each round rotating)."""
    spent = {state: 0.0 for state, _, _ in STATES}
    for i in range(count):
        for j in range(len(STATES)):
            state, _, prelude = STATES[(i + j) % len(STATES)]
            key = f"{state.strip()[0]}{i:04d}"
            spent[state] += run([*base, "tenants", "provision", key], prelude)[0]
    now = count / spent[STATES[-1][0]]
    for state, seconds in spent.items():
        rate = count / seconds
        print(
            f"  tenants provision KEY, one process each ({count}): {state} {rate:.2f}/s "
            f"(now is {now / rate:.2f}x this)"
        )


def main() -> int:
    """Parse arguments, start a throwaway cluster, measure, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="processes per import figure")
    parser.add_argument("--provisions", type=int, default=20, help="processes per state")
    parser.add_argument("--pg-bin", help="PostgreSQL bin dir (default: embedded PostgreSQL 18)")
    args = parser.parse_args()
    binaries = PgBinaries(Path(args.pg_bin)) if args.pg_bin else PgBinaries.embedded()
    with (
        throwaway_cluster(binaries, prefix="goconsole-bench-") as (cluster, work),
        tempfile.TemporaryDirectory() as scratch,
    ):
        config = Path(scratch) / "config.toml"
        config.write_text(f'[backup]\ndir = "{work / "backups"}"\n', encoding="utf-8")
        base = ["--config", str(config), "--dsn", cluster.dsn()]
        run([*base, "init"])
        print(f"PostgreSQL {binaries.major_version()}, {sys.executable}")
        import_figures(base, args.runs)
        provision_rates(base, args.provisions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
