"""Provisioning and probes: the instance's ``provision:`` entries and ``probes:``, run in the
guest over SSH after boot, as Lima runs them.

Order (Lima's): ``boot`` scripts on every boot; then, once, ``dependency`` scripts, ``data``
files, ``yq`` edits, ``system`` scripts (as root) and ``user`` scripts (as the guest user,
created first with Lima's defaults: the host user's name and uid, passwordless sudo). "Once"
is kept by a marker in the guest (``/var/lib/envdeck/provisioned-<hash>``): a guest with a
persistent disk provisions once, and the tiny guest, whose root lives in RAM, provisions again
on every boot. ``yq`` edits are applied on the host (the guest may lack yq): the file is read
over SSH, changed here and written back. Probes then run as the guest user until they pass.
Every script sees ``env:`` and ``PARAM_<KEY>``; output streams line by line to ``emit``.
"""

from __future__ import annotations

import asyncio
import hashlib
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from envdeck.backend.config import GuestUser, InstanceConfig, ProbeSpec, ProvisionStep, yq
from envdeck.backend.config import default_user as lima_default_user

MARKER_DIR = "/var/lib/envdeck"
ONCE_ORDER = ("dependency", "data", "yq", "system", "user")
#: how long probes may take to pass, and the pause between tries
PROBE_DEADLINE_S = 600.0
PROBE_INTERVAL_S = 3.0

Emit = Callable[[str], None]


@dataclass(frozen=True)
class ProvisionResult:
    """How provisioning (and the probes) went: ``failed_step`` is None on success."""

    ran: bool
    failed_step: int | None = None
    exit_status: int | None = None
    output_tail: str = ""
    failed_probe: ProbeSpec | None = None

    @property
    def failed(self) -> bool:
        return self.failed_step is not None or self.failed_probe is not None

    @property
    def reason(self) -> str:
        """One line for the status: which step or probe failed, and its last output line."""
        last = self.output_tail.splitlines()[-1] if self.output_tail else ""
        if self.failed_probe is not None:
            hint = f" (hint: {self.failed_probe.hint.strip()})" if self.failed_probe.hint else ""
            return f"probe '{self.failed_probe.description}' did not pass: {last}{hint}"
        step, status = self.failed_step, self.exit_status
        return f"provision script {step} failed with exit status {status}: {last}"


@dataclass(frozen=True)
class ScriptEnv:
    """Who scripts run as, and what they see: ``env:`` and ``param:`` as PARAM_<KEY>."""

    user: GuestUser
    variables: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, cfg: InstanceConfig) -> ScriptEnv:
        params = tuple((f"PARAM_{k}", v) for k, v in cfg.param)
        return cls(cfg.user or lima_default_user(), (*cfg.env, *params))

    def exports(self) -> str:
        return "".join(f"export {k}={shlex.quote(v)}; " for k, v in self.variables)


def steps_digest(steps: tuple[ProvisionStep, ...]) -> str:
    """A short hash of the steps (a change re-provisions)."""
    digest = hashlib.sha256()
    for step in steps:
        digest.update(repr(step).encode())
    return digest.hexdigest()[:16]


def ordered(steps: tuple[ProvisionStep, ...]) -> list[tuple[int, ProvisionStep]]:
    """(number as written, step) in the order Lima runs them: boot first, then by mode."""
    numbered = list(enumerate(steps, 1))
    order = ("boot", *ONCE_ORDER)
    return sorted(numbered, key=lambda item: order.index(item[1].mode))


def ensure_user(user: GuestUser) -> str:
    """Shell that creates the guest user if missing (useradd, or busybox adduser), with
    passwordless sudo and lingering (a systemd --user session) where the guest has them. If
    the image gave the uid to another account already, the user gets the next free one."""
    name, home, uid = shlex.quote(user.name), shlex.quote(user.home), user.uid
    shell = shlex.quote(user.shell)
    return (
        f'sh_={shell}; [ -x "$sh_" ] || sh_=/bin/sh; '
        f'id -u {name} >/dev/null 2>&1 || useradd -m -u {uid} -d {home} -s "$sh_" {name}'
        f' 2>/dev/null || useradd -m -d {home} -s "$sh_" {name} 2>/dev/null'  # the uid is taken
        f' || adduser -D -u {uid} -h {home} -s "$sh_" {name}; '
        f"if [ -d /etc/sudoers.d ]; then echo '{user.name} ALL=(ALL) NOPASSWD:ALL'"
        f" > /etc/sudoers.d/90-envdeck-{user.name}; fi; "
        f"command -v loginctl >/dev/null && loginctl enable-linger {name} 2>/dev/null; true"
    )


def script_command(script: str, env: ScriptEnv, as_user: bool) -> str:
    """Run ``script`` from a temporary file (its #! line decides the interpreter; without one,
    ``sh -e``), as root or as the guest user in their home."""
    run = '"$f"' if script.startswith("#!") else 'sh -e "$f"'
    inner = f"{env.exports()}{run}"
    if as_user:
        user = env.user
        xdg = f"XDG_RUNTIME_DIR=/run/user/{user.uid}; export XDG_RUNTIME_DIR; "
        inner = f"cd {shlex.quote(user.home)} 2>/dev/null; {xdg}{inner}"
        inner = f"export f; su -s /bin/sh {shlex.quote(user.name)} -c {shlex.quote(inner)}"
    return (
        f"f=$(mktemp /tmp/envdeck-script.XXXXXX) && printf '%s' {shlex.quote(script)} > \"$f\""
        f' && chmod 755 "$f" && {{ {inner}; }} 2>&1; rc=$?; rm -f "$f"; exit $rc'
    )


def data_command(path: str, content: str, owner: str | None, mode: str, overwrite: bool) -> str:
    """Write ``content`` to ``path`` (new parent folders and the file owned by ``owner``)."""
    target = shlex.quote(path)
    owner_q = shlex.quote(owner or "root:root")
    keep = f"[ -e {target} ] && {{ echo 'kept the existing {path}'; exit 0; }}; "
    return (
        ("" if overwrite else keep)
        + f'd=$(dirname {target}); new=; while [ ! -d "$d" ]; do new="$d $new";'
        f' d=$(dirname "$d"); done; mkdir -p "$(dirname {target})"'
        f" && printf '%s' {shlex.quote(content)} > {target}"
        f" && chown {owner_q} {target} $new && chmod {mode} {target} && echo 'wrote {path}'"
    )


async def _stream(conn: Any, command: str, label: str, emit: Emit) -> tuple[int, str]:
    tail: list[str] = []
    async with conn.create_process(command) as process:
        async for line in process.stdout:
            text = line.rstrip("\n")
            tail = (tail + [text])[-10:]
            emit(f"{label} {text}")
        await process.wait()
        status = process.exit_status
    return (status if status is not None else 255), "\n".join(tail)


async def _yq_command(conn: Any, step: ProvisionStep) -> str:
    """The data command that writes the yq-edited file (read over SSH, edited here)."""
    path = step.path or ""
    read = await conn.run(f"cat {shlex.quote(path)} 2>/dev/null", check=False)
    current = str(read.stdout or "") if read.exit_status == 0 else ""
    text = yq.apply(current, yq.format_of(path, step.file_format), yq.parse(step.expression or ""))
    return data_command(path, text, step.owner, step.permissions or "644", True)


async def run_step(
    conn: Any, step: ProvisionStep, env: ScriptEnv, label: str, emit: Emit
) -> tuple[int, str]:
    """Run one entry; (exit status, output tail)."""
    if step.mode == "data":
        command = data_command(
            step.path or "",
            step.content or "",
            step.owner,
            step.permissions or "644",
            step.overwrite,
        )
    elif step.mode == "yq":
        try:
            command = await _yq_command(conn, step)
        except yq.YqError as exc:
            emit(f"{label} {exc}")
            return 1, str(exc)
    else:
        command = script_command(step.script, env, as_user=step.mode == "user")
    return await _stream(conn, command, label, emit)


def needs_user(cfg: InstanceConfig) -> bool:
    """Whether the guest user must exist: user scripts, probes, or files it owns."""
    name = (cfg.user or lima_default_user()).name
    return bool(cfg.probes) or any(
        s.mode == "user" or (s.owner or "").split(":")[0] == name for s in cfg.provision
    )


async def run_provisioning(
    conn: Any,
    steps: tuple[ProvisionStep, ...],
    emit_line: Emit,
    env: ScriptEnv | None = None,
) -> ProvisionResult:
    """Boot steps every time; the others unless this guest has the marker; stop at the first
    failure."""
    if not steps:
        return ProvisionResult(ran=False)
    env = env or ScriptEnv(lima_default_user())
    marker = f"{MARKER_DIR}/provisioned-{steps_digest(steps)}"
    check = await conn.run(f"test -e {marker}", check=False)
    done = check.exit_status == 0
    todo = [(n, s) for n, s in ordered(steps) if s.mode == "boot" or not done]
    for number, step in todo:
        emit_line(f"[provision {number}/{len(steps)} {step.mode}] starting")
        status, tail = await run_step(conn, step, env, f"[provision {number}]", emit_line)
        if status != 0:
            emit_line(f"[provision {number}] failed with exit status {status}")
            return ProvisionResult(True, number, status, tail)
        emit_line(f"[provision {number}] done")
    if not done:
        await conn.run(f"mkdir -p {MARKER_DIR} && touch {marker}", check=False)
    return ProvisionResult(ran=bool(todo))


async def run_probes(
    conn: Any,
    probes: tuple[ProbeSpec, ...],
    env: ScriptEnv,
    emit_line: Emit,
    deadline_s: float = PROBE_DEADLINE_S,
) -> ProvisionResult:
    """Each probe, as the guest user, until it passes or the deadline is past."""
    end = time.monotonic() + deadline_s
    for probe in probes:
        label = f"[probe {probe.description}]"
        emit_line(f"{label} starting")
        while True:
            status, tail = await _stream(
                conn, script_command(probe.script, env, as_user=True), label, emit_line
            )
            if status == 0:
                emit_line(f"{label} passed")
                break
            if time.monotonic() > end:
                emit_line(f"{label} failed: {probe.hint or 'no hint given'}")
                return ProvisionResult(True, None, status, tail, failed_probe=probe)
            emit_line(f"{label} not yet (exit status {status}); trying again")
            await asyncio.sleep(PROBE_INTERVAL_S)
    return ProvisionResult(ran=bool(probes))


async def provision_guest(conn: Any, cfg: InstanceConfig, emit_line: Emit) -> ProvisionResult:
    """The guest user if needed, the provision entries, then the probes."""
    env = ScriptEnv.of(cfg)
    if needs_user(cfg):
        await conn.run(ensure_user(env.user), check=False)
    result = await run_provisioning(conn, cfg.provision, emit_line, env)
    if result.failed_step is not None or not cfg.probes:
        return result
    probed = await run_probes(conn, cfg.probes, env, emit_line)
    return probed if probed.failed_probe else result
