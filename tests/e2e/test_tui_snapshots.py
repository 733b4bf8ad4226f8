"""SVG snapshots of the dashboard (pytest-textual-snapshot) on the synthetic replay.

Stable by construction: the replay plays at once and its clock stops at the last event, the
host line is fixed, no notifications. Accept changes with ``--snapshot-update`` after looking.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.tui_harness import TERMINAL, make_app, settle

pytestmark = pytest.mark.e2e


def run(
    snap_compare,
    recording: Path,
    press: tuple[str, ...] = (),
    size: tuple[int, int] = TERMINAL,
    **kwargs,
) -> bool:
    app = make_app(recording, **kwargs)

    async def ready(pilot) -> None:
        await settle(pilot, app)
        if press:
            await pilot.press(*press)
            await pilot.wait_for_scheduled_animations()
            await pilot.pause(0.1)  # focus moves (Cancel preselected) land before the shot

    return snap_compare(app, terminal_size=size, run_before=ready)


def test_main_screen(snap_compare, recording: Path):
    assert run(snap_compare, recording)


@pytest.mark.parametrize(
    "theme", ["envdeck-light", "envdeck-high-contrast", "envdeck-solarized-dark"]
)
def test_theme(snap_compare, recording: Path, theme: str):
    assert run(snap_compare, recording, theme=theme)


def test_emulated_only_process_view(snap_compare, recording: Path):
    assert run(snap_compare, recording, press=("4", "e"))


def test_help(snap_compare, recording: Path):
    assert run(snap_compare, recording, press=("question_mark",))


def test_confirm_delete_modal(snap_compare, recording: Path):
    assert run(snap_compare, recording, press=("d",))


@pytest.mark.parametrize("size", [(80, 24), (100, 30)], ids=["80x24", "100x30"])
def test_small_terminal(snap_compare, recording: Path, size: tuple[int, int]):
    """Every pane's rows at 80x24 and 100x30 (issue #16 item 5)."""
    assert run(snap_compare, recording, size=size)
