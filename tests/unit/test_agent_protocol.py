"""The agent's commands: declared once, sent in the wire form older agents and clients speak."""

from __future__ import annotations

import json

import pytest

from envdeck.backend.agent import protocol as p
from envdeck.backend.agent.protocol import BadRequest, parse_request


def test_the_command_names_are_those_of_the_wire_protocol():
    assert set(p.COMMANDS) == {
        "status",
        "subscribe",
        "follow_serial",
        "stop",
        "pause",
        "resume",
        "suspend",
        "forwards",
        "forward_add",
        "forward_remove",
        "stages",
    }


@pytest.mark.parametrize(
    ("request_", "line"),
    [
        (p.Status(), {"id": 7, "cmd": "status"}),
        (p.Subscribe(backlog=0), {"id": 7, "cmd": "subscribe", "backlog": 0}),
        (p.FollowSerial(), {"id": 7, "cmd": "follow_serial"}),
        (p.Stop(timeout=20.0), {"id": 7, "cmd": "stop", "timeout": 20.0}),
        (p.ForwardAdd(spec="80:8080"), {"id": 7, "cmd": "forward_add", "spec": "80:8080"}),
        (p.ForwardRemove(guest="80"), {"id": 7, "cmd": "forward_remove", "guest": "80"}),
    ],
)
def test_requests_go_out_as_before_and_parse_back(request_: p.Request, line: dict):
    assert request_.wire(7) == line
    assert parse_request(json.loads(p.encode(line))) == request_


def test_arguments_default_and_extra_fields_are_ignored():
    assert parse_request({"cmd": "subscribe"}) == p.Subscribe(backlog=200)
    assert parse_request({"cmd": "stop", "timeout": 5, "why": "x"}) == p.Stop(timeout=5.0)


@pytest.mark.parametrize(
    ("message", "complaint"),
    [
        ([1, 2], "a request is a JSON object, not list"),
        (42, "a request is a JSON object, not int"),
        ({"id": 1}, "unknown command None"),
        ({"cmd": "reboot"}, "unknown command 'reboot'"),
        ({"cmd": ["status"]}, "unknown command ['status']"),
        ({"cmd": "subscribe", "backlog": "x"}, "subscribe: backlog must be int, not 'x'"),
        ({"cmd": "subscribe", "backlog": 1.5}, "backlog must be int"),
        ({"cmd": "subscribe", "backlog": True}, "backlog must be int"),
        ({"cmd": "subscribe", "backlog": -1}, "backlog must not be negative"),
        ({"cmd": "stop", "timeout": "soon"}, "timeout must be float"),
        ({"cmd": "stop", "timeout": float("nan")}, "non-negative number of seconds"),
        ({"cmd": "stop", "timeout": 10**400}, "timeout is out of range"),
        ({"cmd": "forward_add"}, "forward_add: missing argument 'spec'"),
        ({"cmd": "forward_remove", "guest": 80}, "guest must be str"),
    ],
)
def test_bad_requests_say_what_is_wrong(message, complaint: str):
    with pytest.raises(BadRequest) as caught:
        parse_request(message)
    assert complaint in caught.value.message
