"""The container behind a forwarded guest port, from docker's port strings."""

from __future__ import annotations

from dataclasses import dataclass, field

from envdeck.backend.forwards.publishers import published_ports, publishers


@dataclass
class Row:
    name: str
    ports: list[str] = field(default_factory=list)
    state: str = "running"


def test_published_ports_read_docker_ps_strings():
    ports = ["0.0.0.0:8080->80/tcp", "[::]:8443->443/tcp", "127.0.0.1:53->53/udp", "9000/tcp"]
    assert published_ports(ports) == {(8080, "tcp"), (8443, "tcp"), (53, "udp")}
    assert published_ports(["garbage", ":->/", "1.2.3.4:x->80/tcp"]) == set()


def test_publishers_match_the_public_tcp_port_of_running_containers():
    rows = [
        Row("web", ["0.0.0.0:8080->80/tcp"]),
        Row("old", ["0.0.0.0:8080->80/tcp"], state="exited"),
        Row("dns", ["0.0.0.0:8080->53/udp"]),
        Row("api", ["127.0.0.1:9000->9000/tcp", "0.0.0.0:8080->8080/tcp"]),
        Row("internal", ["80/tcp"]),
    ]
    assert publishers("8080", rows) == ["api", "web"]
    assert publishers("80", rows) == []
    assert publishers("/run/docker.sock", rows) == []
