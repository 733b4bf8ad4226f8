"""Every command line of the README's "Using it" block, run as documented (issue #16 item 21).

The block is read from README.md and run top to bottom against a private ENVDECK_HOME with a real
tiny instance: optional ``[...]`` parts included (except ``-f``, which follows forever), ``PID``
a guest process, ``web.yaml`` the README's first instance YAML. Lines that would open the
dashboard or an interactive session for good (``up``, ``envdeck`` alone, ``replay``, ``record``'s
30 s, ``container ... NAME``) run as ``--help`` and must list each documented option and action.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.integration.instance_helpers import CLI, kill_everything

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"
HELP_ONLY = {"", "up", "record", "replay", "container"}
NEVER_ENDING = {"-f"}  # logs -f follows until Ctrl-C


def documented_commands() -> list[list[str]]:
    """The "Using it" block's commands, in order, each as its words (comments dropped)."""
    text = README.read_text(encoding="utf-8")
    block = re.search(r"## Using it\n\n```sh\n(.*?)```", text, re.S)
    assert block, "README.md has no 'Using it' sh block"
    commands = []
    for raw in block.group(1).splitlines():
        code = re.split(r"\s{2,}#", raw, maxsplit=1)[0].strip()
        for part in filter(None, (p.strip() for p in code.split(";"))):
            words = shlex.split(part)
            assert words[0] == "envdeck", part
            commands.append(words[1:])
    return commands


def expand(words: list[str]) -> list[str]:
    """Optional ``[...]`` groups included (a never-ending one left out)."""
    out: list[str] = []
    group: list[str] | None = None
    for word in words:
        if group is None and word.startswith("["):
            group = []
            word = word[1:]
        if group is None:
            out.append(word)
            continue
        closes = word.endswith("]")
        group.append(word.rstrip("]"))
        if closes:
            if not set(group) & NEVER_ENDING:
                out += group
            group = None
    return out


def run(args: list[str], cwd: Path, stdin: str = "", tty: bool = False) -> tuple[int, str]:
    """The CLI with ``args``; with ``tty`` its stdin is a terminal (where ``stdin`` is typed)."""
    if not tty:
        done = subprocess.run(
            [*CLI, *args], cwd=cwd, input=stdin, capture_output=True, text=True, timeout=300
        )
        return done.returncode, done.stdout + done.stderr
    leader, follower = os.openpty()
    try:
        proc = subprocess.Popen(
            [*CLI, *args],
            cwd=cwd,
            stdin=follower,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        os.write(leader, stdin.encode())
        out, _ = proc.communicate(timeout=120)
    finally:
        os.close(leader)
        os.close(follower)
    return proc.returncode, out


def help_covers(words: list[str], cwd: Path) -> None:
    """``--help`` of the verb lists every option and ``a|b|c`` action of the documented line."""
    verb = words[:1]
    code, text = run([*verb, "--help"], cwd)
    assert code == 0, text
    for word in words[1:]:
        for token in re.findall(r"--?[a-z][a-z-]*", word):
            assert token in text, f"{' '.join(words)}: {token} not in 'envdeck {verb} --help'"
        if "|" in word:
            for action in word.split("|"):
                assert action == "..." or action in text, f"{action!r} not in {verb} --help"


def test_every_documented_command_line_runs(envdeck_home: Path, tmp_path: Path):
    require_tool("qemu-system-x86_64", "qemu-img", "ssh")
    yaml = re.search(r"```yaml\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert yaml
    (tmp_path / "web.yaml").write_text(yaml.group(1))
    ran: list[str] = []
    try:
        for words in documented_commands():
            verb = words[0] if words else ""
            line = f"envdeck {' '.join(words)}".rstrip()  # (a label: runs as sys.executable -m)
            if verb in HELP_ONLY:
                help_covers(words, tmp_path)
                ran.append(f"{line}  (--help)")
                continue
            args = expand(words)
            stdin, tty = "", False
            if verb == "shell":
                stdin = "uname -s\nexit\n"  # piped: no terminal needed
            if verb == "kill":
                code, out = run(
                    ["exec", "dev", "--", "sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!"],
                    tmp_path,
                )
                assert code == 0, out
                args = [out.strip() if a == "PID" else a for a in args]
                stdin, tty = "y\n", True
            code, out = run(args, tmp_path, stdin, tty)
            assert code == 0, f"{line} -> {code}\n{out}"
            if verb == "shell":
                assert "Linux" in out
            if verb == "kill":
                assert "[y/N]" in out and "sent SIGKILL" in out, out
            if verb == "stop":
                assert "stopped by powerdown" in out, out
            ran.append(line)
    finally:
        kill_everything(envdeck_home)
    assert ran[-2:] == ["envdeck delete dev [--force]", "envdeck  (--help)"], ran
