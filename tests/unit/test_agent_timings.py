"""The agent's stall timers: a setting read when the agent starts, scaled by ENVDECK_STALL_SCALE."""

from __future__ import annotations

from envdeck.backend.agent.timings import BOOT_DEADLINE_S, KVM_WATCHDOG_S, STALL_AFTER_S, Timings


def test_unset_or_empty_scale_keeps_the_defaults():
    for environ in ({}, {"ENVDECK_STALL_SCALE": ""}):
        timings = Timings.from_env(environ)
        assert timings == Timings()
        assert dict(timings.stall_after_s) == STALL_AFTER_S
        assert timings.boot_deadline_s == BOOT_DEADLINE_S


def test_scale_applies_to_stalls_and_deadline_not_to_the_kvm_watchdog():
    timings = Timings.from_env({"ENVDECK_STALL_SCALE": "0.2"})
    assert timings.stall_after_s["kernel booted"] == STALL_AFTER_S["kernel booted"] * 0.2
    assert timings.boot_deadline_s == BOOT_DEADLINE_S * 0.2
    assert timings.kvm_watchdog_s == KVM_WATCHDOG_S


def test_reading_the_setting_does_not_change_the_module_defaults():
    Timings.from_env({"ENVDECK_STALL_SCALE": "0.01"})
    assert Timings().stall_after_s["first serial output"] == 20.0
