"""Resource statistics: bounded rings, cgroup files, the sampler's figures from events."""

from __future__ import annotations

import os
from pathlib import Path

from envdeck.backend import events as ev
from envdeck.backend.processes.guest import guest_load_figures, parse_guest_load
from envdeck.backend.stats.cgroup import (
    CgroupUsage,
    cpu_percent,
    files_for_container,
    files_from_proc_cgroup,
    read_usage,
)
from envdeck.backend.stats.ring import History, Ring
from envdeck.backend.stats.sampler import StatsSampler
from envdeck.tui.model import DashboardModel
from envdeck.tui.widgets.sparkline import spark

CID = "ab" * 32


def test_a_ring_keeps_only_its_last_samples():
    ring = Ring(5)
    for value in range(1000):
        ring.add(value)
    assert ring.values() == [995, 996, 997, 998, 999] and len(ring) == 5 and ring.last == 999


def test_history_is_bounded_in_subjects_and_samples():
    history = History(size=10, max_subjects=3)
    for s in range(50):
        for n in range(100):
            history.add(f"container:host|{s}", "cpu_percent", n)
    assert history.subjects() == [f"container:host|{s}" for s in (47, 48, 49)]
    assert all(len(history.values(s, "cpu_percent")) == 10 for s in history.subjects())
    history.add("container:host|47", "cpu_percent", 1.0)  # fed again: the last to go
    history.add("container:host|new", "cpu_percent", 1.0)
    assert history.subjects() == ["container:host|49", "container:host|47", "container:host|new"]
    history.add("instance:a", "cpu_percent", 1.0)
    history.forget_prefix("container:")
    assert history.subjects() == ["instance:a"]


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_files_by_container_id(tmp_path: Path):
    root = tmp_path / "cgroup"
    write(root / "cgroup.controllers", "cpu memory\n")
    scope = root / "system.slice" / f"docker-{CID}.scope"
    write(scope / "cpu.stat", "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n")
    write(scope / "memory.current", "10485760\n")
    write(scope / "memory.max", "max\n")
    files = files_for_container(CID, root=str(root))
    assert files is not None and files.v2
    usage = read_usage(files)
    assert usage == CgroupUsage(cpu_ns=2_500_000_000, memory_bytes=10 << 20, limit_bytes=None)
    write(scope / "memory.max", "268435456\n")
    later = read_usage(files)
    assert later is not None and later.limit_bytes == 256 << 20


def test_cgroup_v1_files_from_a_process_cgroup(tmp_path: Path):
    root = tmp_path / "cgroup"
    path = "/kubepods/pod1/" + CID
    write(root / f"cpuacct{path}/cpuacct.usage", "1000000000\n")
    write(root / f"memory{path}/memory.usage_in_bytes", "4096\n")
    write(root / f"memory{path}/memory.limit_in_bytes", "9223372036854771712\n")
    proc = tmp_path / "proc"
    write(proc / "42" / "cgroup", f"12:memory:{path}\n4:cpu,cpuacct:{path}\n0::/\n")
    assert files_for_container(CID, root=str(root), proc=str(proc)) is None  # no pid: not found
    files = files_for_container(CID, 42, root=str(root), proc=str(proc))
    assert files is not None and not files.v2
    assert read_usage(files) == CgroupUsage(1_000_000_000, 4096, None)  # 2**63-ish: no limit


def test_missing_or_foreign_cgroup_files_read_as_nothing(tmp_path: Path):
    assert files_from_proc_cgroup("1:name=systemd:/\n", v2=False) is None
    files = files_from_proc_cgroup("0::/gone\n", root=str(tmp_path), v2=True)
    assert files is not None and read_usage(files) is None
    write(tmp_path / "gone" / "cpu.stat", "garbage\n")
    assert read_usage(files) is None


def test_cgroup_cpu_percent_is_the_usage_delta_over_wall_time():
    before, after = CgroupUsage(0, None, None), CgroupUsage(500_000_000, None, None)
    assert cpu_percent(before, after, 0.5) == 100.0
    assert cpu_percent(after, before, 1.0) is None  # a counter that went back: a new cgroup
    assert cpu_percent(before, after, 0.0) is None


def row(pid: int, cpu: float, rss: int = 1 << 20, **extra) -> dict:
    return {"pid": pid, "cpu_percent": cpu, "rss_bytes": rss, **extra}


def test_sampler_figures_after_a_host_scan(tmp_path: Path):
    root = tmp_path / "cgroup"
    write(root / "cgroup.controllers", "")
    scope = root / "system.slice" / f"docker-{CID}.scope"
    write(scope / "cpu.stat", "usage_usec 1000000\n")
    write(scope / "memory.current", "2048\n")
    clock = iter([10.0, 11.0, 12.0])
    sampler = StatsSampler(cgroup_root=str(root), clock=lambda: next(clock))
    assert sampler.see(ev.InstanceStatus(instance="vm", state="ready", pid=700)) == []
    sampler.see(
        ev.ContainerInfo(endpoint="host", id=CID, name="web", image="x", state="running", status="")
    )
    summary = {
        "cpu_percent": 80.0,
        "emulated_cpu_percent": 30.0,
        "by_container": {"web": {"emulated_cpu_percent": 30.0}},
    }
    first = sampler.see(
        ev.ProcessDiff(host="host", full=True, added=[row(700, 55.0, 300 << 20)], summary=summary)
    )
    (stats,) = first
    assert isinstance(stats, ev.ResourceStats)
    by = {f["subject"]: f for f in stats.figures}
    assert by["host"] == {"subject": "host", "cpu_percent": 80.0, "emulated_cpu_percent": 30.0}
    assert by["instance:vm"]["cpu_percent"] == 55.0
    assert by["instance:vm"]["memory_bytes"] == 300 << 20
    web = by[f"container:host|{CID}"]
    assert "cpu_percent" not in web and web["memory_bytes"] == 2048  # CPU needs two readings
    write(scope / "cpu.stat", "usage_usec 1500000\n")
    (stats,) = sampler.see(ev.ProcessDiff(host="host", changed=[row(700, 60.0)], summary=summary))
    by = {f["subject"]: f for f in stats.figures}
    assert by[f"container:host|{CID}"]["cpu_percent"] == 50.0  # 0.5 s of CPU in 1 s
    assert by["instance:vm"]["cpu_percent"] == 60.0
    sampler.see(ev.InstanceStatus(instance="vm", state="stopped"))
    sampler.see(ev.ContainerRemoved(endpoint="host", id=CID))
    (stats,) = sampler.see(ev.ProcessDiff(host="host", summary=summary))
    assert [f["subject"] for f in stats.figures] == ["host"]


def test_sampler_emulation_cost_of_a_guest_and_its_containers():
    sampler = StatsSampler()
    sampler.see(
        ev.ContainerInfo(
            endpoint="instance:vm", id=CID, name="arm", image="x", state="running", status=""
        )
    )
    rows = [row(10, 40.0, 3 << 20, container="arm"), row(11, 1.0, 1 << 20, container="arm")]
    summary = {
        "emulated_cpu_percent": 40.0,
        "by_container": {"arm": {"cpu_percent": 41.0, "emulated_cpu_percent": 40.0}},
    }
    (stats,) = sampler.see(ev.ProcessDiff(host="vm", full=True, added=rows, summary=summary))
    by = {f["subject"]: f for f in stats.figures}
    assert by["instance:vm"] == {"subject": "instance:vm", "emulated_cpu_percent": 40.0}
    assert by[f"container:instance:vm|{CID}"] == {
        "subject": f"container:instance:vm|{CID}",
        "cpu_percent": 41.0,
        "memory_bytes": 4 << 20,
        "emulated_cpu_percent": 40.0,
    }


WALK = """@@envdeck-walk 1
@@heads
==> /proc/uptime <==
{uptime} 10.00

==> /proc/stat <==
cpu  {user} 0 {system} 5000 100 0 0 0 0 0
cpu0 1 0 1 1 0 0 0 0 0 0
btime 1700000000

==> /proc/meminfo <==
MemTotal:         262144 kB
MemFree:          100000 kB
MemAvailable:     196608 kB
"""


def test_guest_load_from_the_walk_gives_cpu_between_walks_and_memory_in_use():
    first = parse_guest_load(WALK.format(uptime=100.0, user=1000, system=500))
    second = parse_guest_load(WALK.format(uptime=102.0, user=1150, system=550))
    assert first is not None and second is not None
    assert guest_load_figures("vm", None, first) == {
        "subject": "instance:vm",
        "guest_memory_bytes": 64 << 20,
        "guest_memory_total_bytes": 256 << 20,
    }
    figures = guest_load_figures("vm", first, second)
    assert figures is not None and figures["guest_cpu_percent"] == 100.0  # 2 s busy in 2 s
    assert parse_guest_load("@@envdeck-walk 1\n@@heads\n") is None


def test_the_model_keeps_figures_and_forgets_them_with_their_subject():
    model = DashboardModel()
    model.dirty.clear()
    figures: list[ev.StatsFigures] = [
        {"subject": "instance:vm", "cpu_percent": 12.0},
        {"subject": f"container:instance:vm|{CID}", "memory_bytes": 5},
    ]
    model.apply(ev.ResourceStats(source="host", figures=figures))
    assert model.dirty == {"instances", "containers"}
    assert model.stats.values("instance:vm", "cpu_percent") == [12.0]
    model.forget_instance("vm")
    assert model.stats.subjects() == []


def test_spark_scales_to_one_core_and_pads_on_the_left():
    assert spark([0, 50, 100, 250], width=6) == "▁▁▁▅██"
    assert spark([], width=3) == "▁▁▁"


def test_no_stats_module_reads_beyond_proc_and_sys():
    """The samplers start no process: nothing in backend/stats imports subprocess or docker."""
    import envdeck.backend.stats as stats

    folder = Path(stats.__file__).parent
    for name in os.listdir(folder):
        if name.endswith(".py"):
            text = (folder / name).read_text()
            assert "subprocess" not in text and "import docker" not in text, name
