"""Which container a process belongs to: cgroup -> container id -> name (docker SDK, cached).

A process's container id comes from its /proc/PID/cgroup path (``/docker/<id>``,
``/system.slice/docker-<id>.scope``, ``cri-containerd-<id>``, ``libpod-<id>``) or, for the
children of ``containerd-shim-runc-v2``, from the shim's ``-id <id>`` argument. Names come from
one ``containers.list(sparse=True)`` request, cached; an unreachable daemon is retried later and
never slows the scan down more than once per back-off period.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from typing import Any

_CGROUP_ID = re.compile(
    r"(?:docker[-/]|cri-containerd-|crio-|libpod-|containerd-|/)([0-9a-f]{64})(?:\.scope)?(?:/|$)",
    re.MULTILINE,
)


def container_id_from_cgroup(text: str) -> str | None:
    """The 64-hex container id in a /proc/PID/cgroup text, or None (host process)."""
    match = _CGROUP_ID.search(text)
    return match.group(1) if match else None


def shim_container_id(cmdline: list[str]) -> str | None:
    """The ``-id`` of a ``containerd-shim*`` command line: its children are that container."""
    if not cmdline or not os.path.basename(cmdline[0]).startswith("containerd-shim"):
        return None
    for i, arg in enumerate(cmdline[:-1]):
        if arg in ("-id", "--id"):
            return cmdline[i + 1]
    return None


def _docker_list() -> list[dict[str, Any]]:
    """Running containers as sparse dicts (one request to the host daemon)."""
    import docker  # imported lazily: most scans never need it

    client = docker.from_env(timeout=2)
    try:
        return [c.attrs for c in client.containers.list(sparse=True, ignore_removed=True)]
    finally:
        client.close()


class ContainerNames:
    """Container id -> name, refreshed from the daemon when an unknown id shows up."""

    def __init__(
        self,
        lister: Callable[[], list[dict[str, Any]]] = _docker_list,
        *,
        min_refresh: float = 2.0,
        backoff: float = 30.0,
    ) -> None:
        self._lister = lister
        self._names: dict[str, str] = {}
        self._min_refresh = min_refresh
        self._backoff = backoff
        self._next_try = 0.0
        self._lock = threading.Lock()
        self.error: str | None = None

    def _refresh(self, now: float) -> None:
        try:
            rows = self._lister()
        except Exception as exc:  # noqa: BLE001 - no daemon, no permission, timeout: all "unknown"
            self.error = f"docker: {exc}"
            self._next_try = now + self._backoff
            return
        self.error = None
        self._next_try = now + self._min_refresh
        names: dict[str, str] = {}
        for attrs in rows:
            cid = attrs.get("Id") or ""
            raw = attrs.get("Names") or [attrs.get("Name") or ""]
            name = (raw[0] if raw else "").lstrip("/")
            if cid and name:
                names[cid] = name
        self._names = names

    def name(self, cid: str) -> str | None:
        """The container's name, or None when the daemon does not know it (or is down)."""
        name = self._names.get(cid)
        if name is not None:
            return name
        now = time.monotonic()
        if now < self._next_try:
            return None
        with self._lock:
            if now >= self._next_try:
                self._refresh(now)
        return self._names.get(cid)

    def label(self, cid: str | None) -> str | None:
        """What a row shows: the name, or the short id when the name is unknown."""
        if cid is None:
            return None
        return self.name(cid) or cid[:12]
