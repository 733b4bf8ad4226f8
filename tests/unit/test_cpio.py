"""The newc cpio writer: the kernel's format rules, a round trip, and GNU cpio reading it."""

from __future__ import annotations

import io
import stat
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envdeck.backend.images.cpio import HEADER_LEN, MAGIC, TRAILER, NewcWriter, read_newc
from tests.conftest import require_tool


def _archive(build) -> bytes:
    buf = io.BytesIO()
    with NewcWriter(buf, mtime=1234) as cpio:
        build(cpio)
    return buf.getvalue()


def _headers(data: bytes) -> list[tuple[int, str, int]]:
    """(offset, name, filesize) of each header, walking the raw bytes by the format's rules."""
    out, pos = [], 0
    while pos < len(data):
        assert data[pos : pos + 6] == MAGIC, f"no magic at {pos}"
        namesize = int(data[pos + 94 : pos + 102], 16)
        filesize = int(data[pos + 54 : pos + 62], 16)
        name = data[pos + HEADER_LEN : pos + HEADER_LEN + namesize]
        assert name.endswith(b"\0")
        out.append((pos, name[:-1].decode(), filesize))
        pos += HEADER_LEN + namesize
        pos += -pos % 4
        pos += filesize + (-filesize % 4)
    return out


def test_headers_are_aligned_and_end_with_trailer():
    data = _archive(
        lambda c: (
            c.add_dir("etc"),
            c.add_file("etc/a", b"x"),  # 1 byte: 3 bytes of padding
            c.add_file("etc/bb", b"12345"),
            c.add_symlink("etc/link", "a"),
        )
    )
    heads = _headers(data)
    assert [h[1] for h in heads] == ["etc", "etc/a", "etc/bb", "etc/link", TRAILER]
    assert all(off % 4 == 0 for off, _, _ in heads)
    assert len(data) % 4 == 0
    assert heads[-1][2] == 0


def test_round_trip_keeps_types_modes_and_data():
    data = _archive(
        lambda c: (
            c.add_dir("/root", 0o700),
            c.add_file("/root/key", b"secret", 0o600),
            c.add_symlink("bin/sh", "busybox"),
            c.add_chardev("dev/console", 5, 1),
        )
    )
    entries = {e.name: e for e in read_newc(data)}
    assert entries["root"].is_dir and stat.S_IMODE(entries["root"].mode) == 0o700
    assert entries["root/key"].data == b"secret" and stat.S_IMODE(entries["root/key"].mode) == 0o600
    assert entries["bin/sh"].is_symlink and entries["bin/sh"].data == b"busybox"
    assert stat.S_ISCHR(entries["dev/console"].mode) and entries["dev/console"].rdev == (5, 1)
    assert {e.mtime for e in entries.values()} == {1234}
    assert {e.uid for e in entries.values()} == {0}


def test_inode_numbers_are_unique():
    data = _archive(lambda c: [c.add_file(f"f{i}", b"") for i in range(5)])
    inos = [int(data[off + 6 : off + 14], 16) for off, _, _ in _headers(data)]
    assert len(set(inos)) == len(inos)


def test_concatenated_archives_with_zero_padding():
    first = _archive(lambda c: c.add_file("a", b"one"))
    second = _archive(lambda c: c.add_file("a", b"two"))
    entries = list(read_newc(first + b"\0" * 512 + second))
    assert [(e.name, e.data) for e in entries] == [("a", b"one"), ("a", b"two")]


@pytest.mark.parametrize("bad", ["", "/", "../x", "a/../../b", "..", ".", "./x", "a/./b"])
def test_bad_paths_are_refused(bad):
    with pytest.raises(ValueError):
        NewcWriter(io.BytesIO()).add_file(bad, b"")


def test_reader_rejects_garbage():
    with pytest.raises(ValueError):
        list(read_newc(b"not a cpio archive"))


def test_closed_writer_refuses_entries():
    writer = NewcWriter(io.BytesIO())
    writer.close()
    with pytest.raises(ValueError):
        writer.add_file("x", b"")


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=40).filter(
    lambda name: name not in (".", "..")
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(names, st.binary(max_size=300), min_size=1, max_size=8))
def test_any_files_round_trip_aligned(files):
    data = _archive(lambda c: [c.add_file(n, d) for n, d in files.items()])
    assert all(off % 4 == 0 for off, _, _ in _headers(data))
    assert {e.name: e.data for e in read_newc(data)} == files


def test_gnu_cpio_extracts_it(tmp_path: Path):
    require_tool("cpio")
    data = _archive(
        lambda c: (
            c.add_dir("d"),
            c.add_file("d/file.txt", b"hello\n", 0o640),
            c.add_symlink("d/link", "file.txt"),
        )
    )
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run(
        ["cpio", "-idm", "--quiet", "--no-absolute-filenames"],
        input=data, cwd=out, capture_output=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (out / "d/file.txt").read_bytes() == b"hello\n"
    assert stat.S_IMODE((out / "d/file.txt").stat().st_mode) == 0o640
    assert (out / "d/link").readlink() == Path("file.txt")
    listing = subprocess.run(
        ["cpio", "-it", "--quiet"], input=data, capture_output=True, check=True
    )
    assert listing.stdout.decode().split() == ["d", "d/file.txt", "d/link"]
