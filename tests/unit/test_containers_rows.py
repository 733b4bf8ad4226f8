"""Docker list entries and events -> rows (pure functions)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from envdeck.backend.containers.rows import (
    REFRESH_ACTIONS,
    container_name,
    event_action,
    event_container_id,
    format_ports,
    info_json,
    plan_batch,
    to_info,
)

ENTRY = {
    "Id": "f2a677f1343fd87229aee6139b9dd2217d6a2d85b1c0ab2928226151796cf798",
    "Names": ["/probe1"],
    "Image": "envdeck-test/busybox:arm64",
    "ImageID": "sha256:789a",
    "Created": 1795452326,
    "Ports": [{"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": 18080, "Type": "tcp"}],
    "State": "running",
    "Status": "Up 3 minutes",
}


def test_ports_like_docker_ps() -> None:
    ports = [
        {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
        {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
        {"PrivatePort": 53, "Type": "udp"},
        {"IP": "::1", "PrivatePort": 443, "PublicPort": 8443, "Type": "tcp"},
    ]
    assert format_ports(ports) == ["0.0.0.0:8080->80/tcp", "53/udp", "[::1]:8443->443/tcp"]
    assert format_ports(None) == []


def test_ipv6_only_binding_is_kept() -> None:
    ports = [{"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}]
    assert format_ports(ports) == ["[::]:8080->80/tcp"]


def test_names() -> None:
    assert container_name({"Names": ["/web"], "Id": "abc"}) == "web"
    # Legacy links add "/other/alias" names: the primary one has a single slash.
    assert container_name({"Names": ["/app/db", "/db"], "Id": "abc"}) == "db"
    assert container_name({"Names": [], "Id": "0123456789abcdef"}) == "0123456789ab"


def test_event_fields() -> None:
    event = {"Type": "container", "Action": "exec_start: sh -c ls", "Actor": {"ID": "abc"}}
    assert event_action(event) == "exec_start"
    assert event_container_id(event) == "abc"
    assert event_action({"status": "start", "id": "x"}) == "start"
    assert event_container_id({"Type": "network", "Actor": {"ID": "n"}}) is None


def test_to_info_and_json_keys() -> None:
    row = to_info("host", ENTRY, "linux/arm64", "amd64")
    assert (row.name, row.state, row.status, row.emulated) == (
        "probe1",
        "running",
        "Up 3 minutes",
        True,
    )
    assert row.ports == ["127.0.0.1:18080->80/tcp"]
    assert row.created == 1795452326.0
    data = info_json(row)
    for key in (
        "endpoint",
        "id",
        "name",
        "image",
        "state",
        "status",
        "ports",
        "platform",
        "emulated",
    ):
        assert key in data
    assert data["platform"] == "linux/arm64" and data["emulated"] is True
    assert to_info("host", ENTRY, "linux/amd64", "amd64").emulated is False


ACTIONS = [
    "create",
    "start",
    "die",
    "stop",
    "pause",
    "unpause",
    "destroy",
    "exec_start: sh",
    "attach",
    "rename",
    "resize",
]


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(ACTIONS)), max_size=30))
def test_plan_batch_follows_the_last_relevant_event(seq: list[tuple[str, str]]) -> None:
    events = [{"Type": "container", "Action": action, "Actor": {"ID": cid}} for cid, action in seq]
    refresh, removed = plan_batch(events)
    assert not set(refresh) & set(removed)
    assert len(refresh) == len(set(refresh)) and len(removed) == len(set(removed))
    for cid in "abc":
        relevant = [
            a for c, a in seq if c == cid and a.split(":")[0] in (*REFRESH_ACTIONS, "destroy")
        ]
        if not relevant:
            assert cid not in refresh and cid not in removed
        elif relevant[-1] == "destroy":
            assert cid in removed
        else:
            assert cid in refresh


def test_plan_batch_keeps_first_seen_order() -> None:
    events = [
        {"Action": a, "Actor": {"ID": c}}
        for c, a in [("b", "create"), ("a", "start"), ("b", "start"), ("c", "destroy")]
    ]
    assert plan_batch(events) == (["b", "a"], ["c"])
