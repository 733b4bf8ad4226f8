"""The dashboard's first paint on the live sources (issue #14 item 2): the process rows come
first, flushed at once; the slower sources (asyncssh, the docker SDK) are made only after."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from envdeck.backend import live
from envdeck.tui.app import EnvdeckApp
from envdeck.tui.settings import UISettings
from envdeck.tui.widgets.procview import ProcessView
from tests.e2e.tui_harness import HOST_LINE, TERMINAL
from tests.unit.test_recording import TickSource

pytestmark = pytest.mark.e2e


async def test_process_rows_are_on_screen_before_the_slower_sources_are_made(monkeypatch):
    rows_when_made: list[int] = []
    app: EnvdeckApp

    def slower() -> TickSource:
        rows_when_made.append(len(app.query_one(ProcessView).rows))
        return TickSource(1.0)

    monkeypatch.setattr(
        live,
        "LIVE_SOURCES",
        (
            live.LIVE_SOURCES[0],  # the real process tree
            live.LiveSource("instances", "instances", slower),
            live.LiveSource("containers", "containers", slower),
        ),
    )
    app = EnvdeckApp(None, settings=UISettings(), host_info=lambda: HOST_LINE)
    async with app.run_test(size=TERMINAL):
        for _ in range(200):
            if len(rows_when_made) == 2:
                break
            await asyncio.sleep(0.05)
        assert len(rows_when_made) == 2 and all(rows_when_made), rows_when_made
        assert app.missing_sources == set() and app.hub.errors == []


async def test_the_footer_recomposes_only_when_its_keys_change():
    from textual.widgets._footer import FooterKey

    from envdeck.tui.widgets.footer import KeyFooter

    app = EnvdeckApp([], settings=UISettings(), host_info=lambda: HOST_LINE)
    async with app.run_test(size=TERMINAL) as pilot:
        await pilot.pause()
        footer = app.query_one(KeyFooter)
        keys = list(footer.query(FooterKey))
        footer.bindings_changed(app.screen)  # the same keys: nothing to do
        await pilot.pause()
        assert list(footer.query(FooterKey)) == keys and keys
        await pilot.press("2")  # the containers pane's keys
        await pilot.pause()
        shown = [k.description for k in footer.query(FooterKey)]
        assert shown != [k.description for k in keys] and "Exec shell" in shown, shown


async def test_the_first_screen_builds_only_what_it_shows():
    """Input lines (the / filters, the serial search) are mounted when first opened."""
    app = EnvdeckApp([], settings=UISettings(), host_info=lambda: HOST_LINE)
    async with app.run_test(size=TERMINAL) as pilot:
        await pilot.pause()
        hidden = [w for w in app.screen.walk_children() if not w.display]
        assert hidden == [], hidden
        await pilot.press("4", "slash")
        await pilot.pause()
        assert app.focused is not None and app.focused.id == "process-filter"
        await pilot.press("escape", "slash")
        await pilot.pause()
        assert len(app.query("#process-filter")) == 1  # opened again, not mounted twice


def test_the_dashboard_imports_its_dialogs_and_detail_views_when_first_opened():
    """Enter's details, the logs view and the dialogs are not part of the first frame."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, envdeck.tui.app; print(*sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    screens = {f"envdeck.tui.screens.{name}" for name in ("create", "details", "logs", "modals")}
    assert (screens | {"envdeck.tui.widgets.charts"}) & set(loaded) == set()


async def test_rows_scanned_before_the_app_starts_are_in_the_model_when_the_screen_is_built(
    monkeypatch,
):
    """``envdeck`` takes the first scan while the dashboard loads: its rows are applied before
    Textual composes the screen, so the first layout and paint have them."""
    monkeypatch.setattr(
        live,
        "LIVE_SOURCES",
        (
            live.LIVE_SOURCES[0],  # the real process tree
            live.LiveSource("instances", "instances", lambda: TickSource(1.0)),
            live.LiveSource("containers", "containers", lambda: TickSource(1.0)),
        ),
    )
    start = live.LiveStart()
    for _ in range(200):
        if start.first_ready:
            break
        await asyncio.sleep(0.02)
    assert start.first_ready
    rows_at_compose: list[bool] = []
    compose = EnvdeckApp.compose

    def probe(self: EnvdeckApp):  # noqa: ANN202 - the app's ComposeResult
        rows_at_compose.append(bool(self.model.processes))
        yield from compose(self)

    monkeypatch.setattr(EnvdeckApp, "compose", probe)
    app = EnvdeckApp(None, settings=UISettings(), host_info=lambda: HOST_LINE, live=start)
    async with app.run_test(size=TERMINAL) as pilot:
        await pilot.pause()
        assert app.query_one(ProcessView).rows
    assert rows_at_compose == [True]
