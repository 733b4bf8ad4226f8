"""Guest images. The built-in ``tiny`` image (see images_tiny) and the per-instance initramfs
that carries an instance's SSH host key, authorized_keys, hostname and extra files."""

from __future__ import annotations

import base64
import io
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from envdeck.backend.errors import UserInputError
from envdeck.backend.images.cpio import NewcWriter
from envdeck.backend.images.tiny import build_tiny
from envdeck.backend.images.tinyarch import tiny_arch
from envdeck.backend.store import write_atomic

#: the kernel command line for the tiny image: serial console, quiet, reboot (= QEMU exits with
#: -no-reboot) at once on panic, no EDD probing. Under TCG the agent adds the host's TSC rate
#: (accel.tcg_kernel_args) so the guest skips calibrating it.
TINY_CMDLINE = tiny_arch("x86_64").cmdline
#: where the guest's dropbear reads its host key (dropbear's own format)
GUEST_HOST_KEY = "etc/dropbear/dropbear_ed25519_host_key"


@dataclass(frozen=True)
class TinyImage:
    """The cached base image: kernel, base initramfs and the digest the cache is keyed by."""

    kernel: Path  # what -kernel gets: a PVH-bootable vmlinux (ELF), or the bzImage
    initrd: Path
    digest: str
    kernel_version: str


def tiny_cmdline(arch: str) -> str:
    """The kernel command line of the tiny guest of ``arch`` (TINY_CMDLINE for x86_64)."""
    return tiny_arch(arch).cmdline


def tiny_image(
    progress: Callable[[str, float | None], None] | None = None, arch: str = "x86_64"
) -> TinyImage:
    """Build (or reuse from ``cache_dir()/"tiny"/DIGEST``) the tiny base image of ``arch``.

    ``progress(step_text, fraction_or_None)`` is called as it goes: None while resolving
    packages, then the fraction of bytes fetched while "downloading ...", then the fraction of
    the build ("unpacking ...", "writing the initramfs", ...), and 1.0 with "tiny image
    cached"/"tiny image built" at the end. A warm call takes about a millisecond."""
    built = build_tiny(progress, arch)
    return TinyImage(built.kernel, built.initrd, built.digest, built.kernel_version)


def _ssh_string(buf: io.BytesIO) -> bytes:
    (length,) = struct.unpack(">I", buf.read(4))
    data = buf.read(length)
    if len(data) != length:
        raise ValueError("truncated key")
    return data


def _pack(*items: bytes) -> bytes:
    return b"".join(struct.pack(">I", len(i)) + i for i in items)


def dropbear_ed25519_key(openssh_private_key: bytes | str) -> bytes:
    """Convert an unencrypted OpenSSH-format ed25519 private key to dropbear's key format
    (string "ssh-ed25519", string seed||public) — what ``dropbearconvert`` writes."""
    text = (
        openssh_private_key.decode()
        if isinstance(openssh_private_key, bytes)
        else openssh_private_key
    )
    try:
        body = "".join(line for line in text.strip().splitlines() if not line.startswith("-----"))
        buf = io.BytesIO(base64.b64decode(body))
        if buf.read(15) != b"openssh-key-v1\0":
            raise ValueError("not an OpenSSH private key")
        cipher, _kdf, _kdfopts = _ssh_string(buf), _ssh_string(buf), _ssh_string(buf)
        if cipher != b"none":
            raise ValueError("the key is encrypted")
        (count,) = struct.unpack(">I", buf.read(4))
        for _ in range(count):
            _ssh_string(buf)
        priv = io.BytesIO(_ssh_string(buf))
        check1, check2 = struct.unpack(">II", priv.read(8))
        keytype = _ssh_string(priv)
        public, secret = _ssh_string(priv), _ssh_string(priv)
        if check1 != check2 or keytype != b"ssh-ed25519" or len(public) != 32 or len(secret) != 64:
            raise ValueError("not a valid ed25519 key")
        if secret[32:] != public:
            raise ValueError("inconsistent ed25519 key")
    except (ValueError, struct.error) as exc:  # binascii.Error is a ValueError
        raise UserInputError(
            f"guest host key: {exc}", hint="give an OpenSSH ed25519 private key"
        ) from exc
    return _pack(b"ssh-ed25519", secret)


def instance_initrd(
    image: TinyImage,
    dest: Path,
    *,
    host_key: bytes,
    authorized_keys: str,
    hostname: str,
    extra_files: dict[str, bytes] | None = None,
) -> Path:
    """Write ``dest`` (0600, atomically) = the base initrd + an appended newc archive with the
    instance's files: dropbear host key (from ``host_key``, an OpenSSH ed25519 private key),
    /root/.ssh/authorized_keys, /etc/hostname, and ``extra_files`` (guest path -> bytes; files
    starting with "#!" are made executable, and those under /etc/envdeck/rc.d/ run at the end
    of boot, after sshd is up)."""
    base = image.initrd.read_bytes()
    base += b"\0" * (-len(base) % 4)
    buf = io.BytesIO()
    with NewcWriter(buf) as cpio:
        cpio.add_dir("root", 0o700)
        cpio.add_dir("root/.ssh", 0o700)
        cpio.add_file("root/.ssh/authorized_keys", authorized_keys.encode(), 0o600)
        cpio.add_dir("etc", 0o755)
        cpio.add_dir("etc/dropbear", 0o700)
        cpio.add_file(GUEST_HOST_KEY, dropbear_ed25519_key(host_key), 0o600)
        cpio.add_file("etc/hostname", hostname.encode() + b"\n", 0o644)
        made = {"root", "root/.ssh", "etc", "etc/dropbear"}
        for path, data in sorted((extra_files or {}).items()):
            rel = PurePosixPath(path.lstrip("/"))
            for parent in reversed(rel.parents[:-1]):
                if str(parent) not in made:
                    cpio.add_dir(str(parent), 0o755)
                    made.add(str(parent))
            mode = 0o755 if data.startswith(b"#!") else 0o644
            cpio.add_file(str(rel), data, mode)
    write_atomic(dest, base + buf.getvalue(), 0o600)
    return dest
