"""QEMU supervision: launch (with the KVM watchdog), resume a suspended guest, or adopt; watch
the exit and say why it happened; pause, resume, suspend to disk and stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from typing import TYPE_CHECKING, Any, Protocol

from envdeck.backend.agent import plan
from envdeck.backend.agent.child import ChildProcess, process_exit
from envdeck.backend.agent.console import SerialConsole
from envdeck.backend.agent.exits import describe_exit, verdict
from envdeck.backend.agent.state import AgentState
from envdeck.backend.agent.tasks import TaskSet
from envdeck.backend.agent.timings import Timings
from envdeck.backend.config import InstanceConfig
from envdeck.backend.errors import EnvdeckError
from envdeck.backend.instances import files as instance_files
from envdeck.backend.pidrecord import PidRecord, live_record, qemu_marker
from envdeck.backend.store import InstanceDir
from envdeck.backend.vm import accel as accel_mod
from envdeck.backend.vm import mounts as vm_mounts
from envdeck.backend.vm import saved as saved_machine
from envdeck.backend.vm.argv import MachineSpec, build_argv

if TYPE_CHECKING:  # QMP (and cloud images) are imported once QEMU runs: not on its way
    from envdeck.backend.agent.plan import EarlyLaunch
    from envdeck.backend.vm.qmp import Monitor

log = logging.getLogger("envdeck.agent")


class Link(Protocol):
    """What the machine needs of the guest SSH link."""

    @property
    def up(self) -> bool: ...

    def hang_up(self) -> None: ...


class Machine:
    """One instance's QEMU process, for the lifetime of that process."""

    def __init__(
        self,
        inst: InstanceDir,
        cfg: InstanceConfig,
        state: AgentState,
        console: SerialConsole,
        link: Link,
        timings: Timings,
        tasks: TaskSet,
        early: EarlyLaunch | None = None,
    ) -> None:
        self.inst = inst
        self.early = early  # a QEMU launched from the last start's plan, until judged
        self._launched_at = 0.0  # when the running QEMU was launched (wall clock)
        self.cfg = cfg
        self.state = state
        self.console = console
        self.link = link
        self.timings = timings
        self.tasks = tasks
        self.proc: ChildProcess | None = None
        self.qemu: PidRecord | None = None
        self.monitor: Monitor | None = None
        self._guarded: str | None = None  # the accel of a watchdog-guarded boot in progress
        self._suspended = False  # QEMU ends because the guest was saved to disk
        self.spawned = asyncio.Event()  # a QEMU was launched or adopted: the guest side may load

    async def start(self) -> None:
        """Adopt the QEMU a dead agent left running, or launch a new one."""
        adopted = None if self.early else live_record(self.inst.qemu_pid)
        if adopted:
            await self.adopt(adopted)
        else:
            await self.launch()

    # --- launch ---------------------------------------------------------------------------

    async def launch(self) -> None:
        """Prepare boot files, choose the accelerator, start QEMU (with the KVM watchdog)."""
        self.state.set_status(state="starting", reason=None)
        await asyncio.to_thread(instance_files.prepare, self.inst, self.cfg, None, refresh=False)
        early = self.early
        # the planned QEMU holds its port while it runs; one that died may have found it taken
        held = early.plan.port if early and early.proc.poll() is None else None
        ssh_port = instance_files.pick_ssh_port(self.inst, self.cfg, held=held)
        if await self._resume_saved(ssh_port):
            return
        # (the first KVM start of a host boot runs a probe: up to 2 s, off the loop)
        choice = await asyncio.to_thread(accel_mod.choose, self.cfg.accel, self.cfg.arch)
        self.state.say("info", f"accelerator {choice.accel}: {choice.why}")
        self._guarded = choice.accel if choice.guarded else None  # (QEMU may die in _spawn)
        await self._spawn(choice.accel, ssh_port)
        if self.state.exited.is_set():  # QEMU died at once: _on_exit said why
            return
        self._started(choice.accel, ssh_port)
        if choice.guarded:
            await self._guard_first_boot(choice.accel, ssh_port)

    async def _guard_first_boot(self, accel: str, ssh_port: int) -> None:
        """KVM can hang or die on some hosts: wait for the kernel, else fall back to TCG."""
        watchdog = self.timings.kvm_watchdog_s
        booted = asyncio.ensure_future(self.console.kernel_booted.wait())
        died = asyncio.ensure_future(self.state.exited.wait())
        try:
            await asyncio.wait({booted, died}, timeout=watchdog, return_when="FIRST_COMPLETED")
        finally:
            booted.cancel()
            died.cancel()
        if self.console.kernel_booted.is_set():
            return
        if self.state.exited.is_set():  # reported as crashed (and judged) by _on_exit
            return
        reason = f"the guest kernel did not reach /init within {watchdog:.0f}s under {accel}"
        accel_mod.record_verdict(accel, reason)
        self.state.say(
            "warning", f"{reason}: falling back to TCG (remembered until the host reboots)"
        )
        self._guarded = None
        await self._kill_for_restart()
        self.state.restart_boot()
        await self._spawn("tcg", ssh_port)
        self._started("tcg", ssh_port)

    async def _resume_saved(self, ssh_port: int) -> bool:
        """Resume a suspended guest (True), or say why its saved state is refused (False: the
        caller boots it from scratch). A state is loaded once, then removed."""
        root = self.inst.root
        saved = saved_machine.load(root)
        if saved is None:
            if saved_machine.exists(root):
                self.state.say("warning", "an incomplete saved state was removed; booting")
                saved_machine.discard(root)
            return False
        argv = build_argv(self._spec(saved.accel, ssh_port))
        version = await asyncio.to_thread(saved_machine.binary_version, argv[0])
        why = saved_machine.refusal(saved, self.inst.name, version, argv)
        if why:
            self.state.say("warning", f"the saved state is refused: {why}; booting from scratch")
            saved_machine.discard(root)
            return False
        self.state.resumed = True
        self.state.say("info", f"resuming the guest saved {_ago(saved.saved_at)}")
        t0 = time.monotonic()
        incoming = saved_machine.incoming_uri(saved_machine.state_path(root))
        await self._spawn(saved.accel, ssh_port, incoming=incoming)
        if self.state.exited.is_set():  # QEMU died at once: _on_exit said why
            saved_machine.discard(root)
            return True
        self._started(saved.accel, ssh_port)
        assert self.monitor is not None
        from envdeck.backend.vm.qmp import MonitorError

        try:
            await self.monitor.wait_loaded()
        except MonitorError as exc:
            self.state.say("warning", f"{exc}: booting from scratch (see qemu.log)")
            await self._kill_for_restart()
            self.state.resumed = False
            self.state.restart_boot()
            return False
        finally:
            saved_machine.discard(root)  # loaded (or unloadable): never used twice
        loaded = f"resumed: {saved.size_bytes >> 20} MiB loaded in {time.monotonic() - t0:.2f}s"
        self.state.tracker.reached("first serial output", "resumed")
        self.state.tracker.reached("kernel booted", loaded)
        self.console.kernel_booted.set()
        return True

    def _spec(self, accel: str, ssh_port: int) -> MachineSpec:
        shares = vm_mounts.shares_for(self.cfg, self.inst)
        if self.cfg.boots_disk:  # a cloud image: UEFI boots the disk, cloud-init reads the seed
            firmware = None  # firmware.legacyBIOS: QEMU's SeaBIOS
            if not self.cfg.guest.legacy_bios:
                from envdeck.backend.images import cloud as cloud_images

                code, _ = cloud_images.uefi_firmware(self.cfg.arch)
                firmware = (code, self.inst.efi_vars)
            boot: dict[str, Any] = dict(
                kernel=None,
                initrd=None,
                cmdline="",
                disk=self.inst.disk,
                firmware=firmware,
                seed=self.inst.seed,
            )
        else:
            kernel, initrd, cmdline = instance_files.boot_files(self.inst, self.cfg)
            if accel == "tcg":
                cmdline += accel_mod.tcg_kernel_args(self.cfg.arch)
            cmdline += vm_mounts.kernel_args(shares)
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
            serial_socket=self.console.socket_path,
            qmp_socket=self.inst.qmp_sock,
            ssh_port=ssh_port,
            cpu=self.cfg.cpu_type.get(self.cfg.arch),
            shares=shares,
            **boot,
        )

    async def _spawn(self, accel: str, ssh_port: int, incoming: str | None = None) -> None:
        spec = self._spec(accel, ssh_port)
        argv = build_argv(spec, incoming=incoming)
        boot_files = [p for p in (spec.kernel, spec.initrd) if p is not None]
        early, self.early = self.early, None
        if early is not None and early.matches(argv, plan.signature(boot_files)):
            popen, serial = early.adopt()
            self._launched_at = early.launched_at
            log.info("QEMU launched from the last start's plan: adopted (pid %d)", popen.pid)
        else:
            if early is not None:
                log.info("the last start's plan is not this start's: its QEMU is killed")
                await asyncio.to_thread(early.abandon)
            self._launched_at = time.time()
            popen, serial = plan.spawn_qemu(self.inst, argv), None
        self.proc = ChildProcess(popen)
        if incoming is None and not self.cfg.boots_disk:  # (a tiny guest: its next start)
            plan.LaunchPlan(argv, ssh_port, plan.signature(boot_files)).write(self.inst.root)
        else:
            plan.discard(self.inst.root)
        self.spawned.set()
        self.qemu = PidRecord.of(self.proc.pid, qemu_marker(self.inst))
        self.qemu.save(self.inst.qemu_pid)
        self.inst.update_state(qemu_argv=argv, accel=accel, ssh_port=ssh_port, paused=False)
        self.tasks.spawn(self._watch_child(self.proc))
        await self.console.attach(serial)
        from envdeck.backend.vm.qmp import Monitor

        self.monitor = Monitor(f"envdeck-agent-{self.inst.name}")
        try:
            await self.monitor.connect(self.inst.qmp_sock, gone=self.state.exited)
            self.inst.restrict_sockets()  # QEMU made them with our umask: owner-only
        except Exception as exc:  # noqa: BLE001 - QEMU may have died at once: its log says why
            if not self.state.exited.is_set():
                raise EnvdeckError(f"QEMU's monitor did not answer: {exc}") from exc

    def _started(self, accel: str, ssh_port: int) -> None:
        assert self.qemu is not None
        self.state.tracker.reached("qemu started", f"pid {self.qemu.pid}, accel {accel}")
        self.state.set_status(
            state="booting",
            accel=accel,
            ssh_port=ssh_port,
            pid=self.qemu.pid,
            started_at=self._launched_at,  # (a QEMU launched from the plan: before now)
        )

    async def _kill_for_restart(self) -> None:
        proc, self.proc = self.proc, None  # the watcher ignores this exit
        if self.monitor:
            await self.monitor.close()
        if proc and proc.returncode is None:
            proc.kill()
            await proc.wait()
        self.console.detach()

    # --- adopt ----------------------------------------------------------------------------

    async def adopt(self, record: PidRecord) -> None:
        """Take over a QEMU that outlived its agent."""
        saved = self.inst.read_state()
        self.qemu = record
        self.spawned.set()
        self.state.say("info", f"adopting running QEMU pid {record.pid}")
        self.tasks.spawn(self._watch_adopted(record.pid))
        await self.console.attach()
        from envdeck.backend.vm.qmp import Monitor

        self.monitor = Monitor(f"envdeck-agent-{self.inst.name}")
        await self.monitor.connect(self.inst.qmp_sock, timeout=5)
        self.inst.restrict_sockets()
        self.state.tracker.reached("first serial output", "adopted")
        self.state.set_status(
            state="booting",
            accel=saved.get("accel"),
            ssh_port=saved.get("ssh_port"),
            pid=record.pid,
            started_at=record.start_time,
        )

    # --- exit -----------------------------------------------------------------------------

    async def _watch_child(self, proc: ChildProcess) -> None:
        code = await proc.wait()
        if proc is self.proc:
            self._on_exit(describe_exit(code))

    async def _watch_adopted(self, pid: int) -> None:
        """Wait for a QEMU that is not our child to exit (pidfd: no polling)."""
        try:
            await process_exit(pid)
        except ProcessLookupError:
            self._on_exit("QEMU exited while no agent was running")
            return
        self._on_exit("QEMU exited (adopted process: exit status unknown)")

    def _on_exit(self, how: str) -> None:
        if self.state.exited.is_set():
            return
        fallback = None
        if self._guarded and not self.console.kernel_booted.is_set() and not self.state.stopping:
            judged = f"QEMU exited under {self._guarded} before the guest kernel booted"
            accel_mod.record_verdict(self._guarded, judged)
            fallback = f"{judged}: the next start uses TCG (remembered until the host reboots)"
        self.console.flush()
        tail = self.console.tail.last(30)
        state, reason = verdict(how, self.state.stopping, tail, self.inst.root / "qemu.log")
        if fallback and state == "crashed":
            # In the reason, not a message of its own: a CLI that subscribes after a quick
            # crash sees the crashed status first and stops there.
            reason = f"{reason}; {fallback}"
        elif fallback:
            self.state.say("warning", fallback)
        if self._suspended:
            state, reason = "suspended", None
        self.link.hang_up()
        with contextlib.suppress(FileNotFoundError):
            self.inst.qemu_pid.unlink()
        if not self.inst.update_state_if_room(
            state=state, reason=reason, stopped_at=time.time(), paused=False
        ):
            self.state.say("warning", "disk full: state.json keeps the state before QEMU's exit")
        self.state.set_status(state=state, reason=reason, pid=None, started_at=None, ssh_port=None)
        if state == "crashed":  # (its next start is the usual one: not a QEMU that died)
            plan.discard(self.inst.root)
        if state == "crashed" and reason:
            self.state.tracker.failed(reason)
        self.state.exited.set()

    async def abort(self, reason: str) -> None:
        """Startup failed: make sure no QEMU is left behind, record the reason."""
        if self.proc and self.proc.returncode is None:
            self.state.stopping = True
            self.proc.kill()
            await self.proc.wait()
        self.state.stopping = False
        if not self.state.exited.is_set():
            self.inst.update_state(
                state="crashed", reason=reason, stopped_at=time.time(), paused=False
            )
            self.state.set_status(state="crashed", reason=reason, pid=None, ssh_port=None)
            self.state.exited.set()

    # --- pause / resume / stop --------------------------------------------------------------

    async def pause(self) -> dict[str, str]:
        """Freeze the guest (QMP stop). SSH may time out meanwhile; resume brings it back."""
        status = self.state.status
        if status.state not in ("ready", "degraded") or self.monitor is None:
            raise EnvdeckError(
                f"{self.inst.name} is {status.state}; only a running instance can be paused"
            )
        await self.monitor.pause()
        self.inst.update_state(paused=True)  # read by the commands that would hang on it
        self.state.set_status(state="paused", reason=None)
        return {"text": "paused: its vCPUs are stopped, its memory is kept"}

    async def resume(self) -> dict[str, str]:
        """Let a paused guest run again; ready once SSH answers (reconnecting if it dropped)."""
        status = self.state.status
        if status.state != "paused" or self.monitor is None:
            raise EnvdeckError(
                f"{self.inst.name} is {status.state}, not paused",
                hint=f"pause it first: envdeck pause {self.inst.name}",
            )
        await self.monitor.resume()
        self.inst.update_state(paused=False)
        if self.link.up:
            self.state.set_status(state="ready", reason=None)
        else:
            self.state.set_status(
                state="degraded", reason="SSH connection to the guest lost; reconnecting"
            )
        return {"text": "resumed"}

    async def suspend(self) -> dict[str, str]:
        """Save the guest to disk (owner-only, in the instance's directory) and end QEMU; the
        next start resumes it. A failed save leaves the guest running as it was."""
        from envdeck.backend.vm.qmp import MonitorError

        status = self.state.status
        if status.state not in ("ready", "degraded", "paused") or self.monitor is None:
            raise EnvdeckError(
                f"{self.inst.name} is {status.state}; only a running instance can be suspended"
            )
        root = self.inst.root
        argv = list(self.inst.read_state().get("qemu_argv") or [])
        version = saved_machine.version_text(*await self.monitor.version())
        was_paused = status.state == "paused"
        self.state.set_status(state="stopping", reason="saving the guest to disk")
        t0 = time.monotonic()
        try:
            if not was_paused:
                await self.monitor.pause()
            path = saved_machine.start_file(root)
            await self.monitor.save(saved_machine.outgoing_uri(path))
            saved_machine.record(root, self.inst.name, version, argv, status.accel or "tcg")
        except (MonitorError, OSError) as exc:
            saved_machine.discard(root)
            if not was_paused:
                with contextlib.suppress(Exception):
                    await self.monitor.resume()
            self.state.set_status(state=status.state, reason=status.reason)
            raise EnvdeckError(f"{self.inst.name} could not be suspended: {exc}") from None
        size = saved_machine.state_path(root).stat().st_size
        took = time.monotonic() - t0
        self._suspended = self.state.stopping = True
        self.link.hang_up()
        await self.monitor.quit()
        if not await self._wait_exit(10) and self.qemu:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.qemu.pid, signal.SIGKILL)
            await self._wait_exit(5)
        return {
            "text": f"suspended: {size >> 20} MiB saved in {took:.1f}s; "
            f"'envdeck start {self.inst.name}' resumes it"
        }

    async def stop(self, timeout: float = 20.0) -> dict[str, str]:
        """Power down over QMP; then quit; then kill. Say which one it took."""
        if self.state.exited.is_set():
            return {"how": "already", "text": "the instance is not running"}
        was_paused = self.state.status.state == "paused"
        self.state.stopping = True
        self.state.set_status(state="stopping")
        if was_paused and self.monitor:  # a frozen guest cannot answer the power button
            with contextlib.suppress(Exception):
                await self.monitor.resume()
            self.inst.update_state(paused=False)
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
                    "text": f"the guest did not power off within {timeout:.0f}s; "
                    "QEMU quit over QMP",
                }
        if self.qemu:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.qemu.pid, signal.SIGKILL)
        await self._wait_exit(5)
        return {"how": "kill", "text": "QEMU did not answer; it was killed (SIGKILL)"}

    async def _wait_exit(self, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await self.state.exited.wait()
            return True
        except TimeoutError:
            return False

    async def close(self) -> None:
        """Close the QMP connection (QEMU itself is not touched)."""
        if self.monitor:
            await self.monitor.close()


def _ago(when: float) -> str:
    """How long ago ``when`` was, in words."""
    seconds = max(time.time() - when, 0)
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"
