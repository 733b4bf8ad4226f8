"""``envdeck serve``'s gate and bind rules (envdeck.tui.web), without a server."""

from __future__ import annotations

import pytest

from envdeck.backend.errors import UserInputError
from envdeck.tui.web import Gate, check_bind, dashboard_command, is_loopback

TOKEN = "s3cret-Token_value"


def gate(host: str = "127.0.0.1", port: int = 8000) -> Gate:
    return Gate.for_bind(host, port, token=TOKEN)


def ask(g: Gate, query=None, cookies=None, host="127.0.0.1:8000", origin=None) -> str | None:
    headers = {"Host": host} | ({"Origin": origin} if origin else {})
    return g.refusal(query or {}, cookies or {}, headers)


def test_the_right_token_passes_in_the_query_or_in_this_ports_cookie() -> None:
    g = gate()
    assert ask(g, query={"token": TOKEN}) is None
    assert ask(g, cookies={"envdeck-serve-8000": TOKEN}) is None
    assert ask(g, query={"token": TOKEN}, host="localhost:8000") is None


@pytest.mark.parametrize(
    ("query", "cookies", "reason"),
    [
        ({}, {}, "no token"),
        ({"token": ""}, {}, "wrong token"),
        ({"token": TOKEN[:-1]}, {}, "wrong token"),
        ({"token": TOKEN + "x"}, {}, "wrong token"),
        ({"token": "é" * 18}, {}, "wrong token"),  # not ASCII: refused, not an error
        ({"token": "wrong"}, {"envdeck-serve-8000": TOKEN}, "wrong token"),
        ({}, {"envdeck-serve-8000": "wrong"}, "no token"),
        ({}, {"envdeck-serve-9000": TOKEN}, "no token"),  # another server's cookie
    ],
)
def test_a_missing_or_wrong_token_is_refused(query, cookies, reason) -> None:
    refusal = ask(gate(), query=query, cookies=cookies)
    assert refusal is not None and reason in refusal


def test_a_page_of_another_origin_is_refused_even_with_the_token() -> None:
    g = gate()
    cookie = {"envdeck-serve-8000": TOKEN}
    assert ask(g, cookies=cookie, origin="http://127.0.0.1:8000") is None
    for origin in ("http://127.0.0.1:9999", "http://evil.example", "null"):
        refusal = ask(g, cookies=cookie, origin=origin)
        assert refusal is not None and "another site" in refusal


def test_a_loopback_server_answers_to_loopback_names_only() -> None:
    """DNS rebinding: a foreign name pointed at 127.0.0.1 still carries its own Host."""
    g = gate()
    for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000"):
        assert ask(g, query={"token": TOKEN}, host=host) is None
    for host in ("evil.example:8000", "127.0.0.1:8001", ""):
        refusal = ask(g, query={"token": TOKEN}, host=host)
        assert refusal is not None and "host name" in refusal


def test_a_wildcard_bind_takes_any_host_name_but_still_its_own_origin() -> None:
    g = gate("0.0.0.0")
    cookie = {"envdeck-serve-8000": TOKEN}
    assert ask(g, cookies=cookie, host="box.lan:8000", origin="http://box.lan:8000") is None
    assert ask(g, cookies=cookie, host="box.lan:8000", origin="http://other:8000") is not None


def test_each_launch_has_its_own_long_random_token() -> None:
    a, b = Gate.for_bind("127.0.0.1", 8000), Gate.for_bind("127.0.0.1", 8000)
    assert a.token != b.token and len(a.token) >= 40


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_binds_are_allowed_without_a_word(host: str) -> None:
    assert is_loopback(host)
    assert check_bind(host, allow_remote=False) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "example.org"])
def test_a_remote_bind_is_refused_unless_asked_for_and_then_warned_about(host: str) -> None:
    with pytest.raises(UserInputError) as refused:
        check_bind(host, allow_remote=False)
    assert refused.value.exit_code == 2
    assert host in refused.value.message and "--allow-remote" in (refused.value.hint or "")
    warning = check_bind(host, allow_remote=True)
    assert warning is not None and host in warning and "token" in warning


def test_each_tab_runs_this_checkouts_envdeck_not_one_on_path() -> None:
    import shlex
    import sys

    argv = shlex.split(dashboard_command("dark", readonly=True))
    assert argv == [
        sys.executable,
        "-m",
        "envdeck.backend.cli.main",
        "--theme",
        "dark",
        "--readonly",
    ]
