"""A replay never acts and never connects (issue #10 item 6). The dashboard given a recording
(as ``envdeck replay`` gives it) is read-only and its backend refuses every command; with the
recording's Docker endpoints (and DOCKER_HOST) pointing at a loopback listener opened here,
every key of the help is pressed on every pane and nothing connects to it."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.screen import ModalScreen
from textual.widgets import DataTable

from envdeck.backend import events as ev
from envdeck.backend.api import ReplayBackend
from envdeck.backend.recording import ReplaySource
from envdeck.tui.app import EnvdeckApp
from envdeck.tui.screens.details import DetailScreen
from envdeck.tui.screens.modals import PickScreen
from envdeck.tui.settings import UISettings
from tests.e2e.synthetic import events
from tests.e2e.test_tui_pilot import screen_text
from tests.e2e.tui_harness import HOST_LINE, TERMINAL, actions_done, settle


class Listener:
    """A loopback TCP listener that counts the connections it gets."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


@pytest.fixture
def private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, envdeck_home: Path) -> Path:
    monkeypatch.setenv("ENVDECK_CONFIG", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def hostile_recording(path: Path, url: str) -> Path:
    """The synthetic session with every Docker endpoint's URL set to ``url``."""
    with open(path, "w", encoding="utf-8") as fh:
        for t, event in events():
            if isinstance(event, ev.EndpointStatus):
                event.docker_host = url
            fh.write(json.dumps({"t": t, **event.to_dict()}) + "\n")
    return path


async def test_every_key_on_every_pane_of_a_replay_connects_to_nothing(
    private: Path, listener: Listener, monkeypatch: pytest.MonkeyPatch
):
    url = f"tcp://127.0.0.1:{listener.port}"
    monkeypatch.setenv("DOCKER_HOST", url)  # a live Docker client would come here too
    path = hostile_recording(private / "r.jsonl", url)
    app = EnvdeckApp(
        [ReplaySource(path, speed=0)], settings=UISettings(), host_info=lambda: HOST_LINE
    )
    assert isinstance(app.ctx.backend, ReplayBackend) and app.ctx.readonly
    keys = [
        b.key.split(",")[0]
        for _, bindings in app.help_groups()
        for b in bindings
        if b.id not in ("app.quit", "modal.close_q")
    ]
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        for pane in "12345":
            for key in keys:
                await pilot.press(pane, key)
                if isinstance(app.screen, PickScreen):
                    await pilot.press("enter")  # the command menu runs its first command
                await actions_done(app)
                for _ in range(4):
                    if (
                        not isinstance(app.screen, ModalScreen)
                        and app.screen is app.screen_stack[0]
                    ):
                        break
                    await pilot.press("escape")
                await pilot.press("escape")  # (closes a pane's filter or search input)
        # The container details ask for stats: refused, said in the tab.
        await pilot.press("2")
        app.query_one("#containers-table", DataTable).move_cursor(row=1)  # (row 0: endpoint)
        await pilot.press("enter", "right_square_bracket")
        await actions_done(app)
        await pilot.pause(0.2)
        assert isinstance(app.screen, DetailScreen)
        assert "not in a replay" in screen_text(app)
        await pilot.press("escape")
    assert listener.connections == 0


def test_the_replay_command_is_always_read_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    from envdeck.backend.cli import record
    from envdeck.backend.cli.main import build_parser

    seen: dict[str, object] = {}

    def run_dashboard(**kwargs: object) -> int:
        seen.update(kwargs)
        return 0

    monkeypatch.setattr("envdeck.tui.app.run_dashboard", run_dashboard)
    path = tmp_path / "r.jsonl"
    path.write_text("")
    assert record.cmd_replay(build_parser().parse_args(["replay", str(path)])) == 0
    assert seen["readonly"] is True
