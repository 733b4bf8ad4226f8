"""agent.log (issue #16 item 19): owner only, rotated at its cap with the agent's stdout and
stderr following it to the new file, and asyncssh quiet unless ENVDECK_DEBUG is set. Each case
runs in its own interpreter, as the agent does (it points file descriptors 1 and 2 at the log)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

AGENT = """
import logging, os, sys
from envdeck.backend.agent.daemon import AGENT_LOG_BYTES, setup_logging
from envdeck.backend.store import InstanceDir

inst = InstanceDir.of("dev")
inst.root.mkdir(parents=True)
fd = os.open(inst.agent_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)  # as an old CLI did
os.dup2(fd, 1)
os.dup2(fd, 2)
setup_logging(inst)
logging.getLogger("asyncssh").info("[conn=0, chan=1] Requesting new SSH session")
log = logging.getLogger("envdeck.agent")
for n in range(AGENT_LOG_BYTES // 100 + 100):
    log.info("line %d %s", n, "x" * 80)
print("stdout after the rotation", flush=True)
"""


def run_agent_logging(tmp_path: Path, **env: str) -> Path:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    subprocess.run(
        [sys.executable, "-c", AGENT],
        env={**os.environ, "ENVDECK_HOME": str(home), **env},
        check=True,
        timeout=60,
    )
    return home / "instances" / "dev" / "agent.log"


def test_agent_log_is_private_rotated_and_followed_by_stdout(tmp_path: Path):
    log = run_agent_logging(tmp_path)
    old = log.with_name("agent.log.1")
    assert old.exists() and not log.with_name("agent.log.2").exists()
    for path in (log, old):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert log.stat().st_size < (1 << 20) and old.stat().st_size <= (1 << 20)
    assert log.read_text().endswith("stdout after the rotation\n")
    assert "Requesting new SSH session" not in old.read_text() + log.read_text()


def test_asyncssh_speaks_with_envdeck_debug(tmp_path: Path):
    log = run_agent_logging(tmp_path, ENVDECK_DEBUG="1")
    assert "Requesting new SSH session" in log.with_name("agent.log.1").read_text()
