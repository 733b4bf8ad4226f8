"""Guest listener parsing and forward rules (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from envdeck.backend.config import parse_config
from envdeck.backend.errors import UserInputError
from envdeck.backend.forwards.listeners import Listener, parse_listeners
from envdeck.backend.forwards.manager import auto_target, parse_spec, static_rules

# Recorded from the tiny guest: sshd on 0.0.0.0:22, httpd on :::8081, a client connection,
# and a listener bound to 127.0.0.1:5432.
PROC_NET = (Path(__file__).parent / "fixtures" / "guest-proc-net-tcp.txt").read_text()


def test_parse_listeners_v4_v6_and_states():
    found = parse_listeners(PROC_NET)
    assert found == {
        Listener("0.0.0.0", 22),
        Listener("127.0.0.1", 5432),
        Listener("::", 8097),
        Listener("::1", 8080),
    }
    assert Listener("::1", 8080).loopback_only and not Listener("0.0.0.0", 22).loopback_only


def rules(text: str):
    return parse_config(text).port_forwards


def test_auto_target_defaults_to_same_port_on_loopback_and_skips_ssh():
    assert auto_target(8080, ()) == ("127.0.0.1", 8080)
    assert auto_target(22, ()) is None


def test_first_matching_rule_decides():
    r = rules(
        "portForwards:\n  - guestPortRange: [8000, 8099]\n    hostPortRange: [18000, 18099]\n"
        "  - guestPort: 8050\n    ignore: true\n  - guestPortRange: [1, 65535]\n    ignore: true\n"
    )
    assert auto_target(8050, r) == ("127.0.0.1", 18050)
    assert auto_target(9000, r) is None


def test_host_ip_is_only_what_the_user_wrote():
    r = rules(
        "portForwards:\n  - guestPort: 80\n    hostPort: 8080\n    hostIP: 0.0.0.0\n"
        "  - guestPort: 81\n"
    )
    assert static_rules(r) == [(80, "0.0.0.0", 8080), (81, "127.0.0.1", 81)]


@pytest.mark.parametrize(
    "spec, parsed",
    [
        ("8080", (8080, "127.0.0.1", 8080)),
        ("80:18080", (80, "127.0.0.1", 18080)),
        ("80:0.0.0.0:18080", (80, "0.0.0.0", 18080)),
    ],
)
def test_parse_spec(spec, parsed):
    assert parse_spec(spec) == parsed


@pytest.mark.parametrize("bad", ["", "x", "80:y", "1:2:3:4"])
def test_parse_spec_rejects(bad):
    with pytest.raises(UserInputError):
        parse_spec(bad)
