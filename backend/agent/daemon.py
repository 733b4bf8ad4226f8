"""The per-instance agent: a detached asyncio daemon that owns one instance's QEMU.

``python -m envdeck.backend.agent NAME`` (what ``envdeck start`` spawns). It holds the
instance's lock for its whole life, launches QEMU (or adopts a QEMU left running by an agent
that died), streams the serial console to a rotating log and to its clients, tracks the boot
stages, holds the SSH connection, and serves clients on ``agent.sock`` (owner only). It exits
when QEMU has exited, leaving the final state (stopped or crashed, with the reason) in
``state.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import signal
import socket
import struct
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh

from envdeck.backend.agent.protocol import encode
from envdeck.backend.config import InstanceConfig
from envdeck.backend.errors import EnvdeckError
from envdeck.backend.events import AgentMessage, Event, InstanceStatus, SerialOutput
from envdeck.backend.forwards.listeners import READ_TABLES, parse_listeners
from envdeck.backend.forwards.manager import ForwardManager
from envdeck.backend.images import cloud as cloud_images
from envdeck.backend.instances import files as instance_files
from envdeck.backend.pidrecord import PidRecord, live_record
from envdeck.backend.ssh import client as ssh
from envdeck.backend.ssh.link import GuestLink
from envdeck.backend.store import InstanceDir, lock_file
from envdeck.backend.vm import accel as accel_mod
from envdeck.backend.vm.argv import MachineSpec, build_argv
from envdeck.backend.vm.boot import STAGES, BootTracker, diagnose, panic_line
from envdeck.backend.vm.provision import run_provisioning
from envdeck.backend.vm.qmp import Monitor
from envdeck.backend.vm.serial import LineSplitter, RotatingLog, Tail

log = logging.getLogger("envdeck.agent")

# A working KVM guest reaches /init in about a second; a hung one may still print the boot
# stub's "Probing EDD" first, so the watchdog waits for the kernel-booted marker, not any output.
KVM_WATCHDOG_S = 10.0
STALL_AFTER_S = {
    "first serial output": 20.0,
    "kernel booted": 90.0,
    "ssh port open": 60.0,
    "ssh authenticated": 30.0,
    "provisioning done": 600.0,
}
BOOT_DEADLINE_S = 300.0
# Tests (and impatient users) can scale the stall timers: ENVDECK_STALL_SCALE=0.2
_SCALE = float(os.environ.get("ENVDECK_STALL_SCALE", "1") or 1)
STALL_AFTER_S = {stage: seconds * _SCALE for stage, seconds in STALL_AFTER_S.items()}
BOOT_DEADLINE_S *= _SCALE
SERIAL_FLUSH_S = 0.05
MAX_CLIENT_BUFFER = 8 << 20


class Client:
    """One connected client of the agent socket."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.subscribed = False
        self.serial_only = False

    def send(self, message: dict[str, Any]) -> None:
        """Queue a message; a client that stops reading is dropped rather than buffered forever."""
        if self.writer.is_closing():
            return
        if self.writer.transport.get_write_buffer_size() > MAX_CLIENT_BUFFER:
            self.writer.close()
            return
        self.writer.write(encode(message))


class Agent:
    """Owns one instance's QEMU for the lifetime of that QEMU."""

    def __init__(self, inst: InstanceDir) -> None:
        self.inst = inst
        self.cfg: InstanceConfig = instance_files.load(inst)
        self.clients: set[Client] = set()
        self.tail = Tail()
        self.status = InstanceStatus(
            instance=inst.name,
            state="starting",
            arch=self.cfg.arch,
            cpus=self.cfg.cpus,
            memory_bytes=self.cfg.memory_bytes,
            disk_bytes=self.cfg.disk_bytes,
        )
        self.tracker = BootTracker(inst.name, self.emit)
        self.serial_log = RotatingLog(inst.serial_log)
        self.events_log = RotatingLog(inst.events_log, max_bytes=2 << 20, keep=1)
        self.splitter = LineSplitter()
        self._pending_serial: list[str] = []
        self._flush_handle: asyncio.TimerHandle | None = None
        self.serial_seen = asyncio.Event()
        self.kernel_booted = asyncio.Event()
        self.progress = asyncio.Event()
        self.exited = asyncio.Event()
        self.stopping = False
        self.proc: asyncio.subprocess.Process | None = None
        self.qemu: PidRecord | None = None
        self.monitor: Monitor | None = None
        self.link = GuestLink(inst, self.say, self._ssh_lost, self._ssh_back)
        self.argv: list[str] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self.messages: deque[AgentMessage] = deque(maxlen=50)
        self.forwards = ForwardManager(
            inst.name,
            self.cfg.port_forwards,
            self.emit,
            lambda: self.link.conn,
            base_dir=inst.root,
            mux=self.link.master_path,
        )
        self._serial_writer: asyncio.StreamWriter | None = None

    # --- events ---------------------------------------------------------------------------

    def emit(self, event: Event) -> None:
        """Send an event to subscribers; append it to events.jsonl unless it is serial text
        (serial.log already holds that, and a flooding console must not be written twice)."""
        if not isinstance(event, SerialOutput):
            self.events_log.write_lines([event.to_json()])
        message = {"event": event.to_dict()}
        for client in list(self.clients):
            if client.subscribed and (not client.serial_only or isinstance(event, SerialOutput)):
                client.send(message)
        self.progress.set()

    def set_status(self, **changes: Any) -> None:
        """Change the instance status and broadcast it."""
        self.status = dataclasses.replace(self.status, ts=time.time(), **changes)
        self.emit(self.status)

    def say(self, level: str, text: str) -> None:
        """A message for humans (also logged to agent.log)."""
        log.info("%s: %s", level, text)
        message = AgentMessage(instance=self.inst.name, level=level, text=text)
        self.messages.append(message)
        self.emit(message)

    # --- serial ---------------------------------------------------------------------------

    async def _read_serial(self, reader: asyncio.StreamReader) -> None:
        while data := await reader.read(65536):
            self._pending_serial += self.splitter.feed(data)
            if self._pending_serial and self._flush_handle is None:
                self._flush_handle = asyncio.get_running_loop().call_later(
                    SERIAL_FLUSH_S, self._flush_serial
                )
        self._pending_serial += self.splitter.flush()
        self._flush_serial()

    def _flush_serial(self) -> None:
        """Write batched serial lines to disk and clients (10-20 Hz while output flows)."""
        self._flush_handle = None
        lines, self._pending_serial = self._pending_serial, []
        if not lines:
            return
        self.serial_log.write_lines(lines)
        self.tail.extend(lines)
        self.serial_seen.set()
        self.tracker.see_serial(lines)
        if "kernel booted" in self.tracker.done:
            self.kernel_booted.set()
        self.emit(SerialOutput(instance=self.inst.name, lines=lines))

    async def _attach_serial(self) -> None:
        deadline = time.monotonic() + 10
        while True:
            try:
                reader, writer = await asyncio.open_unix_connection(
                    str(self.inst.root / "serial.sock")
                )
                break
            except OSError:
                if time.monotonic() > deadline or self.exited.is_set():
                    self.say("warning", "could not attach to the serial console socket")
                    return
                await asyncio.sleep(0.02)
        self._serial_writer = writer
        self._tasks.append(asyncio.create_task(self._read_serial(reader)))

    # --- QEMU -------------------------------------------------------------------------------

    def _machine(self, accel: str, ssh_port: int) -> MachineSpec:
        if self.cfg.images:  # a cloud image: UEFI boots the disk, cloud-init reads the seed
            code, _ = cloud_images.ovmf()
            boot: dict[str, Any] = dict(
                kernel=None,
                initrd=None,
                cmdline="",
                disk=self.inst.disk,
                firmware=(code, self.inst.efi_vars),
                seed=self.inst.seed,
            )
        else:
            kernel, initrd, cmdline = instance_files.boot_files(self.inst, self.cfg)
            if accel == "tcg":
                cmdline += accel_mod.tcg_kernel_args(self.cfg.arch)
            boot = dict(
                kernel=kernel,
                initrd=initrd,
                cmdline=cmdline,
                disk=self.inst.disk if self.inst.disk.exists() else None,
            )
        return MachineSpec(
            name=self.inst.name,
            arch=self.cfg.arch,
            accel=accel,
            cpus=self.cfg.cpus,
            memory_bytes=self.cfg.memory_bytes,
            serial_socket=self.inst.root / "serial.sock",
            qmp_socket=self.inst.qmp_sock,
            ssh_port=ssh_port,
            **boot,
        )

    async def _spawn(self, accel: str, ssh_port: int) -> None:
        for stale in (self.inst.root / "serial.sock", self.inst.qmp_sock):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        self.argv = build_argv(self._machine(accel, ssh_port))
        qemu_log = open(self.inst.root / "qemu.log", "wb")  # noqa: SIM115 - handed to QEMU; one launch
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=qemu_log,
                stderr=qemu_log,
                start_new_session=True,  # QEMU outlives a killed agent; a new agent adopts it
            )
        finally:
            qemu_log.close()
        self.qemu = PidRecord.of(self.proc.pid, instance_files.qemu_marker(self.inst))
        self.qemu.save(self.inst.qemu_pid)
        self.inst.update_state(qemu_argv=self.argv, accel=accel, ssh_port=ssh_port)
        self._tasks.append(asyncio.create_task(self._watch_child(self.proc)))
        await self._attach_serial()
        self.monitor = Monitor(f"envdeck-agent-{self.inst.name}")
        try:
            await self.monitor.connect(self.inst.qmp_sock)
        except Exception as exc:  # noqa: BLE001 - QEMU may have died at once: its log says why
            if not self.exited.is_set():
                raise EnvdeckError(f"QEMU's monitor did not answer: {exc}") from exc

    async def _watch_child(self, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        if proc is self.proc:
            self._on_exit(_describe_exit(code))

    async def _watch_adopted(self, pid: int) -> None:
        """Wait for a QEMU that is not our child to exit (pidfd: no polling)."""
        loop = asyncio.get_running_loop()
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            self._on_exit("QEMU exited while no agent was running")
            return
        done = loop.create_future()
        loop.add_reader(fd, lambda: done.done() or done.set_result(None))
        try:
            await done
        finally:
            loop.remove_reader(fd)
            os.close(fd)
        self._on_exit("QEMU exited (adopted process: exit status unknown)")

    def _on_exit(self, how: str) -> None:
        if self.exited.is_set():
            return
        self._flush_serial()
        panic = panic_line(self.tail.last(30))
        if self.stopping:
            state, reason = "stopped", None
        elif how == "exited with status 0" and panic:
            state, reason = "crashed", f"the guest kernel panicked: {panic}"
        elif how == "exited with status 0" and any(
            "Restarting system" in x for x in self.tail.last(5)
        ):
            state, reason = (
                "stopped",
                "the guest rebooted itself (QEMU runs with -no-reboot): start it again",
            )
        elif how == "exited with status 0":
            state, reason = "stopped", "the guest powered itself off"
        else:
            last = " | ".join(self.tail.last(5)) or "(no serial output)"
            qemu_err = _last_lines(self.inst.root / "qemu.log", 3)
            reason = f"QEMU {how}; last serial lines: {last}"
            if qemu_err:
                reason += f"; QEMU said: {qemu_err}"
            state = "crashed"
        self.link.hang_up()
        with contextlib.suppress(FileNotFoundError):
            self.inst.qemu_pid.unlink()
        self.inst.update_state(state=state, reason=reason, stopped_at=time.time())
        self.set_status(state=state, reason=reason, pid=None, started_at=None)
        if state == "crashed":
            self.tracker.failed(reason)
        self.exited.set()

    # --- boot -----------------------------------------------------------------------------

    async def launch(self) -> None:
        """Prepare boot files, choose the accelerator, start QEMU (with the KVM watchdog)."""
        self.set_status(state="starting", reason=None)
        await asyncio.to_thread(instance_files.prepare, self.inst, self.cfg, None, refresh=False)
        ssh_port = instance_files.pick_ssh_port(self.inst, self.cfg)
        choice = accel_mod.choose(self.cfg.accel, self.cfg.arch)
        self.say("info", f"accelerator {choice.accel}: {choice.why}")
        await self._spawn(choice.accel, ssh_port)
        self._started(choice.accel, ssh_port)
        if choice.guarded:
            try:
                async with asyncio.timeout(KVM_WATCHDOG_S):
                    await self.kernel_booted.wait()
            except TimeoutError:
                reason = f"the guest kernel did not reach /init within {KVM_WATCHDOG_S:.0f}s under {choice.accel}"
                accel_mod.record_verdict(choice.accel, reason)
                self.say(
                    "warning", f"{reason}: falling back to TCG (remembered until the host reboots)"
                )
                await self._kill_for_restart()
                self.tracker = BootTracker(self.inst.name, self.emit)
                await self._spawn("tcg", ssh_port)
                self._started("tcg", ssh_port)

    def _started(self, accel: str, ssh_port: int) -> None:
        assert self.qemu is not None
        self.tracker.reached("qemu started", f"pid {self.qemu.pid}, accel {accel}")
        self.set_status(
            state="booting",
            accel=accel,
            ssh_port=ssh_port,
            pid=self.qemu.pid,
            started_at=time.time(),
        )

    async def _kill_for_restart(self) -> None:
        proc, self.proc = self.proc, None  # the watcher ignores this exit
        if self.monitor:
            await self.monitor.close()
        if proc and proc.returncode is None:
            proc.kill()
            await proc.wait()
        if self._serial_writer:
            self._serial_writer.close()
        self.serial_seen.clear()
        self.kernel_booted.clear()

    async def adopt(self, record: PidRecord) -> None:
        """Take over a QEMU that outlived its agent."""
        state = self.inst.read_state()
        self.qemu = record
        self.argv = state.get("qemu_argv", [])
        self.say("info", f"adopting running QEMU pid {record.pid}")
        self._tasks.append(asyncio.create_task(self._watch_adopted(record.pid)))
        await self._attach_serial()
        self.monitor = Monitor(f"envdeck-agent-{self.inst.name}")
        await self.monitor.connect(self.inst.qmp_sock, timeout=5)
        self.tracker.reached("first serial output", "adopted")
        self.set_status(
            state="booting",
            accel=state.get("accel"),
            ssh_port=state.get("ssh_port"),
            pid=record.pid,
            started_at=record.start_time,
        )

    async def wait_ready(self) -> None:
        """Walk the remaining boot stages; report stalls with a diagnosis; end ready or degraded."""
        port = self.status.ssh_port
        assert port is not None
        probe = asyncio.create_task(ssh.first_banner(port))  # runs until sshd answers
        probe.add_done_callback(lambda _t: self.progress.set())
        try:
            await self._walk_stages(port, probe)
        finally:
            probe.cancel()

    async def _walk_stages(self, port: int, probe: asyncio.Task[str]) -> None:
        stage_since = boot_start = time.monotonic()
        last_stage = self.tracker.current
        reported: set[str] = set()
        while not self.exited.is_set():
            stage = self.tracker.current
            if stage != last_stage:
                last_stage, stage_since = stage, time.monotonic()
            if stage is None:
                return
            if "ssh port open" not in self.tracker.done and probe.done() and not probe.cancelled():
                self.tracker.reached("ssh port open", f"127.0.0.1:{port}")
                continue
            if stage == "ssh authenticated" and await self._connect_ssh(port):
                self.tracker.reached("ssh authenticated")
                await self.forwards.start(self.inst.read_state().get("forwards", []))
                self._tasks.append(asyncio.create_task(self._poll_listeners()))
                if not await self._provision():
                    return
                self.tracker.reached("ready")
                self.set_status(state="ready", reason=None)
                return
            waited = time.monotonic() - stage_since
            if stage in STALL_AFTER_S and waited > STALL_AFTER_S[stage] and stage not in reported:
                reported.add(stage)
                hint = diagnose(stage, waited, self.tail.last(20), port)
                self.tracker.stalled(hint)
                self.say("warning", f"boot stage '{stage}' stalled: {hint}")
            if time.monotonic() - boot_start > BOOT_DEADLINE_S:
                reason = diagnose(stage, waited, self.tail.last(20), port)
                self.tracker.failed(reason)
                self.set_status(state="degraded", reason=f"did not become ready: {reason}")
                return
            self.progress.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    await self.progress.wait()

    async def _connect_ssh(self, port: int) -> bool:
        try:
            return await self.link.try_connect(port)
        except ssh.HostKeyChanged as exc:
            self.tracker.failed(exc.message)
            self.set_status(state="degraded", reason=exc.message)
            raise

    def _ssh_lost(self) -> None:
        if self.status.state == "ready":
            self.set_status(
                state="degraded", reason="SSH connection to the guest lost; reconnecting"
            )

    def _ssh_back(self) -> None:
        if not self.stopping and self.status.state not in ("paused", "stopping"):
            self.set_status(state="ready", reason=None)

    async def _provision(self) -> bool:
        """Run the provision scripts (output into the boot log); False if one failed."""

        def line(text: str) -> None:
            self._pending_serial.append(text)
            self._flush_serial()

        if self.cfg.images:
            await self._wait_for_cloud_init(line)
        result = await run_provisioning(self.link.conn, self.cfg.provision, line)
        if result.failed_step is not None:
            reason = (
                f"provision script {result.failed_step} failed with exit status "
                f"{result.exit_status}: {result.output_tail.splitlines()[-1] if result.output_tail else ''}"
            )
            self.tracker.failed(reason + ("\n" + result.output_tail if result.output_tail else ""))
            self.set_status(state="degraded", reason=reason)
            return False
        self.tracker.reached(
            "provisioning done", "ran the scripts" if result.ran else "nothing to run"
        )
        return True

    async def _wait_for_cloud_init(
        self, line: Callable[[str], None], timeout: float = 600.0
    ) -> None:
        """Cloud images: let cloud-init finish first (it may still restart services such as sshd);
        its verdict goes into the boot log, a failure becomes a warning (our keys are in by now)."""
        try:
            result = await asyncio.wait_for(
                self.link.conn.run("cloud-init status --wait --long", check=False), timeout
            )
        except (TimeoutError, OSError, asyncssh.Error) as exc:
            self.say("warning", f"could not wait for cloud-init: {exc}")
            return
        for text in str(result.stdout or "").splitlines():
            if text.strip() and not text.startswith("."):
                line(f"[cloud-init] {text.strip()}")
        if result.exit_status != 0:
            self.say(
                "warning",
                f"cloud-init reported a problem (exit status {result.exit_status}); "
                "see 'envdeck logs' and /var/log/cloud-init.log in the guest",
            )

    async def _poll_listeners(self, interval: float = 1.0) -> None:
        """Auto-forward: read the guest's listening sockets every ``interval`` over SSH."""
        while not self.exited.is_set() and not self.stopping:
            conn = self.link.conn
            if conn is not None:
                try:
                    result = await asyncio.wait_for(conn.run(READ_TABLES, check=False), 5)
                    await self.forwards.sync_auto(parse_listeners(str(result.stdout or "")))
                except Exception as exc:  # noqa: BLE001 - SSH blips are handled by _watch_ssh
                    log.debug("listener poll failed: %s", exc)
            await asyncio.sleep(interval)

    def _save_manual_forwards(self) -> None:
        manual = [
            {"spec": f"{f.guest_port}:{f.host_ip}:{f.host_port}"}
            for f in self.forwards.forwards.values()
            if f.source == "manual"
        ]
        self.inst.update_state(forwards=manual)

    # --- pause / stop ---------------------------------------------------------------------

    async def pause(self) -> dict[str, str]:
        """Freeze the guest (QMP stop). SSH may time out meanwhile; resume brings it back."""
        if self.status.state not in ("ready", "degraded") or self.monitor is None:
            raise EnvdeckError(
                f"{self.inst.name} is {self.status.state}; only a running instance can be paused"
            )
        await self.monitor.pause()
        self.set_status(state="paused", reason=None)
        return {"text": "paused: its vCPUs are stopped, its memory is kept"}

    async def resume(self) -> dict[str, str]:
        """Let a paused guest run again; ready once SSH answers (reconnecting if it dropped)."""
        if self.status.state != "paused" or self.monitor is None:
            raise EnvdeckError(
                f"{self.inst.name} is {self.status.state}, not paused",
                hint=f"pause it first: envdeck pause {self.inst.name}",
            )
        await self.monitor.resume()
        if self.link.up:
            self.set_status(state="ready", reason=None)
        else:
            self.set_status(
                state="degraded", reason="SSH connection to the guest lost; reconnecting"
            )
        return {"text": "resumed"}

    # --- stop -----------------------------------------------------------------------------

    async def stop(self, timeout: float = 20.0) -> dict[str, str]:
        """Power down over QMP; then quit; then kill. Say which one it took."""
        if self.exited.is_set():
            return {"how": "already", "text": "the instance is not running"}
        was_paused = self.status.state == "paused"
        self.stopping = True
        self.set_status(state="stopping")
        if was_paused and self.monitor:  # a frozen guest cannot answer the power button
            with contextlib.suppress(Exception):
                await self.monitor.resume()
        self.link.hang_up()
        t0 = time.monotonic()
        if self.monitor:
            with contextlib.suppress(Exception):
                await self.monitor.powerdown()
            if await self._wait_exit(timeout):
                return {
                    "how": "powerdown",
                    "text": f"the guest powered off in {time.monotonic() - t0:.1f}s",
                }
            await self.monitor.quit()
            if await self._wait_exit(5):
                return {
                    "how": "quit",
                    "text": f"the guest did not power off within {timeout:.0f}s; QEMU quit over QMP",
                }
        if self.qemu:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.qemu.pid, signal.SIGKILL)
        await self._wait_exit(5)
        return {"how": "kill", "text": "QEMU did not answer; it was killed (SIGKILL)"}

    async def _wait_exit(self, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await self.exited.wait()
            return True
        except TimeoutError:
            return False

    # --- the socket -------------------------------------------------------------------------

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one client connection."""
        sock = writer.get_extra_info("socket")
        if sock is not None:
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            _pid, uid, _gid = struct.unpack("3i", creds)
            if uid not in (os.getuid(), 0):
                writer.close()
                return
        client = Client(writer)
        self.clients.add(client)
        try:
            while line := await reader.readline():
                try:
                    request = json.loads(line)
                except json.JSONDecodeError:
                    client.send({"id": None, "ok": False, "error": "not JSON"})
                    continue
                asyncio.create_task(self._answer(client, request))
        except (ConnectionError, OSError):
            pass
        finally:
            self.clients.discard(client)
            writer.close()

    async def _answer(self, client: Client, request: dict[str, Any]) -> None:
        ident, cmd = request.get("id"), request.get("cmd")
        try:
            if cmd == "status":
                result: Any = self.status.to_dict()
            elif cmd == "subscribe":
                result = self.status.to_dict()
                client.send({"id": ident, "ok": True, "result": result})
                client.send({"event": self.status.to_dict()})
                for past in [
                    *list(self.messages)[-20:],
                    *self.tracker.history,
                    *self.forwards.events(),
                ]:
                    client.send({"event": past.to_dict()})
                backlog = self.tail.last(int(request.get("backlog", 200)))
                if backlog:
                    client.send(
                        {"event": SerialOutput(instance=self.inst.name, lines=backlog).to_dict()}
                    )
                client.subscribed = True
                return
            elif cmd == "follow_serial":
                self._flush_serial()
                client.subscribed, client.serial_only = True, True
                result = {"offset": self.serial_log.size, "path": str(self.inst.serial_log)}
            elif cmd == "stop":
                result = await self.stop(float(request.get("timeout", 20)))
            elif cmd == "pause":
                result = await self.pause()
            elif cmd == "resume":
                result = await self.resume()
            elif cmd == "forwards":
                result = self.forwards.snapshot()
            elif cmd == "forward_add":
                result = await self.forwards.add(str(request.get("spec", "")))
                self._save_manual_forwards()
            elif cmd == "forward_remove":
                self.forwards.remove(str(request.get("guest", "")))
                self._save_manual_forwards()
                result = {"removed": request.get("guest")}
            elif cmd == "stages":
                result = [s.to_dict() for s in self.tracker.history]
            else:
                raise EnvdeckError(f"unknown command {cmd!r}")
            client.send({"id": ident, "ok": True, "result": result})
        except EnvdeckError as exc:
            client.send({"id": ident, "ok": False, "error": exc.message, "hint": exc.hint})
        except Exception as exc:  # noqa: BLE001 - one bad request must not kill the agent
            log.exception("request %r failed", cmd)
            client.send({"id": ident, "ok": False, "error": f"{type(exc).__name__}: {exc}"})

    # --- main -----------------------------------------------------------------------------

    async def run(self) -> int:
        """Serve, launch or adopt QEMU, boot, and live until QEMU exits."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(FileNotFoundError):
            self.inst.agent_sock.unlink()
        old_umask = os.umask(0o177)
        try:
            server = await asyncio.start_unix_server(
                self.handle, str(self.inst.agent_sock), limit=1 << 20
            )
        finally:
            os.umask(old_umask)
        os.chmod(self.inst.agent_sock, 0o600)
        stop_requested = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop_requested.set)
        self._tasks.append(asyncio.create_task(self._stop_on(stop_requested)))
        try:
            adopted = live_record(self.inst.qemu_pid)
            if adopted:
                await self.adopt(adopted)
            else:
                await self.launch()
            await self.wait_ready()
            await self.exited.wait()
        except EnvdeckError as exc:
            self.say("error", str(exc))
            if not self.exited.is_set():
                await self._abort(exc.message)
        except Exception as exc:
            log.exception("agent failed")
            self.say("error", f"agent failed: {type(exc).__name__}: {exc}")
            if not self.exited.is_set():
                await self._abort(f"agent failed: {exc}")
        finally:
            await asyncio.sleep(0.1)  # let clients read the final status
            server.close()
            for client in list(self.clients):
                client.writer.close()
            for task in self._tasks:
                task.cancel()
            await self.forwards.close()
            await self.link.close()
            if self.monitor:
                await self.monitor.close()
            with contextlib.suppress(FileNotFoundError):
                self.inst.agent_sock.unlink()
            self.serial_log.close()
            self.events_log.close()
        return 0 if self.status.state == "stopped" else 1

    async def _stop_on(self, requested: asyncio.Event) -> None:
        await requested.wait()
        await self.stop()

    async def _abort(self, reason: str) -> None:
        """Startup failed: make sure no QEMU is left behind, record the reason."""
        if self.proc and self.proc.returncode is None:
            self.stopping = True
            self.proc.kill()
            await self.proc.wait()
        self.stopping = False
        if not self.exited.is_set():
            self.inst.update_state(state="crashed", reason=reason, stopped_at=time.time())
            self.set_status(state="crashed", reason=reason, pid=None)
            self.exited.set()


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by signal {-code} ({name})"
    return f"exited with status {code}"


def _last_lines(path: Path, n: int) -> str:
    try:
        lines = [
            line.strip()
            for line in path.read_text(errors="replace").splitlines()
            if line.strip() and "waiting for connection" not in line
        ]
    except OSError:
        return ""
    return " | ".join(lines[-n:])


def main(argv: list[str] | None = None) -> int:
    """Run the agent for one instance in the foreground (the CLI detaches it)."""
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print("usage: python -m envdeck.backend.agent NAME", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    inst = InstanceDir.existing(args[0])
    try:
        with lock_file(inst.agent_lock):
            PidRecord.of(os.getpid(), instance_files.agent_marker(inst)).save(inst.agent_pid)
            try:
                return asyncio.run(Agent(inst).run())
            finally:
                with contextlib.suppress(FileNotFoundError):
                    inst.agent_pid.unlink()
    except BlockingIOError:
        log.info("another agent already owns %s", inst.name)
        return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["Agent", "STAGES", "main"]
