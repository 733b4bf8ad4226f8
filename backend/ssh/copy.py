"""Files to and from a guest over its pinned-key SSH connection (``envdeck copy``, as
``limactl copy``).

The tiny guest's dropbear has no SFTP server, so a file travels over an exec channel: ``cat`` in
the guest writes or reads it. An upload goes to a temp file beside the destination, gets the
source's mode and is renamed into place; a download does the same on the host. So a broken copy
never leaves half a file under the destination's name.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import asyncssh

from envdeck.backend.errors import EnvdeckError

CHUNK = 1 << 18
#: progress(bytes done, bytes in all)
Progress = Callable[[int, int], None]


def _upload_script(dest: str, name: str, mode: int) -> str:
    """The guest's side of an upload: into ``dest`` (``dest/name`` when it is a directory)."""
    return (
        f'd={shlex.quote(dest)}; [ -d "$d" ] && d="$d"/{shlex.quote(name)}; '
        't="$d.envdeck-part"; '
        f'cat > "$t" && chmod {mode:o} "$t" && mv -f "$t" "$d" || {{ rm -f "$t"; exit 1; }}'
    )


def _raw(data: bytes | str | None) -> bytes:
    """A channel's output as bytes (the channels here are opened with encoding=None)."""
    return data.encode() if isinstance(data, str) else data or b""


def _failed(what: str, result: asyncssh.SSHCompletedProcess | None, stderr: bytes) -> EnvdeckError:
    said = stderr.decode(errors="replace").strip().splitlines()
    status = result.exit_status if result is not None else None
    return EnvdeckError(f"{what} failed in the guest: {said[-1] if said else f'exit {status}'}")


async def upload(
    conn: asyncssh.SSHClientConnection,
    src: Path,
    dest: str,
    progress: Progress | None = None,
) -> int:
    """Copy the host file ``src`` to ``dest`` in the guest; return the bytes sent."""
    try:
        info = src.stat()
        handle = src.open("rb")
    except OSError as exc:
        raise EnvdeckError(f"cannot read {src}: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(info.st_mode):
        handle.close()
        raise EnvdeckError(f"{src} is not a regular file")
    script = _upload_script(dest, src.name, stat.S_IMODE(info.st_mode))
    sent = 0
    with handle:
        async with conn.create_process(script, encoding=None) as proc:
            while block := handle.read(CHUNK):
                proc.stdin.write(block)
                await proc.stdin.drain()
                sent += len(block)
                if progress:
                    progress(sent, info.st_size)
            proc.stdin.write_eof()
            result = await proc.wait(check=False)
    if result.exit_status != 0:
        raise _failed(f"writing {dest}", result, _raw(result.stderr))
    return sent


async def download(
    conn: asyncssh.SSHClientConnection,
    src: str,
    dest: Path,
    progress: Progress | None = None,
    mode: int | None = None,
) -> int:
    """Copy the guest file ``src`` to ``dest`` on the host (``dest/NAME`` when ``dest`` is a
    directory) with the guest file's mode, or ``mode``; return the bytes received."""
    quoted = shlex.quote(src)
    probe = await conn.run(
        f'[ -f {quoted} ] || {{ echo "not a regular file" >&2; exit 1; }}; '
        f"stat -c '%s %a' {quoted}",
        check=False,
        encoding=None,
    )
    if probe.exit_status != 0:
        raise _failed(f"reading {src}", probe, _raw(probe.stderr))
    size_text, mode_text = _raw(probe.stdout).decode().split()
    size, mode = int(size_text), int(mode_text, 8) if mode is None else mode
    target = dest / PurePosixPath(src).name if dest.is_dir() else dest
    fd, part = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    received = 0
    try:
        with os.fdopen(fd, "wb") as out:
            async with conn.create_process(f"cat {quoted}", encoding=None) as proc:
                while block := await proc.stdout.read(CHUNK):
                    out.write(block)
                    received += len(block)
                    if progress:
                        progress(received, size)
                result = await proc.wait(check=False)
        if result.exit_status != 0:
            raise _failed(f"reading {src}", result, _raw(result.stderr))
        os.chmod(part, mode)
        os.replace(part, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(part)
        raise
    return received
