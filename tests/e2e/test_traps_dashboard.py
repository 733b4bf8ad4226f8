"""Issue #16 in the dashboard, on a real instance and the real backend (pilot): `S` and `E` on a
paused instance say so at once; a running instance deleted with `d` leaves the screen."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from envdeck.backend.instances.source import InstancesSource
from envdeck.tui.app import EnvdeckApp
from envdeck.tui.screens.modals import ConfirmScreen
from envdeck.tui.settings import UISettings
from tests.conftest import require_tool
from tests.e2e.tui_harness import HOST_LINE, TERMINAL
from tests.integration.instance_helpers import envdeck, kill_everything

pytestmark = pytest.mark.e2e

PAUSED = "dev is paused — `p` / `envdeck resume dev`"


async def wait_for(predicate, pilot, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        await pilot.pause(0.1)


def notices(app: EnvdeckApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


def test_paused_instance_keys_answer_at_once_and_delete_leaves_no_ghost(envdeck_home: Path):
    require_tool("qemu-system-x86_64", "qemu-img", "ssh")
    envdeck("create", "dev", check=True, timeout=900)
    envdeck("start", "dev", check=True)
    envdeck("pause", "dev", check=True)

    async def scenario() -> None:
        app = EnvdeckApp(
            [InstancesSource(rescan_s=2.0)], settings=UISettings(), host_info=lambda: HOST_LINE
        )
        async with app.run_test(size=TERMINAL) as pilot:
            model = app.model
            await wait_for(
                lambda: getattr(model.instances.get("dev"), "state", None) == "paused", pilot, 15
            )
            await pilot.press("1")
            for key in ("S", "E"):
                t0 = time.monotonic()
                await pilot.press(key)
                await wait_for(lambda: PAUSED in "\n".join(notices(app)), pilot, 3)
                assert time.monotonic() - t0 < 3
                app.clear_notifications()
            assert not any("Suspend" in text for text in notices(app))
            await pilot.press("d")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("tab", "enter")  # Delete (Cancel is preselected)
            await wait_for(lambda: "dev" not in model.instances, pilot, 30)
            await pilot.pause(3)  # a rescan later it is still gone
            assert "dev" not in model.instances

    try:
        asyncio.run(scenario())
    finally:
        kill_everything(envdeck_home)
