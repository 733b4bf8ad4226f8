"""From a booting QEMU to a usable guest: walk the boot stages (reporting stalls with a
diagnosis), bring up SSH, start the forwards, wait for cloud-init, provision, wait for dockerd
(the docker template); then keep the auto-forwards in step with the guest's listening sockets."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from pathlib import Path

import asyncssh

from envdeck.backend.agent.console import SerialConsole
from envdeck.backend.agent.state import AgentState
from envdeck.backend.agent.tasks import TaskSet
from envdeck.backend.agent.timings import Timings
from envdeck.backend.config import DOCKER_GUEST_SOCKET, InstanceConfig
from envdeck.backend.containers import contexts as docker_contexts
from envdeck.backend.errors import EnvdeckError
from envdeck.backend.forwards.listeners import READ_TABLES, parse_listeners
from envdeck.backend.forwards.manager import ForwardManager, guest_socket_probe
from envdeck.backend.instances import copy_to_host, guest_settings
from envdeck.backend.instances import files as instance_files
from envdeck.backend.ssh import client as ssh
from envdeck.backend.ssh.link import GuestLink, login_timeout
from envdeck.backend.ssh.probe import Answer, first_answer
from envdeck.backend.store import InstanceDir
from envdeck.backend.vm import mounts as vm_mounts
from envdeck.backend.vm.boot import diagnose
from envdeck.backend.vm.provision import provision_guest

log = logging.getLogger("envdeck.agent")

#: the boot stage of instances with mounts: (before provisioning, which may use them)
MOUNTED_STAGE = "folders mounted"
#: what marks one of dockerd's own log lines as the reason it failed
DOCKERD_ERROR_WORDS = ("level=error", "level=fatal", "failed", "unable", "error")


class Readiness:
    """Brings one booting guest to ready (or degraded, with the reason)."""

    def __init__(
        self,
        inst: InstanceDir,
        cfg: InstanceConfig,
        state: AgentState,
        console: SerialConsole,
        link: GuestLink,
        forwards: ForwardManager,
        timings: Timings,
        tasks: TaskSet,
    ) -> None:
        self.inst = inst
        self.cfg = cfg
        self.state = state
        self.console = console
        self.link = link
        self.forwards = forwards
        self.timings = timings
        self.tasks = tasks
        self._handed: socket.socket | None = None  # the probe's connection to sshd, not yet used

    async def wait_ready(self) -> None:
        """Walk the remaining boot stages; report stalls with a diagnosis; end ready or degraded."""
        port = self.state.status.ssh_port
        assert port is not None
        probe = asyncio.create_task(first_answer(port))  # runs until sshd answers
        probe.add_done_callback(self._answered)
        try:
            await self._walk_stages(port, probe)
        finally:
            probe.cancel()
            if self._handed is not None:  # (the walk ended before it logged in)
                self._handed.close()

    def _answered(self, probe: asyncio.Task[Answer]) -> None:
        if not probe.cancelled() and probe.exception() is None:
            self._handed = probe.result().sock  # the first login goes over it
        self.state.progress.set()

    async def _walk_stages(self, port: int, probe: asyncio.Task[Answer]) -> None:
        state, stall_after = self.state, self.timings.stall_after_s
        stage_since = boot_start = time.monotonic()
        last_stage = state.tracker.current
        reported: set[str] = set()
        while not state.exited.is_set():
            tracker = state.tracker
            stage = tracker.current
            if stage != last_stage:
                last_stage, stage_since = stage, time.monotonic()
            if stage is None:
                return
            if "ssh port open" not in tracker.done and probe.done() and not probe.cancelled():
                tracker.reached("ssh port open", f"127.0.0.1:{port}")
                continue
            if stage == "ssh authenticated" and await self._connect_ssh(port):
                await self._on_ssh_up()
                return
            waited = time.monotonic() - stage_since
            if stage in stall_after and waited > stall_after[stage] and stage not in reported:
                reported.add(stage)
                hint = diagnose(stage, waited, self.console.tail.last(20), port)
                tracker.stalled(hint)
                state.say("warning", f"boot stage '{stage}' stalled: {hint}")
            if time.monotonic() - boot_start > self.timings.boot_deadline_s:
                reason = diagnose(stage, waited, self.console.tail.last(20), port)
                tracker.failed(reason)
                state.set_status(state="degraded", reason=f"did not become ready: {reason}")
                return
            state.progress.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    await state.progress.wait()

    async def _connect_ssh(self, port: int) -> bool:
        sock, self._handed = self._handed, None  # (used once: a failed login closed it)
        timeout = login_timeout(self.state.tracker.done.get("ssh port open"))
        try:
            return await self.link.try_connect(port, sock, timeout)
        except ssh.HostKeyChanged as exc:
            self.state.tracker.failed(exc.message)
            self.state.set_status(state="degraded", reason=exc.message)
            raise

    async def _on_ssh_up(self) -> None:
        """SSH works: forwards, listener polling, provisioning; then ready."""
        self.state.tracker.reached("ssh authenticated")
        if self.state.resumed:  # its clock stood still while it was saved
            await self._set_guest_clock()
        if self.cfg.docker:
            self.state.tracker.add_stage("docker ready")
        if self.cfg.mounts:
            self.state.tracker.add_stage(MOUNTED_STAGE, before="provisioning done")
        if self.cfg.guest.copy_to_host:
            self.state.tracker.add_stage(copy_to_host.COPIED_STAGE)
        saved = self.inst.read_state()
        await self.forwards.start(saved.get("forwards", []), saved.get("removed_forwards", []))
        self.tasks.spawn(self._poll_listeners())
        if self.cfg.template == "tiny" and not self.state.resumed:
            for problem in await guest_settings.apply_tiny(self.link.conn, self.cfg):
                self.state.say("warning", f"guest setting not applied: {problem}")
        if (
            await self._check_mounts()
            and await self._provision()
            and (not self.cfg.docker or await self._wait_for_docker())
            and await self._copy_to_host()
        ):
            self.state.tracker.reached("ready")
            if self.cfg.message:  # Lima's message:, said as the instance becomes ready
                self.state.say("info", self.cfg.message)
            self.state.set_status(state="ready", reason=None)

    async def _check_mounts(self) -> bool:
        """The guest mounted every share (it mounts them before sshd starts); a share it did not
        mount makes the instance degraded with which one and what mount said. False then."""
        if not self.cfg.mounts:
            return True
        result = await self._guest(vm_mounts.CHECK_COMMAND)
        if result is None or result.exit_status != 0:
            self.state.say("warning", "could not read the guest's mount table over SSH")
            return True
        problems = vm_mounts.mount_problems(self.cfg.mounts, str(result.stdout or ""))
        if problems:
            reason = "mounts failed in the guest: " + "; ".join(problems)
            self.state.tracker.failed(reason)
            self.state.set_status(state="degraded", reason=reason)
            return False
        points = ", ".join(m.mount_point for m in self.cfg.mounts)
        self.state.tracker.reached(MOUNTED_STAGE, points)
        return True

    async def _provision(self) -> bool:
        """Run the provision entries, then the probes (output into the boot log); False if
        one failed. A resumed guest did not boot: nothing runs again."""
        if self.state.resumed:
            self.state.tracker.reached("provisioning done", "resumed: not run again")
            return True
        if self.cfg.boots_disk:
            await self._wait_for_cloud_init()
        result = await provision_guest(self.link.conn, self.cfg, self.console.add_line)
        if result.failed:
            reason = result.reason
            self.state.tracker.failed(
                reason + ("\n" + result.output_tail if result.output_tail else "")
            )
            self.state.set_status(state="degraded", reason=reason)
            return False
        self.state.tracker.reached(
            "provisioning done", "ran the scripts" if result.ran else "nothing to run"
        )
        return True

    async def _copy_to_host(self) -> bool:
        """copyToHost: the guest's files to the host (removed at stop when deleteOnStop); a
        failed copy makes the instance degraded. False then."""
        rules = self.cfg.guest.copy_to_host
        if not rules:
            return True
        self.tasks.spawn(copy_to_host.delete_on_stop(self.state.exited, rules))
        failed = await copy_to_host.copy_all(
            self.link.conn, rules, lambda text: self.state.say("info", text)
        )
        if failed:
            self.state.tracker.failed(failed)
            self.state.set_status(state="degraded", reason=failed)
            return False
        self.state.tracker.reached(copy_to_host.COPIED_STAGE, f"{len(rules)} file(s)")
        return True

    async def _set_guest_clock(self) -> None:
        """Set a resumed guest's clock to the host's (as root, or through sudo)."""
        now = round(time.time())
        set_date = f"date -u -s @{now} >/dev/null"
        result = await self._guest(
            f'if [ "$(id -u)" = 0 ]; then {set_date}; else sudo -n {set_date}; fi'
        )
        if result is None or result.exit_status != 0:
            self.state.say("warning", "the resumed guest's clock could not be set")

    async def _wait_for_cloud_init(self, timeout: float = 600.0) -> None:
        """Cloud images: let cloud-init finish first (it may still restart services such as sshd);
        its verdict goes into the boot log, a failure becomes a warning (our keys are in by now)."""
        try:
            result = await asyncio.wait_for(
                self.link.conn.run("cloud-init status --wait --long", check=False), timeout
            )
        except (TimeoutError, OSError, asyncssh.Error) as exc:
            self.state.say("warning", f"could not wait for cloud-init: {exc}")
            return
        for text in str(result.stdout or "").splitlines():
            if text.strip() and not text.startswith("."):
                self.console.add_line(f"[cloud-init] {text.strip()}")
        if result.exit_status != 0:
            self.state.say(
                "warning",
                f"cloud-init reported a problem (exit status {result.exit_status}); "
                "see 'envdeck logs' and /var/log/cloud-init.log in the guest",
            )

    async def _wait_for_docker(self, timeout: float = 300.0) -> bool:
        """The docker template: dockerd answers ``docker version`` over the forwarded socket
        (the docker context is made then); dockerd failing in the guest makes the instance
        degraded with the reason from its journal. False if not ready."""
        sock = instance_files.docker_socket(self.inst, self.cfg)
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.state.exited.is_set():
            unit = await self._guest(
                f"systemctl is-active docker.service; test -S {DOCKER_GUEST_SOCKET}"
            )
            active = unit is not None and str(unit.stdout).splitlines()[:1] == ["active"]
            if unit is not None and str(unit.stdout).startswith("failed"):
                return await self._docker_failed("dockerd failed to start")
            if active and unit is not None and unit.exit_status == 0:
                version = await asyncio.to_thread(_docker_version, sock)
                if version is not None:
                    self.state.tracker.reached("docker ready", f"Docker {version} at {sock}")
                    await self._docker_context()
                    return True
            if asyncio.get_running_loop().time() > deadline:
                return await self._docker_failed(f"dockerd did not answer within {timeout:.0f}s")
            await asyncio.sleep(0.5)
        return False

    async def _guest(self, command: str) -> asyncssh.SSHCompletedProcess | None:
        """Run a short guest command (None when the link is down or the command hangs)."""
        conn = self.link.conn
        if conn is None:
            return None
        try:
            result = await asyncio.wait_for(conn.run(command, check=False), 20)
        except (TimeoutError, OSError, asyncssh.Error):
            return None
        return result

    async def _docker_failed(self, what: str) -> bool:
        """Degraded, with dockerd's last error line (its own journal lines, not systemd's) in
        the reason; the journal's tail goes to the boot log."""
        own = await self._guest("journalctl _COMM=dockerd -b -n 40 --no-pager -o cat")
        unit = await self._guest("journalctl -u docker.service -b -n 20 --no-pager -o cat")
        lines = [t.strip() for t in str(own.stdout if own else "").splitlines() if t.strip()]
        errors = [t for t in lines if any(w in t.lower() for w in DOCKERD_ERROR_WORDS)]
        tail = [t.strip() for t in str(unit.stdout if unit else "").splitlines() if t.strip()]
        why = (errors or lines or tail or ["(nothing in its journal)"])[-1]
        reason = f"{what}: {why}"
        for text in tail[-10:]:
            self.console.add_line(f"[docker] {text}")
        self.state.tracker.failed(reason)
        self.state.set_status(state="degraded", reason=reason)
        return False

    async def _docker_context(self) -> None:
        """The host's docker CLI context for this instance; a problem is a warning (DOCKER_HOST
        works without it)."""
        sock = instance_files.docker_socket(self.inst, self.cfg)
        url = f"unix://{sock}"
        try:
            name = await asyncio.to_thread(
                docker_contexts.ensure, self.inst.name, self.inst.root, sock
            )
        except EnvdeckError as exc:
            self.state.say("warning", f"{exc.message} (hint: {exc.hint})")
            self.state.say("info", f"docker: export DOCKER_HOST={url}")
            return
        self.state.say("info", f"docker: docker --context {name} ps  (or DOCKER_HOST={url})")

    async def _poll_listeners(self, interval: float = 1.0) -> None:
        """Auto-forward: read the guest's listening sockets every ``interval`` over SSH; check
        that the guest sockets of socket forwards exist."""
        while not self.state.exited.is_set() and not self.state.stopping:
            conn = self.link.conn
            if conn is not None:
                try:
                    result = await asyncio.wait_for(conn.run(READ_TABLES, check=False), 5)
                    if not self.cfg.guest.plain:  # plain mode: no automatic forwards (Lima)
                        await self.forwards.sync_auto(parse_listeners(str(result.stdout or "")))
                    if paths := self.forwards.guest_sockets():
                        found = await asyncio.wait_for(
                            conn.run(guest_socket_probe(paths), check=False), 5
                        )
                        present = set(str(found.stdout or "").splitlines())
                        await self.forwards.sync_guest_sockets(present)
                except Exception as exc:  # noqa: BLE001 - SSH blips: the link reconnects
                    log.debug("listener poll failed: %s", exc)
            await asyncio.sleep(interval)


def _docker_version(sock: Path) -> str | None:
    """(thread) The version of the dockerd answering on ``sock``, or None."""
    import docker

    if not sock.exists():
        return None
    try:
        client = docker.DockerClient(base_url=f"unix://{sock}", version="auto", timeout=10)
    except docker.errors.DockerException:
        return None
    try:
        return str(client.version().get("Version", "?"))
    except (docker.errors.DockerException, OSError):
        return None
    finally:
        client.close()
