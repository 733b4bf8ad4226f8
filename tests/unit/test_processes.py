"""The host scanner on recorded /proc samples (tests/unit/fixtures/proc), tree order and diffs."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from envdeck.backend.processes.cgroups import ContainerNames
from envdeck.backend.processes.host import HostScanner, diff, tree_order, tree_walk

FIXTURES = Path(__file__).parent / "fixtures" / "proc"
CID = "4f7c1e0a9b2d3c4e5f60718293a4b5c6d7e8f90112233445566778899aabbccd"


def no_docker() -> list[dict]:
    raise ConnectionError("no daemon in unit tests")


def scanner(case: str, lister=no_docker) -> HostScanner:
    # keep_files=False: fixture files are plain files, not procfs entries tied to a task
    return HostScanner(
        proc=str(FIXTURES / case), container_names=ContainerNames(lister), keep_files=False
    )


def rows_by_pid(case: str, **kw) -> dict[int, dict]:
    return {r["pid"]: r for r in scanner(case, **kw).scan().rows()}


def test_binfmt_p_process_is_emulated_with_program_and_argv():
    rows = rows_by_pid("emulated-binfmt-p")
    emu = rows[4921]["emulated"]
    assert emu["arch"] == "aarch64"
    assert emu["interpreter"] == "/usr/libexec/qemu-binfmt/aarch64-binfmt-P"
    assert emu["program"] == "/opt/envdeck-test/arm64/busybox"
    assert emu["argv"] == ["/opt/envdeck-test/arm64/busybox", "sleep", "20"]
    assert emu["preserve_argv0"] is True
    assert rows[4921]["name"] == "busybox"  # comm is the guest program's: ps hides emulation
    assert rows[4918]["emulated"] is None
    assert rows[4921]["ppid"] == 4918 and rows[4921]["depth"] == rows[4918]["depth"] + 1


def test_by_hand_emulation_skips_qemu_options():
    emu = rows_by_pid("emulated-by-hand")[4919]["emulated"]
    assert emu["arch"] == "aarch64"
    assert emu["program"] == "/opt/envdeck-test/arm64/busybox"
    assert emu["argv"] == ["/opt/envdeck-test/arm64/busybox", "sleep", "20"]
    assert emu["preserve_argv0"] is False


def test_zombie_is_kept_with_state_and_parent():
    rows = rows_by_pid("zombie")
    assert rows[4923]["state"] == "Z"
    assert rows[4923]["cmdline"] == []
    assert rows[4923]["ppid"] == 4920
    assert rows[4923]["depth"] == 1


def test_kernel_threads_have_no_cmdline_and_hang_under_kthreadd():
    rows = rows_by_pid("kernel-threads")
    assert rows[2]["kernel"] and rows[37]["kernel"] and not rows[1]["kernel"]
    assert rows[37]["cmdline"] == [] and rows[37]["name"] == "kworker/0:1-events"
    assert rows[37]["ppid"] == 2 and rows[37]["depth"] == 1
    assert rows[37]["emulated"] is None


def test_container_attribution_by_cgroup_and_through_the_shim():
    names = ContainerNames(lambda: [{"Id": CID, "Names": ["/arm-app"]}])
    snap = HostScanner(proc=str(FIXTURES / "container"), container_names=names).scan()
    rows = {r["pid"]: r for r in snap.rows()}
    assert rows[900]["container"] is None  # the shim itself runs on the host
    for pid in (920, 921, 930, 931):  # 930/931: cgroup "/", attributed through the shim's -id
        assert rows[pid]["container"] == "arm-app", pid
        assert rows[pid]["container_id"] == CID
    assert rows[921]["emulated"]["argv"] == ["sleep", "1000"]
    cost = snap.summary()["by_container"]["arm-app"]
    assert cost["processes"] == 4 and cost["emulated"] == 2


def test_container_label_falls_back_to_short_id_without_docker():
    rows = rows_by_pid("container")
    assert rows[920]["container"] == CID[:12]


def test_vanished_processes_are_dropped_and_access_denied_leaves_none():
    rows = rows_by_pid("vanished")
    assert 5100 not in rows  # no stat: gone before the read
    assert 5101 not in rows  # gone between its stat and its cmdline
    assert rows[5102]["exe"] is None and rows[5102]["uid"] == 65534
    assert rows[5102]["cmdline"][0] == "postgres"


def test_pid_reuse_between_snapshots_is_remove_plus_add_and_no_wrong_parent():
    scan = scanner("reuse-before")
    before = scan.scan()
    assert before.procs[4300].ppid == 4242 and before.procs[4300].depth == 2
    scan.proc = scan._stats.proc = str(FIXTURES / "reuse-after")
    after = scan.scan()
    d = diff(before, after)
    assert 4242 in d.removed
    added = {r["pid"]: r for r in d.added}
    assert added[4242]["cmdline"] == ["make", "-j2"]  # not the cached python3 command line
    # 4300 started before the new 4242: its ppid is stale, so it is a root, not 4242's child
    row = after.procs[4300].row()
    assert row["ppid"] == 0 and row["depth"] == 0
    # CPU % of the new 4242 is not a delta against the old process's ticks
    assert after.procs[4242].cpu_percent >= 0.0


def test_diff_of_unchanged_snapshots_is_empty_and_first_is_full():
    scan = scanner("zombie")
    first = scan.scan()
    full = diff(None, first)
    assert full.full and {r["pid"] for r in full.added} == {4920, 4923}
    second = scan.scan()
    third = scan.scan()
    quiet = diff(second, third)
    assert not quiet.full and quiet.added == quiet.changed == quiet.removed == []


def test_exec_changes_comm_and_is_reread(tmp_path):
    import shutil

    case = tmp_path / "proc"
    shutil.copytree(FIXTURES / "zombie", case, symlinks=True)
    scan = HostScanner(proc=str(case), container_names=ContainerNames(no_docker), keep_files=False)
    before = scan.scan()
    stat = (case / "4920" / "stat").read_text().replace("(sleep)", "(python3)")
    (case / "4920" / "stat").write_text(stat)
    (case / "4920" / "cmdline").write_bytes(b"python3\0-m\0http.server\0")
    after = scan.scan()
    changed = {r["pid"]: r for r in diff(before, after).changed}
    assert changed[4920]["cmdline"] == ["python3", "-m", "http.server"]


def test_tree_order_of_rows_matches_scanner_depths():
    rows = scanner("container").scan().rows()
    shuffled = list(reversed(rows))
    for row in shuffled:
        row["depth"] = -1
    ordered = tree_order(shuffled)
    assert [r["pid"] for r in ordered] == [r["pid"] for r in rows]
    assert all(r["depth"] >= 0 for r in ordered)


nodes = st.lists(
    st.tuples(st.integers(1, 60), st.integers(0, 60), st.integers(0, 5)),
    max_size=40,
    unique_by=lambda t: t[0],
)


@given(nodes)
def test_tree_walk_keeps_every_process_once_parents_first(items):
    out = tree_walk(items)
    assert sorted(pid for pid, _, _ in out) == sorted(pid for pid, _, _ in items)
    position = {pid: i for i, (pid, _, _) in enumerate(out)}
    depth = {pid: d for pid, d, _ in out}
    start = {pid: s for pid, _, s in items}
    for pid, d, ppid in out:
        if d > 0:
            assert position[ppid] < position[pid]
            assert depth[ppid] == d - 1
            assert start[ppid] <= start[pid]  # never a younger (reused) parent


def _write_stat(
    root: Path, pid: int, ppid: int, start: int, utime: int = 0, comm: str = "sleep"
) -> None:
    template = (FIXTURES / "zombie" / "4920" / "stat").read_text().split()
    template[0], template[1], template[3] = str(pid), f"({comm})", str(ppid)
    template[13], template[21] = str(utime), str(start)
    (root / str(pid)).mkdir(exist_ok=True)
    (root / str(pid) / "stat").write_text(" ".join(template) + "\n")
    (root / str(pid) / "cmdline").write_bytes(b"sleep\x00600\x00")
    for name in ("status", "cgroup"):
        (root / str(pid) / name).write_bytes((FIXTURES / "zombie" / "4920" / name).read_bytes())


def test_reparenting_updates_depth_of_carried_over_children(tmp_path):
    """30's stat never changes (carried over between ticks), but its depth does when 10 exits."""
    root = tmp_path / "proc"
    root.mkdir()
    for name in ("uptime", "stat"):
        (root / name).write_bytes((FIXTURES / "zombie" / name).read_bytes())
    for pid, ppid, start in ((1, 0, 0), (10, 1, 100), (20, 10, 200), (30, 20, 300)):
        _write_stat(root, pid, ppid, start)
    scan = HostScanner(proc=str(root), container_names=ContainerNames(no_docker), keep_files=False)
    first = scan.scan()
    second = scan.scan()
    assert second.procs[30] is first.procs[30]  # nothing moved: the same object
    assert diff(first, second).changed == []
    import shutil

    shutil.rmtree(root / "10")
    _write_stat(root, 20, 1, 200)  # reparented to init
    third = scan.scan()
    assert (second.procs[20].depth, second.procs[30].depth) == (2, 3)  # old snapshot intact
    assert (third.procs[20].depth, third.procs[30].depth) == (1, 2)
    d = diff(second, third)
    assert d.removed == [10]
    assert {r["pid"] for r in d.changed} == {20, 30}
    _write_stat(root, 30, 20, 300, utime=50)  # 30 used CPU: no longer carried over
    fourth = scan.scan()
    assert fourth.procs[30] is not third.procs[30]
    assert fourth.procs[30].cpu_percent > 0 and fourth.procs[30].depth == 2


def test_comm_with_parens_and_spaces_is_parsed(tmp_path):
    root = tmp_path / "proc"
    root.mkdir()
    for name in ("uptime", "stat"):
        (root / name).write_bytes((FIXTURES / "zombie" / name).read_bytes())
    _write_stat(root, 1, 0, 0)
    _write_stat(root, 77, 1, 50, utime=7, comm="a) b (c")
    snap = HostScanner(proc=str(root), container_names=ContainerNames(no_docker), keep_files=False)
    row = snap.scan().procs[77].row()
    assert (row["name"], row["ppid"], row["state"], row["depth"]) == ("a) b (c", 1, "S", 1)


def test_cpu_percent_interval_lifetime_and_edges():
    from envdeck.backend.processes.model import cpu_percent

    # seen before: 50 ticks in 1 s at 100 Hz -> 50 %
    assert cpu_percent(150, 10, 100, prev_ticks=100, dt=1.0, uptime=20.0) == 50.0
    # new process: 100 ticks over its 10 s of life -> 10 %
    assert cpu_percent(100, 1000, 100, prev_ticks=None, dt=1.0, uptime=20.0) == 10.0
    assert cpu_percent(90, 10, 100, prev_ticks=100, dt=1.0, uptime=20.0) == 0.0  # counter went back
    assert cpu_percent(150, 10, 100, prev_ticks=100, dt=None, uptime=20.0) == 0.0  # first tick
    assert cpu_percent(5, 2000, 100, prev_ticks=None, dt=None, uptime=20.0) == 0.0  # born just now


def test_a_process_caught_inside_execve_is_read_again(tmp_path):
    """execve sets the new comm before the new argv: a scan in between reads an empty cmdline.
    That read must not stick (it did: the row of a qemu-aarch64 run stayed "interpreter" with
    no program, seen in CI), and must not be judged emulated on half the facts."""
    root = tmp_path / "proc"
    root.mkdir()
    for name in ("uptime", "stat"):
        (root / name).write_bytes((FIXTURES / "zombie" / name).read_bytes())
    _write_stat(root, 1, 0, 0)
    _write_stat(root, 40, 1, 400, comm="qemu-aarch64-st")
    (root / "40" / "cmdline").write_bytes(b"")
    (root / "40" / "exe").symlink_to("/usr/bin/qemu-aarch64-static")
    scan = HostScanner(proc=str(root), container_names=ContainerNames(no_docker), keep_files=False)
    first = scan.scan()
    assert first.procs[40].static.emulated is None  # not judged yet
    assert first.procs[40].static.settled is False
    (root / "40" / "cmdline").write_bytes(b"qemu-aarch64-static\x00/opt/bb\x00sleep\x0030\x00")
    second = scan.scan()  # same stat (no CPU, same comm): still read again
    emu = second.procs[40].static.emulated
    assert emu is not None and emu["program"] == "/opt/bb" and emu["argv"][1:] == ["sleep", "30"]
    assert second.procs[40].static.settled
