"""Locate host programs and say which Debian package provides a missing one."""

from __future__ import annotations

import shutil

from envdeck.backend.errors import MissingTool

#: program -> Debian package that ships it
DEBIAN_PACKAGES: dict[str, str] = {
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-system-aarch64": "qemu-system-arm",
    "qemu-img": "qemu-utils",
    "qemu-aarch64-static": "qemu-user-static",
    "busybox": "busybox-static",
    "dropbear": "dropbear-bin",
    "apt-get": "apt",
    "apt-cache": "apt",
    "dpkg-deb": "dpkg",
    "cpio": "cpio",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "docker": "docker.io",
    "dockerd": "docker.io",
    "tmux": "tmux",
}


def find_tool(name: str) -> str | None:
    """Path of ``name`` on PATH (or /usr/sbin, /sbin), or None."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/local/sbin")


def require_tool(name: str) -> str:
    """Path of ``name``; raise MissingTool naming the package to install when it is absent."""
    path = find_tool(name)
    if path is None:
        package = DEBIAN_PACKAGES.get(name, name)
        raise MissingTool(
            f"'{name}' is not installed",
            hint=f"install it with: sudo apt-get install {package}",
        )
    return path
