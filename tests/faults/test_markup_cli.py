"""Rich markup in user and guest text (issue #10 item 5): data is never parsed as markup in the
CLI. A bracketed crash reason in state.json, bracketed instance names and YAML keys, a process
named like markup: each shows as written, exit codes as for any other text, no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from envdeck.backend.store import InstanceDir


def envdeck(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The checkout's CLI (stdin not a terminal), with the test's ENVDECK_HOME."""
    return subprocess.run(
        [sys.executable, "-m", "envdeck.backend.cli.main", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
        env=os.environ.copy(),
    )


def crashed_instance(name: str, reason: str) -> None:
    inst = InstanceDir.of(name)
    inst.create()
    inst.config.write_text("cpus: 1\n")
    inst.state_file.write_text(json.dumps({"state": "crashed", "reason": reason}))


def test_list_shows_a_bracketed_crash_reason_as_written(envdeck_home: Path):
    reason = "EXT4-fs error [/dev/vda] [/] [bold red]boom"
    crashed_instance("vm", reason)
    result = envdeck("list")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert f"vm: {reason}" in " ".join(result.stdout.split())


def test_bracketed_names_are_a_clean_error_quoted_as_given(envdeck_home: Path):
    for name in ("[/]", "[red]x"):
        result = envdeck("create", name)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert name in result.stderr  # '[red]x' is not reported as 'x'


def test_a_bracketed_yaml_key_is_a_clean_error(envdeck_home: Path, tmp_path: Path):
    config = tmp_path / "vm.yaml"
    config.write_text('"[/]": 1\ncpus: 1\n')
    result = envdeck("create", "vm", "-f", str(config))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "[/]" in result.stderr


def test_kill_quotes_a_process_named_like_markup(envdeck_home: Path):
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "[/x] [red]hidden"],
    )
    try:
        time.sleep(0.2)
        result = envdeck("kill", str(proc.pid))  # no --yes, no terminal: refused with the name
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert "[/x] [red]hidden" in result.stderr
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()
