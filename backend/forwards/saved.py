"""The forwards of a stopped instance, read and edited in its state.json.

What the agent opens at the next start: the YAML's single-port and socket rules, the user's
runtime adds (``forwards``: specs) and none of those the user removed (``removed_forwards``:
guest ports or socket paths, which also keep auto-forwarding off those ports). The rows have the
shape of ``envdeck forwards --json`` with the state ``stopped``.
"""

from __future__ import annotations

from typing import Any

from envdeck.backend.config import InstanceConfig
from envdeck.backend.errors import UserInputError
from envdeck.backend.forwards.manager import Forward, parse_spec, socket_rules, static_rules
from envdeck.backend.store import InstanceDir

STOPPED = "stopped"


def _saved_forwards(inst: InstanceDir, cfg: InstanceConfig) -> dict[str, Forward]:
    state = inst.read_state()
    removed = {str(key) for key in state.get("removed_forwards", [])}
    found: list[Forward] = [
        Forward(guest, host_ip, host_port, "rule", state=STOPPED)
        for guest, host_ip, host_port in static_rules(cfg.port_forwards)
    ]
    found += [
        Forward(0, "", 0, "rule", state=STOPPED, guest_socket=guest, host_socket=host)
        for guest, host in socket_rules(cfg.port_forwards, inst.root)
    ]
    for item in state.get("forwards", []):
        try:
            guest, host_ip, host_port = parse_spec(str(item.get("spec")))
        except UserInputError:  # the agent skips it too, with a warning in its log
            continue
        found.append(Forward(guest, host_ip, host_port, "manual", state=STOPPED))
    return {fwd.key: fwd for fwd in found if fwd.key not in removed}


def rows(inst: InstanceDir, cfg: InstanceConfig) -> list[dict[str, Any]]:
    """The forwards the next start opens (auto-forwards come when guest services listen)."""
    return [fwd.to_json() for fwd in _saved_forwards(inst, cfg).values()]


def add(inst: InstanceDir, cfg: InstanceConfig, spec: str) -> dict[str, Any]:
    """Save a runtime forward for the next start (and un-remove its guest port)."""
    guest, host_ip, host_port = parse_spec(spec)
    existing = _saved_forwards(inst, cfg).get(str(guest))
    if existing is not None:
        raise UserInputError(
            f"guest port {guest} is already forwarded to {existing.host}",
            hint=f"remove it first: envdeck forward {inst.name} remove {guest}",
        )
    state = inst.read_state()
    manual = [*state.get("forwards", []), {"spec": f"{guest}:{host_ip}:{host_port}"}]
    removed = sorted(set(state.get("removed_forwards", [])) - {str(guest)})
    inst.update_state(forwards=manual, removed_forwards=removed)
    return Forward(guest, host_ip, host_port, "manual", state=STOPPED).to_json()


def remove(inst: InstanceDir, cfg: InstanceConfig, guest: str) -> None:
    """Drop a saved forward and keep its port from coming back (rule or auto) until added."""
    if guest not in _saved_forwards(inst, cfg):
        raise UserInputError(
            f"no forward for guest port {guest}", hint=f"see 'envdeck forwards {inst.name}'"
        )
    state = inst.read_state()
    manual = [
        item
        for item in state.get("forwards", [])
        if str(item.get("spec", "")).split(":", 1)[0] != guest
    ]
    removed = sorted({*state.get("removed_forwards", []), guest})
    inst.update_state(forwards=manual, removed_forwards=removed)
