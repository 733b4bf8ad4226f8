"""binfmt_misc faults: a control file or a path named as a handler, flags nobody knows.

``-1`` written to ``status`` removes every handler on the host, so nothing here touches this
machine's registry: a temporary directory with the same files stands in for it (the functions'
``directory`` parameter, and ``BINFMT_DIR`` for the CLI).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from envdeck.backend.cli.main import main
from envdeck.backend.errors import NotFound, UserInputError
from envdeck.backend.processes import binfmt

HANDLER = """enabled
interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P
flags: POF
offset 0
magic 7f454c460201010000000000000000000200b700
mask ffffffffffffff00fffffffffffffffffeffffff
"""

RISCV64_CONF = (
    ":qemu-riscv64:M::\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00"
    "\\x02\\x00\\xf3\\x00:\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff"
    "\\xff\\xff\\xfe\\xff\\xff\\xff:/usr/libexec/qemu-binfmt/riscv64-binfmt-P:POCF\n"
)


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in binfmt_misc mount (status, register, one handler), also the CLI's."""
    root = tmp_path / "binfmt_misc"
    root.mkdir()
    (root / "status").write_text("enabled\n")
    (root / "register").write_text("")
    (root / "qemu-aarch64").write_text(HANDLER)
    monkeypatch.setattr(binfmt, "BINFMT_DIR", root)
    return root


@pytest.fixture
def debian_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A distribution binfmt.d with a qemu-riscv64 line (the path that merged flags)."""
    conf = tmp_path / "binfmt.d"
    conf.mkdir()
    (conf / "qemu-riscv64.conf").write_text(f"# from qemu-user-static\n{RISCV64_CONF}")
    monkeypatch.setattr(binfmt, "DEBIAN_CONF_DIR", conf)
    return conf


def contents(directory: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(directory.iterdir())}


@pytest.mark.parametrize(
    "name", ["status", "register", "..", ".", "../status", "qemu-aarch64/../status", "a/b"]
)
def test_unregister_refuses_control_files_and_paths(registry: Path, name: str) -> None:
    before = contents(registry)
    with pytest.raises(UserInputError):
        binfmt.unregister(name, directory=registry)
    assert contents(registry) == before


def test_unregister_targets_only_an_existing_handler(registry: Path) -> None:
    with pytest.raises(NotFound):
        binfmt.unregister("qemu-riscv64", directory=registry)
    binfmt.unregister("aarch64", directory=registry)
    assert (registry / "qemu-aarch64").read_text() == "-1"
    assert (registry / "status").read_text() == "enabled\n"


def test_cli_unregister_status_is_refused_before_any_write(
    registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = contents(registry)
    assert main(["binfmt", "unregister", "qemu-aarch64", "status"]) == 2
    assert "control file" in capsys.readouterr().err
    assert contents(registry) == before  # not even the valid name before it was removed


def test_register_refuses_unknown_flags_on_the_distribution_line_path(
    registry: Path, debian_conf: Path
) -> None:
    with pytest.raises(UserInputError, match="unknown binfmt flags 'X'"):
        binfmt.register_arch("riscv64", flags="FX", directory=registry)
    assert (registry / "register").read_text() == ""
    assert binfmt.register_arch("riscv64", flags="F", directory=registry) == "registered"
    assert (registry / "register").read_text() == RISCV64_CONF.strip()


def test_cli_register_refuses_unknown_flags_before_any_write(
    registry: Path, debian_conf: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["binfmt", "register", "riscv64", "--flags", "pz"]) == 2
    assert "unknown binfmt flags 'Z'" in capsys.readouterr().err
    assert (registry / "register").read_text() == ""
