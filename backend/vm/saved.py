"""A suspended instance's saved machine: QEMU's migration stream in a file of the instance's
own directory (owner-only), and what it was saved from.

``suspend.state`` holds the stream (QMP ``migrate`` to ``exec:cat``); ``suspend.json`` says
which instance, which QEMU (its version) and which machine (a digest of the QEMU argv) made
it, written only once the stream is complete. A resume starts the same QEMU with the same argv
and ``-incoming``; a state from another QEMU, another machine or another instance is refused
with the reason. A state is used once: it is removed as soon as QEMU has loaded it (the disk
moves on from there).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from envdeck.backend.store import write_atomic

STATE_FILE = "suspend.state"
META_FILE = "suspend.json"
#: the part of the argv that may differ between save and resume: the host side of the SSH port
_HOSTFWD = re.compile(r"hostfwd=tcp:127\.0\.0\.1:\d+-")
_VERSION = re.compile(r"version (\S+)(?: \((.*)\))?")


@dataclass(frozen=True)
class SavedMachine:
    """What a saved state was made by."""

    instance: str
    qemu_version: str
    argv_digest: str
    accel: str
    saved_at: float
    size_bytes: int


def state_path(root: Path) -> Path:
    """The migration stream of the instance whose directory is ``root``."""
    return root / STATE_FILE


def argv_digest(argv: list[str]) -> str:
    """A digest of the machine a QEMU argv makes (aside: the host port of the SSH forward, and
    the ``-incoming`` of a QEMU that was itself resumed)."""
    if "-incoming" in argv:
        at = argv.index("-incoming")
        argv = argv[:at] + argv[at + 2 :]
    normal = [_HOSTFWD.sub("hostfwd=tcp:127.0.0.1:PORT-", arg) for arg in argv]
    return hashlib.sha256("\0".join(normal).encode()).hexdigest()


def version_text(major: int, minor: int, micro: int, package: str) -> str:
    """One spelling of a QEMU version for QMP's ``query-version`` and ``--version``."""
    package = package.strip().strip("()").strip()
    return f"{major}.{minor}.{micro}" + (f" ({package})" if package else "")


def binary_version(binary: str) -> str:
    """The version of the QEMU binary that would load a state (``BINARY --version``)."""
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except OSError as exc:
        return f"unknown ({exc.strerror})"
    found = _VERSION.search(out.splitlines()[0] if out else "")
    if not found:
        return "unknown"
    major, minor, micro = (found.group(1).split(".") + ["0", "0"])[:3]
    return version_text(int(major), int(minor), int(micro), found.group(2) or "")


def start_file(root: Path) -> Path:
    """An empty, owner-only file for the stream (QEMU's ``cat`` writes into it)."""
    path = state_path(root)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    os.chmod(path, 0o600)
    return path


def outgoing_uri(path: Path) -> str:
    """The QMP ``migrate`` URI that writes the stream into ``path``."""
    return f"exec:cat > {shlex.quote(str(path))}"


def incoming_uri(path: Path) -> str:
    """The ``-incoming`` URI that reads the stream back."""
    return f"exec:cat {shlex.quote(str(path))}"


def record(root: Path, instance: str, qemu_version: str, argv: list[str], accel: str) -> None:
    """Write ``suspend.json`` once the stream is complete (the state is usable from then on)."""
    saved = SavedMachine(
        instance=instance,
        qemu_version=qemu_version,
        argv_digest=argv_digest(argv),
        accel=accel,
        saved_at=time.time(),
        size_bytes=state_path(root).stat().st_size,
    )
    write_atomic(root / META_FILE, json.dumps(dataclasses.asdict(saved)))


def load(root: Path) -> SavedMachine | None:
    """The saved machine of this directory, or None (no state, or an incomplete one)."""
    if not state_path(root).exists():
        return None
    try:
        data = json.loads((root / META_FILE).read_text())
        return SavedMachine(**{f.name: data[f.name] for f in dataclasses.fields(SavedMachine)})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def exists(root: Path) -> bool:
    """Whether anything of a saved state is there (complete or not)."""
    return state_path(root).exists() or (root / META_FILE).exists()


def refusal(saved: SavedMachine, instance: str, qemu_version: str, argv: list[str]) -> str | None:
    """Why this state must not be loaded into that machine (None: it may)."""
    if saved.instance != instance:
        return f"it was saved by instance {saved.instance!r}, not {instance!r}"
    if saved.qemu_version != qemu_version:
        return f"it was saved by QEMU {saved.qemu_version}; this QEMU is {qemu_version}"
    if saved.argv_digest != argv_digest(argv):
        return "the machine changed since it was saved (config, kernel, image or accelerator)"
    return None


def discard(root: Path) -> None:
    """Remove the saved state (used, refused or half-written)."""
    for name in (META_FILE, STATE_FILE):
        with contextlib.suppress(FileNotFoundError):
            (root / name).unlink()
