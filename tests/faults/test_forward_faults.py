"""Forwards under attack: hostSocket paths that hold someone else's file or live socket, runtime
specs out of range, listeners beyond loopback. No guest needed: nothing connects through."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from envdeck.backend.config import parse_config
from envdeck.backend.errors import UserInputError
from envdeck.backend.forwards.manager import ForwardManager, bind_unix, parse_spec


def manager(tmp_path: Path, yaml_text: str = "") -> ForwardManager:
    rules = parse_config(yaml_text).port_forwards if yaml_text else ()
    return ForwardManager("dev", rules, lambda _e: None, lambda: None, base_dir=tmp_path)


def socket_rule(host: str) -> str:
    return f"portForwards:\n  - guestSocket: /run/x.sock\n    hostSocket: {host}\n"


async def test_a_regular_file_at_the_host_socket_path_is_a_conflict_and_survives(tmp_path):
    important = tmp_path / "important.txt"
    important.write_text("keep me")
    fwds = manager(tmp_path, socket_rule("important.txt"))
    await fwds.start([])
    (fwd,) = fwds.forwards.values()
    assert fwd.state == "conflict" and "not a socket" in (fwd.reason or "")
    await fwds.close()
    assert important.read_text() == "keep me"


async def test_a_live_socket_is_not_taken_over(tmp_path):
    path = tmp_path / "docker.sock"
    other = socket.socket(socket.AF_UNIX)
    other.bind(str(path))
    other.listen(1)
    try:
        fwds = manager(tmp_path, socket_rule("docker.sock"))
        await fwds.start([])
        (fwd,) = fwds.forwards.values()
        assert fwd.state == "conflict" and "live socket" in (fwd.reason or "")
        await fwds.close()
        probe = socket.socket(socket.AF_UNIX)
        probe.connect(str(path))  # still the other program's
        probe.close()
    finally:
        other.close()


async def test_a_stale_socket_is_replaced_and_removed_on_close(tmp_path):
    path = tmp_path / "docker.sock"
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(path))
    dead.close()  # the file stays; nobody listens
    fwds = manager(tmp_path, socket_rule("docker.sock"))
    await fwds.start([])
    (fwd,) = fwds.forwards.values()
    assert fwd.state == "active" and path.stat().st_mode & 0o777 == 0o600
    await fwds.close()
    assert not path.exists()


async def test_close_leaves_a_file_put_in_place_of_our_socket(tmp_path):
    path = tmp_path / "docker.sock"
    fwds = manager(tmp_path, socket_rule("docker.sock"))
    await fwds.start([])
    path.unlink()
    path.write_text("someone else's")
    await fwds.close()
    assert path.read_text() == "someone else's"


def test_bind_unix_records_what_it_made(tmp_path):
    sock, bound = bind_unix(tmp_path / "a.sock")
    try:
        assert bound.inode == (tmp_path / "a.sock").lstat().st_ino
    finally:
        sock.close()
        bound.remove()
    assert not (tmp_path / "a.sock").exists()


@pytest.mark.parametrize(
    "spec",
    ["70000", "5:0", "0", "0:8080", "80:65536", "80:0.0.0.0:0", "+80", "8_0", " 80",
     "80:localhost:8080", "80:999.1.1.1:8080"],
)  # fmt: skip
def test_runtime_specs_out_of_range_are_refused(spec: str):
    with pytest.raises(UserInputError) as info:
        parse_spec(spec)
    assert info.value.exit_code == 2 and info.value.hint


async def test_a_forward_beyond_loopback_warns(tmp_path):
    fwds = manager(tmp_path)
    await fwds.start([])
    try:
        row = await fwds.add(f"80:0.0.0.0:{free_port()}")
        assert row["state"] == "active" and "reachable from the network" in row["reason"]
        local = await fwds.add(f"81:127.0.0.1:{free_port()}")
        assert local["state"] == "active" and local["reason"] is None
    finally:
        await fwds.close()


async def test_a_rule_beyond_loopback_warns_at_start(tmp_path):
    port = free_port()
    rule = f"portForwards:\n  - guestPort: 80\n    hostPort: {port}\n    hostIP: 0.0.0.0\n"
    fwds = manager(tmp_path, rule)
    await fwds.start([])
    try:
        (fwd,) = fwds.forwards.values()
        assert fwd.state == "active" and "reachable from the network" in (fwd.reason or "")
    finally:
        await fwds.close()


async def test_a_bad_saved_forward_is_skipped_not_fatal(tmp_path):
    fwds = manager(tmp_path)
    port = free_port()
    await fwds.start([{"spec": "70000"}, {"spec": f"80:{port}"}])
    try:
        assert list(fwds.forwards) == ["80"]
    finally:
        await fwds.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
