"""An instance's state as read from disk, without its agent — cheap to import.

``envdeck list`` runs on this module alone while no agent runs: no asyncio, no YAML parser, no
psutil unless a pid file exists, no event classes (its rows are built from plain fields). The
few config values a listing shows (arch, cpus, memory, disk) are kept in
``config.summary.json`` next to the config, valid while the config file is the same (size,
mtime and inode); a changed or missing summary is rebuilt from the config.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envdeck.backend.arch import host_arch
from envdeck.backend.store import InstanceDir, list_instances, write_atomic

if TYPE_CHECKING:
    from envdeck.backend.events import InstanceStatus

RUNNING_STATES = ("starting", "booting", "ready", "degraded", "paused", "stopping")
SUMMARY_FIELDS = ("arch", "cpus", "memory_bytes", "disk_bytes")
SUMMARY_FILE = "config.summary.json"


def agent_running(inst: InstanceDir) -> bool:
    """Whether this instance's agent process is alive (pid, start time and command checked)."""
    return _live(inst.agent_pid)


def qemu_running(inst: InstanceDir) -> bool:
    """Whether this instance's QEMU is alive (checked as the agent's)."""
    return _live(inst.qemu_pid)


def _live(path: Path) -> bool:
    if not path.exists():  # no record, no process: psutil is not even imported
        return False
    from envdeck.backend.pidrecord import live_record

    return live_record(path) is not None


def _stamp(path: Path) -> list[int]:
    info = path.stat()
    return [info.st_size, info.st_mtime_ns, info.st_ino]


def config_summary(inst: InstanceDir) -> dict[str, Any]:
    """arch, cpus, memory_bytes, disk_bytes of the instance's config (defaults if unreadable)."""
    summary = _summary(inst)
    return {key: summary[key] for key in SUMMARY_FIELDS}


def config_mounts(inst: InstanceDir) -> list[dict[str, Any]]:
    """The host folders the instance's config shares with its guest (``list --json``)."""
    return list(_summary(inst)["mounts"])


def _summary(inst: InstanceDir) -> dict[str, Any]:
    summary_path = inst.root / SUMMARY_FILE
    try:
        stamp = _stamp(inst.config)
    except OSError:
        stamp = None
    try:
        saved = json.loads(summary_path.read_text())
        if stamp is not None and saved["stamp"] == stamp:
            return {key: saved[key] for key in (*SUMMARY_FIELDS, "mounts")}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    from envdeck.backend.config import ConfigError, InstanceConfig
    from envdeck.backend.instances import files as instance_files

    try:
        cfg = instance_files.load(inst)
    except (ConfigError, OSError):
        cfg = None
    summary = {key: getattr(cfg or InstanceConfig(), key) for key in SUMMARY_FIELDS}
    summary["mounts"] = [mount.as_json() for mount in (cfg.mounts if cfg else ())]
    if cfg is not None and stamp is not None:
        with contextlib.suppress(OSError):  # a cache: the next listing parses the config again
            write_atomic(summary_path, json.dumps({"stamp": stamp, **summary}))
    return summary


def offline_status(inst: InstanceDir) -> InstanceStatus:
    """The truth from disk when no agent answers: stopped, crashed, or an orphaned QEMU."""
    from envdeck.backend.events import InstanceStatus

    return InstanceStatus(**offline_fields(inst))


def offline_fields(inst: InstanceDir) -> dict[str, Any]:
    """:func:`offline_status` as the fields of an ``InstanceStatus``."""
    state = inst.read_state()
    common: dict[str, Any] = dict(
        instance=inst.name, accel=state.get("accel"), **config_summary(inst)
    )
    qemu = None
    if inst.qemu_pid.exists():
        from envdeck.backend.pidrecord import live_record

        qemu = live_record(inst.qemu_pid)
    if qemu is not None:
        return dict(
            **common,
            state="degraded",
            pid=qemu.pid,
            ssh_port=state.get("ssh_port"),
            started_at=qemu.start_time,
            reason=f"its agent is not running (QEMU pid {qemu.pid} still runs): "
            f"'envdeck start {inst.name}' re-attaches, 'envdeck stop {inst.name}' stops it",
        )
    recorded = state.get("state", "stopped")
    if recorded in RUNNING_STATES:
        last = f" (last known state: {recorded})"
        return dict(
            **common,
            state="crashed",
            reason="its agent and QEMU are gone without a clean stop" + last,
        )
    return dict(**common, state=recorded, reason=state.get("reason"))


def status_json(info: InstanceStatus) -> dict[str, Any]:
    """The stable JSON shape of ``envdeck list --json``."""
    return row(vars(info))


def row(fields: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`status_json` of the fields of an ``InstanceStatus`` (missing ones are None)."""
    state, arch, started = fields["state"], fields.get("arch", "x86_64"), fields.get("started_at")
    running = state in RUNNING_STATES
    return {
        "name": fields["instance"],
        "state": state,
        "arch": arch,
        "foreign_arch": arch != host_arch(),  # emulated whatever the accel
        "accel": fields.get("accel"),
        "cpus": fields.get("cpus", 1),
        "memory_bytes": fields.get("memory_bytes", 0),
        "disk_bytes": fields.get("disk_bytes", 0),
        "ssh_port": fields.get("ssh_port") if running else None,
        "uptime_s": round(time.time() - started, 1) if running and started else None,
        "reason": fields.get("reason") if state in ("crashed", "degraded") else None,
        "pid": fields.get("pid") if running else None,
        "mounts": config_mounts(InstanceDir.of(fields["instance"])),
    }


def list_rows() -> list[dict[str, Any]]:
    """Every instance's ``list --json`` row; only instances whose agent runs are asked (in
    parallel, through the instances API), the others are read from disk."""
    names = list_instances()
    running = [name for name in names if agent_running(InstanceDir.of(name))]
    asked: dict[str, dict[str, Any]] = {}
    if running:
        import asyncio

        from envdeck.backend.instances import api

        async def ask() -> list[dict[str, Any]]:
            return list(await asyncio.gather(*(api.status(name) for name in running)))

        asked = dict(zip(running, asyncio.run(ask()), strict=True))
    return [
        asked[name] if name in asked else row(offline_fields(InstanceDir.of(name)))
        for name in names
    ]


__all__ = [
    "RUNNING_STATES",
    "agent_running",
    "list_rows",
    "offline_status",
    "qemu_running",
    "status_json",
]
