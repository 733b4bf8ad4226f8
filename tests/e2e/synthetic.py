"""A synthetic recording for the dashboard tests — generated, NOT recorded from a real run.

It exercises every pane (a booting then ready instance with stages, serial lines, forwards; a
host Docker endpoint with an amd64 and an arm64 (emulated) container; a host process tree with
emulated processes) with fixed timestamps, so replays at speed 0 are deterministic.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from envdeck.backend import events as ev

BASE_TS = 1_780_000_000.0


def _proc(
    pid, ppid, cmd, *, user="root", cpu=0.0, rss=4 << 20, container=None, emulated=None, name=None
):
    return {
        "pid": pid,
        "ppid": ppid,
        "user": user,
        "state": "S",
        "cpu_percent": cpu,
        "rss_bytes": rss,
        "start_time": BASE_TS - 1000 + pid,
        "cmdline": cmd,
        "name": name or Path(cmd[0]).name,
        "depth": 0,
        "container": container,
        "emulated": emulated,
    }


def process_rows(extra: int = 0) -> list[dict]:
    """A small host tree: init, sshd, dockerd + containerd-shims, QEMU, emulated busybox."""

    def arm(
        program: str,
        argv: list[str],
        interpreter: str = "/usr/libexec/qemu-binfmt/aarch64-binfmt-P",
    ) -> dict:
        # the shape of envdeck.backend.processes.emulation's description
        return {
            "arch": "aarch64",
            "interpreter": interpreter,
            "program": program,
            "argv": argv,
            "command": " ".join(argv),
            "preserve_argv0": True,
            "arch_source": "elf",
        }

    rows = [
        _proc(1, 0, ["/sbin/init"], rss=12 << 20),
        _proc(310, 1, ["/usr/sbin/sshd", "-D"]),
        _proc(402, 1, ["/usr/bin/dockerd", "-H", "unix:///run/docker.sock"], cpu=1.5, rss=80 << 20),
        _proc(
            410,
            402,
            ["containerd", "--config", "/var/run/docker/containerd/containerd.toml"],
            rss=40 << 20,
        ),
        _proc(900, 1, ["/usr/bin/containerd-shim-runc-v2", "-namespace", "moby", "-id", "a1b2"]),
        _proc(
            901,
            900,
            [
                "/usr/libexec/qemu-binfmt/aarch64-binfmt-P",
                "/bin/sh",
                "sh",
                "-c",
                "while true; do :; done",
            ],
            cpu=41.0,
            rss=9 << 20,
            container="arm-loop",
            emulated=arm("/bin/sh", ["sh", "-c", "while true; do :; done"]),
            name="sh",
        ),
        _proc(
            902,
            901,
            ["/usr/libexec/qemu-binfmt/aarch64-binfmt-P", "/bin/sleep", "sleep", "1"],
            rss=6 << 20,
            container="arm-loop",
            emulated=arm("/bin/sleep", ["sleep", "1"]),
            name="sleep",
        ),
        _proc(950, 1, ["/usr/bin/containerd-shim-runc-v2", "-namespace", "moby", "-id", "c3d4"]),
        _proc(951, 950, ["/bin/sh", "-c", "httpd -f -p 8080"], container="web-amd64"),
        _proc(
            1200,
            1,
            ["/usr/bin/qemu-system-x86_64", "-name", "tiny", "-accel", "tcg", "-m", "256"],
            user="dev",
            cpu=23.0,
            rss=210 << 20,
        ),
        _proc(1300, 310, ["sshd: dev@pts/0"], user="dev"),
        _proc(1301, 1300, ["-bash"], user="dev"),
        _proc(
            1400,
            1301,
            ["qemu-aarch64-static", "./hello-arm64", "--loop"],
            user="dev",
            cpu=3.0,
            emulated=arm("./hello-arm64", ["./hello-arm64", "--loop"], "qemu-aarch64-static"),
            name="qemu-aarch64-st",
        ),
    ]
    for i in range(extra):
        rows.append(_proc(5000 + i, 1301, ["sleep", str(1000 + i)], user="dev", rss=1 << 20))
    return rows


def events(serial_lines: int = 40, extra_processes: int = 0) -> list[tuple[float, ev.Event]]:
    """(t, event) pairs of the synthetic session."""
    out: list[tuple[float, ev.Event]] = []

    def at(t: float, event: ev.Event) -> None:
        event.ts = BASE_TS + t
        out.append((t, event))

    at(
        0.0,
        ev.EndpointStatus(
            endpoint="host",
            reachable=True,
            native_arch="amd64",
            docker_host="unix:///run/docker.sock",
        ),
    )
    at(
        0.0,
        ev.EndpointStatus(
            endpoint="instance:tiny", reachable=False, reason="guest has no docker.sock forward yet"
        ),
    )
    at(
        0.1,
        ev.ContainerInfo(
            endpoint="host",
            id="a1b2" * 16,
            name="arm-loop",
            image="busybox:arm64",
            state="running",
            status="Up 2 minutes",
            platform="linux/arm64",
            emulated=True,
        ),
    )
    at(
        0.1,
        ev.ContainerInfo(
            endpoint="host",
            id="c3d4" * 16,
            name="web-amd64",
            image="busybox:amd64",
            state="running",
            status="Up 2 minutes",
            ports=["127.0.0.1:8081->8080/tcp"],
            platform="linux/amd64",
        ),
    )
    at(0.2, ev.ProcessDiff(host="host", full=True, added=process_rows(extra_processes)))
    at(
        0.3,
        ev.InstanceStatus(
            instance="tiny",
            state="starting",
            arch="x86_64",
            accel="tcg",
            cpus=1,
            memory_bytes=256 << 20,
            ssh_port=60022,
            started_at=BASE_TS + 0.3,
        ),
    )
    at(
        0.4,
        ev.InstanceStatus(
            instance="stopped-one", state="stopped", arch="aarch64", cpus=2, memory_bytes=1 << 30
        ),
    )
    stages = [
        ("qemu started", 0.1),
        ("first serial output", 0.6),
        ("kernel booted", 2.4),
        ("ssh port open", 3.1),
        ("ssh authenticated", 3.5),
        ("ready", 3.6),
    ]
    for index, (stage, elapsed) in enumerate(stages):
        t = 0.4 + elapsed
        at(t, ev.BootStage(instance="tiny", stage=stage, status="done", elapsed_s=elapsed))
        if index == 1:
            at(
                t,
                ev.InstanceStatus(
                    instance="tiny",
                    state="booting",
                    arch="x86_64",
                    accel="tcg",
                    cpus=1,
                    memory_bytes=256 << 20,
                    ssh_port=60022,
                    started_at=BASE_TS + 0.3,
                ),
            )
    for chunk in range(0, serial_lines, 10):
        lines = [
            f"[    {n * 0.05:7.4f}] synthetic kernel line {n}"
            for n in range(chunk, min(chunk + 10, serial_lines))
        ]
        at(1.0 + chunk * 0.01, ev.SerialOutput(instance="tiny", lines=lines))
    at(
        4.0,
        ev.InstanceStatus(
            instance="tiny",
            state="ready",
            arch="x86_64",
            accel="tcg",
            cpus=1,
            memory_bytes=256 << 20,
            ssh_port=60022,
            started_at=BASE_TS + 0.3,
        ),
    )
    at(
        4.1,
        ev.ForwardStatus(
            instance="tiny",
            guest="22",
            host="127.0.0.1:60022",
            source="rule",
            state="active",
            connections=1,
            bytes_in=5300,
            bytes_out=12000,
        ),
    )
    at(
        4.2,
        ev.ForwardStatus(
            instance="tiny",
            guest="8080",
            host="127.0.0.1:8080",
            source="auto",
            state="conflict",
            reason="host port 8080 in use",
        ),
    )
    at(
        4.3,
        ev.AgentMessage(
            instance="tiny", level="info", text="accel kvm unusable here, fell back to tcg"
        ),
    )
    at(4.5, ev.ProcessDiff(host="host", changed=[{"pid": 901, "cpu_percent": 38.0}], removed=[902]))
    out.sort(key=lambda pair: pair[0])
    return out


def write_recording(path: Path, **kwargs) -> Path:
    """Write the synthetic session as a recording (the `envdeck record` format)."""
    with open(path, "w", encoding="utf-8") as fh:
        for t, event in events(**kwargs):
            fh.write(json.dumps({"t": t, **event.to_dict()}) + "\n")
    return path


class Flood:
    """SerialOutput at about ``rate`` bytes/s in batches every 10 ms."""

    name = "flood"

    def __init__(self, rate: int = 5_000_000, line: int = 100) -> None:
        self.batch = max(1, rate // 100 // line)
        self.text = "x" * (line - 10)
        self.sent = 0

    async def run(self, emit) -> None:
        n = 0
        while True:
            emit(
                ev.SerialOutput(
                    instance="tiny", lines=[f"{n + i:08d} {self.text}" for i in range(self.batch)]
                )
            )
            n += self.batch
            self.sent += self.batch
            await asyncio.sleep(0.01)


class OneInstance:
    """A source with one ready instance and nothing else."""

    name = "one"

    async def run(self, emit) -> None:
        emit(ev.InstanceStatus(instance="tiny", state="ready"))
        await asyncio.Event().wait()
