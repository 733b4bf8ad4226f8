"""The process pane repaints changed values without rebuilding its lines, and a pause holds.

A scan that only changes CPU %, RSS or state of rows (the idle case, ~every second) must still
show the new values on the next tick; rows that come or go, or a sort by the changed value,
build the lines again.
"""

from __future__ import annotations

from pathlib import Path

from envdeck.backend import events as ev
from envdeck.tui.app import EnvdeckApp
from envdeck.tui.widgets.procview import ProcessView
from tests.e2e.tui_harness import TERMINAL, make_app, settle


def line_of(app: EnvdeckApp, pid: int) -> str:
    """The text of ``pid``'s line as the view draws it."""
    view = app.query_one(ProcessView)
    index = next(i for i, line in enumerate(view.rows) if line.row["pid"] == pid)
    return view.render_line(index - view.scroll_offset.y).text


async def tick(app: EnvdeckApp, pilot, diff: ev.ProcessDiff) -> None:
    app.model.apply(diff)
    app.flush()
    await pilot.pause()


async def test_a_value_change_repaints_in_place_and_shows_at_once(recording: Path):
    app = make_app(recording)
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        view = app.query_one(ProcessView)
        lines = view.rows
        assert "  0.0 " in line_of(app, 310)
        await tick(
            app,
            pilot,
            ev.ProcessDiff(host="host", changed=[{"pid": 310, "cpu_percent": 42.5, "state": "R"}]),
        )
        assert view.rows is lines  # the same lines, repainted
        assert " 42.5 " in line_of(app, 310) and " R " in line_of(app, 310)
        await tick(app, pilot, ev.ProcessDiff(host="host", added=[{**lines[1].row, "pid": 311}]))
        assert view.rows is not lines and 311 in [line.row["pid"] for line in view.rows]


async def test_sorted_by_cpu_a_cpu_change_moves_the_row(recording: Path):
    app = make_app(recording)
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        await pilot.press("4", "t", "P")
        view = app.query_one(ProcessView)
        assert view.rows[0].row["pid"] != 310
        await tick(
            app, pilot, ev.ProcessDiff(host="host", changed=[{"pid": 310, "cpu_percent": 99.0}])
        )
        assert view.rows[0].row["pid"] == 310


async def test_a_paused_list_keeps_its_values_until_resumed(recording: Path):
    app = make_app(recording)
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        await pilot.press("4", "Z")
        await tick(
            app, pilot, ev.ProcessDiff(host="host", changed=[{"pid": 310, "cpu_percent": 42.5}])
        )
        app.query_one(ProcessView).refresh()
        await pilot.pause()
        assert " 42.5 " not in line_of(app, 310)
        await pilot.press("Z")
        assert " 42.5 " in line_of(app, 310)


async def test_only_lines_that_show_another_row_or_new_values_are_repainted(
    recording: Path, monkeypatch
):
    app = make_app(recording)
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        view = app.query_one(ProcessView)
        repainted: list[int] = []
        monkeypatch.setattr(view, "refresh_line", repainted.append)
        refresh = view.refresh

        def whole(*regions, repaint=True, **kwargs):  # -1: the whole view repainted
            if repaint and not regions:
                repainted.append(-1)
            return refresh(*regions, repaint=repaint, **kwargs)

        monkeypatch.setattr(view, "refresh", whole)
        sshd = next(i for i, line in enumerate(view.rows) if line.row["pid"] == 310)
        await tick(app, pilot, ev.ProcessDiff(host="host", changed=[{"pid": 1, "rss_bytes": 1}]))
        assert repainted == [0]
        repainted.clear()
        child = {**view.rows[sshd].row, "pid": 311, "ppid": 310}
        await tick(app, pilot, ev.ProcessDiff(host="host", added=[child]))
        assert view.rows[sshd + 1].row["pid"] == 311  # (sshd's first child: the lines below move)
        assert repainted == list(range(sshd + 1, len(view.rows)))


async def test_after_an_idle_while_a_change_still_shows_within_a_tick(recording: Path):
    """The refresh timer sleeps while nothing is dirty; an event wakes it."""
    app = make_app(recording)
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        await pilot.pause(0.5)
        app.model.apply(ev.ProcessDiff(host="host", changed=[{"pid": 310, "cpu_percent": 42.5}]))
        for _ in range(20):  # (no flush() here: the app's own timer must render it)
            await pilot.pause(0.02)
            if " 42.5 " in screen_text(app):
                break
        assert " 42.5 " in screen_text(app)


def screen_text(app: EnvdeckApp) -> str:
    """What a person sees (the compositor's lines), not what a widget would draw now."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())
