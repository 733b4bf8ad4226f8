"""Choosing a QEMU accelerator: kvm/hvf when they really work, else TCG, and why.

``/dev/kvm`` existing is not enough: on nested setups KVM guests can hang with no output.
The agent starts with KVM when it looks usable and, if the guest prints nothing within a
watchdog period, falls back to TCG and records that verdict here for this host boot, so
later starts go straight to TCG.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
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


def recorded_verdict(accel: str) -> str | None:
    """A 'hangs' verdict recorded for ``accel`` during this host boot, or None."""
    try:
        data = json.loads(_verdict_file().read_text())
    except (OSError, json.JSONDecodeError):
        return None
    entry = data.get(accel)
    if entry and entry.get("boot_id") == _boot_id():
        return entry.get("reason")
    return None


def record_verdict(accel: str, reason: str) -> None:
    """Remember that ``accel`` does not work on this host until the next reboot."""
    path = _verdict_file()
    store.ensure_private_dir(path.parent)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        data = {}
    data[accel] = {"boot_id": _boot_id(), "reason": reason}
    store.write_atomic(path, json.dumps(data, indent=2))


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
    hang = recorded_verdict("kvm")
    if hang:
        return AccelChoice("tcg", f"kvm skipped: {hang} (seen earlier this host boot)", False)
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
