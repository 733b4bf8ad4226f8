"""Choosing a QEMU accelerator: kvm/hvf when they really work, else TCG, and why.

``/dev/kvm`` existing is not enough: on nested setups KVM guests can hang with no output, or
QEMU aborts as the vCPU starts (``failed to set MSR 0x10a``). Before the first KVM boot of a
host boot, a probe runs QEMU with KVM on a 16-byte firmware that writes to a debug-exit port
(about 30 ms when KVM works, at most ``PROBE_TIMEOUT_S`` when it hangs). The verdict, good or
bad, is remembered here for this host boot. The agent still guards a KVM boot with its
watchdog and falls back to TCG if the guest stays silent.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from envdeck.backend import store
from envdeck.backend.arch import host_arch


@dataclass(frozen=True)
class AccelChoice:
    """The accelerator to try, why, and whether a watchdog should guard it."""

    accel: str
    why: str
    guarded: bool  # True: fall back to TCG if the guest stays silent


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def _verdict_file() -> Path:
    return store.cache_dir() / "accel-verdicts.json"


def _verdict_entry(accel: str) -> dict | None:
    """The verdict recorded for ``accel`` during this host boot, or None."""
    try:
        data = json.loads(_verdict_file().read_text())
    except (OSError, json.JSONDecodeError):
        return None
    entry = data.get(accel) if isinstance(data, dict) else None
    if isinstance(entry, dict) and entry.get("boot_id") == _boot_id():
        return entry
    return None


def recorded_verdict(accel: str) -> str | None:
    """Why ``accel`` was found not to work during this host boot, or None."""
    entry = _verdict_entry(accel)
    if entry and not entry.get("works"):
        return entry.get("reason")
    return None


def record_verdict(accel: str, reason: str, *, works: bool = False) -> None:
    """Remember whether ``accel`` works on this host until the next reboot."""
    path = _verdict_file()
    store.ensure_private_dir(path.parent)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    data[accel] = {"boot_id": _boot_id(), "reason": reason, "works": works}
    store.write_atomic(path, json.dumps(data, indent=2))


# Real-mode code at the x86 reset vector: mov al,1; out 0xf4,al; hlt; jmp $-3. QEMU's
# isa-debug-exit at 0xf4 then exits with status (1 << 1) | 1 = 3.
_PROBE_CODE = bytes([0xB0, 0x01, 0xE6, 0xF4, 0xF4, 0xEB, 0xFD])
_PROBE_EXIT = 3
PROBE_TIMEOUT_S = 1.8  # with the process start and kill, a hanging KVM costs under 2 s


def probe(
    accel: str = "kvm", binary: str = "qemu-system-x86_64", timeout: float = PROBE_TIMEOUT_S
) -> str | None:
    """Run a vCPU under QEMU with ``accel`` for a few instructions; None when it works, else why.

    x86_64 hosts only (elsewhere: None, the agent's boot watchdog still guards KVM).
    """
    if host_arch() != "x86_64":
        return None
    firmware = bytearray(0x10000)  # a BIOS image is a multiple of 64 KiB; reset vector at -16
    firmware[0xFFF0 : 0xFFF0 + len(_PROBE_CODE)] = _PROBE_CODE
    with tempfile.TemporaryDirectory(prefix="envdeck-kvm-probe-") as tmp:
        bios = Path(tmp) / "probe.bin"
        bios.write_bytes(firmware)
        cpu = "host" if accel == "kvm" else "max"
        argv = [binary, "-accel", accel, "-M", "microvm", "-cpu", cpu, "-m", "16M"]
        argv += ["-nodefaults", "-display", "none", "-no-reboot", "-bios", str(bios)]
        argv += ["-device", "isa-debug-exit,iobase=0xf4,iosize=1"]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return (
                f"a {accel} vCPU did not run 4 instructions within {timeout:.0f}s (it hangs here)"
            )
        except OSError as exc:
            return f"cannot run {binary} for the KVM probe: {exc.strerror or exc}"
    if done.returncode == _PROBE_EXIT:
        return None
    said = " | ".join(done.stderr.strip().splitlines()[:2]) or f"exit status {done.returncode}"
    return f"QEMU failed with {accel} ({said[:200]})"


def kvm_usable() -> tuple[bool, str]:
    """Whether /dev/kvm can be opened read-write, with the reason when not."""
    if not os.path.exists("/dev/kvm"):
        return False, "/dev/kvm does not exist"
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        return False, f"/dev/kvm is not usable ({exc.strerror}); add yourself to the kvm group"
    os.close(fd)
    return True, "/dev/kvm is usable"


def choose(requested: str, guest_arch: str) -> AccelChoice:
    """Resolve ``requested`` (auto|kvm|hvf|tcg) for ``guest_arch`` on this host."""
    host = host_arch()
    if requested == "tcg":
        return AccelChoice("tcg", "tcg requested in the instance file", False)
    if requested in ("kvm", "hvf"):
        return AccelChoice(requested, f"{requested} requested in the instance file", False)
    if guest_arch != host:
        return AccelChoice(
            "tcg", f"guest arch {guest_arch} differs from host {host}: emulated", False
        )
    if platform.system() == "Darwin":
        return AccelChoice("hvf", "macOS host", True)
    ok, why = kvm_usable()
    if not ok:
        return AccelChoice("tcg", why, False)
    entry = _verdict_entry("kvm")
    if entry is None:
        broken = probe("kvm")
        record_verdict("kvm", broken or "the KVM probe ran", works=broken is None)
        if broken:
            return AccelChoice("tcg", f"kvm skipped: {broken}", False)
    elif not entry.get("works"):
        reason = entry.get("reason")
        return AccelChoice("tcg", f"kvm skipped: {reason} (seen earlier this host boot)", False)
    return AccelChoice("kvm", why + "; guarded by a boot watchdog", True)


def host_tsc_khz() -> int | None:
    """The host's TSC rate in kHz, or None if it cannot be told (not x86, no hint).

    Under TCG the guest's TSC is the host's, so the guest need not calibrate it. Sources:
    sysfs tsc_freq_khz (some kernels), the nominal "@ N.NNGHz" in an Intel model name, else
    "cpu MHz" when the TSC is constant. A wrong value only makes the guest clock run at the
    wrong rate; it still boots.
    """
    if host_arch() != "x86_64":
        return None
    with contextlib.suppress(OSError, ValueError):
        return int(Path("/sys/devices/system/cpu/cpu0/tsc_freq_khz").read_text())
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    if m := re.search(r"^model name\s*:.*@\s*([\d.]+)\s*GHz", info, re.M):
        return round(float(m.group(1)) * 1_000_000)
    if "constant_tsc" in info and (m := re.search(r"^cpu MHz\s*:\s*([\d.]+)", info, re.M)):
        return round(float(m.group(1)) * 1000)
    return None


def tcg_kernel_args(guest_arch: str) -> str:
    """Kernel arguments a TCG guest of the host's arch needs on microvm.

    microvm has no HPET or ACPI PM timer, so the guest calibrates its TSC against the PIT;
    on a loaded host under TCG that fails and the kernel hangs before /init. Telling it the
    TSC rate skips the calibration (measured: 4 concurrent boots all reach /init with it,
    none without).
    """
    if host_arch() != guest_arch or guest_arch != "x86_64":
        return ""
    khz = host_tsc_khz()
    return f" tsc=reliable tsc_early_khz={khz}" if khz else ""
