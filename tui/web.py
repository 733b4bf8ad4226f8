"""``envdeck serve``: the dashboard in a browser, behind a per-launch token.

textual-serve runs one dashboard process per browser tab and relays its terminal over a
websocket; it has no authentication of its own. :class:`Gate` adds it: every page, static asset,
download and websocket needs the launch's token, given as ``?token=`` (the printed URL) or, after
a page was loaded with it, as a cookie scoped to this server (its port in the name; HttpOnly,
SameSite=Strict). A request whose ``Origin`` is not this server (a page of another site, or of
another local port) and, on a loopback bind, one whose ``Host`` is not a loopback name (DNS
rebinding) is refused too. Refusals are 403 with one line saying why.

The server libraries (textual-serve, aiohttp) are imported in :func:`serve` only.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from envdeck.backend.errors import EnvdeckError, UserInputError

if TYPE_CHECKING:
    from aiohttp import web

#: names a loopback bind answers to, besides the bind address itself
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server to this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, allow_remote: bool) -> str | None:
    """Refuse a non-loopback ``host`` unless ``allow_remote``; then return a warning to print."""
    if is_loopback(host):
        return None
    if not allow_remote:
        raise UserInputError(
            f"--host {host} would let other machines reach the dashboard",
            hint="keep the default 127.0.0.1 (use an SSH tunnel from elsewhere), "
            "or add --allow-remote if you mean it",
        )
    return (
        f"serving on {host}: anyone who can reach this address and gets the token can act on "
        "your instances and containers; the connection is plain HTTP (not encrypted)"
    )


def url_host(host: str) -> str:
    """``host`` as it is written in a URL (IPv6 in brackets)."""
    try:
        return f"[{host}]" if ipaddress.ip_address(host.strip("[]")).version == 6 else host
    except ValueError:
        return host


@dataclass(frozen=True)
class Gate:
    """Who may use the server: the holder of ``token``, from this server's own pages."""

    token: str
    port: int
    #: Host header values accepted (``host:port``); None accepts any (a wildcard bind)
    hosts: frozenset[str] | None

    @classmethod
    def for_bind(cls, host: str, port: int, token: str | None = None) -> Gate:
        """A gate with a fresh random token for a server bound to ``host:port``."""
        if is_loopback(host):
            names: frozenset[str] | None = frozenset(
                f"{name}:{port}" for name in (url_host(host), *LOOPBACK_NAMES)
            )
        elif host in ("0.0.0.0", "::", ""):
            names = None
        else:
            names = frozenset({f"{url_host(host)}:{port}"})
        return cls(token or secrets.token_urlsafe(32), port, names)

    @property
    def cookie(self) -> str:
        """The cookie's name: one per port (cookies are shared by every port of a host)."""
        return f"envdeck-serve-{self.port}"

    def token_matches(self, given: str | None) -> bool:
        """Constant-time comparison; any text (not only ASCII) is a wrong token, not an error."""
        if not given:
            return False
        return hmac.compare_digest(given.encode(), self.token.encode())

    def refusal(
        self, query: Mapping[str, str], cookies: Mapping[str, str], headers: Mapping[str, str]
    ) -> str | None:
        """Why a request is refused, or None when it may go on."""
        host = headers.get("Host", "")
        if self.hosts is not None and host.lower() not in self.hosts:
            return f"this server does not answer to the host name {host!r}"
        origin = headers.get("Origin")
        if origin is not None and origin.lower() != f"http://{host}".lower():
            return "requests from another site's page are refused"
        if "token" in query:
            if self.token_matches(query["token"]):
                return None
            return "wrong token: open the URL that 'envdeck serve' printed"
        if self.token_matches(cookies.get(self.cookie)):
            return None
        return "no token: open the URL that 'envdeck serve' printed (it ends in ?token=...)"


def dashboard_command(theme: str | None, readonly: bool) -> str:
    """The shell command textual-serve runs for each tab: this checkout's own envdeck."""
    argv = [sys.executable, "-m", "envdeck.backend.cli.main"]
    if theme:
        argv += ["--theme", theme]
    if readonly:
        argv.append("--readonly")
    return shlex.join(argv)


def public_url(host: str, port: int) -> str:
    """The server's address as the browser uses it (also where pages load assets from)."""
    if host in ("0.0.0.0", "::", ""):
        import socket

        host = socket.gethostname()
    return f"http://{url_host(host)}:{port}"


def serve(host: str, port: int, *, allow_remote: bool, theme: str | None, readonly: bool) -> int:
    """Serve the dashboard until Ctrl-C; returns the exit code."""
    host = host.strip("[]")  # an IPv6 address as written in a URL
    warning = check_bind(host, allow_remote)
    try:
        from textual_serve.server import Server
    except ModuleNotFoundError as exc:
        raise EnvdeckError(
            "the browser dashboard needs textual-serve", hint="pip install textual-serve"
        ) from exc
    _check_free(host, port)
    gate = Gate.for_bind(host, port)
    server = _server_class(Server)(
        gate, dashboard_command(theme, readonly), host, port, public_url(host, port), warning
    )
    server.serve()
    return 0


def _check_free(host: str, port: int) -> None:
    """Fail before printing a URL when ``host:port`` cannot be listened on."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UserInputError(
            f"--host {host}: not an address of this machine ({exc.strerror})",
            hint="use an IP address such as 127.0.0.1",
        ) from exc
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                why = "is in use" if exc.errno == errno.EADDRINUSE else f"fails: {exc.strerror}"
                raise UserInputError(
                    f"listening on {host}:{port} {why}", hint="pick another port with --port N"
                ) from exc


def _server_class(base: type) -> type:
    """textual-serve's Server with the gate, our own start-up lines and a clean Ctrl-C."""
    import asyncio
    import logging

    from aiohttp import web

    class DashboardServer(base):
        def __init__(
            self,
            gate: Gate,
            command: str,
            host: str,
            port: int,
            url: str,
            warning: str | None,
        ) -> None:
            super().__init__(command, host=host, port=port, title="envdeck", public_url=url)
            self.gate = gate
            self.warning = warning
            self.tabs: set[asyncio.Task[Any]] = set()  # the websocket handlers, one per tab
            self.announcing: asyncio.Task[None] | None = None

        def initialize_logging(self) -> None:
            super().initialize_logging()
            logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # URLs hold the token

        async def _make_app(self) -> web.Application:
            # The one hook into textual-serve's aiohttp app: it has no option for
            # authentication, so the gate is a middleware in front of every route.
            app = await super()._make_app()
            app.middlewares.append(self.check)
            return app

        @web.middleware
        async def check(self, request: web.Request, handler: Any) -> web.StreamResponse:
            reason = self.gate.refusal(request.query, request.cookies, request.headers)
            if reason is not None:
                return web.Response(status=403, text=f"403 Forbidden: {reason}\n")
            if request.path == "/ws":
                return await self._tab(handler, request)
            response = await handler(request)
            response.headers["Referrer-Policy"] = "no-referrer"  # the page's URL holds the token
            if request.path == "/" and "token" in request.query:
                response.set_cookie(
                    self.gate.cookie, self.gate.token, httponly=True, samesite="Strict", path="/"
                )
            return response

        async def _tab(self, handler: Any, request: web.Request) -> web.StreamResponse:
            task = asyncio.current_task()
            assert task is not None
            self.tabs.add(task)
            try:
                return await handler(request)
            finally:
                self.tabs.discard(task)

        async def on_shutdown(self, app: web.Application) -> None:
            # Ctrl-C: cancel each tab's handler now rather than after aiohttp's grace period;
            # textual-serve then tells its dashboard to quit and waits for it to end.
            for task in self.tabs:
                task.cancel()

        async def on_startup(self, app: web.Application) -> None:
            # Runs before aiohttp listens: the URL is printed once the port answers.
            self.announcing = asyncio.create_task(self._announce())

        async def _announce(self) -> None:
            while True:
                try:
                    _, writer = await asyncio.open_connection(self.host, self.port)
                except OSError:
                    await asyncio.sleep(0.02)
                    continue
                writer.close()
                break
            print(f"envdeck dashboard: {self.public_url}/?token={self.gate.token}", flush=True)
            if self.warning:
                print(f"warning: {self.warning}", file=sys.stderr, flush=True)
            print("each browser tab runs its own dashboard; Ctrl-C stops them all", flush=True)

    return DashboardServer
