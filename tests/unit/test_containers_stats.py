"""CPU and memory figures from two one-shot stats samples (docker's own arithmetic)."""

from __future__ import annotations

from envdeck.backend.containers.actions import summarize_stats


def _sample(total: int, system: int) -> dict:
    return {
        "cpu_stats": {
            "cpu_usage": {"total_usage": total},
            "system_cpu_usage": system,
            "online_cpus": 2,
        },
        "memory_stats": {
            "usage": 10_000_000,
            "limit": 100_000_000,
            "stats": {"total_inactive_file": 2_000_000},
        },
        "pids_stats": {"current": 3},
        "networks": {"eth0": {"rx_bytes": 10, "tx_bytes": 20}},
        "blkio_stats": {
            "io_service_bytes_recursive": [{"op": "Read", "value": 5}, {"op": "Write", "value": 7}]
        },
    }


def test_cpu_percent_of_one_cpu() -> None:
    # 0.5 s of one cpu used while 2 cpus ran 1 s each (system delta 2e9): 50% of one cpu.
    data = summarize_stats(
        _sample(1_000_000_000, 10_000_000_000), _sample(1_500_000_000, 12_000_000_000)
    )
    assert data["cpu_percent"] == 50.0
    assert data["cpu_seconds"] == 1.5
    assert data["memory_bytes"] == 8_000_000 and data["memory_percent"] == 8.0
    assert (data["pids"], data["net_rx_bytes"], data["net_tx_bytes"]) == (3, 10, 20)
    assert (data["block_read_bytes"], data["block_write_bytes"]) == (5, 7)


def test_stopped_container_has_no_cpu() -> None:
    empty = {"cpu_stats": {}, "memory_stats": {}}
    data = summarize_stats(empty, empty)
    assert data["cpu_percent"] == 0.0 and data["memory_bytes"] is None
