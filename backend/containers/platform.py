"""Image platforms ("linux/arm64") and whether a container runs emulated on its daemon.

A container's platform is its image's ``Os``/``Architecture``/``Variant`` (one image inspect,
cached per image id: an id names immutable content). It is *emulated* when that architecture is
not one the daemon's CPU runs natively (``docker info``'s ``Architecture``, normalized).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from envdeck.backend.arch import docker_arch

# Architectures a CPU of the key runs without an emulator.
_NATIVE_ALSO = {"amd64": {"386"}, "arm64": {"arm"}}


def normalize_arch(arch: str | None) -> str | None:
    """Docker/Go architecture names: x86_64 -> amd64, aarch64 -> arm64; None stays None."""
    return docker_arch(arch) if arch else None


def format_platform(
    os_name: str | None, arch: str | None, variant: str | None = None
) -> str | None:
    """``linux/arm64``, ``linux/arm/v7``; None when the architecture is unknown."""
    norm = normalize_arch(arch)
    if not norm:
        return None
    parts = [os_name or "linux", norm] + ([variant] if variant else [])
    return "/".join(parts)


def platform_arch(platform: str | None) -> str | None:
    """The architecture part of a platform string."""
    if not platform:
        return None
    parts = platform.split("/")
    return parts[1] if len(parts) > 1 else None


def is_emulated(platform: str | None, native_arch: str | None) -> bool:
    """True when ``platform``'s arch is not runnable natively by a ``native_arch`` daemon."""
    arch = normalize_arch(platform_arch(platform))
    native = normalize_arch(native_arch)
    if not arch or not native or arch == native:
        return False
    return arch not in _NATIVE_ALSO.get(native, set())


class PlatformCache:
    """Image id -> platform string, filled by one inspect per unseen image (thread-safe)."""

    def __init__(self, inspect: Callable[[str], dict[str, Any]], limit: int = 4096) -> None:
        self._inspect = inspect
        self._limit = limit
        self._cache: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def get(self, image_id: str | None) -> str | None:
        """The platform of ``image_id``; None when unknown or the image is gone."""
        if not image_id:
            return None
        with self._lock:
            if image_id in self._cache:
                return self._cache[image_id]
        try:
            attrs = self._inspect(image_id)
        except Exception:  # noqa: BLE001 - a removed image or a daemon hiccup: unknown, retry later
            return None
        value = format_platform(attrs.get("Os"), attrs.get("Architecture"), attrs.get("Variant"))
        with self._lock:
            if len(self._cache) >= self._limit:
                self._cache.clear()
            self._cache[image_id] = value
        return value
