"""Why QEMU exited, as the agent records it."""

from __future__ import annotations

import signal
from pathlib import Path

from envdeck.backend.agent.exits import CLEAN_EXIT, describe_exit, last_lines, verdict


def test_exit_codes_in_words():
    assert describe_exit(0) == CLEAN_EXIT
    assert describe_exit(1) == "exited with status 1"
    assert describe_exit(-signal.SIGKILL) == "was killed by signal 9 (SIGKILL)"
    assert describe_exit(-99) == "was killed by signal 99 (signal 99)"


def test_a_requested_stop_is_stopped_whatever_the_exit(tmp_path: Path):
    assert verdict("exited with status 1", True, ["x"], tmp_path / "qemu.log") == (
        "stopped",
        None,
    )


def test_clean_exits_tell_panic_reboot_and_poweroff_apart(tmp_path: Path):
    log = tmp_path / "qemu.log"
    panic = ["[ 1.0] Kernel panic - not syncing: VFS: Unable to mount root fs"]
    state, reason = verdict(CLEAN_EXIT, False, panic, log)
    assert state == "crashed" and reason and "the guest kernel panicked" in reason
    assert verdict(CLEAN_EXIT, False, ["reboot: Restarting system"], log) == (
        "stopped",
        "the guest rebooted itself (QEMU runs with -no-reboot): start it again",
    )
    assert verdict(CLEAN_EXIT, False, ["bye"], log) == ("stopped", "the guest powered itself off")


def test_a_crash_quotes_the_serial_tail_and_qemu_log(tmp_path: Path):
    log = tmp_path / "qemu.log"
    log.write_text("QEMU waiting for connection on: disconnected\nboom\n\nout of memory\n")
    assert last_lines(log, 3) == "boom | out of memory"
    state, reason = verdict("was killed by signal 6 (SIGABRT)", False, [], log)
    assert state == "crashed"
    assert reason == (
        "QEMU was killed by signal 6 (SIGABRT); last serial lines: (no serial output); "
        "QEMU said: boom | out of memory"
    )
    assert last_lines(tmp_path / "missing.log", 3) == ""
