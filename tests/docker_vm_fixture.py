"""One docker VM for every test that needs a booted docker-template instance (fixture
``docker_vm``).

Booting the x86_64 docker image under TCG takes 1-2 minutes, so the tests that only use the
running instance share one: booted on first use with its own ENVDECK_HOME, DOCKER_CONFIG and
HOME, the two busybox test images loaded, and stopped and deleted after its last user. Those
tests run one after another (see :func:`pytest_collection_modifyitems`), so the idle VM does not
run beside the rest of the suite. Each test starts and ends with no containers in it; a test that
leaves it not ready (or its SSH or docker not answering) fails at teardown, and the next user gets
a fresh VM. ``docker_vm_to_delete`` hands it to a test that stops and deletes it; it runs last.

Its HOME is a temp dir, so the template shares that home read-only (as root, /root is not shared)
and the home-mount test can use the same VM. Its SSH keepalive is 3 s, so that a paused guest's
SSH connection drops in about 9 s (the socket-forward fault test waits for that).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require, require_tool, shared_image_cache
from tests.integration import docker_images
from tests.integration.instance_helpers import envdeck, kill_everything

NAME = "dev"
SSH_KEEPALIVE_S = 3
USER_FIXTURE, DELETER_FIXTURE = "docker_vm", "docker_vm_to_delete"
_LAST_USER = pytest.StashKey[str]()


def require_docker_vm_tools() -> None:
    """What building and booting the docker template's image needs."""
    require(os.geteuid() == 0, "root (debootstrap builds the docker image)")
    require_tool("debootstrap", "mkfs.vfat", "mcopy", "sfdisk", "qemu-img", "qemu-system-x86_64")
    require(Path("/usr/share/OVMF/OVMF_CODE_4M.fd").exists(), "UEFI firmware (package ovmf)")


def docker(
    *args: str,
    stdin: bytes | None = None,
    timeout: float = 120,
    env: Mapping[str, str] | None = None,
) -> str:
    """The host's docker CLI (``env``: variables on top of the test's own); its stdout."""
    result = subprocess.run(
        ["docker", *args],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout.decode(errors="replace")


@dataclass(frozen=True)
class DockerVM:
    """A docker instance, ready, with the busybox test images (amd64, arm64) loaded."""

    name: str
    env: dict[str, str]  # what the CLI, the docker CLI and the sources need to reach it
    created: subprocess.CompletedProcess[str]
    started: subprocess.CompletedProcess[str]
    create_s: float
    start_s: float
    images: tuple[str, str]

    @property
    def home(self) -> Path:
        """Its ENVDECK_HOME."""
        return Path(self.env["ENVDECK_HOME"])

    @property
    def user_home(self) -> Path:
        """The HOME it was made with, shared read-only into the guest."""
        return Path(self.env["HOME"])

    @property
    def docker_config(self) -> Path:
        """The DOCKER_CONFIG holding its context."""
        return Path(self.env["DOCKER_CONFIG"])

    @property
    def context(self) -> tuple[str, str]:
        """The docker CLI arguments that select its context."""
        return ("--context", f"envdeck-{self.name}")

    @property
    def instance_dir(self) -> Path:
        return self.home / "instances" / self.name

    def remove_containers(self) -> None:
        """Remove every container in the guest (a test's leftovers)."""
        ids = docker(*self.context, "ps", "-aq", env=self.env).split()
        if ids:
            docker(*self.context, "rm", "-f", *ids, env=self.env)

    def problem(self) -> str | None:
        """Why it is not fit for the next test (not ready, SSH or docker not answering), or None."""
        listed = envdeck("list", "--json", env=self.env)
        rows = {row["name"]: row for row in json.loads(listed.stdout or "[]")}
        state = rows.get(self.name, {}).get("state")
        if state != "ready":
            return f"its state is {state!r}, not 'ready' {listed.stderr.strip()}".strip()
        if envdeck("exec", self.name, "--", "true", timeout=60, env=self.env).returncode != 0:
            return "'envdeck exec' fails"
        try:
            self.remove_containers()
        except (AssertionError, subprocess.TimeoutExpired) as exc:
            return f"docker through its context fails: {exc}"
        return None


class SharedDockerVM:
    """The session's docker VM: booted on first use, released after its last user."""

    def __init__(self, tmp: pytest.TempPathFactory) -> None:
        self._tmp = tmp
        self.vm: DockerVM | None = None
        self._home: Path | None = None  # set as soon as an instance may exist there
        self._env: dict[str, str] = {}
        self._failure: BaseException | None = None

    def get(self) -> DockerVM:
        """The running VM, booting one when there is none (a failed boot is not retried)."""
        if self._failure is not None:
            raise self._failure
        if self.vm is None:
            try:
                self.vm = self._boot()
            except BaseException as exc:
                self._failure = exc
                self._keep_logs()
                self.release()
                raise
        return self.vm

    def _boot(self) -> DockerVM:
        require_docker_vm_tools()
        images = docker_images.ensure_images(docker_images.docker_client_or_skip())
        root = self._tmp.mktemp("docker-vm")
        home, user_home, config = root / "envdeck-home", root / "home", root / "docker-config"
        user_home.mkdir()
        config.mkdir()
        self._home = home
        self._env = {
            "ENVDECK_HOME": str(home),
            "ENVDECK_CACHE": shared_image_cache(),
            "DOCKER_CONFIG": str(config),
            "HOME": str(user_home),
            "ENVDECK_SSH_KEEPALIVE": str(SSH_KEEPALIVE_S),
        }
        began = time.monotonic()
        created = envdeck(
            "create", NAME, "--template", "docker", check=True, timeout=2400, env=self._env
        )
        create_s, began = time.monotonic() - began, time.monotonic()
        started = envdeck("start", NAME, timeout=900, env=self._env)
        start_s = time.monotonic() - began
        assert started.returncode == 0, started.stdout + started.stderr
        vm = DockerVM(NAME, self._env, created, started, create_s, start_s, images)
        saved = subprocess.run(["docker", "save", *images], capture_output=True, check=True)
        docker(*vm.context, "load", stdin=saved.stdout, timeout=300, env=vm.env)
        return vm

    def _keep_logs(self) -> None:
        """A failed boot's logs, kept (and their tails printed) before the VM is deleted."""
        if self._home is None:
            return
        kept = self._home.parent / "failed-boot"
        kept.mkdir(exist_ok=True)
        for name in ("agent.log", "events.jsonl", "serial.log", "qemu.log"):
            source = self._home / "instances" / NAME / name
            if source.is_file():
                data = source.read_bytes()
                (kept / name).write_bytes(data)
                tail = data.decode(errors="replace").splitlines()[-15:]
                print(f"\n[docker VM boot failed] {name} (kept in {kept}):", *tail, sep="\n  ")

    def release(self) -> None:
        """Stop and delete the VM and kill what is left of it (only what this made)."""
        self.vm = None
        if self._home is None:
            return
        envdeck("stop", NAME, timeout=180, env=self._env)
        envdeck("delete", NAME, timeout=180, env=self._env)
        kill_everything(self._home)
        self._home = None


@pytest.fixture(scope="session")
def _shared_docker_vm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedDockerVM]:
    shared = SharedDockerVM(tmp_path_factory)
    try:
        yield shared
    finally:
        shared.release()


@pytest.fixture
def docker_vm(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    _shared_docker_vm: SharedDockerVM,
) -> Iterator[DockerVM]:
    """The shared docker VM ``dev``, with no containers; this test's environment reaches it
    (ENVDECK_HOME, DOCKER_CONFIG, HOME). Leave it ready, SSH and docker answering."""
    vm = _shared_docker_vm.get()
    for key, value in vm.env.items():
        monkeypatch.setenv(key, value)
    vm.remove_containers()
    yield vm
    if _shared_docker_vm.vm is not vm:
        return  # released meanwhile (docker_vm_to_delete)
    problem = vm.problem()
    if problem or request.node.nodeid == request.config.stash.get(_LAST_USER, None):
        _shared_docker_vm.release()
    if problem:
        pytest.fail(f"the test left the shared docker VM unfit for the next one: {problem}")


@pytest.fixture
def docker_vm_to_delete(
    docker_vm: DockerVM, _shared_docker_vm: SharedDockerVM
) -> Iterator[DockerVM]:
    """The shared docker VM, for a test that stops and deletes it (such tests run last)."""
    yield docker_vm
    _shared_docker_vm.release()  # whatever the test left of it


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the shared VM's users one after another (where the first one was), the ones that
    delete it last, so it is booted once and released before the rest of the suite runs."""
    users = [i for i in items if USER_FIXTURE in getattr(i, "fixturenames", ())]
    if not users:
        return
    deleters = [i for i in users if DELETER_FIXTURE in getattr(i, "fixturenames", ())]
    group = [i for i in users if i not in deleters] + deleters
    at = items.index(users[0])
    rest = [i for i in items if i not in group]
    items[:] = rest[:at] + group + rest[at:]
    config.stash[_LAST_USER] = group[-1].nodeid
