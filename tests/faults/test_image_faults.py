"""Hostile cloud images and downloads: backing files, odd formats, missing digests, short or
cut bodies, reset connections. Each is one clear error (exit 2) and nothing is cached."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from envdeck.backend.config import ImageSpec
from envdeck.backend.errors import UserInputError
from envdeck.backend.images import cloud as cloud_images
from tests.conftest import require_tool


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ENVDECK_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def cached_files(cache: Path) -> list[str]:
    images = cache / "images"
    return sorted(p.name for p in images.iterdir()) if images.exists() else []


def sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


# --- item 1: an image must not hand host files to the guest ---------------------------------


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "host-secret.txt"
    path.write_text("a host file the guest must never see\n")
    return path


def test_an_image_with_a_backing_file_is_refused_and_not_cached(tmp_path, cache, secret):
    require_tool("qemu-img")
    evil = tmp_path / "evil.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(secret), str(evil), "1M")
    with pytest.raises(UserInputError, match="backing file") as info:
        cloud_images.fetch(ImageSpec(str(evil), digest=sha256(evil)))
    assert str(secret) in info.value.message and info.value.exit_code == 2
    assert cached_files(cache) == []


def test_an_image_with_an_external_data_file_is_refused(tmp_path, cache, secret):
    require_tool("qemu-img")
    evil = tmp_path / "evil.qcow2"
    qemu_img(
        "create", "-q", "-f", "qcow2", "-o", f"data_file={secret},data_file_raw=on", str(evil), "1M"
    )
    with pytest.raises(UserInputError, match="another file"):
        cloud_images.fetch(ImageSpec(str(evil), digest=sha256(evil)))
    assert cached_files(cache) == []


def test_an_image_in_another_format_is_refused(tmp_path, cache):
    require_tool("qemu-img")
    vmdk = tmp_path / "disk.vmdk"
    qemu_img("create", "-q", "-f", "vmdk", str(vmdk), "1M")
    with pytest.raises(UserInputError, match="'vmdk' format"):
        cloud_images.fetch(ImageSpec(str(vmdk), digest=sha256(vmdk)))
    assert cached_files(cache) == []


def test_an_overlay_on_an_evil_base_is_refused_and_leaves_no_disk(tmp_path, secret):
    require_tool("qemu-img")
    base = tmp_path / "cached.img"  # e.g. cached by an older envdeck that did not check
    qemu_img("create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(secret), str(base), "1M")
    disk = tmp_path / "disk.qcow2"
    with pytest.raises(UserInputError, match="backing file"):
        cloud_images.create_overlay(base, disk, 1 << 20)
    assert not disk.exists()


def test_an_evil_image_over_http_is_refused(tmp_path, cache, secret):
    require_tool("qemu-img")
    evil = tmp_path / "evil.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(secret), str(evil), "1M")
    body = evil.read_bytes()
    with (
        serve(lambda conn: respond(conn, body, length=len(body))) as url,
        pytest.raises(UserInputError, match="backing file"),
    ):
        cloud_images.fetch(ImageSpec(url, digest=sha256(evil)))
    assert cached_files(cache) == []


# --- items 2 and 12: downloads over a loopback HTTP server ----------------------------------


@pytest.fixture
def raw_image(tmp_path: Path) -> bytes:
    return b"\0" * (64 << 10) + b"disk"


def respond(conn: socket.socket, body: bytes, length: int | None, chunked: bool = False) -> None:
    head = b"HTTP/1.1 200 OK\r\nConnection: close\r\n"
    if length is not None:
        head += b"Content-Length: %d\r\n" % length
    if chunked:
        head += b"Transfer-Encoding: chunked\r\n"
    conn.sendall(head + b"\r\n")
    if chunked:
        conn.sendall(b"%x\r\n" % (len(body) + 1000) + body)  # the chunk is cut short
    else:
        conn.sendall(body)


def reset(conn: socket.socket, body: bytes) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (len(body) * 2) + body)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")  # RST on close


class serve:
    """A one-shot HTTP server on 127.0.0.1 whose handler writes the raw response."""

    def __init__(self, handler: Callable[[socket.socket], None]) -> None:
        self.handler = handler
        self.sock = socket.create_server(("127.0.0.1", 0))

    def __enter__(self) -> str:
        def run() -> None:
            conn, _ = self.sock.accept()
            with conn:
                conn.recv(65536)
                self.handler(conn)

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/image.img"

    def __exit__(self, *exc: object) -> None:
        self.thread.join(5)
        self.sock.close()


def fetch_fails(url: str, digest: str | None, match: str) -> None:
    with pytest.raises(UserInputError, match=match) as info:
        cloud_images.fetch(ImageSpec(url, digest=digest))
    assert info.value.exit_code == 2 and info.value.hint


def test_no_digest_and_no_length_is_refused(cache, raw_image):
    with serve(lambda conn: respond(conn, raw_image[:100], length=None)) as url:
        fetch_fails(url, None, "without a length")
    assert cached_files(cache) == []


def test_a_short_body_is_refused(cache, raw_image):
    with serve(lambda conn: respond(conn, raw_image[:100], length=len(raw_image))) as url:
        fetch_fails(url, None, "stopped at|broke off")
    assert cached_files(cache) == []


def test_a_cut_chunked_response_is_one_clear_error(cache, raw_image):
    digest = "sha256:" + hashlib.sha256(raw_image).hexdigest()
    with serve(lambda conn: respond(conn, raw_image, length=None, chunked=True)) as url:
        fetch_fails(url, digest, "broke off")
    assert cached_files(cache) == []


def test_a_reset_connection_is_one_clear_error(cache, raw_image):
    digest = "sha256:" + hashlib.sha256(raw_image).hexdigest()
    with serve(lambda conn: reset(conn, raw_image)) as url:
        fetch_fails(url, digest, "broke off|stopped at")
    assert cached_files(cache) == []


def test_a_digest_lets_a_lengthless_body_through(cache, raw_image):
    require_tool("qemu-img")
    digest = "sha256:" + hashlib.sha256(raw_image).hexdigest()
    with serve(lambda conn: respond(conn, raw_image, length=None)) as url:
        path = cloud_images.fetch(ImageSpec(url, digest=digest))
    assert path.read_bytes() == raw_image


def test_a_missing_digest_is_warned_about_with_the_fix(cache, raw_image):
    require_tool("qemu-img")
    said: list[str] = []
    with serve(lambda conn: respond(conn, raw_image, length=len(raw_image))) as url:
        cloud_images.fetch(ImageSpec(url), lambda text, _f: said.append(text))
    warning = said[0]
    assert warning.startswith("warning:") and "no digest" in warning
    assert "digest: sha256:" in warning and f"curl -fsSL {url} | sha256sum" in warning


def test_cli_create_with_a_cut_download_exits_2(envdeck_home, tmp_path, raw_image, capsys):
    from envdeck.backend.cli.main import main

    digest = "sha256:" + hashlib.sha256(raw_image).hexdigest()
    with serve(lambda conn: respond(conn, raw_image, length=None, chunked=True)) as url:
        config = tmp_path / "cloud.yaml"
        config.write_text(f"images:\n  - location: {url}\n    digest: {digest}\n")
        assert main(["create", "cloud", "-f", str(config)]) == 2
    err = capsys.readouterr().err
    assert "broke off" in err and "Traceback" not in err
    assert not (envdeck_home / "instances" / "cloud").exists()
