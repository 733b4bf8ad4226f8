"""envdeck's home and instance names under attack: loose or foreign homes, sneaky names,
socket paths too long for AF_UNIX; and QEMU/OpenSSH/socat quoting of odd paths (pure)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from envdeck.backend.cli.main import main
from envdeck.backend.errors import UserInputError
from envdeck.backend.forwards.manager import socat_escape
from envdeck.backend.ssh.client import openssh_options
from envdeck.backend.store import InstanceDir, home, validate_name
from envdeck.backend.vm.argv import MachineSpec, build_argv


def test_a_home_writable_by_others_is_refused(envdeck_home: Path):
    envdeck_home.mkdir(mode=0o700)
    os.chmod(envdeck_home, 0o777)
    with pytest.raises(UserInputError, match="writable by others") as info:
        home()
    assert f"chmod 700 {envdeck_home}" in (info.value.hint or "")


def test_a_home_owned_by_someone_else_is_refused(envdeck_home: Path, monkeypatch):
    if os.geteuid() == 0:
        envdeck_home.mkdir(mode=0o700)
        os.chown(envdeck_home, 65534, 65534)
    else:  # a normal user cannot give a dir away: use one root owns
        monkeypatch.setenv("ENVDECK_HOME", "/usr")
    with pytest.raises(UserInputError, match="not to you") as info:
        home()
    assert "chown" in (info.value.hint or "")


def test_create_refuses_a_loose_home_and_writes_nothing(envdeck_home: Path, capsys):
    envdeck_home.mkdir(mode=0o700)
    os.chmod(envdeck_home, 0o777)
    assert main(["create", "dev"]) == 2
    assert "writable by others" in capsys.readouterr().err
    assert list(envdeck_home.iterdir()) == []


def test_home_in_a_foreign_writable_dir_is_refused(tmp_path: Path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)  # no sticky bit: anyone could swap our home for theirs
    monkeypatch.setenv("ENVDECK_HOME", str(shared / "home"))
    with pytest.raises(UserInputError, match="others can write"):
        home()


def test_a_new_home_is_created_private(envdeck_home: Path):
    InstanceDir.of("dev").create()
    assert envdeck_home.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("name", ["nl\n", "a\nb", "ok\n\n", "x\r"])
def test_names_with_a_newline_are_refused(name: str):
    with pytest.raises(UserInputError):
        validate_name(name)


def test_cli_create_with_a_trailing_newline_exits_2(envdeck_home: Path):
    assert main(["create", "nl\n"]) == 2
    assert not (envdeck_home / "instances" / "nl\n").exists()


def test_a_name_too_long_for_the_sockets_is_refused_at_create(tmp_path: Path, monkeypatch):
    deep = tmp_path / ("h" * 40)
    monkeypatch.setenv("ENVDECK_HOME", str(deep))
    name = "n" * 63  # a valid name, but serial.sock would not fit in sun_path
    with pytest.raises(UserInputError, match="too long for its unix sockets") as info:
        InstanceDir.of(name).create()
    assert "shorter" in (info.value.hint or "")
    assert not (deep / "instances" / name).exists()


def test_create_keeps_room_for_the_sockets(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ENVDECK_HOME", str(tmp_path / "h"))
    inst = InstanceDir.of("short")
    inst.create()
    assert len(os.fsencode(inst.serial_sock)) <= 107


def test_restrict_sockets_makes_qemu_sockets_owner_only(envdeck_home: Path):
    import socket

    inst = InstanceDir.of("dev")
    inst.create()
    held = []
    for path in (inst.serial_sock, inst.qmp_sock):
        sock = socket.socket(socket.AF_UNIX)
        old = os.umask(0o022)  # QEMU binds with the caller's umask
        try:
            sock.bind(str(path))
        finally:
            os.umask(old)
        held.append(sock)
    inst.restrict_sockets()
    assert [p.stat().st_mode & 0o777 for p in (inst.serial_sock, inst.qmp_sock)] == [0o600] * 2
    assert inst.root.stat().st_mode & 0o777 == 0o700
    for sock in held:
        sock.close()


# --- quoting for each tool (pure) ------------------------------------------------------------

ODD = Path("/srv/my envdeck,v2%h")


def machine(**over) -> MachineSpec:
    base = dict(
        name="dev", arch="x86_64", accel="tcg", cpus=1, memory_bytes=512 << 20,
        kernel=ODD / "vmlinuz", initrd=ODD / "initrd.img", cmdline="console=ttyS0",
        serial_socket=ODD / "serial.sock", qmp_socket=ODD / "qmp.sock", ssh_port=2222,
        disk=ODD / "disk.qcow2",
    )  # fmt: skip
    base.update(over)
    return MachineSpec(**base)


def test_qemu_option_values_double_commas():
    argv = build_argv(machine())
    assert "socket,id=ser0,path=/srv/my envdeck,,v2%h/serial.sock,server=on,wait=on" in argv
    assert "unix:/srv/my envdeck,,v2%h/qmp.sock,server=on,wait=off" in argv
    assert "if=none,id=disk0,file=/srv/my envdeck,,v2%h/disk.qcow2,format=qcow2" in argv
    assert argv[argv.index("-kernel") + 1] == str(ODD / "vmlinuz")  # a plain argument: as is


def test_uefi_option_values_double_commas():
    argv = build_argv(
        machine(
            kernel=None, initrd=None, firmware=(Path("/fw,1/CODE.fd"), ODD / "efivars.fd"),
            seed=ODD / "cidata.iso",
        )
    )  # fmt: skip
    assert "if=pflash,format=raw,unit=0,readonly=on,file=/fw,,1/CODE.fd" in argv
    assert "if=pflash,format=raw,unit=1,file=/srv/my envdeck,,v2%h/efivars.fd" in argv
    assert "if=none,id=seed,file=/srv/my envdeck,,v2%h/cidata.iso,format=raw,readonly=on" in argv


def test_openssh_options_escape_percent_and_quote_spaces(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ENVDECK_HOME", str(tmp_path / "my home,%h"))
    inst = InstanceDir.of("dev")
    options = openssh_options(inst, 2222)
    assert options[options.index("-i") + 1] == str(inst.client_key).replace("%", "%%")
    known = next(o for o in options if o.startswith("UserKnownHostsFile="))
    assert known == f'UserKnownHostsFile="{str(inst.known_hosts).replace("%", "%%")}"'


def test_master_control_path_escapes_percent():
    from envdeck.backend.ssh.mux import OpenSSHMaster

    argv = OpenSSHMaster([], "root@127.0.0.1", Path("/r/a%C b/ssh.ctl")).argv()
    assert argv[argv.index("-S") + 1] == "/r/a%%C b/ssh.ctl"


@pytest.mark.parametrize(
    "path, escaped",
    [
        ("/run/docker.sock", "/run/docker.sock"),
        ("/run/a:b,c.sock", r"/run/a\:b\,c.sock"),
        ("/r/x!!y", r"/r/x\!\!y"),
        ("/r/'q\"\\", "/r/\\'q\\\"\\\\"),
    ],
)
def test_guest_socket_is_escaped_for_socat(path: str, escaped: str):
    assert socat_escape(path) == escaped
