"""The host scanner, ProcessSource, signals and the CLI against real processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

from envdeck.backend.errors import NotFound
from envdeck.backend.events import ProcessDiff
from envdeck.backend.processes.guest import (
    GUEST_WALK_SCRIPT,
    GuestProcessSource,
    guest_send_signal,
    parse_guest_walk,
)
from envdeck.backend.processes.host import HostScanner, ProcessSource, send_signal, snapshot
from envdeck.tui.proctree import TreeOptions, visible_rows
from tests.conftest import require, require_tool

pytestmark = pytest.mark.integration

ENVDECK = [sys.executable, "-m", "envdeck.backend.cli.main"]


@pytest.fixture
def spawn():
    """Start processes; kill and reap every one at the end of the test."""
    procs: list[subprocess.Popen] = []

    def start(argv: list[str], **kw) -> subprocess.Popen:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True, **kw)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def wait_for(predicate, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def children_of(rows: dict[int, dict], pid: int) -> list[dict]:
    return sorted((r for r in rows.values() if r["ppid"] == pid), key=lambda r: r["pid"])


def test_tree_of_spawned_processes(spawn):
    tag = uuid.uuid4().hex[:8]
    script = f"sleep 30 & sleep 31 & (sleep 32 & wait) & wait # {tag}"
    top = spawn(["sh", "-c", script])

    def ready():
        rows = {r["pid"]: r for r in snapshot().rows()}
        kids = children_of(rows, top.pid)
        if len(kids) == 3 and any(children_of(rows, k["pid"]) for k in kids):
            return rows
        return None

    rows = wait_for(ready)
    root = rows[top.pid]
    assert tag in " ".join(root["cmdline"])
    kids = children_of(rows, top.pid)
    assert all(k["depth"] == root["depth"] + 1 for k in kids)
    sub = next(k for k in kids if children_of(rows, k["pid"]))
    grandchild = children_of(rows, sub["pid"])[0]
    assert grandchild["cmdline"] == ["sleep", "32"]
    assert grandchild["depth"] == root["depth"] + 2
    order = [r["pid"] for r in snapshot().rows()]
    assert order.index(top.pid) < order.index(sub["pid"]) < order.index(grandchild["pid"])


def test_cpu_percent_is_a_delta_between_scans(spawn):
    busy = spawn([sys.executable, "-c", "import time\nt=time.time()\nwhile time.time()-t<20: pass"])
    idle = spawn(["sleep", "30"])
    scanner = HostScanner()
    scanner.scan()
    time.sleep(1.0)
    snap = scanner.scan()
    assert snap.interval == pytest.approx(1.0, abs=0.5)
    assert snap.procs[busy.pid].cpu_percent > 30.0  # shared 2-core box: well above idle
    assert snap.procs[idle.pid].cpu_percent == 0.0


def test_scanning_survives_process_churn(spawn):
    stop = threading.Event()

    def churn():
        while not stop.is_set():
            subprocess.run(["sh", "-c", "true & true & wait"], check=False)

    thread = threading.Thread(target=churn)
    thread.start()
    try:
        scanner = HostScanner()
        for _ in range(30):
            snap = scanner.scan()
            for p in snap.procs.values():
                assert p.ppid == 0 or p.ppid not in snap.procs or p.depth > 0 or p.ppid == p.pid
    finally:
        stop.set()
        thread.join()


def test_send_signal_checks_the_start_time(spawn):
    victim = spawn(["sleep", "30"])
    row = wait_for(lambda: snapshot().procs.get(victim.pid))
    with pytest.raises(NotFound):
        send_signal(victim.pid, row.start_time - 100.0)
    assert victim.poll() is None  # the wrong identity was not signalled
    send_signal(victim.pid, row.start_time, signal.SIGTERM)
    assert victim.wait(timeout=5) == -signal.SIGTERM
    with pytest.raises(NotFound):
        send_signal(victim.pid, row.start_time)


async def test_process_source_emits_full_then_diffs(spawn):
    events: list[ProcessDiff] = []
    source = ProcessSource(interval=0.3)
    assert source.name == "processes:host"
    task = asyncio.create_task(source.run(events.append))
    try:
        await asyncio.sleep(0.5)
        proc = spawn(["sleep", "30"])
        for _ in range(50):
            await asyncio.sleep(0.1)
            if any(proc.pid in {r["pid"] for r in e.added} for e in events[1:]):
                break
        proc.kill()
        proc.wait()
        for _ in range(50):
            await asyncio.sleep(0.1)
            if any(proc.pid in e.removed for e in events):
                break
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert events[0].full and len(events[0].added) > 3
    assert not any(e.full for e in events[1:])
    assert any(proc.pid in {r["pid"] for r in e.added} for e in events[1:])
    assert any(proc.pid in e.removed for e in events)
    assert events[-1].summary["processes"] > 3


def test_cli_ps_json_and_kill(spawn):
    tag = uuid.uuid4().hex[:10]
    victim = spawn(["sh", "-c", f"sleep 30 # {tag}"])
    wait_for(lambda: snapshot().procs.get(victim.pid))
    out = subprocess.run(
        [*ENVDECK, "ps", "--json", "--filter", tag], capture_output=True, text=True, check=True
    ).stdout
    rows = json.loads(out)
    mine = [r for r in rows if r["pid"] == victim.pid]
    assert len(mine) == 1
    for key in ("pid", "ppid", "user", "cpu_percent", "rss_bytes", "cmdline", "depth"):
        assert key in mine[0]
    assert mine[0]["container"] is None and mine[0]["emulated"] is None
    tree = subprocess.run([*ENVDECK, "ps", "--tree"], capture_output=True, text=True, check=True)
    assert "PID" in tree.stdout
    refused = subprocess.run(
        [*ENVDECK, "kill", str(victim.pid)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2 and victim.poll() is None
    subprocess.run([*ENVDECK, "kill", str(victim.pid), "--yes", "-s", "KILL"], check=True)
    assert victim.wait(timeout=5) == -signal.SIGKILL


def _cli_ps(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ENVDECK, "ps", "--json", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_and_pane_filters_keep_the_same_processes(spawn):
    """`envdeck ps --filter` and the pane's `/` filter: one syntax, the same matches."""
    tag = uuid.uuid4().hex[:10]
    sleeper = "import time; time.sleep(60)"
    procs = {
        name: spawn([sys.executable, "-c", sleeper, f"{tag}-{name}"])
        for name in ("alpha", "alpha-two", "beta")
    }
    ours = {p.pid for p in procs.values()}
    wait_for(lambda: ours <= snapshot().procs.keys())
    everything = _cli_ps()
    assert everything.returncode == 0, everything.stderr
    rows = {r["pid"]: r for r in json.loads(everything.stdout)}
    assert ours <= rows.keys()
    alpha, two, beta = (procs[n].pid for n in ("alpha", "alpha-two", "beta"))
    expected = {
        tag: {alpha, two, beta},
        f"{tag}-alpha": {alpha, two},
        f"{tag.upper()}-BETA$": {beta},
        f"!{tag}-beta": {alpha, two},
        f"^{two} ": {two},
        f"{tag}-(alpha|beta)$": {alpha, beta},
    }
    for text, pids in expected.items():
        cli = _cli_ps("--filter", text)
        assert cli.returncode == 0, cli.stderr
        by_cli = {r["pid"] for r in json.loads(cli.stdout)} & ours
        pane = visible_rows(rows, TreeOptions(tree=False, filter=text))
        by_pane = {v.row["pid"] for v in pane} & ours
        assert by_cli == by_pane == pids, text

    invalid = _cli_ps("--filter", f"{tag}-alpha(")
    assert invalid.returncode == 2 and "invalid filter regex" in invalid.stderr
    assert invalid.stdout == ""
    # The pane (a filter being typed) matches it literally instead.
    pane = visible_rows(rows, TreeOptions(tree=False, filter=f"{tag}-alpha("))
    assert not {v.row["pid"] for v in pane} & ours


async def _busybox_sh(script: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "busybox", "sh", "-c", script, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise ConnectionError(f"remote command exited {proc.returncode}")
    return out.decode("utf-8", "replace")


async def test_guest_walk_runs_under_busybox_sh(spawn):
    """The walk script on a real busybox sh over this machine's /proc (what a guest runs)."""
    require_tool("busybox")
    victim = spawn(["sleep", "33"])
    text = await _busybox_sh(GUEST_WALK_SCRIPT)
    snap = parse_guest_walk(text, "local")
    host = snapshot()
    row = snap.procs[victim.pid].row()
    assert row["cmdline"] == ["sleep", "33"]
    assert row["ppid"] == host.procs[victim.pid].ppid
    assert abs(row["start_time"] - host.procs[victim.pid].start_time) < 1.5
    require(len(snap.procs) > 0.8 * len(host.procs), "walk sees most processes")


async def test_guest_source_goes_unavailable_when_the_command_fails():
    require_tool("busybox")
    fail = {"on": False}

    async def run_command(script: str) -> str:
        return await _busybox_sh("exit 255" if fail["on"] else script)

    events: list = []
    source = GuestProcessSource("local", run_command, interval=0.2)
    task = asyncio.create_task(source.run(events.append))
    try:
        await asyncio.sleep(0.5)
        fail["on"] = True
        await asyncio.sleep(0.6)
        fail["on"] = False
        await asyncio.sleep(0.8)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    kinds = [type(e).__name__ for e in events]
    first_gap = kinds.index("ProcessesUnavailable")
    assert kinds.count("ProcessesUnavailable") == 1
    assert events[first_gap + 1].full  # back: a full tree again, never a stale one


async def test_guest_signal_is_pinned_to_the_start_time(spawn):
    """The guest kill script, run by a real busybox sh against real processes."""
    require_tool("busybox")
    victim = spawn(["sleep", "34"])
    ticks = wait_for(lambda: snapshot().procs.get(victim.pid)).start_ticks
    with pytest.raises(NotFound):
        await guest_send_signal(_busybox_sh, victim.pid, ticks + 1)
    assert victim.poll() is None
    await guest_send_signal(_busybox_sh, victim.pid, ticks, "KILL")
    assert victim.wait(timeout=5) == -signal.SIGKILL


def test_scan_as_an_unprivileged_user():
    """AccessDenied on other users' exe links leaves exe None; nothing is dropped or crashes."""
    require(os.geteuid() == 0, "root (to drop to nobody in a child)")
    read_fd, write_fd = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        status = 1
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            rows = snapshot().rows()
            os.write(write_fd, json.dumps(rows).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as fh:
        data = fh.read()
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    rows = {r["pid"]: r for r in json.loads(data)}
    as_root = snapshot().procs
    assert 1 in rows and len(rows) > 0.8 * len(as_root)
    root_owned = [r for r in rows.values() if r["uid"] == 0 and not r["kernel"]]
    assert root_owned and all(r["exe"] is None for r in root_owned)
    assert all(r["user"] for r in rows.values())


def test_portable_psutil_fallback_agrees_with_the_proc_scanner(spawn):
    """The fallback used where /proc is missing (macOS): same rows, same tree."""
    from envdeck.backend.processes.host import _psutil_snapshot

    victim = spawn(["sleep", "35"])
    wait_for(lambda: snapshot().procs.get(victim.pid))
    portable = _psutil_snapshot().procs
    scanned = snapshot().procs
    row = portable[victim.pid].row()
    assert row["cmdline"] == ["sleep", "35"] and row["ppid"] == scanned[victim.pid].ppid
    assert set(row) == set(scanned[victim.pid].row())
    assert abs(row["start_time"] - scanned[victim.pid].start_time) < 0.05
