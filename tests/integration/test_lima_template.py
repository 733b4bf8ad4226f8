"""A Lima user's instance file end to end: ``base:`` from a local templates folder (through
LIMA_TEMPLATES_PATH) whose image template lists several arches with sha512 digests, the x86_64
entry being the locally built cloud image served over loopback HTTP; provision modes system,
user and data; a probe that fails once then passes; a ``{{.Dir}}`` hostSocket forward; a
writable mount; the message printed. And the bad inputs: each one error, exit 2, nothing written.
"""

from __future__ import annotations

import hashlib
import socket
import time
from pathlib import Path

import pytest

from tests.integration.instance_helpers import envdeck, kill_everything, list_json
from tests.integration.test_cloud_image import cloud_image, served  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration

IMAGES = """\
minimumLimaVersion: 2.0.0
images:
- location: https://example.invalid/arm64.qcow2
  arch: aarch64
  digest: sha512:{fake}
- location: https://example.invalid/riscv64.qcow2
  arch: riscv64
  digest: sha512:{fake}
- location: {url}
  arch: x86_64
  digest: {digest}
- location: https://example.invalid/s390x.qcow2
  arch: s390x
mountTypesUnsupported: [9p]
"""

INSTANCE = """\
minimumLimaVersion: 2.0.0
base:
- template:_images/debian-local
- ./common.yaml
cpus: 2
memory: 1GiB
disk: 4GiB
vmType: qemu
containerd:
  system: false
  user: false
param:
  Greeting: hello-lima
provision:
- mode: system
  script: |
    #!/bin/bash
    set -eu -o pipefail
    echo "{{.Param.Greeting}}" > /root/system-ran
    systemd-run --unit envdeck-echo python3 -c '
    import os, socket
    path = "/run/envdeck-echo.sock"
    s = socket.socket(socket.AF_UNIX); s.bind(path); os.chmod(path, 0o666); s.listen()
    while True:
        c, _ = s.accept(); c.sendall(b"echo-from-guest\\n"); c.close()'
- mode: user
  script: |
    #!/bin/sh
    echo "$(id -un):$(id -u):$HOME:$PARAM_Greeting" > user-ran
- mode: data  # envdeck carries socket forwards with socat, which the test image lacks
  path: /usr/local/bin/socat
  permissions: "755"
  content: |
    #!/usr/bin/python3
    import os, socket, sys, threading
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[-1].split(":", 1)[1])  # socat [-t N] - UNIX-CONNECT:PATH
    def up():
        while data := os.read(0, 65536):
            s.sendall(data)
        s.shutdown(socket.SHUT_WR)
    threading.Thread(target=up, daemon=True).start()
    while data := s.recv(65536):
        os.write(1, data)
- mode: data
  path: /etc/envdeck-data.conf
  content: |
    name={{.Name}}
  permissions: "640"
probes:
- description: second try
  script: |
    #!/bin/sh
    [ -e /tmp/probe-tried ] && exit 0
    touch /tmp/probe-tried
    echo first try fails
    exit 1
  hint: the probe should pass on its second try
mounts:
- location: "@SHARED@"
  mountPoint: /mnt/shared
  writable: true
portForwards:
- guestSocket: /run/envdeck-echo.sock
  hostSocket: "{{.Dir}}/sock/echo.sock"
message: |
  {{.Name}} is ready: socket at {{.Dir}}/sock/echo.sock
"""


def sha512_of(path: Path) -> str:
    digest = hashlib.sha512()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return "sha512:" + digest.hexdigest()


def library(tmp_path: Path, url: str, digest: str) -> Path:
    lib = tmp_path / "lima-templates"
    (lib / "_images").mkdir(parents=True)
    (lib / "_images" / "debian-local.yaml").write_text(
        IMAGES.format(url=url, digest=digest, fake="0" * 128)
    )
    return lib


def read_socket(path: Path, deadline: float = 90) -> bytes:
    """The greeting of the guest's echo server through the forwarded socket; the forward may
    start failing (no guest socket yet) and pick the socket up once the service made it."""
    end = time.monotonic() + deadline
    while True:
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(10)
                sock.connect(str(path))
                data = sock.recv(100)
            if data or time.monotonic() > end:
                return data
        except OSError:
            if time.monotonic() > end:
                raise
        time.sleep(1)


def test_a_lima_shaped_instance_boots_provisions_probes_and_forwards(
    envdeck_home: Path,
    tmp_path: Path,
    served: str,  # noqa: F811 - the fixture
    cloud_image: Path,  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv(
        "LIMA_TEMPLATES_PATH", str(library(tmp_path, served, sha512_of(cloud_image)))
    )
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "common.yaml").write_text("ssh:\n  loadDotSSHPubKeys: false\n")
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "from-host").write_text("host-wrote-this\n")
    spec = folder / "lima.yaml"
    spec.write_text(INSTANCE.replace("@SHARED@", str(shared)))
    checked = envdeck("validate", str(spec), check=True)
    assert "cloud image http://127.0.0.1:" in checked.stdout
    assert "mountTypesUnsupported: ignored" in checked.stderr
    inst = envdeck_home / "instances" / "lima"
    assert not inst.exists()
    try:
        envdeck("create", "lima", "-f", str(spec), check=True, timeout=600)
        started = envdeck("start", "lima", timeout=1200)
        out = started.stdout + started.stderr
        assert started.returncode == 0, out
        said = f"lima is ready: socket at {inst}/sock/echo.sock"
        assert "".join(said.split()) in "".join(out.split())  # the CLI wraps long lines
        assert list_json()["lima"]["state"] == "ready"
        logs = envdeck("logs", "lima", check=True).stdout
        assert "[probe second try] first try fails" in logs
        assert "[probe second try] passed" in logs

        def guest(*command: str) -> str:
            return envdeck("exec", "lima", "--", *command, check=True).stdout.strip()

        assert guest("cat", "/root/system-ran") == "hello-lima"
        user = guest("sh", "-c", "cat /home/*.linux/user-ran")
        name, uid, home, greeting = user.split(":")
        assert home == f"/home/{name}.linux" and int(uid) >= 1000 and greeting == "hello-lima"
        assert guest("cat", "/etc/envdeck-data.conf") == "name=lima"
        assert guest("stat", "-c", "%a %U", "/etc/envdeck-data.conf") == "640 root"
        greeting = read_socket(inst / "sock" / "echo.sock")
        assert greeting == b"echo-from-guest\n", (
            guest("sh", "-c", "systemctl status envdeck-echo; ls -l /run/envdeck-echo.sock"),
            envdeck("forwards", "lima", "--json").stdout,
        )
        assert not (folder / "{{.Dir}}").exists()
        # mounts: the host folder, writable, at its mountPoint (9p)
        assert guest("cat", "/mnt/shared/from-host") == "host-wrote-this"
        guest("sh", "-c", "echo guest-wrote-this > /mnt/shared/from-guest")
        assert (shared / "from-guest").read_text() == "guest-wrote-this\n"
    finally:
        envdeck("stop", "lima", timeout=180)
        kill_everything(envdeck_home)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("base: missing.yaml\n", "does not exist"),
        ("base: template:nowhere\n", "looked in"),
        ("base: loop.yaml\n", "cycle"),
        ("message: '{{.Nope}}'\n", "unknown template variable"),
        ("os: Darwin\n", "os: Darwin cannot run here"),
    ],
)
def test_bad_lima_input_is_one_error_exit_2_nothing_written(
    envdeck_home: Path, tmp_path: Path, text: str, words: str
):
    (tmp_path / "loop.yaml").write_text("base: bad.yaml\n")
    spec = tmp_path / "bad.yaml"
    spec.write_text(text)
    for command in (("validate", str(spec)), ("create", "bad", "-f", str(spec))):
        result = envdeck(*command)
        assert result.returncode == 2 and words in result.stderr, result.stderr
        assert result.stderr.count("error:") == 1
    assert not (envdeck_home / "instances" / "bad").exists()


def test_a_base_url_whose_digest_does_not_match(
    envdeck_home: Path,
    tmp_path: Path,
    served: str,  # noqa: F811 - the fixture
):
    (tmp_path / "www" / "base.yaml").write_text("cpus: 2\n")  # in the folder served
    base_url = served.rsplit("/", 1)[0] + "/base.yaml"
    spec = tmp_path / "bad.yaml"
    spec.write_text(f"base:\n- url: {base_url}\n  digest: sha512:{'0' * 128}\n")
    result = envdeck("create", "bad", "-f", str(spec))
    assert result.returncode == 2 and "does not match its digest" in result.stderr
    assert not (envdeck_home / "instances" / "bad").exists()
