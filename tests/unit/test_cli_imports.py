"""The fast CLI verbs stay fast: what they import is checked, so heavy libraries do not creep
back into their start-up (issue 14; tests/benchmarks/test_bench_cli.py prints the times).

Each verb runs in a fresh interpreter, as ``envdeck`` runs it; the modules loaded by the time it
returns are compared against the libraries it must not need.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from envdeck.backend.cli.main import COMMAND_MODULES, build_parser, command_word

PROBE = """
import json, sys
from envdeck.backend.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
finally:
    sys.stderr.write("\\nMODULES " + json.dumps(sorted(sys.modules)) + "\\n")
"""

#: never needed to list instances, processes or handlers as JSON, or to print help
FILES_ONLY = (
    "asyncssh",
    "docker",
    "rich",
    "yaml",
    "textual",
    "pycdlib",
    "asyncio",
    "psutil",
    "envdeck.backend.config",
    "envdeck.backend.agent",
    "envdeck.backend.ssh",
)


def loaded(args: list[str], home: Path) -> set[str]:
    """The modules loaded after running ``envdeck ARGS`` in a fresh interpreter."""
    env = {**os.environ, "ENVDECK_HOME": str(home)}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True, timeout=60
    )
    marker = proc.stderr.rsplit("MODULES ", 1)
    assert len(marker) == 2, proc.stderr
    return set(json.loads(marker[1]))


def offending(modules: set[str], banned: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == b or m.startswith(b + ".") for b in banned))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An ENVDECK_HOME holding one stopped instance (its config, as ``create`` writes it) that
    has been listed once (its config summary kept)."""
    from envdeck.backend.config import render_config
    from envdeck.backend.instances.status import config_summary
    from envdeck.backend.store import InstanceDir

    home = tmp_path / "home"
    monkeypatch.setenv("ENVDECK_HOME", str(home))
    inst = InstanceDir.of("dev")
    inst.create()
    text = render_config(
        template="tiny", arch="x86_64", cpus=1, memory_bytes=256 << 20, disk_bytes=1 << 30
    )
    inst.config.write_text(text)
    config_summary(inst)
    return home


@pytest.mark.parametrize(
    "args",
    [
        ["list", "--json"],
        ["ls", "--json"],
        ["ps", "--json"],
        ["binfmt", "--json"],
        ["--help"],
        ["start", "--help"],
        ["kill", "--help"],
        ["containers", "--help"],
    ],
)
def test_fast_verbs_import_no_heavy_library(home: Path, args: list[str]) -> None:
    assert offending(loaded(args, home), FILES_ONLY) == []


@pytest.mark.parametrize("args", [["list", "--json"], ["ls", "--json"]])
def test_listing_stopped_instances_needs_not_even_the_event_classes(
    home: Path, args: list[str]
) -> None:
    assert offending(loaded(args, home), ("envdeck.backend.events",)) == []


def test_a_table_needs_rich_and_nothing_else_heavy(home: Path) -> None:
    modules = loaded(["ps"], home)
    assert "rich" in modules and offending(modules, tuple(set(FILES_ONLY) - {"rich"})) == []


def test_list_keeps_a_summary_of_the_config_and_reads_an_edited_one(home: Path) -> None:
    """A listing reads the config's summary (no YAML parser); an edited config is read again."""
    first = subprocess.run(
        [sys.executable, "-m", "envdeck.backend.cli.main", "list", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    row = json.loads(first.stdout)[0]
    assert (row["name"], row["state"], row["cpus"], row["memory_bytes"]) == (
        "dev",
        "stopped",
        1,
        256 << 20,
    )
    assert offending(loaded(["list", "--json"], home), FILES_ONLY) == []
    config = home / "instances" / "dev" / "instance.yaml"
    config.write_text(config.read_text().replace("cpus: 1", "cpus: 2"))
    again = subprocess.run(
        [sys.executable, "-m", "envdeck.backend.cli.main", "list", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(again.stdout)[0]["cpus"] == 2  # an edited config is read again


def test_every_command_is_in_the_lazy_table() -> None:
    """COMMAND_MODULES names, for each command and alias, the module that registers it."""
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    registered = set(sub.choices)  # type: ignore[arg-type]
    assert registered == set(COMMAND_MODULES)
    for word in registered:
        parser = build_parser([word, "--help"])
        lazy = next(a for a in parser._actions if a.dest == "command")
        assert lazy.choices[word].description == sub.choices[word].description  # type: ignore[index]


@pytest.mark.parametrize(
    ("argv", "word"),
    [
        (["list", "--json"], "list"),
        (["--theme", "dark", "ps"], "ps"),
        (["--readonly"], None),
        (["--help", "list"], None),
        ([], None),
    ],
)
def test_command_word(argv: list[str], word: str | None) -> None:
    assert command_word(argv) == word
