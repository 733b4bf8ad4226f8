"""One-off container operations for the CLI and the TUI's commands: list, actions, logs, shell,
stats. Each call opens one client, does its requests, and closes it (blocking: callers in
asyncio use :func:`container_action`, which runs in a thread, or ``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Iterator
from typing import Any

from envdeck.backend.containers.endpoints import (
    Endpoint,
    connect,
    resolve,
    unreachable_reason,
)
from envdeck.backend.containers.platform import PlatformCache, normalize_arch
from envdeck.backend.containers.rows import to_info
from envdeck.backend.errors import EnvdeckError, MissingTool, NotFound, UserInputError
from envdeck.backend.events import ContainerInfo

ACTIONS = ("start", "stop", "restart", "pause", "unpause", "remove")


def _endpoint(endpoint: str | Endpoint | None) -> Endpoint:
    return endpoint if isinstance(endpoint, Endpoint) else resolve(endpoint)


@contextlib.contextmanager
def _client_errors(ep: Endpoint) -> Iterator[None]:
    """Turn the SDK's connection and API errors into :class:`EnvdeckError` (404: NotFound)."""
    import docker
    import requests

    try:
        yield
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        raise EnvdeckError(
            f"docker endpoint {ep.name} is unreachable: {unreachable_reason(ep, exc)}",
            hint="is dockerd running?",
        ) from exc
    except docker.errors.APIError as exc:
        if exc.status_code == 404:
            raise NotFound(str(exc.explanation or exc)) from exc
        raise EnvdeckError(str(exc.explanation or exc), where=ep.name) from exc


@contextlib.contextmanager
def _client(endpoint: Endpoint, *, timeout: float | None = 10) -> Iterator[Any]:
    """A client for one operation, closed afterwards; errors as :class:`EnvdeckError`."""
    client = connect(endpoint, timeout=timeout)
    try:
        with _client_errors(endpoint):
            yield client
    finally:
        client.close()


def native_arch(client: Any) -> str | None:
    """The daemon's CPU architecture (``docker info``), normalized: x86_64 -> amd64."""
    return normalize_arch(client.info().get("Architecture"))


def list_containers(
    endpoint: str | Endpoint | None = None, all: bool = True
) -> list[ContainerInfo]:
    """Containers of one endpoint (default: the host daemon), newest first; one list request."""
    ep = _endpoint(endpoint)
    with _client(ep) as client:
        native = native_arch(client)
        platforms = PlatformCache(client.api.inspect_image)
        return [
            to_info(ep.name, attrs, platforms.get(attrs.get("ImageID")), native)
            for attrs in client.api.containers(all=all)
        ]


def _inspect(client: Any, ep: Endpoint, ref: str) -> dict[str, Any]:
    """The container ``ref`` (name, id or id prefix); :class:`NotFound` with a hint if unknown."""
    import docker

    try:
        return client.api.inspect_container(ref)
    except docker.errors.NotFound as exc:
        raise NotFound(
            f"no container {ref!r} on endpoint {ep.name}",
            hint=f"'envdeck containers --all --endpoint {ep.name}' lists them",
        ) from exc


def _label(attrs: dict[str, Any]) -> str:
    return (attrs.get("Name") or "").lstrip("/") or attrs["Id"][:12]


def _do_action(ep: Endpoint, ref: str, action: str, force: bool, stop_timeout: int) -> str:
    if action not in ACTIONS:
        raise UserInputError(
            f"unknown container action {action!r}", hint=f"one of: {', '.join(ACTIONS)}"
        )
    with _client(ep, timeout=stop_timeout + 30) as client:
        attrs = _inspect(client, ep, ref)
        cid, name, state = attrs["Id"], _label(attrs), attrs["State"]
        running, paused = state.get("Running", False), state.get("Paused", False)
        api = client.api
        if action == "start":
            if running:
                return f"{name} is already running"
            api.start(cid)
            return f"started {name}"
        if action == "stop":
            if not running:
                return f"{name} is not running"
            api.stop(cid, timeout=stop_timeout)
            return f"stopped {name}"
        if action == "restart":
            api.restart(cid, timeout=stop_timeout)
            return f"restarted {name}"
        if action == "pause":
            if paused:
                return f"{name} is already paused"
            if not running:
                raise EnvdeckError(
                    f"cannot pause {name}: it is not running",
                    hint=f"start it first: envdeck container start {name}",
                )
            api.pause(cid)
            return f"paused {name}"
        if action == "unpause":
            if not paused:
                raise EnvdeckError(f"cannot unpause {name}: it is not paused")
            api.unpause(cid)
            return f"unpaused {name}"
        if running and not force:
            raise EnvdeckError(
                f"{name} is running", hint="stop it first, or remove it with --force"
            )
        api.remove_container(cid, force=force)
        return f"removed {name}" + (" (was running)" if running else "")


async def container_action(
    endpoint: str | Endpoint | None,
    ref: str,
    action: str,
    *,
    force: bool = False,
    stop_timeout: int = 10,
) -> str:
    """Run ``action`` (start|stop|restart|pause|unpause|remove) on a container; a result text.

    ``remove`` of a running container needs ``force=True`` (the caller confirms first).
    Raises :class:`NotFound` for an unknown container and :class:`EnvdeckError` otherwise.
    """
    ep = _endpoint(endpoint)
    return await asyncio.to_thread(_do_action, ep, ref, action, force, stop_timeout)


def shell_argv(
    endpoint: str | Endpoint | None, ref: str, command: list[str] | None = None
) -> list[str]:
    """The ``docker exec -it`` command line for an interactive shell (for ``App.suspend()``).

    Checks that the container exists and is running, and that the docker CLI is installed.
    """
    docker_cli = shutil.which("docker")
    if docker_cli is None:
        raise MissingTool("the docker CLI is not installed", hint="install the docker.io package")
    ep = _endpoint(endpoint)
    with _client(ep) as client:
        attrs = _inspect(client, ep, ref)
    state = attrs["State"]
    if not state.get("Running") or state.get("Paused"):
        status = "paused" if state.get("Paused") else state.get("Status", "not running")
        raise EnvdeckError(
            f"cannot open a shell in {_label(attrs)}: it is {status}",
            hint=f"envdeck container start {_label(attrs)}",
        )
    target = ["--context", ep.context] if ep.context else ["-H", ep.url]
    return ["docker", *target, "exec", "-it", attrs["Id"], *(command or ["sh"])]


class LogStream:
    """Log lines of one container (iterator of ``str`` without newlines); ``close()`` from any
    thread ends a follow."""

    def __init__(self, client: Any, raw: Any) -> None:
        self._client = client
        self._raw = raw
        self._buffer = b""
        self._done = False

    def __iter__(self) -> LogStream:
        return self

    def __next__(self) -> str:
        while b"\n" not in self._buffer:
            if self._done:
                break
            try:
                chunk = next(self._raw)
            except StopIteration:
                self._done = True
                break
            self._buffer += chunk
        if not self._buffer:
            self.close()
            raise StopIteration
        line, sep, rest = self._buffer.partition(b"\n")
        self._buffer = rest
        return line.decode("utf-8", "replace").rstrip("\r")

    def close(self) -> None:
        """Stop reading and release the connection."""
        self._done = True
        with contextlib.suppress(Exception):
            self._raw.close()
        with contextlib.suppress(Exception):
            self._client.close()


def logs(
    endpoint: str | Endpoint | None,
    ref: str,
    *,
    tail: int | None = 200,
    follow: bool = False,
    timestamps: bool = False,
) -> LogStream:
    """A container's log lines (stdout and stderr): the last ``tail`` (None = all), then live
    ones when ``follow``. Raises :class:`NotFound` at once for an unknown container."""
    ep = _endpoint(endpoint)
    client = connect(ep, timeout=None if follow else 30)
    try:
        with _client_errors(ep):
            cid = _inspect(client, ep, ref)["Id"]
            raw = client.api.logs(
                cid,
                stream=True,
                follow=follow,
                timestamps=timestamps,
                tail="all" if tail is None else tail,
            )
    except BaseException:
        client.close()
        raise
    return LogStream(client, raw)


def summarize_stats(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """CPU % from two one-shot samples, memory as ``docker stats`` counts it, I/O totals."""
    cpu1, cpu2 = first.get("cpu_stats") or {}, second.get("cpu_stats") or {}
    used = cpu2.get("cpu_usage", {}).get("total_usage", 0) - cpu1.get("cpu_usage", {}).get(
        "total_usage", 0
    )
    system = cpu2.get("system_cpu_usage", 0) - cpu1.get("system_cpu_usage", 0)
    cpus = cpu2.get("online_cpus") or len(cpu2.get("cpu_usage", {}).get("percpu_usage") or []) or 1
    mem = second.get("memory_stats") or {}
    detail = mem.get("stats") or {}
    cache = detail.get("total_inactive_file", detail.get("inactive_file", 0))
    usage = max(0, mem.get("usage", 0) - cache) if mem.get("usage") is not None else None
    limit = mem.get("limit")
    nets = (second.get("networks") or {}).values()
    blkio = (second.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []
    return {
        "cpu_percent": round(used / system * cpus * 100, 2) if system > 0 and used >= 0 else 0.0,
        "cpu_seconds": cpu2.get("cpu_usage", {}).get("total_usage", 0) / 1e9,
        "online_cpus": cpus,
        "memory_bytes": usage,
        "memory_limit_bytes": limit,
        "memory_percent": round(usage / limit * 100, 2) if usage is not None and limit else None,
        "pids": (second.get("pids_stats") or {}).get("current"),
        "net_rx_bytes": sum(n.get("rx_bytes", 0) for n in nets),
        "net_tx_bytes": sum(n.get("tx_bytes", 0) for n in nets),
        "block_read_bytes": sum(
            b.get("value", 0) for b in blkio if b.get("op", "").lower() == "read"
        ),
        "block_write_bytes": sum(
            b.get("value", 0) for b in blkio if b.get("op", "").lower() == "write"
        ),
    }


def stats(endpoint: str | Endpoint | None, ref: str, *, interval: float = 0.5) -> dict[str, Any]:
    """CPU and memory of one container, on demand: two one-shot samples ``interval`` apart."""
    ep = _endpoint(endpoint)
    with _client(ep) as client:
        attrs = _inspect(client, ep, ref)
        cid = attrs["Id"]
        first = client.api.stats(cid, stream=False, one_shot=True)
        time.sleep(interval)
        second = client.api.stats(cid, stream=False, one_shot=True)
    return {
        "endpoint": ep.name,
        "id": cid,
        "name": _label(attrs),
        "state": attrs["State"].get("Status"),
        **summarize_stats(first, second),
    }
