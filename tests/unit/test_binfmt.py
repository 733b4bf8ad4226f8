"""binfmt_misc entry parsing, registry reading, register-line validation."""

from __future__ import annotations

import pytest

from envdeck.backend.arch import host_arch
from envdeck.backend.errors import EnvdeckError, UserInputError
from envdeck.backend.processes import binfmt

DEBIAN_AARCH64 = """enabled
interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P
flags: POF
offset 0
magic 7f454c460201010000000000000000000200b700
mask ffffffffffffff00fffffffffffffffffeffffff
"""

S390X = """disabled
interpreter /usr/bin/qemu-s390x-static
flags: F
offset 0
magic 7f454c46020201000000000000000000000200160000
mask ffffffffffffff00fffffffffffffffffffeffff
"""

PYTHON = (
    "enabled\ninterpreter /usr/bin/python3.11\nflags: \nextension .pyc\n"  # as the kernel prints
)


def test_parse_debian_qemu_entry():
    h = binfmt.parse_entry("qemu-aarch64", DEBIAN_AARCH64)
    assert (h.enabled, h.arch, h.flags, h.offset) == (True, "aarch64", "POF", 0)
    assert h.interpreter == "/usr/libexec/qemu-binfmt/aarch64-binfmt-P"
    assert h.preserve_argv0


def test_parse_big_endian_and_disabled_entry():
    h = binfmt.parse_entry("qemu-s390x", S390X)
    assert (h.enabled, h.arch, h.preserve_argv0) == (False, "s390x", False)


def test_parse_extension_entry():
    h = binfmt.parse_entry("python3.11", PYTHON)
    assert (h.kind, h.magic, h.arch, h.flags) == ("extension", ".pyc", None, "")


def test_read_registry_of_a_directory_and_an_unmounted_one(tmp_path):
    (tmp_path / "status").write_text("enabled\n")
    (tmp_path / "register").write_text("")
    (tmp_path / "qemu-aarch64").write_text(DEBIAN_AARCH64)
    (tmp_path / "python3.11").write_text(PYTHON)
    reg = binfmt.read_registry(tmp_path)
    assert reg.mounted and reg.enabled and reg.error is None
    assert [h.name for h in reg.handlers] == ["python3.11", "qemu-aarch64"]
    assert reg.preserve_argv0_map()["/usr/libexec/qemu-binfmt/aarch64-binfmt-P"] is True
    missing = binfmt.read_registry(tmp_path / "nope")
    assert not missing.mounted and missing.handlers == [] and "not mounted" in missing.error


def test_parse_guest_dump():
    dump = f"@@status enabled\n@@entry qemu-aarch64\n{DEBIAN_AARCH64}@@entry qemu-s390x\n{S390X}"
    reg = binfmt.parse_dump(dump)
    assert reg.enabled and [h.arch for h in reg.handlers] == ["aarch64", "s390x"]
    assert not binfmt.parse_dump("@@unmounted\n").mounted


def test_builtin_magic_matches_debian_line():
    magic, mask = binfmt.BUILTIN_MAGIC["aarch64"]
    deb = (
        ":qemu-aarch64:M::\\x7f\\x45\\x4c\\x46\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00"
        "\\x00\\x00\\x02\\x00\\xb7\\x00:\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff"
        "\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff:/x:F"
    )
    assert deb.split(":")[4:6] == [magic, mask]


@pytest.mark.parametrize(
    ("name", "interp", "flags"),
    [("bad name", "/x", "F"), ("ok", "relative", "F"), ("ok", "/x", "Z"), ("ok", "/a:b", "F")],
)
def test_register_line_rejects_bad_input(name, interp, flags):
    with pytest.raises(UserInputError):
        binfmt.register_line(name, "\\x7f", "\\xff", interp, flags)


def test_register_line_shape():
    line = binfmt.register_line("envdeck-x", "\\x7fELF", "\\xff\\xff\\xff\\xff", "/usr/bin/q", "PF")
    assert line == ":envdeck-x:M:0:\\x7fELF:\\xff\\xff\\xff\\xff:/usr/bin/q:PF"


def test_register_refuses_unknown_and_native_arch(tmp_path):
    with pytest.raises(UserInputError):
        binfmt.register_arch("../../etc", directory=tmp_path)
    with pytest.raises(UserInputError):
        binfmt.register_arch(host_arch(), directory=tmp_path)


def test_register_and_unregister_say_how_to_mount_when_unmounted(tmp_path):
    with pytest.raises(EnvdeckError, match="not mounted") as exc:
        binfmt.register_arch("aarch64", directory=tmp_path)
    assert "mount -t binfmt_misc" in (exc.value.hint or "")
    with pytest.raises(EnvdeckError, match="not mounted"):
        binfmt.unregister("qemu-aarch64", directory=tmp_path)
