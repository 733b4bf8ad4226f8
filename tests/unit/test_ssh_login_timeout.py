"""The first login's time limit grows with how slowly the guest booted (a slow Debian VM's
OpenSSH banner must not cost a whole retry), within a floor and a cap."""

from __future__ import annotations

import pytest

from envdeck.backend.ssh.link import LOGIN_TIMEOUT_CAP_S, LOGIN_TIMEOUT_S, login_timeout


@pytest.mark.parametrize("port_open_after", [None, 0.0, 3.5, 20.0])
def test_a_quick_or_unknown_guest_gets_the_floor(port_open_after):
    assert login_timeout(port_open_after) == LOGIN_TIMEOUT_S


def test_a_slow_guest_gets_a_share_of_its_boot_time():
    assert login_timeout(60.0) == pytest.approx(15.0)
    assert login_timeout(60.0) > login_timeout(30.0) > LOGIN_TIMEOUT_S


def test_the_limit_is_capped():
    assert login_timeout(3600.0) == LOGIN_TIMEOUT_CAP_S
