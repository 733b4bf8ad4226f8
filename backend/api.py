"""The typed seam between the dashboard and the backend: every user action it can run.

:class:`Backend` is what a client (the TUI) may ask for; :class:`LiveBackend` does it with the
real backend modules. Those are imported inside the methods, so importing this module (and the
dashboard) stays cheap. Coroutines return one line for the user; blocking calls run in threads
or are documented as blocking (the caller runs them off its UI thread). :class:`ReplayBackend` is
what a replay gets: it refuses everything, so a recording never acts on (or connects to) the
real instances, containers and processes that share its names.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, NoReturn, Protocol

from envdeck.backend.errors import EnvdeckError

ContainerAction = Literal["start", "stop", "restart", "pause", "unpause", "remove"]
Progress = Callable[[str, float | None], None]  # (step, fraction done or None)


class LineStream(Protocol):
    """A blocking iterator of lines; ``close()`` (from any thread) ends it."""

    def __iter__(self) -> Iterator[str]: ...

    def __next__(self) -> str: ...

    def close(self) -> None: ...


class Backend(Protocol):
    """Every command the dashboard runs against the world."""

    async def start_instance(self, name: str) -> str:
        """Start an instance without waiting for its boot (the event stream shows progress)."""
        ...

    async def stop_instance(self, name: str) -> str:
        """Stop an instance."""
        ...

    async def restart_instance(self, name: str) -> str:
        """Stop, then start an instance."""
        ...

    async def pause_instance(self, name: str) -> str:
        """Pause an instance's vCPUs."""
        ...

    async def resume_instance(self, name: str) -> str:
        """Resume a paused instance."""
        ...

    async def delete_instance(self, name: str, *, force: bool) -> str:
        """Delete an instance (``force`` stops a running one first)."""
        ...

    async def create_instance(
        self,
        name: str,
        *,
        template: str,
        cpus: int | None = None,
        memory_bytes: int | None = None,
        progress: Progress | None = None,
    ) -> str:
        """Create an instance from a template (may build its image first: ``progress`` gets
        each step and its fraction done, from a worker thread); None sizes are the
        template's."""
        ...

    def instance_shell_argv(self, name: str) -> list[str]:
        """The interactive SSH command for the instance's guest (blocking)."""
        ...

    def instance_qemu_argv(self, name: str) -> list[str]:
        """The literal QEMU command line of the instance's last launch (blocking)."""
        ...

    def instance_config_text(self, name: str) -> str:
        """The instance's YAML as the user wrote it (blocking)."""
        ...

    async def add_forward(self, name: str, spec: str) -> str:
        """Add a forward to a running instance ('8080', '80:8080', '80:0.0.0.0:8080')."""
        ...

    async def remove_forward(self, name: str, guest: str) -> str:
        """Remove the forward of guest port ``guest`` from an instance."""
        ...

    async def container_action(
        self, endpoint: str, ref: str, action: ContainerAction, *, force: bool = False
    ) -> str:
        """start/stop/restart/pause/unpause/remove a container on ``endpoint``."""
        ...

    def container_shell_argv(self, endpoint: str, ref: str) -> list[str]:
        """``docker exec -it`` for the container, with the endpoint's host (blocking)."""
        ...

    def container_logs(self, endpoint: str, ref: str, *, tail: int) -> LineStream:
        """The last ``tail`` log lines of a container, then new ones as they come (blocking)."""
        ...

    def container_stats(self, endpoint: str, ref: str) -> dict[str, Any]:
        """CPU and memory of one container, sampled now (blocking)."""
        ...

    async def send_signal(self, pid: int, start_time: float, sig: int) -> str:
        """Signal a host process, only if it is still the one that started at ``start_time``."""
        ...

    async def send_guest_signal(self, name: str, pid: int, start_ticks: int, sig: str) -> str:
        """Signal (``TERM``, ``KILL`` ...) a process in instance ``name``'s guest, only if it is
        still the one that started ``start_ticks`` clock ticks after the guest booted."""
        ...

    def serial_log_path(self, name: str) -> Path:
        """The instance's whole serial log on disk (for searching it; blocking)."""
        ...

    def open_in_browser(self, url: str) -> bool:
        """Open ``url`` (a forward's host address) in the user's browser (blocking); False when
        there is no browser to open it in."""
        ...


class LiveBackend:
    """:class:`Backend` over envdeck.backend's instances, containers and processes modules."""

    async def start_instance(self, name: str) -> str:
        """Start without waiting for the boot."""
        from envdeck.backend.instances import api

        await api.start(name, wait=False)
        return f"start: {name}"

    async def stop_instance(self, name: str) -> str:
        """Stop gracefully (the backend escalates if it must)."""
        from envdeck.backend.instances import api

        await api.stop(name)
        return f"stop: {name}"

    async def restart_instance(self, name: str) -> str:
        """Stop, then start."""
        from envdeck.backend.instances import api

        await api.restart(name)
        return f"restart: {name}"

    async def pause_instance(self, name: str) -> str:
        """QMP stop."""
        from envdeck.backend.instances import api

        await api.pause(name)
        return f"pause: {name}"

    async def resume_instance(self, name: str) -> str:
        """QMP cont."""
        from envdeck.backend.instances import api

        await api.resume(name)
        return f"resume: {name}"

    async def delete_instance(self, name: str, *, force: bool) -> str:
        """Remove the instance directory (stopping it first with ``force``)."""
        from envdeck.backend.instances import api

        await api.delete(name, force=force)
        return f"delete: {name}"

    async def create_instance(
        self,
        name: str,
        *,
        template: str,
        cpus: int | None = None,
        memory_bytes: int | None = None,
        progress: Progress | None = None,
    ) -> str:
        """Create in a thread: building an image blocks for a while."""
        from envdeck.backend.instances import api

        await asyncio.to_thread(
            api.create,
            name,
            template=template,
            cpus=cpus,
            memory_bytes=memory_bytes,
            progress=progress,
        )
        return f"created {name} ({template})"

    def instance_shell_argv(self, name: str) -> list[str]:
        """OpenSSH with the pinned host key."""
        from envdeck.backend.instances import api

        return list(api.shell_argv(name))

    def instance_qemu_argv(self, name: str) -> list[str]:
        """From the instance's state file."""
        from envdeck.backend.instances import api

        return list(api.qemu_argv(name))

    def instance_config_text(self, name: str) -> str:
        """The instance.yaml file."""
        from envdeck.backend.store import InstanceDir

        return InstanceDir.of(name).config.read_text()

    async def add_forward(self, name: str, spec: str) -> str:
        """Ask the instance's agent."""
        from envdeck.backend.instances import api

        row = await api.forward_add(name, spec)
        host = row.get("host")
        return f"forward {spec} added to {name}" + (f" ({host})" if host else "")

    async def remove_forward(self, name: str, guest: str) -> str:
        """Ask the instance's agent."""
        from envdeck.backend.instances import api

        await api.forward_remove(name, guest)
        return f"forward of guest {guest} removed from {name}"

    async def container_action(
        self, endpoint: str, ref: str, action: ContainerAction, *, force: bool = False
    ) -> str:
        """Through the Docker SDK (in a thread)."""
        from envdeck.backend.containers import actions

        return str(await actions.container_action(endpoint, ref, action, force=force))

    def container_shell_argv(self, endpoint: str, ref: str) -> list[str]:
        """Checks the container runs and the docker CLI is installed."""
        from envdeck.backend.containers import actions

        return list(actions.shell_argv(endpoint, ref))

    def container_logs(self, endpoint: str, ref: str, *, tail: int) -> LineStream:
        """A following log stream."""
        from envdeck.backend.containers import actions

        return actions.logs(endpoint, ref, tail=tail, follow=True)

    def container_stats(self, endpoint: str, ref: str) -> dict[str, Any]:
        """Two one-shot samples half a second apart."""
        from envdeck.backend.containers import actions

        return dict(actions.stats(endpoint, ref))

    async def send_signal(self, pid: int, start_time: float, sig: int) -> str:
        """In a thread (reads /proc, opens a pidfd)."""
        from envdeck.backend.processes import signals

        await asyncio.to_thread(signals.send_signal, pid, start_time, sig)
        return f"sent signal {sig} to {pid}"

    async def send_guest_signal(self, name: str, pid: int, start_ticks: int, sig: str) -> str:
        """Over the instance's pinned-key SSH, as 'envdeck kill --instance' does."""
        from envdeck.backend.errors import UserInputError
        from envdeck.backend.processes.guest import guest_send_signal
        from envdeck.backend.ssh import client as ssh
        from envdeck.backend.store import InstanceDir

        inst = InstanceDir.existing(name)
        port = inst.read_state().get("ssh_port")
        if not port:
            raise UserInputError(f"instance {name!r} is not running")
        conn = await ssh.connect(inst, int(port), timeout=5)

        async def run(script: str) -> str:
            result = await conn.run(script, check=False, errors="replace")
            return str(result.stdout or "")

        try:
            await guest_send_signal(run, pid, start_ticks, sig)
        finally:
            conn.close()
        return f"sent SIG{sig} to {pid} in {name}"

    def serial_log_path(self, name: str) -> Path:
        """The log the instance's agent writes."""
        from envdeck.backend.store import InstanceDir

        return InstanceDir.of(name).serial_log

    def open_in_browser(self, url: str) -> bool:
        """The desktop's browser; none without a display (a console browser would take over
        the dashboard's terminal)."""
        import os
        import sys
        import webbrowser

        graphical = sys.platform == "darwin" or any(
            os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY")
        )
        return graphical and webbrowser.open(url)


class ReplayRefused(EnvdeckError):
    """What every command of a replay answers: a recording shows, it never acts."""


def _refuse(what: str) -> NoReturn:
    raise ReplayRefused(
        f"{what}: not in a replay (a recording is only shown; nothing live is touched)",
        hint="run 'envdeck' without replay to act on live instances",
    )


class ReplayBackend:
    """:class:`Backend` of a replay: refuses every command, opens no file, socket or process."""

    async def start_instance(self, name: str) -> str:
        """Refused."""
        _refuse(f"start {name}")

    async def stop_instance(self, name: str) -> str:
        """Refused."""
        _refuse(f"stop {name}")

    async def restart_instance(self, name: str) -> str:
        """Refused."""
        _refuse(f"restart {name}")

    async def pause_instance(self, name: str) -> str:
        """Refused."""
        _refuse(f"pause {name}")

    async def resume_instance(self, name: str) -> str:
        """Refused."""
        _refuse(f"resume {name}")

    async def delete_instance(self, name: str, *, force: bool) -> str:
        """Refused."""
        _refuse(f"delete {name}")

    async def create_instance(
        self,
        name: str,
        *,
        template: str,
        cpus: int | None = None,
        memory_bytes: int | None = None,
        progress: Progress | None = None,
    ) -> str:
        """Refused."""
        _refuse(f"create {name}")

    def instance_shell_argv(self, name: str) -> list[str]:
        """Refused."""
        _refuse(f"a shell in {name}")

    def instance_qemu_argv(self, name: str) -> list[str]:
        """Refused (the live instance's files are not the recording's)."""
        _refuse(f"the QEMU command of {name}")

    def instance_config_text(self, name: str) -> str:
        """Refused."""
        _refuse(f"the config of {name}")

    async def add_forward(self, name: str, spec: str) -> str:
        """Refused."""
        _refuse(f"a forward for {name}")

    async def remove_forward(self, name: str, guest: str) -> str:
        """Refused."""
        _refuse(f"removing a forward of {name}")

    async def container_action(
        self, endpoint: str, ref: str, action: ContainerAction, *, force: bool = False
    ) -> str:
        """Refused."""
        _refuse(f"container {action}")

    def container_shell_argv(self, endpoint: str, ref: str) -> list[str]:
        """Refused."""
        _refuse("a container shell")

    def container_logs(self, endpoint: str, ref: str, *, tail: int) -> LineStream:
        """Refused (a recording's endpoint may be any URL: never connected to)."""
        _refuse("container logs")

    def container_stats(self, endpoint: str, ref: str) -> dict[str, Any]:
        """Refused (see container_logs)."""
        _refuse("container stats")

    async def send_signal(self, pid: int, start_time: float, sig: int) -> str:
        """Refused."""
        _refuse(f"signal {sig} to {pid}")

    async def send_guest_signal(self, name: str, pid: int, start_ticks: int, sig: str) -> str:
        """Refused."""
        _refuse(f"signal {sig} to {pid} in {name}")

    def serial_log_path(self, name: str) -> Path:
        """Refused (the log on disk is a live instance's, not the recording's)."""
        _refuse(f"searching the serial log of {name}")

    def open_in_browser(self, url: str) -> bool:
        """Refused."""
        _refuse(f"opening {url}")
