"""The instances API: create, start, stop, restart, delete, status — for the CLI and the TUI.

Running instances are owned by their agent (``agent.py``); this module spawns agents, talks to
them over ``agent.sock``, and reads the on-disk truth when no agent runs (detecting stale pids,
orphaned QEMUs and crashes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envdeck.backend.errors import EnvdeckError, NotFound, UserInputError
from envdeck.backend.events import Event, InstanceStatus
from envdeck.backend.instances import launch
from envdeck.backend.instances.status import (
    RUNNING_STATES,
    agent_running,
    offline_status,
    qemu_running,
    status_json,
)
from envdeck.backend.store import (
    InstanceDir,
    ensure_private_dir,
    home,
    list_instances,
    write_atomic,
)

if TYPE_CHECKING:
    from envdeck.backend.agent.client import AgentClient, Outcome

# Heavy modules (the agent client, the config schema, SSH keys, images, forwards, psutil) are
# imported where they are used: `envdeck list` of stopped instances needs none of them.


Progress = Callable[[str, float | None], None]


# --- create / delete -----------------------------------------------------------------------


def create(
    name: str,
    *,
    template: str = "tiny",
    cpus: int | None = None,
    memory_bytes: int | None = None,
    disk_bytes: int | None = None,
    arch: str | None = None,
    accel: str | None = None,
    file: Path | None = None,
    mount_writable: bool = False,
    progress: Progress | None = None,
) -> InstanceDir:
    """Write the instance dir (config, keys, image, disk) atomically: all of it or nothing.
    ``mount_writable``: the template's home mount is writable (written out as its mounts:)."""
    final = InstanceDir.of(name)
    if final.config.exists():
        raise UserInputError(
            f"instance {name!r} already exists",
            hint=f"use another name, or 'envdeck delete {name}' first",
        )
    from envdeck.backend.config import check_config, check_file, render_config, template_defaults
    from envdeck.backend.config.mounts import WRITABLE_HOME
    from envdeck.backend.instances import files as instance_files

    if file is not None:
        checked = check_file(file, name=name)  # validates (bases too) before anything is written
        text = checked.composed  # bases merged in, as Lima keeps them
        source_dir: str | None = str(file.resolve().parent)
    else:
        defaults = template_defaults(template)
        text = render_config(
            template=template,
            arch=arch or defaults.arch,
            cpus=cpus or defaults.cpus,
            memory_bytes=memory_bytes or defaults.memory_bytes,
            disk_bytes=disk_bytes or defaults.disk_bytes,
            accel=accel or defaults.accel,
        ) + (WRITABLE_HOME if mount_writable else "")
        checked = check_config(text, "<command line>")
        source_dir = None
    cfg = checked.config
    if progress is not None:
        for warning in checked.warnings:
            progress(f"warning: {warning}", None)
    instances_root = ensure_private_dir(home() / "instances")
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=instances_root))
    try:
        inst = InstanceDir(name, staging)
        inst.create()
        write_atomic(inst.config, text)
        if source_dir:
            inst.update_state(source_dir=source_dir)
        instance_files.prepare(inst, cfg, progress)
        try:
            os.rename(staging, final.root)
        except OSError as exc:
            raise UserInputError(f"instance {name!r} already exists ({exc.strerror})") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


async def delete(name: str, force: bool = False) -> str:
    """Remove an instance; a running one only with ``force`` (it is stopped first)."""
    inst = InstanceDir.existing(name)
    info = await status(name)
    if info["state"] in RUNNING_STATES:
        if not force:
            raise UserInputError(
                f"instance {name!r} is {info['state']}",
                hint=f"stop it first ('envdeck stop {name}') or use --force",
            )
        await stop(name, timeout=5)
    if agent_running(inst) or qemu_running(inst):
        raise EnvdeckError(f"instance {name!r} is still running after stop", hint="try again")
    context = _remove_docker_context(inst)
    shutil.rmtree(inst.root)
    return f"deleted {name}" + context


def _remove_docker_context(inst: InstanceDir) -> str:
    """Remove the docker context envdeck made for the instance (any other is left alone);
    what to add to the delete message."""
    from envdeck.backend.containers import contexts

    try:
        removed = contexts.remove(inst.name, inst.root)
    except OSError as exc:
        return f" (its docker context {contexts.context_name(inst.name)} stays: {exc})"
    return f" and its docker context {contexts.context_name(inst.name)}" if removed else ""


# --- status ---------------------------------------------------------------------------------


def paused_error(name: str) -> EnvdeckError:
    """What every action that needs a running guest says about a paused one (at once: a frozen
    guest cannot answer, so waiting for it would hang). Docker answers ``exec``/``start`` on a
    paused container the same way: it refuses and points at unpause."""
    return EnvdeckError(f"{name} is paused — `p` / `envdeck resume {name}`")


async def status(name: str, timeout: float = 2.0) -> dict[str, Any]:
    """One instance's status as the ``list --json`` object."""
    from envdeck.backend.agent.client import AgentClient
    from envdeck.backend.agent.protocol import AgentUnavailable

    inst = InstanceDir.existing(name)
    info: InstanceStatus | None = None
    if agent_running(inst):
        with contextlib.suppress(AgentUnavailable, TimeoutError, EnvdeckError):
            client = await AgentClient.connect(inst.agent_sock, timeout=timeout)
            try:
                info = await client.status(reply_timeout=timeout)
            finally:
                await client.close()
    if info is None:
        info = offline_status(inst)
    return status_json(info)


async def list_status() -> list[dict[str, Any]]:
    """Status of every instance (agents queried in parallel)."""
    return list(await asyncio.gather(*(status(name) for name in list_instances())))


# --- start / stop ---------------------------------------------------------------------------


async def _connect_agent(
    inst: InstanceDir, proc: subprocess.Popen[bytes] | None, timeout: float
) -> AgentClient:
    """Connect to the agent; if the agent we spawned dies first, say why."""
    from envdeck.backend.agent.client import AgentClient
    from envdeck.backend.agent.protocol import AgentUnavailable

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await AgentClient.connect(inst.agent_sock, timeout=0)
        except AgentUnavailable:
            if proc is not None and proc.poll() is not None and not agent_running(inst):
                reason = inst.read_state().get("reason") or _tail(inst.agent_log)
                raise EnvdeckError(
                    f"the agent of {inst.name!r} exited: {reason}", hint=f"see {inst.agent_log}"
                ) from None
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.05)


async def start(
    name: str,
    *,
    wait: bool = True,
    on_event: Callable[[Event], None] | None = None,
    timeout: float = 600.0,
    launched: launch.Launched | None = None,
) -> dict[str, Any]:
    """Start (or re-attach to) an instance; with ``wait``, follow its boot until ready.
    ``launched``: the caller has spawned the agent already (:func:`launch.launch_now`)."""
    from envdeck.backend.instances import files as instance_files

    if launched is None:  # (the TUI: the same spawn as the CLI's, off the event loop)
        launched = await asyncio.to_thread(launch.launch_now, name)
    inst, proc = launched.inst, launched.proc
    # Checked while the agent starts (this is the CLI's longest import): bad YAML fails here,
    # with its position; the agent stops at the same error before it launches anything.
    instance_files.load(inst)
    client = await _connect_agent(inst, proc, timeout=30)
    try:
        current = await client.status()
        if current.state == "paused":
            raise paused_error(name)
        if not wait:
            return status_json(current)
        await client.subscribe(backlog=0)
        final = await _until_settled(name, client, on_event, timeout)
        if final is None:
            return await status(name)
        result = status_json(final)
        if final.state in ("crashed", "stopped"):
            raise EnvdeckError(
                f"instance {name!r} {final.state}: {final.reason or 'no reason given'}",
                hint=f"see 'envdeck logs {name}' and {inst.root / 'qemu.log'}",
            )
        return result
    finally:
        await client.close()


async def _until_settled(
    name: str,
    client: AgentClient,
    on_event: Callable[[Event], None] | None,
    timeout: float,
) -> InstanceStatus | None:
    """Follow the agent's events until the instance is ready, degraded or gone (None when the
    agent hung up first); a pause on the way ends the wait with :func:`paused_error`."""
    try:
        async with asyncio.timeout(timeout):
            async for event in client.events():
                if on_event:
                    on_event(event)
                if not isinstance(event, InstanceStatus):
                    continue
                if event.state == "paused":
                    raise paused_error(name)
                if event.state in ("ready", "degraded", "crashed", "stopped"):
                    return event
    except TimeoutError:
        raise EnvdeckError(
            f"{name} did not become ready within {timeout:.0f}s (the agent keeps trying)",
            hint=f"see 'envdeck logs {name}'; 'envdeck stop {name}' ends it",
        ) from None
    return None


async def stop(name: str, timeout: float = 20.0) -> Outcome:
    """Stop gracefully (ACPI powerdown), then QMP quit, then kill; say which it took. A
    suspended instance's saved guest is discarded (its next start boots)."""
    from envdeck.backend.agent.client import Outcome
    from envdeck.backend.vm import saved as saved_machine

    inst = InstanceDir.existing(name)
    proc = None
    if not agent_running(inst):
        if not qemu_running(inst):
            if inst.read_state().get("state") == "suspended" or saved_machine.exists(inst.root):
                saved_machine.discard(inst.root)
                inst.update_state(state="stopped", reason=None)
                return Outcome(how="discard", text="its saved state is discarded (start boots it)")
            return Outcome(how="already", text=f"{name} is not running")
        proc = launch.spawn_agent(inst)  # adopts the orphaned QEMU, then stops it
    client = await _connect_agent(inst, proc, timeout=30)
    try:
        return await client.stop(timeout)
    finally:
        await client.close()
        await _wait_agent_gone(inst, 10)


async def _wait_agent_gone(inst: InstanceDir, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while agent_running(inst) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def restart(name: str, on_event: Callable[[Event], None] | None = None) -> dict[str, Any]:
    """Stop (if running) and start again."""
    await stop(name)
    return await start(name, on_event=on_event)


# --- commands for the shell key and the `x` view --------------------------------------------


def _require_running(name: str) -> tuple[InstanceDir, int]:
    inst = InstanceDir.existing(name)
    port = inst.read_state().get("ssh_port")
    if not (agent_running(inst) or qemu_running(inst)) or not port:
        raise UserInputError(
            f"instance {name!r} is not running", hint=f"start it: 'envdeck start {name}'"
        )
    if inst.read_state().get("paused"):
        raise paused_error(name)
    return inst, int(port)


def shell_argv(name: str, command: list[str] | None = None) -> list[str]:
    """The OpenSSH command for an interactive shell in the guest (host key pinned)."""
    from envdeck.backend.instances.guest_settings import forwards_agent
    from envdeck.backend.ssh.client import openssh_argv

    inst, port = _require_running(name)
    return openssh_argv(inst, port, command, forward_agent=forwards_agent(inst))


def qemu_argv(name: str) -> list[str]:
    """The literal QEMU argv of the instance (last launch)."""
    inst = InstanceDir.existing(name)
    argv = inst.read_state().get("qemu_argv")
    if not argv:
        raise NotFound(
            f"instance {name!r} has not been started yet", hint=f"'envdeck start {name}'"
        )
    return list(argv)


def _tail(path: Path, n: int = 3) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "(no log)"
    return " | ".join(lines[-n:])


__all__ = [
    "agent_running",
    "create",
    "delete",
    "list_status",
    "offline_status",
    "paused_error",
    "qemu_argv",
    "restart",
    "shell_argv",
    "start",
    "status",
    "stop",
    "suspend",
]


# --- forwards (held by the agent) -------------------------------------------------------------


@contextlib.asynccontextmanager
async def running_agent(name: str) -> AsyncIterator[AgentClient]:
    """A connection to a running instance's agent (UserInputError when it does not run)."""
    from envdeck.backend.agent.client import AgentClient

    inst = InstanceDir.existing(name)
    if not agent_running(inst):
        raise UserInputError(
            f"instance {name!r} is not running", hint=f"start it: 'envdeck start {name}'"
        )
    client = await AgentClient.connect(inst.agent_sock, timeout=5)
    try:
        yield client
    finally:
        await client.close()


async def pause(name: str) -> Outcome:
    """Freeze a running instance's guest (QMP stop); ``resume`` lets it run again."""
    async with running_agent(name) as agent:
        return await agent.pause()


async def resume(name: str) -> Outcome:
    """Let a paused instance run again (one that runs already is left as it is)."""
    from envdeck.backend.agent.client import Outcome

    async with running_agent(name) as agent:
        current = (await agent.status()).state
        if current in ("starting", "booting", "ready", "degraded"):
            return Outcome(how="already", text=f"already running ({current})")
        return await agent.resume()


async def suspend(name: str) -> Outcome:
    """Save a running instance's guest to disk and end its QEMU (the instance reads
    ``suspended``); ``start`` resumes it where it was."""
    inst = InstanceDir.existing(name)
    async with running_agent(name) as agent:
        outcome = await agent.suspend()
    await _wait_agent_gone(inst, 10)
    return outcome


async def forwards(name: str) -> list[dict[str, Any]]:
    """The instance's forwards (``envdeck forwards --json``); a stopped instance's saved ones."""
    from envdeck.backend.forwards import saved as saved_forwards
    from envdeck.backend.instances import files as instance_files

    inst = InstanceDir.existing(name)
    if not agent_running(inst):
        return saved_forwards.rows(inst, instance_files.load(inst))
    async with running_agent(name) as agent:
        return await agent.forwards()


async def forward_add(name: str, spec: str) -> dict[str, Any]:
    """Add a forward ('8080', '80:8080', '80:0.0.0.0:8080'); kept across restarts. On a stopped
    instance it is saved and opens at the next start."""
    from envdeck.backend.forwards import saved as saved_forwards
    from envdeck.backend.forwards.manager import parse_spec
    from envdeck.backend.instances import files as instance_files

    parse_spec(spec)  # bad input fails here with exit 2, before the agent is asked
    inst = InstanceDir.existing(name)
    if not agent_running(inst):
        return saved_forwards.add(inst, instance_files.load(inst), spec)
    async with running_agent(name) as agent:
        return await agent.forward_add(spec)


async def forward_remove(name: str, guest: str) -> None:
    """Remove a forward by its guest port; it stays removed (auto-forwarding included) until it
    is added again, across restarts. On a stopped instance the saved rules are edited."""
    from envdeck.backend.forwards import saved as saved_forwards
    from envdeck.backend.instances import files as instance_files

    inst = InstanceDir.existing(name)
    if not agent_running(inst):
        saved_forwards.remove(inst, instance_files.load(inst), guest)
        return
    async with running_agent(name) as agent:
        await agent.forward_remove(guest)
