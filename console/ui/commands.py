"""Command palette: every area, every action on the focused tenant, the pool actions, and the
themes (ours first)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

from console.ui.screens.base import ConsoleScreen

if TYPE_CHECKING:
    from console.ui.app import GoConsoleApp


class ConsoleCommands(Provider):
    """Areas, provisioning, the focused tenant's lifecycle actions, and the screen's own
    entries (the pool actions on the pools screen).

    ``self.screen`` is the screen the palette was opened from (``app.screen`` is the palette).
    """

    def _commands(self) -> list[tuple[str, Callable[[], object], str]]:
        app: GoConsoleApp = self.app  # type: ignore[assignment]
        found: list[tuple[str, Callable[[], object], str]] = [
            (f"Go to {area.capitalize()}", partial(app.action_area, area), f"key {key}")
            for area, key in app.area_keys().items()
        ]
        found.append(("Keys help", app.action_help, "all keys on this screen"))
        if not app.read_only:
            found.append(("Provision a new tenant", app.action_provision, "opens the form"))
        key = app.focused_tenant(self.screen)
        if key is not None:
            found.append((f"Open tenant {key}", partial(app.open_tenant, key), "detail view"))
            if not app.read_only:
                for action in app.actions_for(key, self.screen):
                    label = action.replace("_", " ").capitalize()
                    found.append(
                        (
                            f"{label} {key}",
                            partial(app.request_action, action, key),
                            "tenant action",
                        )
                    )
        if isinstance(self.screen, ConsoleScreen):
            found += self.screen.palette_commands()
        return found

    async def discover(self) -> Hits:
        for text, callback, help_text in self._commands():
            yield DiscoveryHit(text, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, callback, help_text in self._commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), callback, help=help_text)


class ThemeCommands(Provider):
    """The themes offered: ours (themes/) first, then any others registered (Textual's
    built-ins, only with ``ui.builtin_themes = true``)."""

    def _themes(self) -> list[str]:
        app: GoConsoleApp = self.app  # type: ignore[assignment]
        ours = [name for name in app.own_themes if name in app.available_themes]
        return ours + sorted(set(app.available_themes) - set(ours))

    def _choose(self, name: str) -> None:
        self.app.theme = name

    async def discover(self) -> Hits:
        for name in self._themes():
            yield DiscoveryHit(name, partial(self._choose, name), help=self._help(name))

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name in self._themes():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), partial(self._choose, name), name)

    def _help(self, name: str) -> str:
        app: GoConsoleApp = self.app  # type: ignore[assignment]
        return "goconsole theme" if name in app.own_themes else "Textual built-in"
