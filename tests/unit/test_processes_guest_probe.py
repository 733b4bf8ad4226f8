"""envdeck's own /proc walk is not listed among the guest's processes (issue #16 item 12)."""

from __future__ import annotations

from pathlib import Path

from envdeck.backend.processes.guest import GUEST_WALK_SCRIPT, parse_guest_walk

WALK = (Path(__file__).parent / "fixtures" / "proc" / "guest-walk.txt").read_text()


def _stat_like(pid: int, comm: str, ppid: int) -> str:
    """A stat line of the fixture's bash (5598) given another pid, name and parent."""
    line = next(line for line in WALK.splitlines() if line.startswith("5598 (bash)"))
    fields = line.split(") ", 1)[1].split()
    fields[1] = str(ppid)
    fields[11] = "1500"  # (busy: the probe's CPU must not show up either)
    return f"{pid} ({comm}) " + " ".join(fields)


def _with_probe(text: str, script: str = GUEST_WALK_SCRIPT) -> str:
    probe = "\0".join(["sh", "-c", script]) + "\0"
    head = "head\0-c\0131072\0/proc/uptime\0"
    parts = [
        ("/proc/7000/stat", _stat_like(7000, "sh", 5598)),
        ("/proc/7000/cmdline", probe),
        ("/proc/7001/stat", _stat_like(7001, "head", 7000)),
        ("/proc/7001/cmdline", head),
    ]
    return text.rstrip("\n") + "\n" + "".join(f"\n==> {n} <==\n{body}\n" for n, body in parts)


def test_the_walk_and_its_children_are_not_guest_processes():
    rows = {r["pid"]: r for r in parse_guest_walk(_with_probe(WALK), "dev").rows()}
    assert set(rows) == {1, 5598, 5600}
    assert not any("envdeck-walk" in " ".join(r["cmdline"]) for r in rows.values())


def test_the_fixture_without_a_probe_keeps_every_process():
    plain = {r["pid"] for r in parse_guest_walk(WALK, "dev").rows()}
    someone_else = _with_probe(WALK, GUEST_WALK_SCRIPT.replace("@@envdeck-walk", "@@theirs"))
    assert {r["pid"] for r in parse_guest_walk(someone_else, "dev").rows()} == plain | {7000, 7001}
