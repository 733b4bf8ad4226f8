"""The dashboard model folds events into state and marks the panes to re-render."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from envdeck.backend import events as ev
from envdeck.tui.model import HANDLERS, DashboardModel


def fresh() -> DashboardModel:
    model = DashboardModel(serial_window=5)
    model.dirty.clear()
    return model


def test_process_diffs_apply_full_changed_removed():
    model = fresh()
    model.apply(
        ev.ProcessDiff(
            host="host",
            full=True,
            added=[{"pid": 1, "cpu_percent": 0.0}, {"pid": 2, "cpu_percent": 1.0}],
        )
    )
    model.apply(
        ev.ProcessDiff(
            host="host", changed=[{"pid": 2, "cpu_percent": 5.0}], removed=[1], added=[{"pid": 3}]
        )
    )
    assert model.processes["host"] == {2: {"pid": 2, "cpu_percent": 5.0}, 3: {"pid": 3}}
    assert "processes" in model.dirty
    model.apply(ev.ProcessDiff(host="host", full=True, added=[{"pid": 9}]))
    assert list(model.processes["host"]) == [9]


def test_unavailable_processes_are_shown_not_kept_stale():
    model = fresh()
    model.apply(ev.ProcessDiff(host="tiny", full=True, added=[{"pid": 1}]))
    model.apply(ev.ProcessesUnavailable(host="tiny", reason="ssh down"))
    assert "tiny" not in model.processes and model.processes_unavailable["tiny"] == "ssh down"
    assert model.process_hosts() == ["tiny"]
    model.apply(ev.ProcessDiff(host="tiny", full=True, added=[{"pid": 1}]))
    assert "tiny" not in model.processes_unavailable


def test_serial_window_is_bounded_and_pending_lines_are_taken_once():
    model = fresh()
    model.apply(ev.SerialOutput(instance="tiny", lines=[str(n) for n in range(8)]))
    assert list(model.serial["tiny"]) == ["3", "4", "5", "6", "7"]
    assert model.take_serial("tiny") == ["3", "4", "5", "6", "7"]
    assert model.take_serial("tiny") == []


def test_a_new_boot_forgets_the_previous_stages():
    model = fresh()
    model.apply(ev.InstanceStatus(instance="a", state="starting"))
    model.apply(ev.BootStage(instance="a", stage="qemu started", status="done", elapsed_s=0.1))
    model.apply(ev.InstanceStatus(instance="a", state="ready"))
    assert [s.stage for s in model.ordered_stages("a")] == ["qemu started"]
    model.apply(ev.InstanceStatus(instance="a", state="starting"))
    assert model.ordered_stages("a") == []


def test_containers_grouped_by_endpoint_host_first():
    model = fresh()
    model.apply(ev.EndpointStatus(endpoint="instance:b", reachable=False, reason="down"))
    model.apply(
        ev.ContainerInfo(
            endpoint="host", id="2", name="zeta", image="i", state="running", status=""
        )
    )
    model.apply(
        ev.ContainerInfo(
            endpoint="host", id="1", name="alpha", image="i", state="exited", status=""
        )
    )
    groups = model.container_groups()
    assert [(name, [c.name for c in cs]) for name, cs in groups] == [
        ("host", ["alpha", "zeta"]),
        ("instance:b", []),
    ]
    model.apply(ev.ContainerRemoved(endpoint="host", id="1"))
    assert [c.name for c in model.container_groups()[0][1]] == ["zeta"]


def test_forwards_replace_and_remove_by_guest_port():
    model = fresh()
    model.apply(
        ev.ForwardStatus(
            instance="a", guest="22", host="127.0.0.1:2222", source="rule", state="active"
        )
    )
    model.apply(
        ev.ForwardStatus(
            instance="a", guest="22", host="127.0.0.1:2222", source="rule", state="failed"
        )
    )
    assert model.forwards["a"]["22"].state == "failed"
    model.apply(ev.ForwardRemoved(instance="a", guest="22"))
    assert model.forwards["a"] == {}
    assert "forwards" in model.dirty


def test_a_deleted_instance_is_forgotten():
    model = fresh()
    model.apply(ev.InstanceStatus(instance="a", state="ready"))
    model.apply(ev.SerialOutput(instance="a", lines=["x"]))
    model.apply(ev.ForwardStatus(instance="a", guest="22", host="h", source="rule", state="active"))
    model.apply(ev.InstanceStatus(instance="a", state="deleted"))
    assert not model.instances and not model.serial and not model.forwards
    assert "instances" in model.dirty


def event_classes(cls: type[ev.Event] = ev.Event) -> set[type[ev.Event]]:
    """Every subclass of Event that events.py defines."""
    found = set()
    for sub in cls.__subclasses__():
        found |= event_classes(sub) | ({sub} if sub.__module__ == ev.__name__ else set())
    return found


def test_every_event_class_has_a_handler():
    assert event_classes() == set(HANDLERS)


def test_an_event_class_without_a_handler_is_an_error_not_silence():
    @dataclass(kw_only=True)
    class Renamed(ev.Event):
        kind: ClassVar[str] = "instance.renamed"

    model = fresh()
    model.apply(Renamed())
    model.apply(Renamed())
    assert model.errors == ["no handler for event Renamed (instance.renamed)"] and not model.dirty


def test_a_value_change_updates_the_row_in_place_and_is_taken_once():
    model = fresh()
    model.apply(ev.ProcessDiff(host="host", full=True, added=[{"pid": 1, "cpu_percent": 0.0}]))
    row, shape = model.processes["host"][1], model.process_shapes["host"]
    model.apply(ev.ProcessDiff(host="host", changed=[{"pid": 1, "cpu_percent": 3.0}]))
    assert model.processes["host"][1] is row and row["cpu_percent"] == 3.0
    assert model.process_shapes["host"] == shape
    changes = model.take_process_changes("host")
    assert changes.pids == {1} and changes.fields == {"cpu_percent"}
    assert not model.take_process_changes("host").pids


def test_rows_that_come_or_go_reshape_and_shapes_are_never_reused():
    model = fresh()
    added = {"pid": 1, "cpu_percent": 0.0}
    model.apply(ev.ProcessDiff(host="tiny", full=True, added=[added]))
    assert model.processes["tiny"][1] is not added  # (the model's own copy: changed in place)
    first = model.process_shapes["tiny"]
    model.apply(ev.ProcessDiff(host="tiny", changed=[{"pid": 1, "cpu_percent": 1.0}]))
    model.apply(ev.ProcessDiff(host="tiny", removed=[1]))
    assert model.process_shapes["tiny"] > first and model.take_process_changes("tiny").pids == {1}
    second = model.process_shapes["tiny"]
    model.forget_instance("tiny")
    model.apply(ev.ProcessDiff(host="tiny", full=True, added=[{"pid": 1}]))
    assert model.process_shapes["tiny"] > second


def test_marking_a_pane_wakes_whoever_waits_for_dirty_panes():
    model = fresh()
    woken: list[int] = []
    model.dirty.on_mark = lambda: woken.append(len(model.dirty))
    model.apply(ev.ForwardRemoved(instance="a", guest="tcp:80"))
    model.apply(ev.ForwardRemoved(instance="a", guest="tcp:81"))  # (marked already)
    model.dirty.update(("forwards", "serial"))
    assert woken == [1, 2] and model.dirty == {"forwards", "serial"}
    model.dirty |= {"header"}
    assert woken == [1, 2, 3] and "header" in model.dirty
