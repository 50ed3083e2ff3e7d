"""The one place the engine names sources: source name → module holding its `PLUGIN`.

Adding a source is adding its package under `collectors/` and one line here. Modules are
imported lazily, so a source's dependencies load only when it is configured or listed.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator

from daemon.collector import SourcePlugin

__all__ = ["SOURCES", "all_plugins", "plugin"]

SOURCES: dict[str, str] = {
    "enedis": "collectors.enedis",
    "bluecurrent": "collectors.bluecurrent",
    "qualicharge": "collectors.qualicharge",
    "econnect": "collectors.econnect",
}


def plugin(name: str) -> SourcePlugin:
    """The plugin of source `name` (KeyError with the known names if unknown)."""
    try:
        module_name = SOURCES[name]
    except KeyError:
        raise KeyError(f"unknown source {name!r}; known: {', '.join(sorted(SOURCES))}") from None
    found: SourcePlugin = importlib.import_module(module_name).PLUGIN
    return found


def all_plugins() -> Iterator[SourcePlugin]:
    """Every source whose package is installed, in registry order."""
    for name, module_name in SOURCES.items():
        try:
            importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        yield plugin(name)
