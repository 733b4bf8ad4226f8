"""Benchmarks print their ratios; pytest would swallow that output on a passing run. Collect
what each benchmark prints and show it in a "benchmarks" section of the session summary, so
CI's log carries the numbers."""

from __future__ import annotations

import pytest

_REPORTS: list[tuple[str, str]] = []


@pytest.fixture(autouse=True)
def _keep_benchmark_output(request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]):
    yield
    out = capsys.readouterr().out.strip()
    if out:
        _REPORTS.append((request.node.nodeid, out))


def pytest_terminal_summary(terminalreporter) -> None:
    """Print every benchmark's output after the test results."""
    if not _REPORTS:
        return
    terminalreporter.section("benchmarks (ratios against anchors measured in the same run)")
    for nodeid, out in _REPORTS:
        terminalreporter.write_line(nodeid)
        for line in out.splitlines():
            terminalreporter.write_line("    " + line)
