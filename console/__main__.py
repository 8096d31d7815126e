"""`python -m console` runs the same entry point as the `goconsole` script."""

from console.cli import main

raise SystemExit(main())
