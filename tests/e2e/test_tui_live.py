"""The dashboard on the real backend sources (no replay, no fakes)."""

from __future__ import annotations

import asyncio
import os
import subprocess

import pytest
from textual.widgets import DataTable

from envdeck.tui.app import EnvdeckApp
from envdeck.tui.panes.processes import ProcessesPane
from envdeck.tui.screens.modals import ConfirmScreen, PickScreen
from envdeck.tui.settings import UISettings
from envdeck.tui.widgets.procview import ProcessView
from tests.e2e.tui_harness import HOST_LINE, TERMINAL, actions_done

pytestmark = pytest.mark.e2e


async def wait_for(predicate, pilot, timeout: float = 15.0) -> None:
    """Poll ``predicate`` while the app runs; fail with a clear message on timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        await pilot.pause(0.1)


async def test_live_process_tree_filter_sort_and_signal():
    from envdeck.backend.processes.host import ProcessSource

    child = subprocess.Popen(["sleep", "300"])
    try:
        app = EnvdeckApp(
            [ProcessSource(interval=0.5)], settings=UISettings(), host_info=lambda: HOST_LINE
        )
        async with app.run_test(size=TERMINAL) as pilot:
            await wait_for(lambda: child.pid in app.model.processes.get("host", {}), pilot)
            pane = app.query_one(ProcessesPane)
            await pilot.press("4", "slash", *f"^{child.pid} ", "enter")
            app.flush()
            await pilot.pause()
            view = app.query_one(ProcessView)
            assert [r.row["pid"] for r in view.rows if r.matched] == [child.pid]
            assert view.rows[-1].row["pid"] == child.pid
            assert os.getpid() in [
                r.row["pid"] for r in view.rows
            ]  # its ancestors stay for context
            await pilot.press("end", "k")
            assert isinstance(app.screen, PickScreen)
            await pilot.press("enter")  # TERM
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("tab", "enter")
            await actions_done(app)
            assert child.wait(timeout=5) == -15  # the real send_signal reached it
            await pilot.press("slash", "escape", "t", "P")
            app.flush()
            await pilot.pause()
            cpus = [r.row.get("cpu_percent") or 0.0 for r in view.rows]
            assert pane.options.sort == "cpu" and cpus == sorted(cpus, reverse=True)
            await pilot.press("e")
            app.flush()
            assert all(r.row.get("emulated") for r in view.rows)
    finally:
        child.kill()
        child.wait()


async def test_default_live_sources_start_and_render():
    app = EnvdeckApp(None, settings=UISettings(), host_info=lambda: HOST_LINE)
    assert app.missing_sources == set(), app.notices
    async with app.run_test(size=TERMINAL) as pilot:
        await wait_for(lambda: app.model.processes.get("host"), pilot)
        await wait_for(lambda: app.model.endpoints, pilot, timeout=20)
        app.flush()
        await pilot.pause()
        rows = [k.value for k in app.query_one("#containers-table", DataTable).rows]
        assert "endpoint:host" in rows
        detail = str(app.query_one("#instances-detail").render())
        if not app.model.instances:
            assert "press n" in detail.lower()
        assert app.hub.errors == []
        assert app.is_running
