"""The agent socket's wire form: JSON Lines both ways, and its commands declared once.

Requests: ``{"id": N, "cmd": "...", ...}``. Replies: ``{"id": N, "ok": true, "result": ...}`` or
``{"id": N, "ok": false, "error": "...", "hint": "..."}``. Pushed events: ``{"event": {...}}``
(the JSON form of :mod:`events`).

Each command is a frozen dataclass below: its ``name`` is the ``cmd`` field, its fields are the
typed arguments. The client builds them (:mod:`agent.client`), the server parses them back
with :func:`parse_request` and dispatches on their class (:mod:`agent.server`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass
from typing import Any, ClassVar

from envdeck.backend.errors import EnvdeckError

MAX_LINE = 16 << 20  # the longest line a client accepts (a large serial backlog)
MAX_REQUEST_LINE = 1 << 20  # the longest request line the agent accepts


class AgentUnavailable(EnvdeckError):
    """No agent answers on the instance's socket."""


class AgentError(EnvdeckError):
    """The agent refused or failed a command."""


class BadRequest(EnvdeckError):
    """A request line the agent cannot act on (not an object, unknown command, bad argument)."""


def encode(message: dict[str, Any]) -> bytes:
    """One protocol line."""
    return (json.dumps(message, separators=(",", ":"), default=str) + "\n").encode()


@dataclass(frozen=True)
class Request:
    """A command for the agent; each subclass names one and declares its arguments."""

    name: ClassVar[str]

    def wire(self, ident: int) -> dict[str, Any]:
        """The request as sent: ``{"id", "cmd", **arguments}``."""
        return {"id": ident, "cmd": self.name, **dataclasses.asdict(self)}


@dataclass(frozen=True)
class Status(Request):
    """The instance status."""

    name = "status"


@dataclass(frozen=True)
class Subscribe(Request):
    """Status, then the recent history and the last ``backlog`` serial lines, then live events."""

    name = "subscribe"
    backlog: int = 200

    def __post_init__(self) -> None:
        if self.backlog < 0:
            raise BadRequest(f"backlog must not be negative (got {self.backlog})")


@dataclass(frozen=True)
class FollowSerial(Request):
    """Where serial.log ends now; then serial output only, live."""

    name = "follow_serial"


@dataclass(frozen=True)
class Stop(Request):
    """Power down (then quit, then kill) within ``timeout`` seconds."""

    name = "stop"
    timeout: float = 20.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.timeout) or self.timeout < 0:
            raise BadRequest(f"timeout must be a non-negative number of seconds ({self.timeout})")


@dataclass(frozen=True)
class Pause(Request):
    """Freeze the guest."""

    name = "pause"


@dataclass(frozen=True)
class Resume(Request):
    """Let a paused guest run again."""

    name = "resume"


@dataclass(frozen=True)
class Suspend(Request):
    """Save the running guest to disk and end QEMU; the next start resumes it."""

    name = "suspend"


@dataclass(frozen=True)
class Forwards(Request):
    """The instance's forwards."""

    name = "forwards"


@dataclass(frozen=True)
class ForwardAdd(Request):
    """Add a manual forward ('8080', '80:8080', '80:0.0.0.0:8080')."""

    name = "forward_add"
    spec: str


@dataclass(frozen=True)
class ForwardRemove(Request):
    """Remove a forward by its guest port."""

    name = "forward_remove"
    guest: str


@dataclass(frozen=True)
class Stages(Request):
    """The boot stages so far."""

    name = "stages"


COMMANDS: dict[str, type[Request]] = {
    command.name: command
    for command in (
        Status,
        Subscribe,
        FollowSerial,
        Stop,
        Pause,
        Resume,
        Suspend,
        Forwards,
        ForwardAdd,
        ForwardRemove,
        Stages,
    )
}
_HINTS = {name: typing.get_type_hints(command) for name, command in COMMANDS.items()}


def _argument(command: str, field: str, kind: Any, value: Any) -> Any:
    """``value`` if it has the declared type (an int is a float too; a bool is neither)."""
    if isinstance(value, bool) or not (
        isinstance(value, kind) or (kind is float and isinstance(value, int))
    ):
        raise BadRequest(f"{command}: {field} must be {kind.__name__}, not {value!r:.40}")
    if kind is not float:
        return value
    try:
        return float(value)
    except OverflowError:
        raise BadRequest(f"{command}: {field} is out of range") from None


def parse_request(message: Any) -> Request:
    """The typed request in a decoded line; BadRequest says what is wrong with it.

    Fields the command does not declare are ignored (a newer client may send more)."""
    if not isinstance(message, dict):
        raise BadRequest(f"a request is a JSON object, not {type(message).__name__}")
    name = message.get("cmd")
    if not isinstance(name, str) or name not in COMMANDS:
        raise BadRequest(f"unknown command {name!r:.60}")
    command = COMMANDS[name]
    hints = _HINTS[name]
    args: dict[str, Any] = {}
    for field in dataclasses.fields(command):
        if field.name in message:
            args[field.name] = _argument(name, field.name, hints[field.name], message[field.name])
        elif field.default is dataclasses.MISSING:
            raise BadRequest(f"{name}: missing argument {field.name!r}")
    return command(**args)
