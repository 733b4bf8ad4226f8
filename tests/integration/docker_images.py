"""Test images for the container tests, made locally (no registry is reachable).

* ``envdeck-test/busybox:amd64``: ``docker import`` of a rootfs tar with the host's static
  busybox (Debian's busybox-static) and its applet symlinks.
* ``envdeck-test/busybox:arm64``: a true linux/arm64 image: ``docker load`` of a docker-archive
  tarball whose image config says ``"architecture": "arm64"``, with the aarch64 busybox from
  ``/opt/envdeck-test/arm64/busybox`` (fetched from Debian's arm64 busybox-static when missing).

Both are idempotent: an image is rebuilt only when its content digest label differs. The arm64
image runs under qemu-aarch64 through binfmt_misc; :func:`ensure_binfmt` mounts and registers it.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import docker

AMD64 = "envdeck-test/busybox:amd64"
ARM64 = "envdeck-test/busybox:arm64"
HOST_BUSYBOX = Path("/bin/busybox")
ARM64_BUSYBOX = Path("/opt/envdeck-test/arm64/busybox")
DIGEST_LABEL = "envdeck.test.digest"
BINFMT = Path("/proc/sys/fs/binfmt_misc")
QEMU_AARCH64_CONF = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")
PATH_ENV = "PATH=/usr/sbin:/usr/bin:/sbin:/bin"


def _applet_paths() -> list[str]:
    """Applet paths relative to / (e.g. ``bin/ls``), from the host busybox."""
    out = subprocess.run(
        [str(HOST_BUSYBOX), "--list-full"], capture_output=True, text=True, check=True
    ).stdout
    return sorted({line.strip().lstrip("/") for line in out.splitlines() if line.strip()})


def _add(
    tar: tarfile.TarFile,
    name: str,
    *,
    kind: bytes = tarfile.REGTYPE,
    data: bytes = b"",
    mode: int = 0o644,
    link: str = "",
) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.linkname = kind, mode, 0, link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def rootfs_tar(busybox: bytes) -> bytes:
    """A deterministic rootfs tar: /bin/busybox, applet symlinks, /etc/passwd, /tmp."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        applets = [p for p in _applet_paths() if p != "bin/busybox"]
        dirs = sorted(
            {"bin", "etc", "tmp", "root", "proc", "sys", "dev"}
            | {str(Path(p).parent) for p in applets}
        )
        for d in dirs:
            _add(tar, d, kind=tarfile.DIRTYPE, mode=0o1777 if d == "tmp" else 0o755)
        _add(tar, "bin/busybox", data=busybox, mode=0o755)
        for path in applets:
            _add(tar, path, kind=tarfile.SYMTYPE, link="/bin/busybox", mode=0o777)
        _add(tar, "etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\n")
        _add(tar, "etc/group", data=b"root:x:0:\n")
    return buf.getvalue()


def _current_digest(client: docker.DockerClient, ref: str) -> str | None:
    try:
        attrs = client.api.inspect_image(ref)
    except docker.errors.ImageNotFound:
        return None
    return ((attrs.get("Config") or {}).get("Labels") or {}).get(DIGEST_LABEL)


def ensure_amd64(client: docker.DockerClient) -> str:
    """Make ``envdeck-test/busybox:amd64`` by ``docker import`` (if not already current)."""
    layer = rootfs_tar(HOST_BUSYBOX.read_bytes())
    digest = hashlib.sha256(layer).hexdigest()[:16]
    if _current_digest(client, AMD64) != digest:
        repo, tag = AMD64.split(":")
        client.api.import_image_from_data(
            layer,
            repository=repo,
            tag=tag,
            changes=[f"LABEL {DIGEST_LABEL}={digest}", f"ENV {PATH_ENV}", 'CMD ["sh"]'],
        )
    return AMD64


def docker_archive(layer: bytes, ref: str, arch: str, labels: dict[str, str]) -> bytes:
    """A ``docker save``-format tarball of one layer with an image config for linux/``arch``."""
    diff_id = hashlib.sha256(layer).hexdigest()
    config = {
        "architecture": arch,
        "os": "linux",
        "created": "2026-01-01T00:00:00Z",
        "config": {"Env": [PATH_ENV], "Cmd": ["sh"], "Labels": labels},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        "history": [{"created": "2026-01-01T00:00:00Z", "created_by": "envdeck tests"}],
    }
    config_raw = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_raw).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": [ref], "Layers": [f"{diff_id}/layer.tar"]}]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        _add(tar, diff_id, kind=tarfile.DIRTYPE, mode=0o755)
        _add(tar, f"{diff_id}/layer.tar", data=layer)
        _add(tar, config_name, data=config_raw)
        _add(tar, "manifest.json", data=json.dumps(manifest).encode())
    return buf.getvalue()


def fetch_arm64_busybox() -> Path:
    """Install Debian's arm64 busybox-static binary at ARM64_BUSYBOX (needs root and apt)."""
    if ARM64_BUSYBOX.is_file():
        return ARM64_BUSYBOX
    foreign = subprocess.run(
        ["dpkg", "--print-foreign-architectures"], capture_output=True, text=True, check=True
    ).stdout.split()
    if "arm64" not in foreign:
        subprocess.run(["dpkg", "--add-architecture", "arm64"], check=True)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        get = ["apt-get", "download", "-qq", "busybox-static:arm64"]
        if subprocess.run(get, cwd=tmp, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], check=True)
            subprocess.run(get, cwd=tmp, check=True, capture_output=True)
        deb = glob.glob(os.path.join(tmp, "busybox-static_*_arm64.deb"))[0]
        subprocess.run(["dpkg-deb", "-x", deb, os.path.join(tmp, "root")], check=True)
        ARM64_BUSYBOX.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.join(tmp, "root", "bin", "busybox"), ARM64_BUSYBOX)
        ARM64_BUSYBOX.chmod(0o755)
    return ARM64_BUSYBOX


def ensure_binfmt() -> bool:
    """Mount binfmt_misc and register qemu-aarch64 (flag F) if needed; True when enabled."""
    if not (BINFMT / "register").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)], check=False)
    entry = BINFMT / "qemu-aarch64"
    if not entry.exists() and QEMU_AARCH64_CONF.is_file() and (BINFMT / "register").exists():
        line = next(
            ln for ln in QEMU_AARCH64_CONF.read_text().splitlines() if ln and not ln.startswith("#")
        )
        if "F" not in line.rsplit(":", 1)[-1]:
            line += "F"
        (BINFMT / "register").write_text(line)
    return entry.exists() and entry.read_text().startswith("enabled")


def ensure_arm64(client: docker.DockerClient) -> str:
    """Make the true linux/arm64 ``envdeck-test/busybox:arm64`` by ``docker load``."""
    layer = rootfs_tar(fetch_arm64_busybox().read_bytes())
    digest = hashlib.sha256(layer).hexdigest()[:16]
    if _current_digest(client, ARM64) != digest:
        client.images.load(docker_archive(layer, ARM64, "arm64", {DIGEST_LABEL: digest}))
    return ARM64


def ensure_images(client: docker.DockerClient) -> tuple[str, str]:
    """Both test images, plus binfmt for the arm64 one; returns (amd64 ref, arm64 ref)."""
    ensure_binfmt()
    return ensure_amd64(client), ensure_arm64(client)


def docker_client_or_skip() -> docker.DockerClient:
    """A client of the host daemon with both test images present (skip/fail when no daemon)."""
    from tests.conftest import require, require_tool

    require_tool("dockerd", "docker")
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means: no daemon here
        client = None
        reason = str(exc)
    require(client is not None, f"a running dockerd ({reason if client is None else ''})")
    assert client is not None
    ensure_images(client)
    return client
