"""Docker CLI contexts for docker instances: ``envdeck-NAME`` points the host's ``docker`` at the
instance's forwarded socket (``docker --context envdeck-NAME ps``).

Made and removed with the docker SDK's context support (``docker.context``), in the Docker CLI's
config dir (``$DOCKER_CONFIG``, else ``~/.docker``). A context envdeck made carries a mark in its
metadata: a description and the directory of the instance it serves. A context of the same name
without that mark, or with the mark of another instance that still exists, is never touched:
:class:`ContextConflict` says so. A mark whose instance dir is gone (a deleted envdeck home) is a
stale context of ours and is replaced.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from envdeck.backend.containers.endpoints import docker_config_dir
from envdeck.backend.errors import EnvdeckError, UserInputError

PREFIX = "envdeck-"
#: the metadata field holding the instance directory of a context envdeck made
MARK = "EnvdeckInstanceDir"


class ContextConflict(UserInputError):
    """A context of the name envdeck wants exists and is not envdeck's for this instance."""


def context_name(instance: str) -> str:
    """The context of instance ``instance``."""
    return PREFIX + instance


def _context_class() -> Any:
    from docker.context import Context

    class EnvdeckContext(Context):
        """A context whose metadata says envdeck made it, and for which instance dir."""

        def __init__(self, name: str, host: str, instance_dir: Path) -> None:
            super().__init__(name, host=host)
            # as the Docker CLI writes it (the SDK would store its own 'http+unix://' form)
            self.endpoints["docker"] = {"Host": host, "SkipTLSVerify": False}
            self.instance_dir = instance_dir

        @property
        def Metadata(self) -> Any:  # noqa: N802 - the SDK's name
            meta: Any = super().Metadata
            meta["Metadata"]["Description"] = (
                f"envdeck instance {self.instance_dir.name} (removed by envdeck delete)"
            )
            meta["Metadata"][MARK] = str(self.instance_dir)
            return meta

    return EnvdeckContext


def _config_dir() -> Path:
    """The Docker CLI config dir, ready for the SDK's context store; EnvdeckError if unusable.

    The SDK places the store next to the config file it finds (and falls back to the current
    directory when there is none), so an empty ``config.json`` is written when there is none.
    """
    directory = docker_config_dir()
    if "DOCKER_CONFIG" in os.environ and not directory.is_dir():
        raise EnvdeckError(
            f"DOCKER_CONFIG is {directory}, which is not a directory: no docker context made",
            hint="create that directory or unset DOCKER_CONFIG",
        )
    try:
        directory.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise EnvdeckError(
            f"cannot create the docker config dir {directory}: {exc.strerror}",
            hint="create it yourself (mkdir -m 700 ~/.docker) or set DOCKER_CONFIG",
        ) from None
    config = directory / "config.json"
    if not os.access(directory, os.R_OK | os.W_OK | os.X_OK) or (
        config.exists() and not os.access(config, os.R_OK)
    ):
        raise EnvdeckError(
            f"the docker config dir {directory} is not readable and writable by you:"
            " no docker context made",
            hint=f"check the owner and mode of {directory} and {config}",
        )
    if not config.exists():
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("{}\n")
    return directory


def _meta_file(name: str) -> Path:
    from docker.context.config import get_meta_file

    return Path(get_meta_file(name))


def _read_meta(name: str) -> dict[str, Any] | None:
    """The context's meta.json, None when there is no such context; EnvdeckError if unreadable."""
    path = _meta_file(name)
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ContextConflict(
            f"the docker context {name} exists but cannot be read ({path}: {exc})",
            hint=f"look at it with 'docker context inspect {name}'; envdeck leaves it alone",
        ) from None
    return meta if isinstance(meta, dict) else {}


def _mark(meta: dict[str, Any]) -> str | None:
    inner = meta.get("Metadata")
    mark = inner.get(MARK) if isinstance(inner, dict) else None
    return mark if isinstance(mark, str) else None


def ensure(instance: str, instance_dir: Path, socket: Path) -> str:
    """Make (or keep) the context ``envdeck-INSTANCE`` for the instance in ``instance_dir``,
    whose guest docker socket is forwarded to ``socket``; returns its name.
    :class:`ContextConflict` when a context of that name is not ours."""
    from docker.context import ContextAPI

    name = context_name(instance)
    url = f"unix://{socket}"
    _config_dir()
    meta = _read_meta(name)
    if meta is not None:
        mark = _mark(meta)
        if mark is None:
            raise ContextConflict(
                f"a docker context named {name} exists and envdeck did not make it:"
                " it is left as it is, and no context was made for this instance",
                hint=f"use DOCKER_HOST={url}, or remove that context"
                f" ('docker context rm {name}') and start the instance again",
            )
        if mark != str(instance_dir) and Path(mark).exists():
            raise ContextConflict(
                f"the docker context {name} belongs to the envdeck instance in {mark}:"
                " it is left as it is",
                hint=f"use DOCKER_HOST={url} for this one",
            )
        host = ((meta.get("Endpoints") or {}).get("docker") or {}).get("Host")
        if mark == str(instance_dir) and host == url:
            return name
        ContextAPI.remove_context(name)  # ours, stale (its instance dir is gone)
    _context_class()(name, url, instance_dir).save()
    return name


def remove(instance: str, instance_dir: Path) -> bool:
    """Remove ``envdeck-INSTANCE`` if envdeck made it for ``instance_dir``; whether it did.

    Anything else of that name is left alone; a missing config dir means nothing to remove."""
    from docker.context import ContextAPI

    name = context_name(instance)
    if not docker_config_dir().is_dir() or not (docker_config_dir() / "config.json").exists():
        return False
    try:
        meta = _read_meta(name)
    except ContextConflict:
        return False
    if meta is None or _mark(meta) != str(instance_dir):
        return False
    ContextAPI.remove_context(name)
    return True
