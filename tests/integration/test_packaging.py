"""The wheel holds every package and its data: built from the tracked files, installed into a
clean venv (no editable finder, no source tree on the path), then used as a user would."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration

CHECK_INSTALLED = textwrap.dedent(
    """
    import importlib.resources as res
    import pkgutil, sys
    import envdeck.backend, envdeck.tui

    # every module imports (a package missing from the wheel fails here)
    for root in (envdeck.backend, envdeck.tui):
        for mod in pkgutil.walk_packages(root.__path__, root.__name__ + "."):
            if not mod.name.endswith("__main__"):
                __import__(mod.name)
    from envdeck.tui.app import EnvdeckApp
    import envdeck.themes

    origin = envdeck.backend.__file__
    assert "site-packages" in origin, origin
    tui = res.files("envdeck.tui")
    assert any(p.name.endswith(".tcss") for p in tui.rglob("*")), "app.tcss missing"
    themes = [p.name for p in res.files("envdeck.themes").iterdir()]
    assert any(n.endswith(".toml") for n in themes), themes
    guest = res.files("envdeck.backend.images") / "guest"
    assert (guest / "init").is_file() and (guest / "rcS").is_file(), list(guest.iterdir())
    print("installed-ok", origin)
    """
)


def _tracked_copy(dest: Path) -> Path:
    """The files git tracks (what a clean clone has), copied to ``dest``."""
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True
    ).stdout.split(b"\0")
    for name in filter(None, files):
        src = REPO / name.decode()
        if src.is_file():
            target = dest / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(src.read_bytes())
    return dest


def test_wheel_installs_every_package_and_its_data(tmp_path: Path) -> None:
    source = _tracked_copy(tmp_path / "src")
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)],
        check=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("envdeck-*.whl")

    venv = tmp_path / "clean"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    # The dependencies come from this venv's site-packages as a plain path entry: .pth files
    # there (the editable install's finder) are not processed, so envdeck comes from the wheel.
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            str(wheel),
        ],
        check=True,
        timeout=300,
    )

    help_out = subprocess.run(
        [str(venv / "bin" / "envdeck"), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert help_out.returncode == 0, help_out.stderr
    assert "envdeck" in help_out.stdout and "create" in help_out.stdout

    checked = subprocess.run(
        [str(python), "-c", CHECK_INSTALLED], cwd=tmp_path, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
    assert "installed-ok" in checked.stdout
    assert str(REPO) not in checked.stdout  # not the source tree
