"""The headless command line (``goconsole COMMAND``): a thin front end over the core service.

``main`` parses and dispatches; ``parser`` holds the argument parser, ``validate`` the checks
made before connecting, one module per area the commands (``init``, ``tenants``, ``migrate``,
``pools``, ``audit``, ``privileges``, ``demo``) and ``render`` the one copy of how things are
shown. The terminal console is opened through a launcher passed in by ``console.entry``: this
package never imports ``console.ui``.
"""

from console.cli.main import main

__all__ = ["main"]
