"""Lima's provision modes: their order, and the shell they run as (run here by a real sh)."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
from pathlib import Path

import pytest

from envdeck.backend.config import GuestUser, ProbeSpec, ProvisionStep, parse_config, yq
from envdeck.backend.vm.provision import (
    ProvisionResult,
    ScriptEnv,
    data_command,
    ordered,
    script_command,
)

ENV = ScriptEnv(GuestUser("dev", 1500, "/home/dev.linux"), (("A", "one two"), ("PARAM_P", "x")))


def sh(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30)


def test_boot_first_then_lima_mode_order_keeping_numbers():
    modes = ("user", "system", "yq", "boot", "data", "dependency", "system")
    steps = tuple(ProvisionStep(m, "true") for m in modes)
    assert [(n, s.mode) for n, s in ordered(steps)] == [
        (4, "boot"),
        (6, "dependency"),
        (5, "data"),
        (3, "yq"),
        (2, "system"),
        (7, "system"),
        (1, "user"),
    ]


def test_scripts_honour_their_shebang_see_env_and_params_and_keep_the_status():
    bash = script_command('#!/bin/bash\nset -o pipefail\necho "$A/$PARAM_P"\nexit 3\n', ENV, False)
    result = sh(bash)
    assert result.returncode == 3 and result.stdout == "one two/x\n"
    plain = sh(script_command("false\necho not reached\n", ENV, False))
    assert plain.returncode == 1 and "not reached" not in plain.stdout  # sh -e


def test_user_scripts_run_through_su_as_the_guest_user():
    if os.geteuid() != 0:
        pytest.skip("su to another user needs root")
    nobody = ScriptEnv(GuestUser("nobody", 65534, "/"), (("PARAM_P", "x"),))
    result = sh(
        script_command('#!/bin/sh\necho "$(id -un) $PARAM_P $XDG_RUNTIME_DIR"\n', nobody, True)
    )
    assert result.returncode == 0 and result.stdout == "nobody x /run/user/65534\n", result


def test_data_writes_content_mode_and_owner_and_respects_overwrite(tmp_path: Path):
    target = tmp_path / "new" / "dir" / "file.conf"
    owner = getpass.getuser()
    assert sh(data_command(str(target), "A=1\n", owner, "640", True)).returncode == 0
    assert target.read_text() == "A=1\n" and oct(target.stat().st_mode & 0o777) == "0o640"
    kept = sh(data_command(str(target), "B=2\n", owner, "640", False))
    assert kept.returncode == 0 and "kept" in kept.stdout and target.read_text() == "A=1\n"


def test_yq_edits_json_yaml_and_ini():
    edits = yq.parse('.features.cdi = true | .features.snap = "on" | .n = 3')
    assert json.loads(yq.apply('{"keep": 1}', "json", edits)) == {
        "keep": 1,
        "features": {"cdi": True, "snap": "on"},
        "n": 3,
    }
    assert "cdi: true" in yq.apply("", "yaml", edits)
    ini = yq.apply("[Socket]\nListenStream=/run/x\n", "ini", yq.parse('.Socket.SocketUser="dev"'))
    assert "SocketUser=dev" in ini and "ListenStream=/run/x" in ini
    assert yq.format_of("/etc/docker/daemon.json", "auto") == "json"
    with pytest.raises(yq.YqError):
        yq.parse(".a |= 1")
    with pytest.raises(yq.YqError):
        yq.format_of("/etc/thing", "auto")


def test_failure_reasons_name_the_step_or_the_probe_and_its_hint():
    assert ProvisionResult(True, 2, 7, "a\nboom").reason == (
        "provision script 2 failed with exit status 7: boom"
    )
    probe = ProbeSpec("false", "docker up", "see the log")
    failed = ProvisionResult(True, None, 1, "nope", failed_probe=probe)
    assert failed.failed and failed.reason == (
        "probe 'docker up' did not pass: nope (hint: see the log)"
    )


def test_data_and_yq_entries_need_their_fields():
    with pytest.raises(Exception, match="needs content"):
        parse_config("provision:\n  - mode: data\n    path: /etc/x\n")
    with pytest.raises(Exception, match="not absolute"):
        parse_config("provision:\n  - mode: data\n    path: etc/x\n    content: a\n")
