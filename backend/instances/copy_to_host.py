"""Lima's ``copyToHost``: once the guest is ready (provisioning and probes done), each listed
guest file is copied to the host over the pinned-key SSH connection, owner-only (0600) in
folders made 0700, never through a symlink at the destination (the file is renamed into place).
``skipIfMissing`` skips a guest file that does not exist; ``deleteOnStop`` removes the host copy
when the instance stops. A copy that fails leaves the instance degraded with the reason."""

from __future__ import annotations

import asyncio
import contextlib
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from envdeck.backend.config.guest_keys import CopyRule
from envdeck.backend.errors import EnvdeckError
from envdeck.backend.ssh.copy import download

#: the boot stage of instances with copyToHost entries
COPIED_STAGE = "files copied to host"

Say = Callable[[str], None]


async def copy_rule(conn: Any, rule: CopyRule) -> str | None:
    """Copy one file; a short note when it was skipped. Raises EnvdeckError on failure."""
    dest = Path(rule.host)
    if dest.is_symlink():  # never written through (the guest may have planted it in a mount)
        dest.unlink()
    if dest.is_dir():
        raise EnvdeckError(f"{rule.host} is a directory on the host")
    if rule.skip_if_missing:
        found = await conn.run(f"test -e {shlex.quote(rule.guest)}", check=False)
        if found.exit_status != 0:
            return f"{rule.guest} is missing in the guest: skipped (skipIfMissing)"
    try:
        dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise EnvdeckError(f"cannot make {dest.parent}: {exc.strerror or exc}") from exc
    await download(conn, rule.guest, dest, mode=0o600)
    return None


async def copy_all(conn: Any, rules: tuple[CopyRule, ...], say: Say) -> str | None:
    """Copy every rule's file in order; the first failure's reason (None when all worked)."""
    for rule in rules:
        try:
            note = await copy_rule(conn, rule)
        except EnvdeckError as exc:
            return f"copyToHost {rule.guest} -> {rule.host}: {exc.message}"
        say(note or f"copied {rule.guest} to {rule.host}")
    return None


async def delete_on_stop(stopped: asyncio.Event, rules: tuple[CopyRule, ...]) -> None:
    """Wait for the instance to stop (or this task to end), then remove the host copies of the
    rules marked ``deleteOnStop``."""
    try:
        await stopped.wait()
    finally:
        for rule in rules:
            if rule.delete_on_stop:
                with contextlib.suppress(FileNotFoundError):
                    Path(rule.host).unlink()
