"""Every key in the `?` help does what it says — driven through Textual's pilot.

The dashboard runs on a synthetic replay (generated in the test, see synthetic.py); backend
commands go to a recorder implementing envdeck.backend.api.Backend (the dashboard's one seam).
"""

from __future__ import annotations

import dataclasses
import re
import signal
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import Button, DataTable, Input, Log

from envdeck.tui.app import EnvdeckApp
from envdeck.tui.keys import all_ids
from envdeck.tui.panes.processes import ProcessesPane
from envdeck.tui.screens.details import DetailScreen
from envdeck.tui.screens.modals import ConfirmScreen, PickScreen, TextScreen
from envdeck.tui.settings import UISettings
from envdeck.tui.widgets.procview import ProcessView
from tests.e2e.tui_harness import TERMINAL, FakeBackend, actions_done, make_app, settle

pytestmark = pytest.mark.e2e

COVERED: set[str] = set()


def covers(*ids: str):
    """Mark the binding ids a test exercises (checked against the help below)."""
    COVERED.update(ids)
    return lambda f: f


def pane_of(app: EnvdeckApp) -> str | None:
    pane = app.focused_pane()
    return pane.pane_id if pane else None


def view_pids(app: EnvdeckApp) -> list[int]:
    return [r.row["pid"] for r in app.query_one(ProcessView).rows]


def screen_text(app: EnvdeckApp) -> str:
    """What a person sees, as plain lines (the compositor's strips)."""
    strips = app.screen._compositor.render_strips()
    return "\n".join(strip.text for strip in strips)


async def test_main_screen_shows_every_pane(recording: Path):
    app = make_app(recording)
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        instances = app.query_one("#instances-table", DataTable)
        assert [k.value for k in instances.rows] == ["stopped-one", "tiny"]
        assert app.selected_instance == "tiny"  # the live one is selected first
        containers = [k.value for k in app.query_one("#containers-table", DataTable).rows]
        assert containers[0] == "endpoint:host" and containers[-1] == "endpoint:instance:tiny"
        assert [k.value for k in app.query_one("#forwards-table", DataTable).rows] == ["22", "8080"]
        log = app.query_one(Log)
        assert log.line_count == 40 and log.lines[-1].endswith("synthetic kernel line 39")
        summary = str(app.query_one("#process-summary").render())
        assert "2 emulated processes · 41 % CPU" in summary
        assert 902 not in view_pids(app)  # removed by the last diff
        svg = screen_text(app)
        for text in (
            "tiny",
            "ready",
            "arm-loop",
            "emulated",
            "aarch64",
            "hello-arm64",
            "REPLAY",
            "host port 8080 in use",
        ):
            assert text in svg, text


async def test_error_states_say_what_happened(recording: Path):
    from envdeck.backend import events as ev

    app = make_app(recording)
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        assert "instance:tiny: guest has no docker.sock forward yet" in screen_text(app)
        app.model.apply(
            ev.BootStage(
                instance="tiny",
                stage="ssh authenticated",
                status="failed",
                elapsed_s=30.0,
                detail="host key mismatch",
            )
        )
        app.model.apply(ev.SerialOutput(instance="tiny", lines=["Kernel panic - not syncing: VFS"]))
        app.model.apply(
            ev.InstanceStatus(instance="tiny", state="crashed", reason="qemu exited with status 1")
        )
        app.flush()
        await pilot.pause()
        text = screen_text(app)
        assert "crashed: qemu exited with status 1" in text
        assert "Kernel panic - not syncing: VFS" in text  # the serial pane follows it
        assert "✗ ssh authenticated 30.0s" in text  # (one line: the rest is in the details)
        await pilot.press("1", "enter", "right_square_bracket")
        await actions_done(app)
        await pilot.pause(0.1)
        assert "(host key mismatch)" not in text and "host key mismatch" in screen_text(app)
        await pilot.press("escape")
        app.model.apply(ev.InstanceStatus(instance="tiny", state="deleted"))
        app.model.apply(ev.InstanceStatus(instance="stopped-one", state="deleted"))
        app.flush()
        await pilot.pause()
        assert "No instances. Press n to create one." in screen_text(app)
        assert app.selected_instance is None


@covers(
    "app.pane1",
    "app.pane2",
    "app.pane3",
    "app.pane4",
    "app.pane5",
    "app.next_pane",
    "app.prev_pane",
    "instance.serial",
    "instance.logs",
    "instance.forwards",
)
async def test_pane_focus_keys(recording: Path):
    app = make_app(recording)
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        for key, pane in (
            ("2", "containers"),
            ("3", "forwards"),
            ("4", "processes"),
            ("5", "serial"),
            ("1", "instances"),
        ):
            await pilot.press(key)
            assert pane_of(app) == pane
        await pilot.press("tab")
        assert pane_of(app) == "containers"
        await pilot.press("shift+tab", "shift+tab")
        assert pane_of(app) == "serial"
        for key, pane in (("a", "serial"), ("l", "serial"), ("f", "forwards")):
            await pilot.press("1", key)
            assert pane_of(app) == pane, key


@covers("app.help", "modal.close", "modal.close_q", "app.quit")
async def test_help_lists_every_binding_by_pane_and_closes(recording: Path):
    app = make_app(recording)
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        await pilot.press("4", "question_mark")
        assert isinstance(app.screen, TextScreen)
        visible = screen_text(app)
        assert "Keys — Processes first" in visible
        assert visible.index("Emulated only") < visible.index("Everywhere")  # context first
        console = Console(width=120, record=True)
        console.print(app.screen.body)
        text = console.export_text()
        for group in (
            "Everywhere",
            "Instances",
            "Containers",
            "Forwards",
            "Processes",
            "Serial log",
        ):
            assert group in text
        for binding_id in all_ids(app.help_groups()):
            assert binding_id in text
        await pilot.press("escape")
        assert not isinstance(app.screen, TextScreen)
        await pilot.press("question_mark", "q")
        assert not isinstance(app.screen, TextScreen)
        await pilot.press("1", "d", "q")  # q backs out of any modal, it does not quit from one
        assert not isinstance(app.screen, ConfirmScreen) and app.is_running
        await pilot.press("d", "3")  # pane keys do nothing under a modal
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")
        await pilot.press("q")
    assert app.return_code == 0


@covers(
    "instance.start",
    "instance.stop",
    "instance.restart",
    "instance.delete",
    "modal.cancel",
    "instance.pause",
)
async def test_instance_actions_call_the_backend_and_delete_confirms(recording: Path, backend):
    app = make_app(recording, backend=backend)
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        await pilot.press("S", "s", "r")
        await actions_done(app)
        assert [c[:2] for c in backend.calls] == [
            ("start_instance", "tiny"),
            ("stop_instance", "tiny"),
            ("restart_instance", "tiny"),
        ]
        backend.calls.clear()
        await pilot.press("p")  # pause; on a paused instance the same key resumes
        await actions_done(app)
        app.model.instances["tiny"] = dataclasses.replace(
            app.model.instances["tiny"], state="paused"
        )
        await pilot.press("p")
        await actions_done(app)
        assert [c[:2] for c in backend.calls] == [
            ("pause_instance", "tiny"),
            ("resume_instance", "tiny"),
        ]
        backend.calls.clear()
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.focused is app.screen.query_one("#cancel", Button)  # Cancel preselected
        await pilot.press("enter")  # Enter on arrival cancels
        await pilot.press("d", "escape")
        await actions_done(app)
        assert backend.calls == []
        await pilot.press("d", "tab", "enter")  # move to Delete deliberately
        await actions_done(app)
        assert backend.calls == [("delete_instance", "tiny", ("force", True))]


@covers("instance.new")
async def test_n_asks_for_name_template_and_size_then_creates_and_starts(recording: Path, backend):
    from envdeck.tui.screens.create import CreateScreen

    app = make_app(recording, backend=backend)
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        await pilot.press("1", "n")
        assert isinstance(app.screen, CreateScreen)
        assert app.screen.query_one("#create-name", Input).value == "default"  # as 'envdeck up'
        await pilot.press("ctrl+a", "ctrl+k", *"tiny", "enter")
        assert isinstance(app.screen, CreateScreen) and "'tiny' already exists" in screen_text(app)
        await pilot.press("ctrl+a", "ctrl+k", *"Bad Name", "enter")
        assert "invalid instance name" in screen_text(app)
        await pilot.press("ctrl+a", "ctrl+k", *"dev", "tab", "tab", *"2", "tab", *"1G", "enter")
        await actions_done(app)
        assert not isinstance(app.screen, CreateScreen)
        assert backend.calls == [
            (
                "create_instance",
                "dev",
                ("cpus", 2),
                ("memory_bytes", 1 << 30),
                ("template", "tiny"),
            ),
            ("start_instance", "dev"),
        ]
        assert any("created and started dev" in n.message for n in app._notifications)
        backend.calls.clear()
        await pilot.press("colon", *"create web", "enter")
        assert isinstance(app.screen, CreateScreen)
        await pilot.press("enter")
        await actions_done(app)
        assert backend.calls[0][:2] == ("create_instance", "web") and backend.calls[1] == (
            "start_instance",
            "web",
        )


async def test_readonly_disables_actions(recording: Path, backend):
    app = make_app(recording, backend=backend, readonly=True)
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        await pilot.press("S", "d", "n", "E")
        await pilot.press("4", "k")
        await actions_done(app)
        assert backend.calls == [] and not isinstance(app.screen, (ConfirmScreen, PickScreen))
        assert "READ-ONLY" in screen_text(app)


async def test_backend_errors_become_notifications(recording: Path):
    from envdeck.backend.errors import EnvdeckError

    class Failing(FakeBackend):
        async def start_instance(self, name: str) -> str:
            raise EnvdeckError(f"the agent of {name} is not available")

    app = make_app(recording, backend=Failing())
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        await pilot.press("S")
        await actions_done(app)
        await pilot.pause()
        assert any("not available" in n.message for n in app._notifications)
        assert app.is_running


@covers(
    "instance.commands",
    "instance.details",
    "instance.shell",
    "container.shell",
    "detail.close",
    "detail.prev_tab",
    "detail.next_tab",
)
async def test_x_shows_the_literal_command_enter_details_and_E_shell(
    recording: Path, backend, monkeypatch
):
    app = make_app(recording, backend=backend)
    ran: list[list[str]] = []
    monkeypatch.setattr(app, "run_interactive", ran.append)
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        await pilot.press("x")
        await actions_done(app)
        await pilot.pause()
        menu = screen_text(app)  # an action menu, each line with its literal command
        assert isinstance(app.screen, PickScreen) and "echo instance_qemu_argv tiny" in menu
        assert "envdeck stop tiny" in menu and "echo instance_shell_argv tiny" in menu
        await pilot.press("down", "enter")  # stop
        await actions_done(app)
        assert ("stop_instance", "tiny") in backend.calls
        await pilot.press("x")
        await actions_done(app)
        await pilot.pause()
        await pilot.press("end", "enter")  # qemu: the whole command lines
        await pilot.pause()
        assert isinstance(app.screen, TextScreen) and "QEMU:" in screen_text(app)
        await pilot.press("escape", "enter")
        await actions_done(app)
        assert isinstance(app.screen, DetailScreen) and re.search(r"state +ready", screen_text(app))
        await pilot.press("right_square_bracket")
        assert "✓ ssh authenticated" in screen_text(app)
        await pilot.press("right_square_bracket")
        assert "not available" in screen_text(app)  # no instance.yaml in this replay's home
        await pilot.press("right_square_bracket")
        assert "echo instance_qemu_argv tiny" in screen_text(app)
        await pilot.press("right_square_bracket", "left_square_bracket")
        assert "echo instance_qemu_argv tiny" in screen_text(app)
        await pilot.press("escape", "E")
        await actions_done(app)
        assert ran == [["echo", "instance_shell_argv", "tiny"]]
        await pilot.press("2", "down", "E")  # the first container (arm-loop, on host)
        await actions_done(app)
        assert ran[-1] == ["echo", "container_shell_argv", "host", "a1b2" * 16]


@covers(
    "container.start",
    "container.stop",
    "container.restart",
    "container.pause",
    "container.remove",
    "container.commands",
    "container.details",
)
async def test_container_actions(recording: Path, backend):
    app = make_app(recording, backend=backend)
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        await pilot.press("2", "down")
        await pilot.press("S", "s", "r", "p")
        await actions_done(app)
        cid = "a1b2" * 16
        assert [c[:4] for c in backend.calls] == [
            ("container_action", "host", cid, verb)
            for verb in ("start", "stop", "restart", "pause")
        ]
        backend.calls.clear()
        await pilot.press("d")
        assert isinstance(
            app.screen, ConfirmScreen
        ) and "docker -H unix:///run/docker.sock rm -f a1b2a1b2a1b2" in screen_text(app)
        await pilot.press("tab", "enter")
        await actions_done(app)
        assert backend.calls == [("container_action", "host", cid, "remove", ("force", True))]
        await pilot.press("x")
        assert isinstance(
            app.screen, PickScreen
        ) and "docker -H unix:///run/docker.sock restart a1b2a1b2a1b2" in screen_text(app)
        await pilot.press("escape", "enter")
        await actions_done(app)
        assert isinstance(app.screen, DetailScreen) and "busybox:arm64" in screen_text(app)
        await pilot.press("right_square_bracket")
        stats = screen_text(app)  # (from the backend, shown as the CLI does: units, %)
        assert re.search(r"cpu_percent +1\.5 %", stats) and re.search(
            r"memory_bytes +1\.0MiB", stats
        )
        await pilot.press("right_square_bracket")
        assert "sh -c while true; do :; done" in screen_text(app)  # Top: its processes
        await pilot.press("escape", "up", "S")  # on the endpoint row: nothing selected
        assert any("No container selected" in n.message for n in app._notifications)


@covers("container.logs", "logs.close", "logs.follow")
async def test_container_logs_follow_in_a_full_screen_view(recording: Path, backend):
    from envdeck.tui.screens.logs import LogScreen

    app = make_app(recording, backend=backend)
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        await pilot.press("2", "down", "l")
        assert isinstance(app.screen, LogScreen)
        await actions_done(app)
        await pilot.pause(0.2)
        log = app.screen.query_one(Log)
        assert log.line_count == 30 and log.lines[-1] == "log line 29"
        assert backend.calls == [("container_logs", "host", "a1b2" * 16, ("tail", 500))]
        await pilot.press("s")
        assert not log.auto_scroll
        await pilot.press("escape")
        assert not isinstance(app.screen, LogScreen)


@covers("forward.new", "forward.remove", "instance.new_forward")
async def test_new_and_remove_forward(recording: Path, backend):
    from envdeck.tui.screens.modals import PromptScreen

    app = make_app(recording, backend=backend)
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        await pilot.press("F")  # from the instances pane
        assert isinstance(app.screen, PromptScreen)
        await pilot.press(*"9090:19090", "enter")
        await actions_done(app)
        assert backend.calls == [("add_forward", "tiny", "9090:19090")]
        await pilot.press("3", "F", "escape")
        await pilot.press("d")
        assert isinstance(
            app.screen, ConfirmScreen
        ) and "Remove the forward of guest 22?" in screen_text(app)
        await pilot.press("tab", "enter")
        await actions_done(app)
        assert backend.calls[-1] == ("remove_forward", "tiny", "22")


async def test_a_wrong_forward_keeps_the_dialog_open_with_the_error(recording: Path, backend):
    from envdeck.tui.screens.modals import PromptScreen

    app = make_app(recording, backend=backend)
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        await pilot.press("3", "F", *"80:99999", "enter")
        assert isinstance(app.screen, PromptScreen)
        assert "host port 99999 is out of range" in screen_text(app)
        for _ in range(5):
            await pilot.press("backspace")
        await pilot.press("8", "0", "8", "0")
        assert "out of range" not in screen_text(app)  # (typing clears the error)
        await pilot.press("enter")
        await actions_done(app)
        assert not isinstance(app.screen, PromptScreen)
        assert backend.calls == [("add_forward", "tiny", "80:8080")]


@covers("forward.open", "forward.details")
async def test_forward_keys(recording: Path):
    backend = FakeBackend()
    app = make_app(recording, backend=backend)
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        await pilot.press("3", "w")
        await actions_done(app)
        assert ("open_in_browser", "http://127.0.0.1:60022/") in backend.calls
        assert any(n.message == "Opened http://127.0.0.1:60022/" for n in app._notifications)
        backend.browser = False  # a machine with no browser: say so, show the URL to copy
        await pilot.press("w")
        await actions_done(app)
        assert any(
            "No browser found" in n.message and "http://127.0.0.1:60022/" in n.message
            for n in app._notifications
        )
        await pilot.press("enter")
        await actions_done(app)
        assert isinstance(app.screen, DetailScreen) and "60022" in screen_text(app)


async def test_a_forward_shows_the_container_that_published_it(recording: Path):
    """Docker Desktop shows the container behind a published port: so does the forwards pane
    (a container of the instance's own dockerd publishing guest port 8080)."""
    from envdeck.backend import events as ev

    app = make_app(recording)
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        await pilot.press("3")
        await pilot.pause(0.3)  # the focus change has rendered: only the events below may
        web = ev.ContainerInfo(
            endpoint="instance:tiny",
            id="c0ffee",
            name="web",
            image="nginx",
            state="running",
            status="Up 1 second",
            ports=["0.0.0.0:8080->80/tcp", "[::]:8080->80/tcp"],
        )
        host_twin = dataclasses.replace(web, endpoint="host", id="beef", name="hostweb")
        app.model.apply(web)
        app.model.apply(host_twin)  # a host container publishing 8080 is not the guest's
        await pilot.pause(0.2)
        from envdeck.tui.panes.forwards import ForwardsPane

        table = app.query_one(ForwardsPane).main
        rows = ["|".join(str(c) for c in table.get_row_at(i)) for i in range(table.row_count)]
        assert any(r.startswith("8080|") and "auto ← web" in r for r in rows), rows
        assert not any("hostweb" in r for r in rows)
        assert not any(r.startswith("22|") and "←" in r for r in rows)
        table.move_cursor(row=next(i for i, r in enumerate(rows) if r.startswith("8080|")))
        await pilot.press("enter")
        await actions_done(app)
        assert isinstance(app.screen, DetailScreen)
        assert re.search(r"published_by +web", screen_text(app))


@covers(
    "process.filter",
    "process.emulated",
    "process.tree",
    "process.sort_cpu",
    "process.sort_mem",
    "process.sort_prev",
    "process.sort_next",
    "process.sort_invert",
    "process.up",
    "process.down",
    "process.pageup",
    "process.pagedown",
    "process.top",
    "process.bottom",
)
async def test_process_filter_toggle_sort(recording: Path):
    app = make_app(recording)
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        pane = app.query_one(ProcessesPane)
        await pilot.press("4")
        assert view_pids(app)[:3] == [1, 310, 1300]
        await pilot.press("e")
        assert view_pids(app) == [1, 310, 1300, 1301, 1400, 900, 901]
        rows = app.query_one(ProcessView).rows
        assert [r.row["pid"] for r in rows if r.matched] == [1400, 901]
        await pilot.press("e", "slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"hello", "enter")
        assert pane.options.filter == "hello" and view_pids(app)[-1] == 1400
        await pilot.press("slash", "escape")
        assert pane.options.filter == "" and isinstance(app.focused, ProcessView)
        await pilot.press("t")
        assert all(r.depth == 0 for r in app.query_one(ProcessView).rows)
        await pilot.press("P")
        assert view_pids(app)[:2] == [901, 1200]
        await pilot.press("I")
        assert view_pids(app)[-1] == 901
        await pilot.press("M")
        assert view_pids(app)[0] == 1200 and pane.options.sort == "mem"
        await pilot.press("greater_than_sign")
        assert pane.options.sort == "command"
        await pilot.press("less_than_sign", "less_than_sign")
        assert pane.options.sort == "cpu"
        view = app.query_one(ProcessView)
        await pilot.press("home", "down", "down")
        assert view.cursor == 2
        await pilot.press("up")
        assert view.cursor == 1
        await pilot.press("end")
        assert view.cursor == len(view.rows) - 1
        await pilot.press("pageup")
        assert view.cursor < len(view.rows) - 1
        await pilot.press("pagedown")
        assert view.cursor == len(view.rows) - 1


@covers(
    "process.collapse",
    "process.expand",
    "process.expand_all",
    "process.follow",
    "process.pause",
    "process.host",
    "process.commands",
    "process.details",
)
async def test_process_tree_keys(recording: Path):
    app = make_app(recording)
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        pane = app.query_one(ProcessesPane)
        await pilot.press("4", "down")  # sshd (310)
        await pilot.press("minus")
        assert 1300 not in view_pids(app) and 310 in view_pids(app)
        await pilot.press("plus")
        assert 1300 in view_pids(app)
        await pilot.press("asterisk")
        assert view_pids(app)[:3] == [1, 310, 402]
        await pilot.press("asterisk")
        assert 1301 in view_pids(app)
        await pilot.press("F")
        assert app.query_one(ProcessView).follow and "follow" in pane.border_title
        await pilot.press("Z")
        assert pane.paused and "PAUSED" in pane.border_title
        await pilot.press("Z", "h")
        assert pane.host == "host"  # only the host has processes in this replay
        await pilot.press("x")
        assert isinstance(app.screen, TextScreen) and "/usr/sbin/sshd -D" in screen_text(app)
        await pilot.press("escape", "end", "enter")
        await actions_done(app)
        assert isinstance(
            app.screen, DetailScreen
        ) and "qemu-system-x86_64 -name tiny" in screen_text(app)


@covers("process.signal")
async def test_signal_picker_then_confirm(recording: Path, backend):
    app = make_app(recording, backend=backend)
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        await pilot.press("4", "end", "k")  # qemu-system (1200) is last
        assert isinstance(app.screen, PickScreen)
        await pilot.press("enter")  # TERM is preselected
        assert isinstance(app.screen, ConfirmScreen) and "TERM (15)" in screen_text(app)
        await pilot.press("tab", "enter")
        await actions_done(app)
        assert backend.calls == [
            ("send_signal", 1200, 1780000000.0 - 1000 + 1200, int(signal.SIGTERM))
        ]


async def test_signal_in_the_guest_view_goes_to_the_guest_process(recording: Path, backend):
    from envdeck.backend import events as ev
    from tests.e2e.synthetic import _proc

    app = make_app(recording, backend=backend)
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        rows = [_proc(1, 0, ["init"]), _proc(70, 1, ["sleep", "99"])]
        for row in rows:
            row["start_ticks"] = 400 + row["pid"]
        app.model.apply(ev.ProcessDiff(host="tiny", full=True, added=rows))
        app.flush()
        await pilot.press("4", "h", "end", "k")
        assert isinstance(app.screen, PickScreen) and "in tiny" in screen_text(app)
        assert "QUIT" not in screen_text(app)  # (the guest's kill takes these names)
        await pilot.press("down", "down", "down", "enter")  # KILL
        assert isinstance(app.screen, ConfirmScreen)
        assert "Send KILL (9) to 70 in tiny?" in screen_text(app)
        await pilot.press("y")
        await actions_done(app)
        assert backend.calls == [("send_guest_signal", "tiny", 70, 470, "KILL")]


@covers(
    "serial.follow",
    "serial.end",
    "serial.fullscreen",
    "serial.save",
    "serial.search",
    "serial.timestamps",
    "serial.wrap",
)
async def test_serial_keys(recording: Path, tmp_path: Path):
    from envdeck.backend.store import InstanceDir

    app = make_app(recording)
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        pane = app.query_one("#serial")
        await pilot.press("5", "s")
        assert not app.query_one(Log).auto_scroll and "paused" in pane.border_title
        await pilot.press("end")
        assert app.query_one(Log).auto_scroll and "follow" in pane.border_title
        await pilot.press("t")
        assert re.fullmatch(
            r"\d\d:\d\d:\d\d \[ +1\.9500\] synthetic kernel line 39", app.query_one(Log).lines[-1]
        )
        await pilot.press("t")
        assert app.query_one(Log).lines[-1].startswith("[")
        long_line = "wide " + "x" * 400
        app.model.serial["tiny"].append(long_line)
        await pilot.press("w")  # wrap: the long line becomes rows no wider than the log
        rows = app.query_one(Log).lines
        width = app.query_one(Log).scrollable_content_region.width
        assert all(len(r) < width for r in rows) and "".join(rows[-5:]).endswith(long_line)
        await pilot.press("w")
        assert app.query_one(Log).lines[-1] == long_line
        await pilot.press("f")
        assert app.screen.maximized is pane
        await pilot.press("f")
        assert app.screen.maximized is None
        await pilot.press("ctrl+s")
        await actions_done(app)
        saved = list(tmp_path.glob("envdeck-tiny-*.log"))
        assert len(saved) == 1 and saved[0].read_text().count("\n") == 41  # 40 + the long line
        log = InstanceDir.of("tiny").serial_log
        log.parent.mkdir(parents=True)
        (log.parent / "serial.log.1").write_text("old boot: panic here\n")
        log.write_text("line a\nnew panic\n")
        await pilot.press("slash", *"panic", "enter")
        await actions_done(app)
        await pilot.pause()
        assert isinstance(app.screen, TextScreen)
        text = screen_text(app)
        assert "2 lines" in text and "serial.log.1:1: old boot: panic here" in text


@covers("app.command", "app.refresh", "app.palette")
async def test_command_mode_refresh_and_palette_theme(recording: Path):
    app = make_app(recording)
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        await pilot.press("colon", *"ps", "enter")
        assert pane_of(app) == "processes"
        await pilot.press("colon", *"theme envdeck-light", "enter")
        assert app.theme == "envdeck-light"
        await pilot.press("ctrl+r")
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Theme: envdeck-high", "enter")
        await pilot.pause(0.3)
        assert app.theme == "envdeck-high-contrast"
        await pilot.press("ctrl+p")
        await pilot.press(*"Containers: Pause", "enter")
        await pilot.pause(0.3)
        assert pane_of(app) == "containers"


async def test_keymap_from_config_remaps_by_binding_id(recording: Path, backend):
    app = make_app(
        recording,
        settings=UISettings(keymap={"instance.stop": "z", "instance.nope": "y"}),
        backend=backend,
    )
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        await pilot.press("s")
        await pilot.press("z")
        await actions_done(app)
        assert backend.calls == [("stop_instance", "tiny")]
        await pilot.press("question_mark")
        assert "z  Stop" in screen_text(app).replace("\xa0", " ")
        assert any("unknown binding ids instance.nope" in n.message for n in app._notifications)


async def test_a_small_terminal_shows_every_panes_rows(recording: Path):
    """80x24 (issue #16 item 5): rows first — notes are one line, columns give way by
    importance, the header drops whole parts, the footer shows most of the pane's keys."""
    app = make_app(recording)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        lines = screen_text(app).splitlines()
        text = "\n".join(lines)
        for row in ("stopped-one", "tiny ", "arm-loop", "web-amd64", "127.0.0.1:8080"):
            assert row in text, row
        assert "COMMAND" in text and "/sbin/init" in text
        assert "instance:tiny: guest has no docker" in text and "…" in text  # one line, cut
        header = lines[0]
        assert "2 instances (1 ready)" in header and "2 emulated processes" in header
        assert "load 0.50" not in header  # given way whole, not cut mid-word
        footer = lines[-1]
        assert all(k in footer for k in ("S Start", "d Delete", "E Shell", "a Serial")), footer
        widths = {len(line) for line in lines}
        assert widths == {80}, widths


async def test_columns_give_way_by_importance_and_come_back(recording: Path):
    app = make_app(recording)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app)
        table = app.query_one("#instances-table", DataTable)
        shown = [c.label.plain for c in table.columns.values()]
        assert shown[:2] == ["NAME", "STATE"] and "ACCEL" in shown and "CPU" not in shown
        header = screen_text(app).splitlines()[0]
        assert header.rstrip().endswith("% CPU")  # whole parts only
        app.query_one("#instances-table", DataTable).move_cursor(row=0)
        await pilot.resize_terminal(160, 48)
        await settle(pilot, app)
        shown = [c.label.plain for c in table.columns.values()]
        assert shown == ["NAME", "STATE", "ARCH", "ACCEL", "CPU", "MEM", "SSH", "UP"]
        assert app.selected_instance == "stopped-one"  # the cursor's row survives the rebuild


@covers("list.down", "list.up", "list.first", "list.last", "process.j", "process.g", "process.G")
@covers("serial.down", "serial.up", "serial.top", "serial.bottom")
async def test_j_k_g_G_move_in_every_list(recording: Path):
    app = make_app(recording)
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        await pilot.press("2", "g")
        table = app.query_one("#containers-table", DataTable)
        assert table.cursor_row == 0
        await pilot.press("j", "j")
        assert table.cursor_row == 2
        await pilot.press("k")
        assert table.cursor_row == 1
        await pilot.press("G")
        assert table.cursor_row == table.row_count - 1
        await pilot.press("1", "g")
        assert app.selected_instance == "stopped-one"
        await pilot.press("j")
        assert app.selected_instance == "tiny"
        view = app.query_one(ProcessView)
        await pilot.press("4", "G")
        assert view.cursor == len(view.rows) - 1
        await pilot.press("g", "j")
        assert view.cursor == 1
        log = app.query_one(Log)
        await pilot.press("5", "g")
        assert log.scroll_y == 0 and not log.auto_scroll
        await pilot.press("j")
        assert log.scroll_y == 1
        await pilot.press("k", "G")
        assert log.scroll_y == log.max_scroll_y


async def test_an_arrow_right_after_a_pane_key_goes_to_that_pane(recording: Path):
    app = make_app(recording)
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        containers = app.query_one("#containers-table", DataTable)
        instances = app.query_one("#instances-table", DataTable)
        before = instances.cursor_row
        for _ in range(3):
            await pilot.press("1")
            await pilot.press("2", "down")  # no pause between the pane key and the arrow
            assert pane_of(app) == "containers"
        assert instances.cursor_row == before and containers.cursor_row == 3


@covers("instance.filter", "container.filter", "forward.filter")
async def test_slash_filters_every_list_with_the_process_filter_syntax(recording: Path):
    app = make_app(recording)
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)

        def keys(table: str) -> list[str]:
            return [k.value for k in app.query_one(f"#{table}-table", DataTable).rows]

        await pilot.press("1", "slash", *"TINY", "enter")  # a regex, case-insensitive
        assert keys("instances") == ["tiny"]
        assert "/TINY" in str(app.query_one("#instances").border_title)
        await pilot.press("slash", "home", "exclamation_mark", "enter")  # ! inverts
        assert keys("instances") == ["stopped-one"]
        await pilot.press("slash", "escape")  # Esc clears
        assert keys("instances") == ["stopped-one", "tiny"]
        await pilot.press("G")
        assert app.selected_instance == "tiny"
        await pilot.press("2", "slash", *"arm6[4]", "enter")
        assert [k.split("|")[0] for k in keys("containers")] == ["host"]
        await pilot.press("3", "slash", *"auto", "enter")
        assert keys("forwards") == ["8080"]
        await pilot.press("slash", *"(", "enter")  # an invalid regex is matched as text
        assert keys("forwards") == []


@covers("confirm.yes", "confirm.no", "confirm.left", "confirm.right", "modal.cancel")
async def test_confirm_dialogs_take_y_n_and_arrows(recording: Path, backend: FakeBackend):
    app = make_app(recording, backend=backend)
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        await pilot.press("1", "d", "n")
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("d", "escape")
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("d", "right")
        assert app.focused is not None and app.focused.id == "confirm"
        await pilot.press("left")
        assert app.focused is not None and app.focused.id == "cancel"
        await pilot.press("enter")  # (Cancel)
        await actions_done(app)
        assert not [c for c in backend.calls if c[0] == "delete_instance"]
        await pilot.press("d", "y")
        await actions_done(app)
        assert ("delete_instance", "tiny", ("force", True)) in backend.calls


async def test_theme_command_says_what_it_did_and_light_borders_show(recording: Path):
    app = make_app(recording, theme="envdeck-light")
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        unfocused = app.query_one("#containers").styles.border_top[1]
        background = app.query_one("#containers").background_colors[0]
        assert abs(unfocused.brightness - background.brightness) > 0.1, (unfocused, background)
        await pilot.press("colon", *"theme nosuch", "enter")
        await pilot.pause()
        assert any("unknown theme 'nosuch'" in n.message for n in app._notifications)
        await pilot.press("colon", *"theme envdeck-dark", "enter")
        await pilot.pause()
        assert app.theme == "envdeck-dark"
        assert any(n.message == "theme: envdeck-dark" for n in app._notifications)


async def test_container_stop_shows_stopping_at_once_then_the_result(recording: Path):
    import asyncio

    class SlowDocker(FakeBackend):
        """Docker's stop waits for the container (up to its stop timeout)."""

        def __init__(self) -> None:
            super().__init__()
            self.release = asyncio.Event()

        async def container_action(self, endpoint, ref, action, *, force=False) -> str:
            await self.release.wait()
            return f"{action}: arm-loop"

    backend = SlowDocker()
    app = make_app(recording, backend=backend)
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        await pilot.press("2", "down", "s")
        await pilot.pause(0.1)
        row = next(ln for ln in screen_text(app).splitlines() if "│   arm-loop" in ln)
        assert "stopping…" in row
        backend.release.set()
        await actions_done(app)
        app.flush()
        await pilot.pause()
        row = next(ln for ln in screen_text(app).splitlines() if "│   arm-loop" in ln)
        assert "stopping…" not in row and "running" in row  # (the replay's state: unchanged)
        assert any(n.message == "stop: arm-loop" for n in app._notifications)
        backend.release = asyncio.Event()
        await pilot.press("r")
        await pilot.pause(0.1)
        assert "restarting…" in screen_text(app)
        backend.release.set()
        await actions_done(app)


async def test_details_read_as_the_cli_shows_them_not_raw_json(recording: Path):
    import time

    app = make_app(recording)
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        await pilot.press("4", "home", "enter", "right_square_bracket")  # pid 1, Details tab
        await actions_done(app)
        await pilot.pause(0.1)
        text = screen_text(app)
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(1_780_000_000.0 - 999))
        assert re.search(rf"start_time +{started} \(\S+ ago\)", text), text
        assert re.search(r"rss_bytes +12\.0MiB", text) and "1780" not in text
        await pilot.press("escape", "1", "enter")
        await actions_done(app)
        await pilot.pause(0.1)
        text = screen_text(app)
        assert "memory_bytes" in text and "MiB" in text and '"ts":' not in text
        assert "1780" not in text  # (no raw epoch seconds)


def test_every_key_in_the_help_is_exercised_here():
    app = EnvdeckApp([], settings=UISettings())
    ids = set(all_ids(app.help_groups()))
    missing = ids - COVERED
    assert not missing, f"help keys without a pilot test: {sorted(missing)}"
