"""Signals to host processes, pinned to (pid, start time): a reused PID is never hit."""

from __future__ import annotations

import os
import signal
import sys

from envdeck.backend.errors import EnvdeckError, NotFound, UserInputError

CLK_TCK: int = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_START_TOLERANCE = 0.05  # seconds: start times are derived from clock ticks (1/100 s)


def _read_stat(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 4096)
    finally:
        os.close(fd)


def read_start_time(pid: int, proc: str = "/proc") -> float:
    """The start time (epoch seconds) of ``pid`` as the scanner computes it; NotFound if gone."""
    import psutil

    try:
        data = _read_stat(f"{proc}/{pid}/stat")
    except OSError as exc:
        raise NotFound(f"no process with pid {pid}") from exc
    fields = data[data.rfind(b")") + 2 :].split()
    return psutil.boot_time() + int(fields[19]) / CLK_TCK


def _same_process(pid: int, start_time: float) -> None:
    try:
        actual = read_start_time(pid)
    except NotFound:
        raise NotFound(f"process {pid} is gone") from None
    if abs(actual - start_time) > _START_TOLERANCE:
        raise NotFound(
            f"process {pid} is gone (the pid now belongs to another process)",
            hint="refresh the list and pick the process again",
        )


def send_signal(pid: int, start_time: float, sig: int = signal.SIGTERM) -> None:
    """Send ``sig`` to ``pid`` only if it is still the process that started at ``start_time``.

    On Linux a pidfd pins the process between the check and the signal, so a PID reused in
    between is never hit. Raises NotFound (gone or reused), EnvdeckError (permission).
    """
    if pid <= 1:
        raise UserInputError(f"refusing to signal pid {pid}")
    if not sys.platform.startswith("linux") or not hasattr(os, "pidfd_open"):
        _portable_signal(pid, start_time, sig)
        return
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        raise NotFound(f"process {pid} is gone") from None
    except OSError:
        _portable_signal(pid, start_time, sig)
        return
    try:
        _same_process(pid, start_time)
        signal.pidfd_send_signal(pidfd, sig)
    except ProcessLookupError:
        raise NotFound(f"process {pid} is gone") from None
    except PermissionError as exc:
        raise EnvdeckError(
            f"not allowed to signal process {pid}",
            hint="it belongs to another user: run as that user or root",
        ) from exc
    finally:
        os.close(pidfd)


def _portable_signal(pid: int, start_time: float, sig: int) -> None:
    import psutil

    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - start_time) > _START_TOLERANCE:
            raise NotFound(f"process {pid} is gone (the pid now belongs to another process)")
        proc.send_signal(sig)
    except psutil.NoSuchProcess:
        raise NotFound(f"process {pid} is gone") from None
    except psutil.AccessDenied as exc:
        raise EnvdeckError(f"not allowed to signal process {pid}") from exc
