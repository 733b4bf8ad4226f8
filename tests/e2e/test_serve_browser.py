"""``envdeck serve`` in a real browser: headless Chromium from the distribution, driven by
selenium with the system chromedriver (no browser download). The page's xterm.js terminal is
read through its buffer (a hook installed before the page's scripts run), keys are typed into
it, and a screenshot is kept (its path is printed). The shell guard (``E`` in a browser) is
checked at the pilot level, where ``is_web`` is forced: no instance boots for it."""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from envdeck.tui.app import EnvdeckApp
from tests.conftest import require, require_tool
from tests.e2e.tui_harness import TERMINAL, actions_done, make_app, settle
from tests.unit.test_serve_http import serving

pytestmark = pytest.mark.e2e

#: keeps the page's terminal object reachable: textual.js keeps it in a closure; its class
#: sets ``websocket_url`` first, which this setter on Object.prototype catches
HOOK = """
Object.defineProperty(Object.prototype, 'websocket_url', {
  configurable: true,
  set(value) {
    window.__envdeckTerminal = this;
    Object.defineProperty(this, 'websocket_url',
      {value, writable: true, configurable: true, enumerable: true});
  },
});
"""

#: the terminal's screen as text, one line per row (null until the terminal exists)
SCREEN = """
const term = window.__envdeckTerminal && window.__envdeckTerminal.terminal;
if (!term) return null;
const rows = [];
for (let y = 0; y < term.rows; y++) {
  const line = term.buffer.active.getLine(y);
  rows.push(line ? line.translateToString(true) : '');
}
return rows.join('\\n');
"""


def artifacts(tmp_path: Path) -> Path:
    """Where screenshots go: $ENVDECK_TEST_ARTIFACTS, else the test's tmp dir."""
    where = Path(os.environ.get("ENVDECK_TEST_ARTIFACTS") or tmp_path)
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.fixture
def browser() -> Iterator[object]:
    """Headless Chromium through the system chromedriver (selenium-manager never runs)."""
    require_tool("chromium", "chromedriver")
    require(importlib.util.find_spec("selenium") is not None, "Python package selenium")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": HOOK})
        yield driver
    finally:
        driver.quit()


def wait_for(what: str, check: Callable[[], object], timeout: float = 60) -> object:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return found


def test_the_dashboard_in_a_browser_help_and_quit(browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    with serving(tmp_path) as served:
        driver.get(f"{served.base}/")  # no token
        assert "403" in driver.page_source and "no token" in driver.page_source
        driver.get(f"{served.base}/?token=not-it")
        assert "wrong token" in driver.page_source

        driver.get(served.url)
        screen = lambda: driver.execute_script(SCREEN) or ""  # noqa: E731
        wait_for("the dashboard's panes", lambda: "[1] Instances" in screen())
        assert "[4] Processes" in screen() and "Quit" in screen()
        shot = artifacts(tmp_path) / "serve-dashboard.png"
        assert driver.save_screenshot(str(shot))
        print(f"screenshot: {shot}")

        keys = driver.find_element(By.CSS_SELECTOR, ".xterm-helper-textarea")
        keys.send_keys("?")
        wait_for("the help", lambda: "remap by id" in screen())
        driver.save_screenshot(str(artifacts(tmp_path) / "serve-help.png"))
        keys.send_keys("q")  # closes the help
        wait_for("the help to close", lambda: "remap by id" not in screen())
        keys.send_keys("q")  # quits: the page says the session ended
        wait_for(
            "the session to end",
            lambda: "-closed" in (driver.find_element(By.TAG_NAME, "body").get_attribute("class")),
        )
        assert "Session ended." in driver.find_element(By.TAG_NAME, "body").text
        assert served.proc.poll() is None  # one tab quitting leaves the server serving others


async def test_E_in_a_browser_says_to_run_the_shell_in_a_terminal(
    recording: Path, backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(EnvdeckApp, "is_web", property(lambda app: True))
    app = make_app(recording, backend=backend)
    suspended: list[list[str]] = []
    monkeypatch.setattr(app, "run_interactive", suspended.append)
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        await pilot.press("E")
        await actions_done(app)
        await pilot.press("2", "down", "E")  # the first container (arm-loop, on host)
        await actions_done(app)
        await pilot.pause()
        said = [n.message for n in app._notifications]
        assert app.is_running and suspended == []
    assert any("needs a real terminal" in m and "envdeck shell tiny" in m for m in said), said
    assert any("envdeck container shell arm-loop --endpoint host" in m for m in said), said


async def test_w_in_a_browser_opens_the_forward_in_the_users_tab(
    recording: Path, backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's own browser is the wrong one: a served dashboard asks the page to open it."""
    monkeypatch.setattr(EnvdeckApp, "is_web", property(lambda app: True))
    app = make_app(recording, backend=backend)
    opened: list[str] = []
    monkeypatch.setattr(app, "open_url", lambda url, **kw: opened.append(url))
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        await pilot.press("3", "w")
        await actions_done(app)
    assert opened == ["http://127.0.0.1:60022/"]
    assert not any(call[0] == "open_in_browser" for call in backend.calls)
