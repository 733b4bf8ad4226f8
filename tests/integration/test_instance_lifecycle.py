"""Instances on real QEMU (TCG): create, boot stages, list, logs, exec, stop, and the faults.

Each test boots the built-in tiny guest for real through the CLI, as a user would.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from envdeck.backend.pidrecord import PidRecord, live_record
from tests.conftest import require_tool
from tests.integration.instance_helpers import CLI, envdeck, kill_everything, list_json, wait_for

pytestmark = pytest.mark.integration

LIST_KEYS = {
    "name",
    "state",
    "arch",
    "accel",
    "cpus",
    "memory_bytes",
    "disk_bytes",
    "ssh_port",
    "uptime_s",
    "reason",
    "pid",
}


@pytest.fixture
def home(envdeck_home: Path):
    require_tool("qemu-system-x86_64", "qemu-img", "apt-get", "dpkg-deb", "ssh")
    yield envdeck_home
    kill_everything(envdeck_home)


def qemu_processes(home: Path) -> list[psutil.Process]:
    marker = str(home / "instances")
    found = []
    for proc in psutil.process_iter(["cmdline", "name"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if "qemu-system" in cmd and marker in cmd:
            found.append(proc)
    return found


def test_full_lifecycle(home: Path):
    created = envdeck("create", "dev", "--cpus", "1", "--memory", "256MiB", check=True, timeout=900)
    assert "created dev" in created.stdout
    inst = home / "instances" / "dev"
    assert stat.S_IMODE(inst.stat().st_mode) == 0o700
    for secret in ("ssh/id_ed25519", "ssh/host_ed25519", "initrd.img", "disk.qcow2"):
        assert stat.S_IMODE((inst / secret).stat().st_mode) == 0o600, secret

    stopped = list_json()["dev"]
    assert set(stopped) >= LIST_KEYS
    assert (
        stopped["state"] == "stopped"
        and stopped["pid"] is None
        and stopped["memory_bytes"] == 256 << 20
    )

    started = envdeck("start", "dev", check=True)
    for stage in ("qemu started", "first serial output", "kernel booted", "ssh port open", "ready"):
        assert stage in started.stderr, started.stderr
    assert "dev is ready" in started.stdout

    row = list_json()["dev"]
    assert row["state"] == "ready" and row["accel"] == "tcg" and row["ssh_port"] and row["pid"]
    assert row["uptime_s"] >= 0 and row["reason"] is None
    assert stat.S_IMODE((inst / "agent.sock").stat().st_mode) == 0o600

    logs = envdeck("logs", "dev", check=True).stdout
    assert "envdeck-stage: init" in logs and "envdeck-stage: sshd" in logs

    assert envdeck("exec", "dev", "--", "sh", "-c", "exit 3").returncode == 3
    out = envdeck("exec", "dev", "--", "cat", "/etc/hostname", check=True).stdout
    assert out.strip() == "dev"

    stop = envdeck("stop", "dev", check=True, timeout=120)
    assert "powered off" in stop.stdout or "quit" in stop.stdout, stop.stdout
    row = list_json()["dev"]
    assert row["state"] == "stopped" and row["pid"] is None
    assert not qemu_processes(home)

    assert envdeck("delete", "dev").returncode == 0
    assert not inst.exists()


def test_logs_follow_streams_from_the_agent(home: Path):
    envdeck("create", "fol", check=True, timeout=900)
    proc = subprocess.Popen([*CLI, "logs", "fol", "-f"], stdout=subprocess.PIPE, text=True)
    try:
        envdeck("start", "fol", check=True)
        # logs -f attached before the agent existed: it printed the (empty) log and exited.
        proc.wait(timeout=10)
        follower = subprocess.Popen([*CLI, "logs", "fol", "-f"], stdout=subprocess.PIPE, text=True)
        try:
            envdeck(
                "exec",
                "fol",
                "--",
                "sh",
                "-c",
                "echo envdeck-live-marker > /dev/console",
                check=True,
            )
            deadline = time.monotonic() + 20
            seen = ""
            while "envdeck-live-marker" not in seen and time.monotonic() < deadline:
                seen += follower.stdout.readline()
            assert "envdeck-live-marker" in seen
            assert "envdeck-stage: init" in seen  # the history came first
        finally:
            follower.kill()
            follower.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
        envdeck("stop", "fol", timeout=120)


def test_kill_qemu_reads_crashed_then_start_works(home: Path):
    envdeck("create", "crash", check=True, timeout=900)
    envdeck("start", "crash", check=True)
    inst = home / "instances" / "crash"
    for sock in ("agent.sock", "qmp.sock", "serial.sock"):  # owner-only, whatever the umask
        assert stat.S_IMODE((inst / sock).stat().st_mode) & 0o077 == 0, sock
    pid = list_json()["crash"]["pid"]
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    row = wait_for(lambda: (r := list_json()["crash"])["state"] == "crashed" and r, timeout=10)
    assert time.monotonic() - t0 < 2.5
    assert "SIGKILL" in row["reason"] and row["pid"] is None
    envdeck("start", "crash", check=True)
    assert list_json()["crash"]["state"] == "ready"
    envdeck("stop", "crash", check=True, timeout=120)


def test_kill_agent_is_detected_and_start_adopts_qemu(home: Path):
    envdeck("create", "orphan", check=True, timeout=900)
    envdeck("start", "orphan", check=True)
    inst = home / "instances" / "orphan"
    qemu_pid = list_json()["orphan"]["pid"]
    first_master = wait_for(lambda: live_record(inst / "ssh-master.pid"), 20)
    agent = PidRecord.load(inst / "agent.pid")
    os.kill(agent.pid, signal.SIGKILL)
    wait_for(
        lambda: not psutil.pid_exists(agent.pid) or psutil.Process(agent.pid).status() == "zombie",
        5,
    )

    row = list_json()["orphan"]
    assert row["state"] == "degraded" and "agent is not running" in row["reason"]
    assert row["pid"] == qemu_pid and psutil.pid_exists(qemu_pid)

    envdeck("start", "orphan", check=True)
    row = list_json()["orphan"]
    assert row["state"] == "ready" and row["pid"] == qemu_pid  # adopted, not relaunched
    assert len(qemu_processes(home)) == 1
    # The new agent ends the OpenSSH master the killed one left behind and runs its own.
    master = wait_for(
        lambda: (r := live_record(inst / "ssh-master.pid")) and r.pid != first_master.pid and r, 20
    )
    wait_for(lambda: not first_master.alive(), 10)
    assert [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if master.marker in " ".join(p.info["cmdline"] or []) + " "
    ] == [master.pid]

    envdeck("stop", "orphan", check=True, timeout=120)
    assert not qemu_processes(home)


def test_stale_pid_file_of_another_process_is_not_trusted(home: Path):
    envdeck("create", "stale", check=True, timeout=900)
    inst = home / "instances" / "stale"
    # A pid file pointing at a live process that is not ours (pid reuse after a reboot).
    (inst / "qemu.pid").write_text(
        json.dumps(
            {
                "pid": os.getpid(),
                "start_time": psutil.Process().create_time(),
                "marker": str(inst) + "/",
            }
        )
    )
    (inst / "state.json").write_text(json.dumps({"state": "ready"}))
    row = list_json()["stale"]
    assert row["state"] == "crashed" and row["pid"] is None


def test_two_starts_at_once_give_one_qemu(home: Path):
    envdeck("create", "twice", check=True, timeout=900)
    procs = [
        subprocess.Popen([*CLI, "start", "twice"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    codes = [p.wait(timeout=300) for p in procs]
    assert codes == [0, 0]
    assert len(qemu_processes(home)) == 1
    envdeck("stop", "twice", check=True, timeout=120)


def test_bad_yaml_is_one_clear_error_and_writes_nothing(home: Path, tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("cpus: 2\nmemory: lots\n")
    result = envdeck("create", "bad", "-f", str(bad))
    assert result.returncode == 2
    assert (
        f"{bad}:2:9" in result.stderr
        and "memory is 'lots'" in result.stderr
        and "hint" in result.stderr
    )
    assert not (home / "instances" / "bad").exists()
    assert not list((home / "instances").glob(".bad*")) if (home / "instances").exists() else True
    assert envdeck("create", "a/b").returncode == 2
    assert envdeck("start", "nope").returncode == 2


def test_kernel_panic_is_diagnosed(home: Path, tmp_path: Path):
    """A guest whose initrd is garbage panics: the stall names the panic, not a bare timeout."""
    envdeck("create", "ref", check=True, timeout=900)
    kernel = json.loads((home / "instances" / "ref" / "state.json").read_text())["kernel"]
    junk = tmp_path / "junk.img"
    junk.write_bytes(b"\0" * 4096)
    spec = tmp_path / "panic.yaml"
    spec.write_text(
        f"kernel:\n  path: {kernel}\n  initrd: {junk}\n"
        "  cmdline: console=ttyS0 panic=-1\nmemory: 256MiB\n"
    )
    envdeck("create", "panic", "-f", str(spec), check=True)
    os.environ["ENVDECK_STALL_SCALE"] = "0.2"
    try:
        result = envdeck("start", "panic", "--timeout", "120")
    finally:
        del os.environ["ENVDECK_STALL_SCALE"]
    assert result.returncode != 0
    assert "the guest kernel panicked" in result.stderr, result.stderr
    row = list_json()["panic"]
    assert row["state"] == "crashed" and "Kernel panic - not syncing" in row["reason"]


def test_qemu_dying_under_kvm_is_remembered_and_the_next_start_uses_tcg(home: Path):
    """Where QEMU aborts as a KVM vCPU starts (this machine: failed to set MSR), a guarded KVM
    boot that dies is reported and the next start goes to TCG at once."""
    from envdeck.backend.vm import accel

    broken = accel.probe("kvm")
    if not accel.kvm_usable()[0] or broken is None or "QEMU failed" not in broken:
        pytest.skip(f"KVM here does not make QEMU die ({broken or 'it works'})")
    verdicts = Path(os.environ["ENVDECK_CACHE"]) / "accel-verdicts.json"
    saved = verdicts.read_bytes() if verdicts.exists() else None
    try:
        accel.record_verdict("kvm", "pretend the probe passed", works=True)
        envdeck("create", "kvmdies", check=True, timeout=900)
        first = envdeck("start", "kvmdies")
        assert first.returncode != 0 and "crashed" in first.stdout + first.stderr
        assert "the next start uses TCG" in " ".join((first.stdout + first.stderr).split())
        verdict = wait_for(lambda: accel.recorded_verdict("kvm"), 10)  # (the agent writes it)
        assert "before the guest kernel booted" in verdict
        inst = home / "instances" / "kvmdies"
        # its agent ends at once (it used to wait 10 s for the dead QEMU's monitor), and the
        # next start does not launch the QEMU that died from the launch plan
        wait_for(lambda: not (inst / "agent.pid").exists(), 3)
        assert not (inst / "launch-plan.json").exists()
        second = envdeck("start", "kvmdies", check=True)
        assert "kvm skipped: QEMU exited under kvm" in second.stdout + second.stderr
        row = list_json()["kvmdies"]
        assert row["state"] == "ready" and row["accel"] == "tcg"
        assert len(qemu_processes(home)) == 1  # no QEMU left behind by the failed start
        envdeck("stop", "kvmdies", check=True, timeout=120)
    finally:
        if saved is None:
            verdicts.unlink(missing_ok=True)
        else:
            verdicts.write_bytes(saved)
