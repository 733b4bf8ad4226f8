"""Every backend command the dashboard can run, behind one seam.

Backend modules are imported lazily: a command whose module is missing raises
:class:`ActionUnavailable` (shown as a notification). Blocking calls go to a thread.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
from types import ModuleType


class ActionUnavailable(RuntimeError):
    """The backend this action needs is not in this build (yet)."""


def _backend(name: str, attr: str) -> object:
    try:
        module: ModuleType = importlib.import_module(f"envdeck.backend.{name}")
    except ModuleNotFoundError as exc:
        raise ActionUnavailable(f"envdeck.backend.{name} is not available: {exc}") from exc
    func = getattr(module, attr, None)
    if func is None:
        raise ActionUnavailable(f"envdeck.backend.{name}.{attr} is not available")
    return func


INSTANCE_ACTIONS = ("start", "stop", "restart", "pause", "resume", "delete")
CONTAINER_ACTIONS = ("start", "stop", "restart", "pause", "unpause", "remove")


async def instance_action(name: str, action: str) -> str:
    """Run start/stop/restart/pause/resume/delete on instance ``name``; returns a line for the user."""
    if action not in INSTANCE_ACTIONS:
        raise ValueError(f"unknown instance action {action!r}")
    func = _backend("instances.api", action)
    if action == "delete":
        await func(name, force=True)  # type: ignore[operator]
    elif "wait" in inspect.signature(func).parameters:  # type: ignore[arg-type]
        await func(name, wait=False)  # type: ignore[operator]  # the event stream shows progress
    else:
        await func(name)  # type: ignore[operator]
    return f"{action}: {name}"


async def create_instance(name: str, template: str = "tiny") -> str:
    """Create an instance from a template (may build an image: runs in a thread)."""
    func = _backend("instances.api", "create")
    await asyncio.to_thread(func, name, template=template)  # type: ignore[arg-type]
    return f"created {name} ({template})"


def instance_shell_argv(name: str) -> list[str]:
    """The interactive SSH command for the instance's guest."""
    return list(_backend("instances.api", "shell_argv")(name))  # type: ignore[operator]


def instance_qemu_argv(name: str) -> list[str]:
    """The literal QEMU command line of the instance."""
    return list(_backend("instances.api", "qemu_argv")(name))  # type: ignore[operator]


async def container_action(endpoint: str, ref: str, action: str, force: bool = False) -> str:
    """start/stop/restart/pause/unpause/remove a container on ``endpoint``."""
    if action not in CONTAINER_ACTIONS:
        raise ValueError(f"unknown container action {action!r}")
    func = _backend("containers.actions", "container_action")
    return str(await func(endpoint, ref, action, force=force))  # type: ignore[operator]


def container_shell_argv(endpoint: str, ref: str) -> list[str]:
    """``docker exec -it`` for the container (with the endpoint's DOCKER_HOST)."""
    return list(_backend("containers.actions", "shell_argv")(endpoint, ref))  # type: ignore[operator]


def container_command(docker_host: str | None, ref: str, action: str) -> list[str]:
    """The docker CLI call equivalent to ``action`` (shown by the ``x`` menu)."""
    base = ["docker"] + (["-H", docker_host] if docker_host else [])
    verb = {"remove": ["rm", "-f"]}.get(action, [action])
    return [*base, *verb, ref]


async def send_signal(pid: int, start_time: float | None, sig: int) -> str:
    """Signal a process, checking its start time so a reused pid is never hit."""
    func = _backend("processes.signals", "send_signal")
    await asyncio.to_thread(func, pid, start_time, sig)  # type: ignore[arg-type]
    return f"sent signal {sig} to {pid}"


def container_logs(endpoint: str, ref: str, tail: int = 500):  # noqa: ANN201 - backend LogStream
    """A following stream of the container's log lines (blocking iterator; ``close()`` ends it)."""
    return _backend("containers.actions", "logs")(endpoint, ref, tail=tail, follow=True)  # type: ignore[operator]


async def forward_add(name: str, spec: str) -> str:
    """Add a forward to a running instance ('8080', '80:8080', '80:0.0.0.0:8080')."""
    row = await _backend("instances.api", "forward_add")(name, spec)  # type: ignore[operator]
    host = row.get("host") if isinstance(row, dict) else None
    return f"forward {spec} added to {name}" + (f" ({host})" if host else "")


async def forward_remove(name: str, guest: str) -> str:
    """Remove the forward of ``guest`` port from an instance."""
    await _backend("instances.api", "forward_remove")(name, guest)  # type: ignore[operator]
    return f"forward of guest {guest} removed from {name}"


def container_stats(endpoint: str, ref: str) -> dict:
    """CPU and memory of one container, sampled now (blocking: call from a thread)."""
    return dict(_backend("containers.actions", "stats")(endpoint, ref))  # type: ignore[operator]


def instance_config_text(name: str) -> str:
    """The instance's YAML as the user wrote it."""
    from envdeck.backend.store import InstanceDir

    return InstanceDir.of(name).config.read_text()
