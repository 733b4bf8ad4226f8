"""Guest process trees and binfmt over SSH, against a real tiny instance (QEMU, TCG)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from envdeck.backend.events import ProcessDiff, ProcessesUnavailable, ResourceStats
from envdeck.backend.processes.guest import GuestProcessSource
from envdeck.backend.ssh import client as ssh
from envdeck.backend.store import InstanceDir
from tests.conftest import require_tool
from tests.integration.instance_helpers import envdeck, kill_everything

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory):
    """One running tiny instance for the module; stopped and removed afterwards."""
    require_tool("qemu-system-x86_64", "qemu-img", "apt-get", "dpkg-deb", "ssh")
    mp = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp("guest") / "envdeck-home"
    mp.setenv("ENVDECK_HOME", str(home))
    mp.setenv("ENVDECK_CACHE", str(Path.home() / ".cache" / "envdeck-test-cache"))
    try:
        envdeck("create", "ps", "--cpus", "1", "--memory", "256MiB", check=True, timeout=900)
        envdeck("start", "ps", check=True, timeout=600)
        yield "ps"
    finally:
        envdeck("stop", "ps", timeout=120)
        kill_everything(home)
        mp.undo()


def test_cli_ps_instance_lists_the_guest_tree(guest):
    out = envdeck("ps", "--instance", guest, "--json", check=True).stdout
    rows = {r["pid"]: r for r in json.loads(out)}
    assert rows[1]["depth"] == 0 and rows[1]["cmdline"]
    assert any(
        "dropbear" in " ".join(r["cmdline"]) or r["name"] == "dropbear" for r in rows.values()
    )
    # envdeck's own walk (and its children) is hidden: not listed, its CPU not counted
    assert not [r for r in rows.values() if "@@envdeck-walk" in " ".join(r["cmdline"])]
    assert any(r["depth"] >= 1 for r in rows.values())  # still a tree below init
    assert all(r["emulated"] is None for r in rows.values())


def test_cli_binfmt_instance(guest):
    out = envdeck("binfmt", "--instance", guest, "--json", check=True).stdout
    data = json.loads(out)
    assert set(data) >= {"mounted", "enabled", "handlers"}


async def test_guest_source_over_ssh_then_unavailable_when_ssh_goes(guest):
    inst = InstanceDir.existing(guest)
    port = int(inst.read_state()["ssh_port"])
    conn = await ssh.connect(inst, port)

    async def run_command(script: str) -> str:
        result = await conn.run(script, check=False, errors="replace")
        return str(result.stdout)

    events: list = []
    source = GuestProcessSource(guest, run_command, interval=0.5)
    assert source.name == f"processes:{guest}"
    task = asyncio.create_task(source.run(events.append))
    try:
        for _ in range(100):
            await asyncio.sleep(0.1)
            if sum(isinstance(e, ProcessDiff) for e in events) >= 2:
                break
        conn.close()
        await conn.wait_closed()
        for _ in range(100):
            await asyncio.sleep(0.1)
            if any(isinstance(e, ProcessesUnavailable) for e in events):
                break
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # The walk's own figures (the guest's memory) come as ResourceStats between the diffs.
    stats = [e for e in events if isinstance(e, ResourceStats)]
    assert any("guest_memory_bytes" in f for e in stats for f in e.figures), stats
    procs = [e for e in events if not isinstance(e, ResourceStats)]
    assert isinstance(procs[0], ProcessDiff) and procs[0].full and procs[0].added
    assert isinstance(procs[1], ProcessDiff) and not procs[1].full
    assert isinstance(procs[-1], ProcessesUnavailable) and procs[-1].host == guest


def test_cli_kill_in_the_guest(guest):
    envdeck("exec", guest, "--", "sh", "-c", "sleep 4321 >/dev/null 2>&1 &", check=True)

    def sleeper():
        out = envdeck("ps", "--instance", guest, "--json", "--filter", "sleep 4321", check=True)
        rows = [r for r in json.loads(out.stdout) if r["cmdline"][:2] == ["sleep", "4321"]]
        return rows[0] if rows else None

    row = sleeper()
    assert row is not None and row["start_ticks"] > 0
    refused = envdeck("kill", "--instance", guest, str(row["pid"]))
    assert refused.returncode == 2  # no terminal, no --yes: nothing sent
    assert sleeper() is not None
    envdeck("kill", "--instance", guest, str(row["pid"]), "--yes", check=True)
    gone = envdeck("kill", "--instance", guest, str(row["pid"]), "--yes")
    assert gone.returncode == 2 and "no process" in gone.stderr + gone.stdout
