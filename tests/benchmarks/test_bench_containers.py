"""Containers source (events stream) vs a 1 s ``docker ps`` polling loop, both measured here,
with N containers running. Prints the numbers and ratios; never asserts a time.

* latency: from calling ``docker start`` on a probe container to its ``running`` row reaching a
  Hub subscriber, vs to the polling loop first seeing it running;
* idle CPU per minute (this process, and dockerd) of the source vs the polling loop.

The issue asks for 200 containers; on the 2-core test machines the default is 50
(``ENVDECK_BENCH_CONTAINERS=200`` for the full size). ``ENVDECK_BENCH_IDLE_S`` (default 20) is
the length of each idle CPU window, ``ENVDECK_BENCH_TRIALS`` (default 10) the latency rounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import docker
import psutil
import pytest

from envdeck.backend.containers.endpoints import host_endpoint
from envdeck.backend.containers.source import ContainersSource
from envdeck.backend.events import ContainerInfo
from envdeck.backend.sources import Hub
from tests.integration.docker_images import AMD64, docker_client_or_skip

pytestmark = [pytest.mark.benchmark, pytest.mark.integration]

N = int(os.environ.get("ENVDECK_BENCH_CONTAINERS", "50"))
IDLE_S = float(os.environ.get("ENVDECK_BENCH_IDLE_S", "20"))
TRIALS = int(os.environ.get("ENVDECK_BENCH_TRIALS", "10"))


def _cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def _dockerd() -> psutil.Process | None:
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] == "dockerd":
            return proc
    return None


class Poller:
    """The anchor: list containers every second (what a ``docker ps`` loop costs)."""

    def __init__(self, watch: str | None = None) -> None:
        self.client = docker.DockerClient(base_url=host_endpoint().url, timeout=30)
        self.watch = watch
        self.seen_running: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="bench-poller")

    def _run(self) -> None:
        while not self._stop.is_set():
            tick = time.monotonic()
            for entry in self.client.api.containers():
                if (
                    self.watch
                    and self.seen_running is None
                    and entry["State"] == "running"
                    and self.watch in entry["Names"][0]
                ):
                    self.seen_running = time.monotonic()
            self._stop.wait(max(0.0, 1.0 - (time.monotonic() - tick)))

    def start(self) -> Poller:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.client.close()


async def _wait_row(queue: asyncio.Queue, name: str, state: str, timeout: float = 30) -> float:
    async with asyncio.timeout(timeout):
        while True:
            event = await queue.get()
            if isinstance(event, ContainerInfo) and event.name == name and event.state == state:
                return time.monotonic()


async def _subscribe(hub: Hub, queue: asyncio.Queue) -> None:
    async for event in hub.subscribe():
        queue.put_nowait(event)


async def test_bench_containers_events_vs_polling() -> None:
    client = docker_client_or_skip()
    run_id = uuid.uuid4().hex[:6]
    label = {"envdeck.bench": run_id}
    me, dockerd = psutil.Process(), _dockerd()
    probe = f"envdeck-bench-{run_id}-probe"
    try:
        t0 = time.monotonic()

        def make(i: int) -> None:
            client.containers.run(
                AMD64,
                ["sleep", "3600"],
                name=f"envdeck-bench-{run_id}-{i}",
                detach=True,
                network_mode="none",
                labels=label,
            )

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(make, range(N)))
        client.api.create_container(
            AMD64,
            ["sleep", "3600"],
            name=probe,
            labels=label,
            host_config=client.api.create_host_config(network_mode="none"),
        )
        print(f"\n{N} containers started in {time.monotonic() - t0:.1f}s")

        # --- the source, through a Hub subscriber ---
        source = ContainersSource([host_endpoint()])
        hub = Hub([source])
        queue: asyncio.Queue = asyncio.Queue()
        sub = asyncio.create_task(_subscribe(hub, queue))
        await asyncio.sleep(0)
        t0 = time.monotonic()
        await hub.start()
        await _wait_row(queue, probe, "created")
        rows = N + 1
        print(
            f"initial snapshot: {rows} rows in {1000 * (time.monotonic() - t0):.0f} ms "
            f"(one list request + one image inspect)"
        )

        await asyncio.sleep(2)
        c0, d0, w0 = _cpu(me), _cpu(dockerd) if dockerd else 0.0, time.monotonic()
        await asyncio.sleep(IDLE_S)
        wall = time.monotonic() - w0
        src_cpu = (_cpu(me) - c0) * 60 / wall
        src_dockerd = ((_cpu(dockerd) - d0) if dockerd else 0.0) * 60 / wall
        requests_idle = source.watchers["host"].list_requests

        # --- latency: source and a 1 s poller, same starts ---
        ev_lat, poll_lat, api_lat = [], [], []
        for _ in range(TRIALS):
            poller = Poller(watch=probe).start()
            await asyncio.sleep(0.3 + 0.7 * (len(ev_lat) / max(1, TRIALS)))  # spread the phase
            while not queue.empty():
                queue.get_nowait()
            t0 = time.monotonic()
            await asyncio.to_thread(client.api.start, probe)
            api_lat.append(time.monotonic() - t0)
            ev_lat.append(await _wait_row(queue, probe, "running") - t0)
            deadline = time.monotonic() + 3
            while poller.seen_running is None and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            poller.stop()
            if poller.seen_running is not None:
                poll_lat.append(poller.seen_running - t0)
            await asyncio.to_thread(client.api.kill, probe)
            await _wait_row(queue, probe, "exited")

        await hub.stop()
        sub.cancel()
        await asyncio.gather(sub, return_exceptions=True)

        # --- the anchor's idle CPU: list every second ---
        poller = Poller()
        c0, d0, w0 = _cpu(me), _cpu(dockerd) if dockerd else 0.0, time.monotonic()
        poller.start()
        await asyncio.sleep(IDLE_S)
        poller.stop()
        wall = time.monotonic() - w0
        poll_cpu = (_cpu(me) - c0) * 60 / wall
        poll_dockerd = ((_cpu(dockerd) - d0) if dockerd else 0.0) * 60 / wall

        def ms(values: list[float]) -> str:
            if not values:
                return "n/a"
            return (
                f"median {1000 * statistics.median(values):.0f} ms, max {1000 * max(values):.0f} ms"
            )

        def ratio(a: float, b: float) -> str:
            return f"{a / b:.1f}x" if b > 0 else "inf (source: 0 CPU ticks, i.e. < 10 ms)"

        print(f"--- {N} running containers, {TRIALS} starts, {IDLE_S:.0f}s idle windows ---")
        print(f"docker start API call returns: {ms(api_lat)}")
        print(f"start -> row at subscriber (events): {ms(ev_lat)}")
        print(f"start -> seen by 1 s poller:         {ms(poll_lat)}")
        after = [e - a for e, a in zip(ev_lat, api_lat, strict=True)]
        print(
            f"row at subscriber after the start call returned: median "
            f"{1000 * statistics.median(after):+.0f} ms (negative: before it returned)"
        )
        if ev_lat and poll_lat:
            print(
                f"latency ratio poller/events (median): "
                f"{statistics.median(poll_lat) / statistics.median(ev_lat):.1f}x"
            )
        print(
            f"idle CPU/min, this process: source {src_cpu * 1000:.0f} ms, "
            f"poller {poll_cpu * 1000:.0f} ms -> poller/source {ratio(poll_cpu, src_cpu)}"
        )
        print(
            f"idle CPU/min, dockerd:      source {src_dockerd * 1000:.0f} ms, "
            f"poller {poll_dockerd * 1000:.0f} ms -> "
            f"poller/source {ratio(poll_dockerd, src_dockerd)}"
        )
        print(f"list requests while idle (source): {requests_idle} (1 = the initial snapshot)")
        print(
            "note: after 60 s without events the source lists once (status texts such as "
            "'Up 5 minutes'), i.e. about 1/60 of the poller's requests; a 20 s window misses it"
        )
    finally:

        def remove(cid: str) -> None:
            with contextlib.suppress(docker.errors.NotFound):
                client.api.remove_container(cid, force=True)

        left = client.api.containers(all=True, filters={"label": f"envdeck.bench={run_id}"})
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(remove, [c["Id"] for c in left]))
        client.close()
