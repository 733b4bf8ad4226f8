"""Debian packages for the tiny image: resolve with apt-cache, fetch with ``apt-get download``
(no root needed), check each .deb against the archive's SHA256, unpack with ``dpkg-deb -x``."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from envdeck.backend.errors import EnvdeckError
from envdeck.backend.hosttools import require_tool

Progress = Callable[[str, float | None], None]


@dataclass(frozen=True)
class Deb:
    """One binary package version as the apt archive describes it."""

    package: str
    version: str
    arch: str
    sha256: str
    size: int
    depends: str = ""

    @property
    def spec(self) -> str:
        """What ``apt-get download`` is asked for: ``name:arch=version`` (``name=version`` for
        an architecture-independent package)."""
        name = self.package if self.arch == "all" else f"{self.package}:{self.arch}"
        return f"{name}={self.version}"

    @property
    def filename(self) -> str:
        """The file name ``apt-get download`` gives it (an epoch's ':' becomes '%3a')."""
        return f"{self.package}_{self.version.replace(':', '%3a')}_{self.arch}.deb"


def _failed(argv: list[str], code: int, output: str) -> EnvdeckError:
    detail = output.strip().splitlines()[-3:]
    return EnvdeckError(
        f"'{' '.join(argv[:3])}…' failed (exit {code}): {' / '.join(detail)}",
        hint="check that apt works here ('apt-get update') and the package exists",
    )


def _run(argv: list[str], *, cwd: Path | None = None) -> str:
    """Run a host command; raise EnvdeckError with its stderr when it fails."""
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise _failed(argv, proc.returncode, proc.stderr or proc.stdout)
    return proc.stdout


def _fetch(argv: list[str], dest: Path, missing: list[Deb], progress: Progress | None) -> None:
    """Run ``apt-get download`` in ``dest``, reporting the fraction of bytes on disk so far."""
    total = sum(d.size for d in missing) or 1
    label = f"downloading {len(missing)} packages ({total / 1e6:.0f} MB)"
    last = -1.0
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, cwd=dest, stdout=out, stderr=subprocess.STDOUT)
        while True:
            try:
                proc.wait(timeout=0.25)
                break
            except subprocess.TimeoutExpired:
                pass
            done = sum(
                p.stat().st_size
                for d in missing
                for p in (dest / d.filename, dest / "partial" / d.filename)
                if p.exists()
            )
            fraction = min(done / total, 0.99)
            if progress and fraction > last:
                progress(label, fraction)
                last = fraction
        if proc.returncode != 0:
            out.seek(0)
            raise _failed(argv, proc.returncode, out.read().decode(errors="replace"))
    if progress:
        progress(label, 1.0)


def _stanzas(text: str) -> Iterable[dict[str, str]]:
    for block in re.split(r"\n\s*\n", text.strip()):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line[:1] in (" ", "\t") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
        if "Package" in fields:
            yield fields


def require_architecture(deb_arch: str) -> None:
    """Fail with the command that fixes it when apt cannot fetch ``deb_arch`` packages."""
    dpkg = require_tool("dpkg")
    if deb_arch == _run([dpkg, "--print-architecture"]).strip():
        return
    if deb_arch not in _run([dpkg, "--print-foreign-architectures"]).split():
        raise EnvdeckError(
            f"apt cannot fetch {deb_arch} packages: {deb_arch} is not a dpkg architecture here",
            hint=f"sudo dpkg --add-architecture {deb_arch} && sudo apt-get update",
        )


def bare(name: str) -> str:
    """A package name without its ``:arch`` qualifier."""
    return name.partition(":")[0]


def show(packages: Iterable[str]) -> dict[str, Deb]:
    """The candidate version of each package (``apt-cache show --no-all-versions``), keyed by
    bare name; a name may carry an architecture (``libc6:arm64``)."""
    names = sorted(set(packages))
    try:
        text = _run([require_tool("apt-cache"), "show", "--no-all-versions", *names])
    except EnvdeckError as exc:
        if "No packages found" not in exc.message:
            raise
        text = ""  # apt knows none of them: named below
    wanted = {bare(n): n.partition(":")[2] for n in names}
    found: dict[str, Deb] = {}
    for st in _stanzas(text):
        if st["Package"] in found or not st.get("SHA256"):
            continue
        if wanted.get(st["Package"]) not in ("", st.get("Architecture")):
            continue
        found[st["Package"]] = Deb(
            st["Package"], st["Version"], st.get("Architecture", "amd64"),
            st["SHA256"], int(st.get("Size", "0")), st.get("Depends", ""),
        )  # fmt: skip
    missing = [n for n in names if bare(n) not in found]
    if missing:
        raise EnvdeckError(
            f"no downloadable candidate for {', '.join(missing)}",
            hint="run 'sudo apt-get update' so apt knows the packages' archive entries",
        )
    return found


def real_kernel_package(meta: str = "linux-image-amd64") -> str:
    """Resolve a kernel metapackage (linux-image-amd64, linux-image-arm64:arm64) to the
    versioned image package (bare name)."""
    deb = show([meta])[bare(meta)]
    for alt in re.split(r"[,|]", deb.depends):
        name = alt.strip().split(" ")[0]
        if name.startswith("linux-image-") and name != bare(meta):
            return name
    if meta.startswith("linux-image-") and re.search(r"\d", bare(meta)):
        return bare(meta)  # already a versioned package
    raise EnvdeckError(f"cannot resolve {meta} to a kernel package (Depends: {deb.depends!r})")


def depends_closure(*packages: str) -> list[str]:
    """``packages`` and everything they Depends/Pre-Depends on, recursively (no virtuals).
    Names keep apt's ``:arch`` qualifier (``libc6:arm64``) for a foreign architecture."""
    argv = [
        require_tool("apt-cache"), "depends", "--recurse", "--no-recommends", "--no-suggests",
        "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", *packages,
    ]  # fmt: skip
    try:
        text = _run(argv)
    except EnvdeckError:
        show(packages)  # names the package apt does not know
        raise
    names = {line.strip() for line in text.splitlines() if line and not line[0].isspace()}
    return sorted(n for n in names if not n.startswith("<"))


def sha256_file(path: Path) -> str:
    """Hex SHA256 of a file's contents."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(debs: Iterable[Deb], dest: Path, progress: Progress | None = None) -> dict[str, Path]:
    """Make sure every .deb is in ``dest`` with the archive's SHA256; fetch the missing ones."""
    debs = list(debs)
    dest.mkdir(parents=True, exist_ok=True)
    missing = []
    for deb in debs:
        path = dest / deb.filename
        if path.exists() and sha256_file(path) != deb.sha256:
            path.unlink()  # a partial or stale download
        if not path.exists():
            missing.append(deb)
    if missing:
        argv = [require_tool("apt-get"), "download", "-q"]
        if os.geteuid() == 0:  # apt's _apt sandbox user cannot write to a private dir
            argv += ["-o", "APT::Sandbox::User=root"]
        _fetch(argv + [d.spec for d in missing], dest, missing, progress)
    paths = {}
    for deb in debs:
        path = dest / deb.filename
        if not path.exists() or sha256_file(path) != deb.sha256:
            raise EnvdeckError(f"{deb.filename}: download missing or SHA256 mismatch")
        paths[deb.package] = path
    return paths


def extract(deb: Path, dest: Path) -> None:
    """Unpack a .deb's file tree into ``dest`` (``dpkg-deb -x``)."""
    _run([require_tool("dpkg-deb"), "-x", str(deb), str(dest)])
