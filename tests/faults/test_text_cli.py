"""Terminal escape injection (issue #10 item 4), in the CLI: a process whose command line holds
OSC 52 (clipboard write), a title change, a screen clear, C1 controls and a newline is listed by
``envdeck ps`` on one row with every control character made visible; ``--json`` keeps the raw
data (JSON escapes it). A hypothesis fuzz renders process rows of arbitrary text."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from envdeck.backend.cli import ps
from envdeck.backend.processes.model import ProcessRow
from envdeck.backend.text import visible

HOSTILE = "\x1b]52;c;aGVsbG8=\x07\x1b]0;pwned\x07\x1b[2J\x9b31m\nsecond-line [red]x"
MARKER = "envdeck-osc-marker"
# What may reach a terminal from our output: printable text, and newlines between rows.
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def envdeck(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envdeck.backend.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "400"},
    )


def test_ps_shows_a_hostile_command_line_on_one_row_with_controls_visible():
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", MARKER, HOSTILE],
    )
    try:
        time.sleep(0.3)
        result = envdeck("ps", "--filter", f"^{proc.pid} ")
        assert result.returncode == 0, result.stderr
        assert not CONTROL.search(result.stdout), repr(result.stdout)
        rows = [line for line in result.stdout.splitlines() if MARKER in line]
        assert len(rows) == 1 and str(proc.pid) in rows[0]
        assert "\\e]52;c;aGVsbG8=\\x07" in rows[0] and "\\x9b31m\\nsecond-line [red]x" in rows[0]

        raw = envdeck("ps", "--json", "--filter", f"^{proc.pid} ")
        listed = [r for r in json.loads(raw.stdout) if r["pid"] == proc.pid]
        assert listed and listed[0]["cmdline"][-1] == HOSTILE  # data stays data in JSON
    finally:
        proc.kill()
        proc.wait()


def row_of(text: str, user: str, container: str | None, arch: str | None) -> ProcessRow:
    emulated = None
    if arch is not None:
        emulated = {
            "arch": arch,
            "interpreter": text,
            "program": text,
            "argv": [text],
            "command": text,
            "preserve_argv0": False,
            "arch_source": "elf",
        }
    return {
        "pid": 42,
        "ppid": 1,
        "user": user,
        "uid": 0,
        "state": text[:1] or "S",
        "cpu_percent": 0.0,
        "rss_bytes": 0,
        "start_time": 0.0,
        "start_ticks": 0,
        "name": text,
        "cmdline": [text, text],
        "exe": None,
        "kernel": False,
        "depth": 0,
        "container": container,
        "container_id": None,
        "emulated": emulated,  # type: ignore[typeddict-item]
    }


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80), st.text(max_size=12), st.none() | st.text(max_size=12))
def test_fuzz_visible_leaves_no_control_character(text: str, user: str, container: str | None):
    for value in (text, user, container):
        shown = visible(value)
        assert not CONTROL.search(shown) and "\n" not in shown


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=80),
    st.text(max_size=12),
    st.none() | st.text(min_size=1, max_size=12),
    st.none() | st.text(min_size=1, max_size=8),
)
def test_fuzz_ps_table_of_arbitrary_text(
    text: str, user: str, container: str | None, arch: str | None
):
    rows = [row_of(text, user, container, arch)]
    out = io.StringIO()
    console = Console(file=out, width=300, color_system=None, highlight=False)
    console.print(ps.render(rows, tree=False))
    printed = out.getvalue()
    assert not CONTROL.search(printed), repr(printed)
    assert len(printed.splitlines()) == 2  # the header and one row: never a row split in two


def test_logs_on_a_terminal_show_serial_controls_visible_and_exact_when_piped(tmp_path):
    """``envdeck logs`` prints the guest's serial text: on a terminal an OSC 52 from the guest
    is shown, not obeyed; piped, the log comes out byte for byte."""
    import pty

    home = tmp_path / "home"
    inst = home / "instances" / "dev"
    inst.mkdir(parents=True, mode=0o700)
    home.chmod(0o700)
    (home / "instances").chmod(0o700)
    (inst / "instance.yaml").write_text("memory: 256MiB\n")
    (inst / "serial.log").write_text(f"booting\n{HOSTILE}\n")
    env = {**os.environ, "ENVDECK_HOME": str(home), "COLUMNS": "200"}
    argv = [sys.executable, "-m", "envdeck.backend.cli.main", "logs", "dev"]

    piped = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert piped.returncode == 0 and piped.stdout == f"booting\n{HOSTILE}\n"

    leader, follower = pty.openpty()
    proc = subprocess.Popen(argv, stdin=follower, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    assert proc.wait(timeout=60) == 0
    shown = out.decode("utf-8", "replace").replace("\r\n", "\n")
    assert "\\e]52;c;aGVsbG8=\\x07" in shown and "booting" in shown
    assert not CONTROL.search(shown), repr(shown)
