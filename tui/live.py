"""The live backend sources, found lazily: a source module that is not there yet is skipped.

This is the one place that knows which backend modules produce events. It does not import
Textual, so ``envdeck record`` can use it too.
"""

from __future__ import annotations

import importlib
from typing import Any

from envdeck.backend.sources import Source

# (module, class, keyword arguments, what the user misses without it)
LIVE_SOURCES: list[tuple[str, str, dict[str, Any], str]] = [
    ("envdeck.backend.instances.source", "InstancesSource", {}, "instances and serial logs"),
    ("envdeck.backend.containers.source", "ContainersSource", {}, "containers"),
    ("envdeck.backend.processes.host", "ProcessSource", {"interval": 1.0}, "the process tree"),
]


def live_sources(notices: list[str] | None = None) -> list[Source]:
    """Instantiate every live source this build has; explain each missing one in ``notices``."""
    found: list[Source] = []
    for module_name, class_name, kwargs, what in LIVE_SOURCES:
        try:
            module = importlib.import_module(module_name)
            found.append(getattr(module, class_name)(**kwargs))
        except ModuleNotFoundError as exc:
            if exc.name is not None and not module_name.startswith(exc.name):
                _note(notices, f"{what}: {module_name} needs {exc.name} (not installed)")
            else:
                _note(notices, f"{what}: not available in this build ({module_name} missing)")
        except Exception as exc:  # noqa: BLE001 - one broken source must not stop the dashboard
            _note(notices, f"{what}: {module_name}.{class_name} failed to start: {exc}")
    return found


def _note(notices: list[str] | None, text: str) -> None:
    if notices is not None:
        notices.append(text)
