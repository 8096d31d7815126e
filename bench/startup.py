"""Start-up cost of one CLI call: time spent importing, and one provision per process.

    .venv/bin/python bench/startup.py [--runs 5] [--provisions 20] [--pg-bin DIR]   # < 1 min

Starts a throwaway cluster, runs ``goconsole init`` on it, then measures ``goconsole
--version``, ``--help``, ``tenants list`` and ``tenants provision KEY``, each in a fresh
process: the time the process spends importing (``python -X importtime``: the cumulative time
of every top-level import, those made lazily at run time included; median of ``--runs``), and
the wall time. "Before" is the same code with the modules the CLI imported at start-up before
issue 12 loaded first (alembic and SQLAlchemy, via the migration tree): the same run, the same
machine weather. The provision rate is ``--provisions`` separate processes one after another,
before and after interleaved.
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

# What `import console.cli` loaded before issue 12 and no longer does.
BEFORE = "import alembic.command, alembic.config, alembic.script, sqlalchemy, sqlalchemy.pool\n"
# What a provision did besides, before issue 12, to learn the head revision: alembic read the
# tenant tree (importing every revision file).
BEFORE_PROVISION = (
    BEFORE
    + "from console.core.migrations.tree import script_directory\n"
    + 'script_directory("tenant").get_current_head()\n'
)
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
    """Median import time and wall time of ``--version`` (answered before the CLI loads, as
    before issue 12), and of ``--help`` and ``tenants list`` before and after."""
    cases = (
        ("--version", ["--version"], (False,)),
        ("--help", ["--help"], (True, False)),
        ("tenants list", [*base, "tenants", "list"], (True, False)),
    )
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
    for label, args, states in cases:
        for before in states:
            samples = [run(args, BEFORE if before else "", True) for _ in range(runs)]
            imports = statistics.median(s[1] or 0.0 for s in samples)
            wall = statistics.median(s[0] for s in samples)
            state = "before" if before else "after " if len(states) > 1 else "same  "
            print(f"  {label:13s} {state}: importing {imports:.3f} s, wall {wall:.3f} s")


def provision_rates(base: list[str], count: int) -> None:
    """``count`` single-tenant provisions, one process each, before and after interleaved."""
    spent = {True: 0.0, False: 0.0}
    for i in range(count):
        for before in (i % 2 == 0, i % 2 != 0):
            key = f"{'b' if before else 'a'}{i:04d}"
            prelude = BEFORE_PROVISION if before else ""
            spent[before] += run([*base, "tenants", "provision", key], prelude)[0]
    old, new = count / spent[True], count / spent[False]
    print(
        f"  tenants provision KEY, one process each ({count} per state): "
        f"before {old:.2f}/s, after {new:.2f}/s ({new / old:.2f}x)"
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
