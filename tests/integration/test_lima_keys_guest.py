"""Lima's guest-shaping keys on the real tiny guest under QEMU: ``copyToHost`` (copied once
ready, 0600, deleted at stop), ``timezone``, ``caCerts``, ``ssh.loadDotSSHPubKeys`` (the user's
own key logs in), ``ssh.forwardAgent`` (a real ssh-agent reached from the guest through
``envdeck shell``'s command) and ``plain: true`` (no mounts, no automatic or non-static forwards,
provisioning still runs)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path

import asyncssh
import pytest

from envdeck.backend.ssh.client import openssh_options
from envdeck.backend.store import InstanceDir
from tests.conftest import require_tool
from tests.integration.instance_helpers import envdeck, kill_everything, list_json

pytestmark = pytest.mark.integration

CERT = "-----BEGIN CERTIFICATE-----\nMIIBenvdecktest\n-----END CERTIFICATE-----"


def _user_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, str]:
    """A host home whose ~/.ssh holds one key pair (the user's own)."""
    home = tmp_path / "user-home"
    (home / ".ssh").mkdir(parents=True, mode=0o700)
    key = asyncssh.generate_private_key("ssh-ed25519", comment="me@envdeck-test")
    private = home / ".ssh" / "id_ed25519"
    private.write_bytes(key.export_private_key("openssh"))
    private.chmod(0o600)
    public = key.export_public_key("openssh").decode().strip()
    (home / ".ssh" / "id_ed25519.pub").write_text(public + "\n")
    monkeypatch.setenv("HOME", str(home))
    return home, private, public


def test_tiny_guest_copy_to_host_timezone_ca_certs_and_the_users_ssh(
    envdeck_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_tool("qemu-system-x86_64", "ssh", "ssh-agent", "ssh-add")
    home, private, _ = _user_home(tmp_path, monkeypatch)
    spec = tmp_path / "kt.yaml"
    spec.write_text(
        "template: tiny\n"
        "ssh:\n  forwardAgent: true\n  loadDotSSHPubKeys: true\n"
        "timezone: Asia/Tokyo\n"
        "caCerts:\n  certs:\n    - |\n"
        + "".join(f"      {line}\n" for line in CERT.splitlines())
        + "provision:\n  - mode: system\n    script: echo provisioned-{{.Name}} > /root/report\n"
        "copyToHost:\n"
        "  - guest: /root/report\n    host: '{{.Dir}}/copied/report'\n    deleteOnStop: true\n"
        "  - guest: /etc/hostname\n    host: '{{.Home}}/kt-hostname'\n"
        "  - guest: /no/such/file\n    host: '{{.Dir}}/never'\n    skipIfMissing: true\n"
    )
    inst = InstanceDir.of("kt")
    copied = inst.root / "copied" / "report"
    try:
        envdeck("create", "kt", "-f", str(spec), check=True, timeout=900)
        started = envdeck("start", "kt", timeout=900)
        assert started.returncode == 0, started.stdout + started.stderr
        assert list_json()["kt"]["state"] == "ready"

        # copyToHost: after provisioning, owner-only, in a 0700 folder; skipIfMissing skipped
        assert copied.read_text() == "provisioned-kt\n"
        assert stat.S_IMODE(copied.stat().st_mode) == 0o600
        assert stat.S_IMODE(copied.parent.stat().st_mode) == 0o700
        assert (home / "kt-hostname").read_text() == "kt\n"
        assert not (inst.root / "never").exists()

        def guest(script: str) -> str:
            return envdeck("exec", "kt", "--", "sh", "-c", script, check=True).stdout.strip()

        assert guest("date +%Z") == "JST"
        assert guest("cat /etc/timezone") == "Asia/Tokyo"
        assert guest("cat /etc/ssl/certs/ca-certificates.crt").strip() == CERT

        # loadDotSSHPubKeys: the user's own key logs in (host key still pinned)
        port = str(inst.read_state()["ssh_port"])
        options = openssh_options(inst, int(port))
        options[options.index("-i") + 1] = str(private)
        mine = subprocess.run(
            ["ssh", *options, "-T", "root@127.0.0.1", "echo", "own-key"],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert mine.stdout.strip() == "own-key", mine.stderr

        # forwardAgent: envdeck shell's ssh forwards a real agent; the guest asks it for its
        # identities (SSH2_AGENTC_REQUEST_IDENTITIES over the forwarded socket, with socat)
        agent_sock = tmp_path / "agent.sock"
        agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(agent_sock)])
        try:
            deadline = time.monotonic() + 10
            while not agent_sock.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            env = {**os.environ, "SSH_AUTH_SOCK": str(agent_sock)}
            subprocess.run(["ssh-add", str(private)], env=env, check=True, capture_output=True)
            from envdeck.backend.instances.api import shell_argv

            argv = shell_argv(
                "kt",
                [
                    "printf '\\0\\0\\0\\1\\13' | socat -t 5 - UNIX-CONNECT:$SSH_AUTH_SOCK"
                    " | od -An -c | tr -d ' \\n'"
                ],
            )
            asked = subprocess.run(
                argv, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
            )
            assert "me@envdeck-test" in asked.stdout, asked.stdout + asked.stderr
        finally:
            agent.terminate()
            agent.wait(10)
    finally:
        envdeck("stop", "kt", timeout=180)
        kill_everything(envdeck_home)
    assert not copied.exists()  # deleteOnStop
    assert (home / "kt-hostname").exists()


def test_plain_mode_on_the_tiny_guest(envdeck_home: Path, tmp_path: Path) -> None:
    require_tool("qemu-system-x86_64")
    shared = tmp_path / "shared"
    shared.mkdir()
    spec = tmp_path / "pl.yaml"
    spec.write_text(
        "template: tiny\nplain: true\n"
        f"mounts:\n  - location: {shared}\n    mountPoint: /mnt/shared\n"
        "portForwards:\n  - guestPort: 8081\n    hostPort: 18081\n"
        "provision:\n  - mode: system\n    script: echo still-runs > /root/provisioned\n"
    )
    try:
        checked = envdeck("validate", str(spec))
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "mounts: ignored in plain mode" in checked.stdout + checked.stderr
        envdeck("create", "pl", "-f", str(spec), check=True, timeout=900)
        started = envdeck("start", "pl", timeout=900)
        assert started.returncode == 0, started.stdout + started.stderr
        row = list_json()["pl"]
        assert row["state"] == "ready" and row["mounts"] == []

        def guest(script: str) -> str:
            return envdeck("exec", "pl", "--", "sh", "-c", script, check=True).stdout.strip()

        assert guest("cat /root/provisioned") == "still-runs"
        assert guest("grep -c ' /mnt/shared ' /proc/mounts || true") == "0"
        guest("mkdir -p /www && echo hi > /www/index.html && httpd -p 18123 -h /www")
        time.sleep(4)  # the listener poll runs every second: no automatic forward appears
        rows = json.loads(envdeck("forwards", "pl", "--json", check=True).stdout)
        assert [r for r in rows if r["guest"] in ("18123", "8081")] == []
    finally:
        envdeck("stop", "pl", timeout=180)
        kill_everything(envdeck_home)
