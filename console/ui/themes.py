"""Theme files (``themes/*.toml``): loaded and validated at start, then registered."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from textual.color import Color, ColorParseError
from textual.theme import Theme

if TYPE_CHECKING:
    from console.ui.app import GoConsoleApp

COLOUR_KEYS = (
    "primary",
    "secondary",
    "accent",
    "warning",
    "error",
    "success",
    "foreground",
    "background",
    "surface",
    "panel",
)
FALLBACK_THEME = "gocommerce-dark"
TEXTUAL_DEFAULT = "textual-dark"  # only when themes/ holds no usable theme at all


@dataclass
class LoadedThemes:
    """Themes that passed validation, and one line per file that did not."""

    themes: list[Theme] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def fallback_theme(ours: list[str]) -> str:
    """The theme used when ``ui.theme`` is not available: gocommerce-dark, else the first of
    ours, else Textual's default."""
    if FALLBACK_THEME in ours:
        return FALLBACK_THEME
    return ours[0] if ours else TEXTUAL_DEFAULT


def themes_dir() -> Path:
    """``themes/`` beside the package (checkout) or inside it (installed wheel)."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "themes", package.parent / "themes"):
        if candidate.is_dir():
            return candidate
    return package.parent / "themes"


def parse_theme(path: Path) -> Theme:
    """One theme file; ValueError naming the file and the problem."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path.name}: cannot read theme: {exc}") from None
    allowed = {"name", "dark", *COLOUR_KEYS}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ValueError(
            f"{path.name}: unknown key(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{path.name}: 'name' must be a non-empty string")
    if "primary" not in raw:
        raise ValueError(f"{path.name}: 'primary' colour is required")
    dark = raw.get("dark", True)
    if not isinstance(dark, bool):
        raise ValueError(f"{path.name}: 'dark' must be true or false")
    colours: dict[str, str] = {}
    for key in COLOUR_KEYS:
        if key in raw:
            value = raw[key]
            try:
                Color.parse(value)
            except (ColorParseError, TypeError):
                raise ValueError(f"{path.name}: {key} = {value!r} is not a colour") from None
            colours[key] = value
    return Theme(
        name=name,
        dark=dark,
        primary=colours["primary"],
        secondary=colours.get("secondary"),
        accent=colours.get("accent"),
        warning=colours.get("warning"),
        error=colours.get("error"),
        success=colours.get("success"),
        foreground=colours.get("foreground"),
        background=colours.get("background"),
        surface=colours.get("surface"),
        panel=colours.get("panel"),
    )


def load_themes(folder: Path) -> LoadedThemes:
    """Every ``*.toml`` in ``folder``; bad files are reported, not fatal."""
    loaded = LoadedThemes()
    for path in sorted(folder.glob("*.toml")):
        try:
            loaded.themes.append(parse_theme(path))
        except ValueError as exc:
            loaded.problems.append(str(exc))
    return loaded


def apply_themes(app: GoConsoleApp, folder: Path) -> None:
    """Register the theme files of ``folder``, offer only ours unless ``ui.builtin_themes``,
    and switch to ``ui.theme`` (or a fallback, saying why)."""
    loaded = load_themes(folder)
    for theme in loaded.themes:
        app.register_theme(theme)
    app.own_themes = [theme.name for theme in loaded.themes]
    for problem in loaded.problems:
        app.notify(
            problem, title="Theme file ignored", severity="warning", timeout=10, markup=False
        )
    builtins = app.settings.ui.builtin_themes or not app.own_themes
    offered = [name for name in app.available_themes if builtins or name in app.own_themes]
    wanted = app.settings.ui.theme
    if wanted in offered:
        app.theme = wanted
    else:
        fallback = fallback_theme(app.own_themes)
        why = (
            "is a built-in Textual theme (set ui.builtin_themes = true to offer those)"
            if wanted in app.available_themes
            else "is not available"
        )
        app.notify(
            f"theme {wanted!r} {why}; using {fallback}. Available: "
            + ", ".join(name for name in app.own_themes or offered),
            title="Theme",
            severity="warning",
            timeout=10,
            markup=False,
        )
        app.theme = fallback
    for name in set(app.available_themes) - set(offered):
        app.unregister_theme(name)
