"""The early launch from the last start's plan (backend/agent/plan.py): when it launches, what it
hands over, and that it never launches while a saved guest waits or a QEMU runs. The "QEMU" here
is a small program serving the serial socket the way QEMU does (tests/integration/
test_launch_plan.py runs the real one)."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from envdeck.backend.agent import plan
from envdeck.backend.store import InstanceDir
from envdeck.backend.vm import saved as saved_machine

#: serves ``serial.sock`` (as QEMU's -chardev socket,server=on,wait=on), notes that it ran
FAKE_QEMU = """
import os, socket, sys, time
root = sys.argv[1]
open(os.path.join(root, "ran"), "w").close()
server = socket.socket(socket.AF_UNIX)
server.bind(os.path.join(root, "serial.sock"))
server.listen(1)
conn, _ = server.accept()
conn.sendall(b"booting\\n")
time.sleep(60)
"""


@pytest.fixture
def inst() -> Iterator[InstanceDir]:
    root = Path(tempfile.mkdtemp(prefix="envdeck-plan-", dir="/tmp"))  # (short socket paths)
    inst = InstanceDir("early", root / "early")
    inst.create()
    try:
        yield inst
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _write_plan(inst: InstanceDir, argv: list[str]) -> plan.LaunchPlan:
    kernel = inst.root / "kernel"
    kernel.write_bytes(b"kernel")
    made = plan.LaunchPlan(argv, 2222, plan.signature([kernel]))
    made.write(inst.root)
    return made


def _fake_qemu(inst: InstanceDir) -> list[str]:
    return [sys.executable, "-c", FAKE_QEMU, f"{inst.root}/"]  # (as QEMU: the dir in argv)


def test_the_plan_is_launched_its_serial_connected_and_it_matches_only_itself(inst):
    made = _write_plan(inst, _fake_qemu(inst))
    early = plan.launch_from_plan(inst)
    assert early is not None and early.serial is not None
    try:
        assert early.serial.recv(64) == b"booting\n"  # connected: the guest runs
        assert inst.qemu_pid.exists()  # found by the next agent if this one dies now
        assert early.matches(made.argv, made.boot_files)
        assert not early.matches([*made.argv, "-m", "1G"], made.boot_files)
        (inst.root / "kernel").write_bytes(b"rebuilt")
        assert not early.matches(made.argv, plan.signature([inst.root / "kernel"]))
    finally:
        early.abandon()
    assert early.proc.returncode is not None and not inst.qemu_pid.exists()


def test_a_qemu_that_exits_at_once_does_not_match(inst):
    made = _write_plan(inst, [sys.executable, "-c", "raise SystemExit(1)", f"{inst.root}/"])
    early = plan.launch_from_plan(inst)
    assert early is not None and early.serial is None
    assert not early.matches(made.argv, made.boot_files)
    early.abandon()


def _nothing_launched(inst: InstanceDir) -> bool:
    time.sleep(0.3)
    return not (inst.root / "ran").exists()


def test_no_launch_while_a_saved_guest_waits_to_be_resumed(inst):
    _write_plan(inst, _fake_qemu(inst))
    saved_machine.state_path(inst.root).write_bytes(b"a migration stream")
    assert plan.launch_from_plan(inst) is None
    assert _nothing_launched(inst)


def test_no_launch_when_a_boot_file_changed_since_the_plan(inst):
    _write_plan(inst, _fake_qemu(inst))
    (inst.root / "kernel").write_bytes(b"another kernel")
    assert plan.launch_from_plan(inst) is None
    assert _nothing_launched(inst)


def test_no_launch_while_a_qemu_of_the_instance_runs(inst):
    _write_plan(inst, _fake_qemu(inst))
    first = plan.launch_from_plan(inst)
    assert first is not None
    try:
        (inst.root / "ran").unlink()
        assert plan.launch_from_plan(inst) is None
        assert _nothing_launched(inst)
    finally:
        first.abandon()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[]",
        '{"argv": [], "port": 1, "boot_files": {"k": []}}',
        '{"argv": ["x", 1], "port": 1, "boot_files": {"k": []}}',
        '{"argv": ["x"], "port": "22", "boot_files": {"k": []}}',
        '{"argv": ["x"], "port": 22, "boot_files": {}}',
    ],
)
def test_a_plan_that_is_not_one_is_ignored(inst, text):
    (inst.root / plan.PLAN_FILE).write_text(text)
    assert plan.LaunchPlan.read(inst.root) is None
    assert plan.launch_from_plan(inst) is None


def test_the_plan_is_owner_only_and_read_back_as_written(inst):
    made = _write_plan(inst, ["qemu-system-x86_64", "-m", "512M"])
    assert (inst.root / plan.PLAN_FILE).stat().st_mode & 0o777 == 0o600
    assert plan.LaunchPlan.read(inst.root) == made
    assert json.loads((inst.root / plan.PLAN_FILE).read_text())["port"] == 2222
    plan.discard(inst.root)
    assert plan.LaunchPlan.read(inst.root) is None


def test_no_launch_of_a_plan_made_for_another_instance_dir(inst):
    """A plan copied with another instance's dir would boot that instance's disk."""
    other = inst.root.parent / "other"
    _write_plan(inst, [sys.executable, "-c", FAKE_QEMU, f"{other}/"])
    assert plan.launch_from_plan(inst) is None
    assert _nothing_launched(inst)


def test_a_plan_others_may_write_is_not_run(inst):
    """It is a command line run on the host: group- or world-writable, it is ignored."""
    _write_plan(inst, _fake_qemu(inst))
    (inst.root / plan.PLAN_FILE).chmod(0o666)
    assert plan.LaunchPlan.read(inst.root) is None
    assert plan.launch_from_plan(inst) is None
    assert _nothing_launched(inst)
