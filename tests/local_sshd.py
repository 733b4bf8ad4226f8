"""A throwaway OpenSSH sshd on 127.0.0.1 for tests and benchmarks (own config, keys, known_hosts).

``start_local_sshd`` backs the ``local_sshd`` fixture in tests/conftest.py.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import require, require_tool

CIPHER = "aes128-gcm@openssh.com"


@dataclass
class LocalSshd:
    """Where the server listens and the files a client needs (all under ``dir``)."""

    dir: Path
    port: int

    @property
    def client_key(self) -> Path:
        return self.dir / "client"

    @property
    def known_hosts(self) -> Path:
        return self.dir / "known_hosts"

    def openssh_options(self) -> list[str]:
        """OpenSSH client options: our key, the server's key pinned, no user config."""
        return [
            "-F",
            "/dev/null",
            "-i",
            str(self.client_key),
            "-p",
            str(self.port),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-c",
            CIPHER,
        ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


@contextlib.contextmanager
def start_local_sshd(tmp_path: Path) -> Iterator[LocalSshd]:
    """An sshd on 127.0.0.1 that lets root in with a fresh key, TCP forwarding on, one cipher."""
    require_tool("sshd", "ssh", "ssh-keygen")
    sshd_bin = shutil.which("sshd") or "/usr/sbin/sshd"
    require(os.geteuid() == 0, "root (sshd needs it to log a user in)")
    for name in ("host", "client"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / name)], check=True
        )
    (tmp_path / "authorized_keys").write_text((tmp_path / "client.pub").read_text())
    port = free_port()
    config = tmp_path / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {tmp_path / 'host'}\n"
        f"AuthorizedKeysFile {tmp_path / 'authorized_keys'}\nPidFile {tmp_path / 'sshd.pid'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUsePAM no\nStrictModes no\n"
        f"AllowTcpForwarding yes\nCiphers {CIPHER}\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    proc = subprocess.Popen([sshd_bin, "-D", "-e", "-f", str(config)], stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        host_pub = (tmp_path / "host.pub").read_text().split()
        (tmp_path / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
        yield LocalSshd(tmp_path, port)
    finally:
        proc.terminate()
        proc.wait(10)
