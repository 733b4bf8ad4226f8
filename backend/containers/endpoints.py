"""Docker endpoints: where daemons are, and a docker SDK client for one of them.

Three kinds, each named the way events and the CLI show it:

* ``host``: ``$DOCKER_HOST``, else the default socket ``unix:///var/run/docker.sock``.
* ``instance:NAME``: an instance's forwarded guest socket: the docker template's (listed
  whether the instance runs or not: a stopped one reads "stopped"), or any
  ``home()/instances/NAME/docker.sock`` (listed while that file exists).
* ``context:NAME``: Docker CLI contexts, ``$DOCKER_CONFIG`` (default ``~/.docker``)
  ``/contexts/meta/*/meta.json``, with TLS material from ``contexts/tls/<id>/docker/``.

A context that points at the same URL as an endpoint already listed is skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from envdeck.backend.errors import EnvdeckError, UserInputError
from envdeck.backend.store import home

DEFAULT_URL = "unix:///var/run/docker.sock"


@dataclass(frozen=True)
class Endpoint:
    """One Docker daemon to talk to."""

    name: str  # "host", "instance:NAME", "context:NAME"
    url: str  # "unix:///path", "tcp://host:port", "ssh://..."
    tls_dir: str | None = None  # dir holding ca.pem / cert.pem / key.pem
    tls_verify: bool = False
    context: str | None = None  # the Docker CLI context name, for `docker --context`

    @property
    def socket_path(self) -> Path | None:
        """The socket file of a ``unix://`` endpoint, else None."""
        return Path(self.url[len("unix://") :]) if self.url.startswith("unix://") else None


def host_endpoint() -> Endpoint:
    """The host daemon: ``$DOCKER_HOST`` (with ``$DOCKER_CERT_PATH``), else the default socket."""
    url = os.environ.get("DOCKER_HOST") or DEFAULT_URL
    verify = os.environ.get("DOCKER_TLS_VERIFY", "") not in ("", "0")
    cert = os.environ.get("DOCKER_CERT_PATH") or (str(docker_config_dir()) if verify else None)
    return Endpoint(
        "host", url, tls_dir=cert if url.startswith("tcp://") else None, tls_verify=verify
    )


def docker_config_dir() -> Path:
    """The Docker CLI config dir: ``$DOCKER_CONFIG``, else ``~/.docker``."""
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")


def instance_endpoints(root: Path | None = None) -> list[Endpoint]:
    """``instance:NAME`` for each docker-template instance (its state names its socket) and
    each instance dir that holds a ``docker.sock``."""
    base = (root or home()) / "instances"
    sockets = {sock.parent.name: sock for sock in base.glob("*/docker.sock")}
    for state_file in base.glob("*/state.json"):
        try:
            recorded = json.loads(state_file.read_text()).get("docker_socket")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(recorded, str):
            sockets[state_file.parent.name] = Path(recorded)
    return [Endpoint(f"instance:{name}", f"unix://{sockets[name]}") for name in sorted(sockets)]


def instance_container_names(instance: str) -> Callable[[str], str | None]:
    """Container id -> name from the instance's forwarded docker socket (for its process tree:
    a container's processes are labelled with its name); None while the daemon is away."""
    from envdeck.backend.processes.cgroups import ContainerNames

    endpoint = next(
        (e for e in instance_endpoints() if e.name == f"instance:{instance}"),
        Endpoint(
            f"instance:{instance}", f"unix://{home() / 'instances' / instance / 'docker.sock'}"
        ),
    )

    def lister() -> list[dict]:
        client = make_client(endpoint, timeout=3)
        try:
            return list(client.api.containers(all=True))
        finally:
            client.close()

    return ContainerNames(lister, backoff=5.0).name


def parse_context_meta(meta: dict, config_dir: Path) -> Endpoint | None:
    """The endpoint a context's ``meta.json`` describes, or None when it has no docker host."""
    name = meta.get("Name")
    docker_ep = (meta.get("Endpoints") or {}).get("docker") or {}
    url = docker_ep.get("Host")
    if not name or not url:
        return None
    context_id = hashlib.sha256(name.encode()).hexdigest()
    tls = config_dir / "contexts" / "tls" / context_id / "docker"
    return Endpoint(
        f"context:{name}",
        url,
        tls_dir=str(tls) if tls.is_dir() else None,
        tls_verify=not docker_ep.get("SkipTLSVerify", False),
        context=name,
    )


def context_endpoints(config_dir: Path | None = None) -> list[Endpoint]:
    """Every Docker CLI context with a docker endpoint (unreadable files are skipped)."""
    cfg = config_dir or docker_config_dir()
    found = []
    for path in sorted((cfg / "contexts" / "meta").glob("*/meta.json")):
        try:
            endpoint = parse_context_meta(json.loads(path.read_text()), cfg)
        except (OSError, ValueError):
            continue
        if endpoint is not None:
            found.append(endpoint)
    return found


def discover() -> list[Endpoint]:
    """Host first, then instances, then contexts; each URL listed once."""
    seen: set[str] = set()
    result = []
    for endpoint in [host_endpoint(), *instance_endpoints(), *context_endpoints()]:
        if endpoint.url in seen:
            continue
        seen.add(endpoint.url)
        result.append(endpoint)
    return result


def resolve(name: str | None) -> Endpoint:
    """The endpoint called ``name``: None/"host", "instance:X", "context:X", a bare X, or a URL."""
    if name in (None, "", "host"):
        return host_endpoint()
    if "://" in name:
        return Endpoint(name, name)
    candidates = discover()
    for endpoint in candidates:
        if endpoint.name == name:
            return endpoint
    bare = [e for e in candidates if e.name.split(":", 1)[-1] == name]
    if len(bare) == 1:
        return bare[0]
    if name.startswith("instance:"):
        # Not forwarded yet: still a valid endpoint, reported unreachable with a clear reason.
        sock = home() / "instances" / name.split(":", 1)[1] / "docker.sock"
        if sock.parent.is_dir():
            return Endpoint(name, f"unix://{sock}")
    known = ", ".join(e.name for e in candidates)
    raise UserInputError(f"unknown docker endpoint {name!r}", hint=f"known endpoints: {known}")


def make_client(endpoint: Endpoint, *, timeout: float | None = 10, version: str = "auto"):
    """A ``docker.DockerClient`` for ``endpoint`` (raises docker's errors when unreachable).

    ``version="auto"`` asks the daemon (one request); pass a known version to skip that.
    """
    import docker  # lazily: importing the SDK costs ~100 ms

    tls: bool | docker.tls.TLSConfig = False
    if endpoint.tls_dir and not endpoint.url.startswith("unix://"):
        d = Path(endpoint.tls_dir)
        cert = (str(d / "cert.pem"), str(d / "key.pem")) if (d / "cert.pem").exists() else None
        ca = str(d / "ca.pem") if (d / "ca.pem").exists() else None
        verify: bool | str = ca if (endpoint.tls_verify and ca) else endpoint.tls_verify
        tls = docker.tls.TLSConfig(client_cert=cert, ca_cert=ca, verify=verify)
    # The SDK takes None (no timeout, for event streams) and floats; its stub says int.
    return docker.DockerClient(
        base_url=endpoint.url,
        version=version,
        timeout=timeout,  # type: ignore[arg-type]
        tls=tls,
    )


def unreachable_reason(endpoint: Endpoint, exc: BaseException) -> str:
    """A short human reason why ``endpoint`` did not answer."""
    sock = endpoint.socket_path
    if sock is not None and not sock.exists():
        return _instance_state(endpoint) or f"no socket at {sock}"
    text = str(exc)
    for marker in ("Connection refused", "Permission denied", "timed out", "No such file"):
        if marker.lower() in text.lower():
            return f"{marker.lower()} ({endpoint.url})"
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _instance_state(endpoint: Endpoint) -> str | None:
    """For an ``instance:NAME`` endpoint whose socket is gone: "stopped" when that instance
    exists and its agent is not running; None otherwise (running: the forward is not up yet)."""
    if not endpoint.name.startswith("instance:"):
        return None
    from envdeck.backend.pidrecord import live_record

    inst = home() / "instances" / endpoint.name.split(":", 1)[1]
    if not (inst / "instance.yaml").exists() or live_record(inst / "agent.pid"):
        return None
    return "stopped"


_VERSIONS: dict[str, str] = {}


def connect(endpoint: Endpoint, *, timeout: float | None = 10):
    """A client for a user command; raises :class:`EnvdeckError` when the daemon is unreachable.

    The negotiated API version is remembered per URL, so later clients skip that request.
    The caller closes the client.
    """
    import docker

    try:
        client = make_client(endpoint, timeout=timeout, version=_VERSIONS.get(endpoint.url, "auto"))
        if endpoint.url not in _VERSIONS:
            _VERSIONS[endpoint.url] = client.api.api_version
        return client
    except docker.errors.DockerException as exc:
        raise EnvdeckError(
            f"docker endpoint {endpoint.name} is unreachable: {unreachable_reason(endpoint, exc)}",
            hint="is dockerd running? ('sudo dockerd', 'systemctl start docker')",
        ) from exc
