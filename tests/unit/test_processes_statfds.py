"""Kept /proc/PID/stat descriptors: read through while the task lives, never after."""

from __future__ import annotations

import os
import subprocess

from envdeck.backend.processes.statfds import StatReader


def test_kept_descriptor_follows_the_task_not_the_number():
    proc = subprocess.Popen(["sleep", "30"])
    reader = StatReader(budget=10)
    try:
        first = reader.read(proc.pid, str(proc.pid))
        assert first is not None and first.startswith(f"{proc.pid} (".encode())
        assert len(reader) == 1
        proc.kill()
        proc.wait()
        assert reader.read(proc.pid, str(proc.pid)) is None  # reaped: the old fd fails, no reopen
        assert len(reader) == 0
    finally:
        reader.close()


def test_budget_and_sweep_close_descriptors():
    reader = StatReader(budget=1)
    me, parent = os.getpid(), os.getppid()
    assert reader.read(me, str(me)) and reader.read(parent, str(parent))
    assert len(reader) == 1  # over budget: read, not kept
    reader.sweep({})
    assert len(reader) == 0
    assert reader.read(me, str(me))
    reader.close()
    assert len(reader) == 0
