"""`python -m console` runs the same entry point as the `goconsole` script."""

from console.entry import main

raise SystemExit(main())
