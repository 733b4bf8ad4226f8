"""Serial text handling, log rotation, boot stages and stall diagnosis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from envdeck.backend.pidrecord import PidRecord, live_record
from envdeck.backend.vm.boot import STAGES, BootTracker, diagnose
from envdeck.backend.vm.serial import LineSplitter, RotatingLog, Tail, clean_line, log_files


def test_clean_line_strips_ansi_cr_and_controls():
    assert clean_line("\x1b[1;32mOK\x1b[0m done\r") == "OK done"
    assert clean_line("\x1b]0;title\x07prompt\x08#") == "prompt#"
    assert clean_line("a\tb") == "a\tb"


def test_splitter_keeps_partial_lines_and_handles_crlf():
    s = LineSplitter()
    assert s.feed(b"hel") == []
    assert s.feed(b"lo\r\nwor") == ["hello"]
    assert s.feed(b"ld\n\n") == ["world", ""]
    assert s.feed(b"tail") == [] and s.flush() == ["tail"]


def test_splitter_cuts_runaway_lines():
    s = LineSplitter(max_line=10)
    assert s.feed(b"x" * 25) == ["x" * 25]


def test_rotating_log_caps_size_and_keeps_order(tmp_path: Path):
    path = tmp_path / "serial.log"
    log = RotatingLog(path, max_bytes=100, keep=2)
    for i in range(40):
        log.write_lines([f"line {i:03d}"])
    log.close()
    files = log_files(path)
    assert [f.name for f in files] == ["serial.log.2", "serial.log.1", "serial.log"]
    assert all(f.stat().st_size <= 100 for f in files)
    text = "".join(f.read_text() for f in files)
    numbers = [int(line.split()[1]) for line in text.splitlines()]
    assert numbers == sorted(numbers) and numbers[-1] == 39
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_tail_last_skips_blank_lines():
    t = Tail(5)
    t.extend(["a", "", "b", "c"])
    assert t.last(2) == ["b", "c"]


def test_boot_tracker_orders_and_times_stages():
    seen = []
    tracker = BootTracker("dev", seen.append)
    tracker.reached("qemu started")
    tracker.see_serial(["noise", "envdeck-stage: init"])
    tracker.reached("ssh authenticated")
    done = [e.stage for e in seen if e.status == "done"]
    assert done == list(STAGES[:5])
    assert tracker.current == "provisioning done"
    assert all(e.elapsed_s >= 0 for e in seen)


def test_boot_tracker_marks_skipped_stages_done_when_a_later_one_arrives():
    seen = []
    tracker = BootTracker("dev", seen.append)
    tracker.reached("ssh port open")
    assert [e.stage for e in seen if e.status == "done"] == list(STAGES[:4])


def test_diagnose_names_the_cause():
    assert "no serial output" in diagnose("first serial output", 20, [], 2222)
    assert "kernel panic" in diagnose(
        "kernel booted", 20, ["x", "Kernel panic - not syncing: VFS"], 2222
    )
    hint = diagnose("ssh port open", 60, ["envdeck-stage: init", "dropbear: exited"], 2222)
    assert "sshd is not running" in hint and "2222" in hint and "dropbear: exited" in hint


def test_pid_record_rejects_reused_pid(tmp_path: Path):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "marker-x"])
    try:
        path = tmp_path / "p.pid"
        PidRecord.of(proc.pid, "marker-x ").save(path)
        assert live_record(path) is not None
        # Same pid, different start time: what a reused pid looks like.
        PidRecord(proc.pid, time.time() - 10_000, "marker-x ").save(path)
        assert live_record(path) is None
        # Same process, other marker (the pid now runs something else).
        PidRecord.of(proc.pid, "other ").save(path)
        assert live_record(path) is None
        # A marker must match a whole last word.
        PidRecord.of(proc.pid, "marker ").save(path)
        assert live_record(path) is None
    finally:
        proc.kill()
        proc.wait()
    assert live_record(tmp_path / "missing.pid") is None
    assert os.path.exists(tmp_path / "p.pid")
