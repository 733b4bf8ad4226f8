"""Lima's guest-shaping keys: ssh.forwardAgent, ssh.loadDotSSHPubKeys, timezone, caCerts,
upgradePackages, plain and copyToHost — each honoured (or refused with the reason), and each bad
value one error at its file:line:col."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncssh
import pytest
import yaml

from envdeck.backend.config import ConfigError, check_config, default_user, parse_config
from envdeck.backend.config.guest_keys import CaCerts, CopyRule, GuestKeys, tzif_file
from envdeck.backend.images import seed
from envdeck.backend.instances.copy_to_host import delete_on_stop
from envdeck.backend.instances.guest_settings import tiny_steps
from envdeck.backend.ssh.client import openssh_argv
from envdeck.backend.ssh.keys import dot_ssh_public_keys
from envdeck.backend.store import InstanceDir

CERT = "-----BEGIN CERTIFICATE-----\nMIIBdummy\n-----END CERTIFICATE-----"
IMAGE = "images:\n  - location: https://e.org/a.img\n    arch: x86_64\n"


def error_of(text: str, base_dir: Path | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "g.yaml", base_dir)
    assert info.value.hint and info.value.exit_code == 2
    return info.value


def test_defaults_are_limas():
    assert parse_config("cpus: 1\n").guest == GuestKeys()
    assert GuestKeys().forward_agent is False and GuestKeys().load_dot_ssh_pub_keys is False


def test_every_key_is_honoured_without_a_warning(envdeck_home: Path, tmp_path: Path):
    (tmp_path / "org.crt").write_text(f"comment\n{CERT}\n")
    checked = check_config(
        IMAGE + "ssh:\n  forwardAgent: true\n  loadDotSSHPubKeys: true\n"
        "timezone: Europe/Berlin\nupgradePackages: true\n"
        "caCerts:\n  removeDefaults: true\n  files: [org.crt]\n  certs:\n    - |\n"
        + "".join(f"      {line}\n" for line in CERT.splitlines())
        + "copyToHost:\n  - guest: '/home/{{.User}}/k.yaml'\n    host: '{{.Dir}}/copied/k.yaml'\n"
        "    deleteOnStop: true\n  - guest: /etc/x\n    host: '{{.Home}}/x'\n"
        "    skipIfMissing: true\n",
        "dev.yaml",
        tmp_path,
    )
    guest = checked.config.guest
    assert checked.warnings == ()
    assert guest.forward_agent and guest.load_dot_ssh_pub_keys and guest.upgrade_packages
    assert guest.timezone == "Europe/Berlin"
    assert guest.ca_certs == CaCerts(True, (CERT + "\n", CERT + "\n"))
    user = checked.config.user or default_user()
    assert guest.copy_to_host == (
        CopyRule(
            f"/home/{user.name}/k.yaml",
            f"{envdeck_home}/instances/dev/copied/k.yaml",
            delete_on_stop=True,
        ),
        CopyRule("/etc/x", f"{Path.home()}/x", skip_if_missing=True),
    )
    for key in ("ssh", "timezone", "caCerts", "upgradePackages", "copyToHost"):
        assert any(line.startswith(f"{key}: ") for line in checked.honoured)


def test_an_empty_timezone_sets_none():
    assert parse_config("timezone: ''\n").guest.timezone is None


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ("timezone: Mars/Olympus\n", "g.yaml:1:11", "not a zone of the zoneinfo database"),
        ("timezone: ../../etc/passwd\n", "g.yaml:1:11", "not a zone"),
        ("ssh:\n  forwardAgent: yes please\n", "g.yaml:2:17", "ssh.forwardAgent is"),
        ("upgradePackages: true\n", "g.yaml:1:18", "no package manager"),
        ("caCerts:\n  certs: [nope]\n", "g.yaml:2:11", "holds no PEM certificate"),
        ("caCerts:\n  files: [missing.crt]\n", "g.yaml:2:11", "does not exist"),
        ("caCerts:\n  removeDefault: true\n", "g.yaml:2:3", "unknown key 'removeDefault'"),
        ("copyToHost:\n  - guest: /etc/x\n", "g.yaml:2:5", "needs host:"),
        ("copyToHost:\n  - guest: etc/x\n    host: /tmp/x\n", "g.yaml:2:12", "not absolute"),
        ("copyToHost:\n  - guest: /etc/x\n    host: x\n", "g.yaml:3:11", "not an absolute"),
        ("copyToHost:\n  - guest: /x\n    host: '{{.Nope}}/x'\n", "g.yaml:3:11", "{{.Nope}}"),
        ("copyToHost:\n  - guest: /x\n    host: /y\n    keep: 1\n", "g.yaml:4:5", "unknown key"),
        ("plain: maybe\n", "g.yaml:1:8", "plain is 'maybe'"),
    ],
)
def test_bad_values_are_one_error_at_their_node(
    text: str, where: str, words: str, tmp_path: Path
) -> None:
    err = error_of(text, tmp_path)
    assert err.where == where and words in err.message


def test_upgrade_packages_is_honoured_for_cloud_and_docker_guests():
    assert parse_config(IMAGE + "upgradePackages: true\n").guest.upgrade_packages
    assert parse_config("template: docker\nupgradePackages: true\n").guest.upgrade_packages


def test_plain_mode_drops_mounts_dynamic_forwards_agent_and_timezone(tmp_path: Path):
    checked = check_config(
        f"plain: true\nmounts:\n  - location: {tmp_path}\n"
        "portForwards:\n  - guestPort: 80\n    hostPort: 8080\n"
        "  - guestPort: 22000\n    hostPort: 22000\n    static: true\n"
        "ssh:\n  forwardAgent: true\n  loadDotSSHPubKeys: true\ntimezone: UTC\n"
        "provision:\n  - mode: system\n    script: 'true'\n",
        "g.yaml",
    )
    cfg = checked.config
    assert cfg.mounts == () and [r.guest_port_range for r in cfg.port_forwards] == [(22000, 22000)]
    assert cfg.guest.plain and not cfg.guest.forward_agent and cfg.guest.timezone is None
    assert cfg.guest.load_dot_ssh_pub_keys and len(cfg.provision) == 1  # still run, as in Lima
    assert [w.split(": ", 1)[1] for w in checked.warnings] == [
        "mounts: ignored in plain mode (as in Lima)",
        "portForwards: only the entries with 'static: true' are kept in plain mode (as in Lima)",
        "ssh.forwardAgent: ignored in plain mode (as in Lima)",
        "timezone: ignored in plain mode (as in Lima)",
    ]
    assert any(line.startswith("plain: Lima's plain mode") for line in checked.honoured)


def test_udp_forwards_are_refused_with_the_reason():
    err = error_of("portForwards:\n  - guestPort: 53\n    proto: udp\n")
    assert err.where == "g.yaml:3:12" and "envdeck forwards TCP" in err.message


# --- the cloud seed --------------------------------------------------------------------------


def _user_data(guest: GuestKeys, extra: tuple[str, ...] = ()) -> dict[str, object]:
    host = asyncssh.generate_private_key("ssh-ed25519").export_private_key("openssh")
    text = seed.user_data("dev", "ssh-ed25519 AAAA envdeck", host, guest=guest, extra_keys=extra)
    assert text.startswith("#cloud-config\n")
    return dict(yaml.safe_load(text))


def test_the_seed_carries_timezone_ca_certs_upgrade_and_extra_keys():
    doc = _user_data(
        GuestKeys(
            timezone="Asia/Tokyo",
            ca_certs=CaCerts(True, (CERT + "\n",)),
            upgrade_packages=True,
        ),
        ("ssh-ed25519 BBBB me@host",),
    )
    assert doc["timezone"] == "Asia/Tokyo"
    assert doc["ca_certs"] == {"remove_defaults": True, "trusted": [CERT + "\n"]}
    assert doc["package_update"] is True and doc["package_upgrade"] is True
    assert "package_reboot_if_required" not in doc  # QEMU runs with -no-reboot
    assert doc["ssh_authorized_keys"] == ["ssh-ed25519 AAAA envdeck", "ssh-ed25519 BBBB me@host"]


def test_the_seed_says_nothing_of_what_is_not_asked():
    doc = _user_data(GuestKeys())
    assert not {"timezone", "ca_certs", "package_upgrade"} & set(doc)
    assert doc["ssh_authorized_keys"] == ["ssh-ed25519 AAAA envdeck"]


# --- the tiny guest, ssh keys, shell, deleteOnStop ------------------------------------------


def test_dot_ssh_public_keys_skips_what_is_not_a_key(tmp_path: Path):
    ssh_dir = tmp_path / ".ssh"
    ssh_dir.mkdir()
    key = asyncssh.generate_private_key("ssh-ed25519", comment="me@host")
    line = key.export_public_key("openssh").decode().strip()
    (ssh_dir / "id_ed25519.pub").write_text(line + "\n")
    (ssh_dir / "notes.pub").write_text("not a key\n")
    (ssh_dir / "id_ed25519").write_text("private: never read\n")
    assert dot_ssh_public_keys(tmp_path) == (line,)


def test_tiny_guest_steps():
    zone = tzif_file("Europe/Berlin")
    assert zone is not None
    steps = tiny_steps(
        GuestKeys(timezone="Europe/Berlin", ca_certs=CaCerts(certs=(CERT + "\n",))),
        ("ssh-ed25519 BBBB me",),
    )
    assert [what for what, _, _ in steps] == [
        "timezone Europe/Berlin",
        "1 CA certificate(s)",
        "1 key(s) from ~/.ssh",
    ]
    assert steps[0][2] == zone.read_bytes() and "/etc/localtime" in steps[0][1]
    assert steps[1][2] == (CERT + "\n").encode() and "ca-certificates.crt" in steps[1][1]
    assert steps[2][2] == b"ssh-ed25519 BBBB me\n" and "grep -qxF" in steps[2][1]
    assert tiny_steps(GuestKeys(), ()) == []


def test_shell_forwards_the_agent_only_when_asked(envdeck_home: Path):
    inst = InstanceDir.of("dev")
    assert "ForwardAgent=yes" not in openssh_argv(inst, 2222)
    argv = openssh_argv(inst, 2222, forward_agent=True)
    assert argv[argv.index("ForwardAgent=yes") - 1] == "-o"
    assert argv.index("ForwardAgent=yes") < argv.index("root@127.0.0.1")


def test_delete_on_stop_removes_only_the_marked_copies(tmp_path: Path):
    kept, dropped = tmp_path / "kept", tmp_path / "dropped"
    kept.write_text("k")
    dropped.write_text("d")
    rules = (
        CopyRule("/a", str(kept)),
        CopyRule("/b", str(dropped), delete_on_stop=True),
        CopyRule("/c", str(tmp_path / "never-copied"), delete_on_stop=True),
    )

    async def scenario() -> None:
        stopped = asyncio.Event()
        task = asyncio.create_task(delete_on_stop(stopped, rules))
        await asyncio.sleep(0.05)
        assert dropped.exists()
        stopped.set()
        await task

    asyncio.run(scenario())
    assert kept.exists() and not dropped.exists()


def test_legacy_bios_is_honoured_for_an_x86_64_disk_image(envdeck_home: Path, tmp_path: Path):
    """Its QEMU command line is checked in test_cloud_images (legacy BIOS argv)."""
    checked = check_config(IMAGE + "firmware:\n  legacyBIOS: true\n", "b.yaml", tmp_path)
    assert checked.config.guest.legacy_bios and checked.warnings == ()
    assert any(line.startswith("firmware: ") for line in checked.honoured)


def test_legacy_bios_is_ignored_with_a_warning_where_lima_ignores_it(tmp_path: Path):
    arm = "images:\n  - location: https://e.org/a.img\n    arch: aarch64\narch: aarch64\n"
    for text, why in (
        (arm + "firmware:\n  legacyBIOS: true\n", "ignored on aarch64"),
        ("firmware:\n  legacyBIOS: true\n", "kernel is booted directly"),
        (IMAGE + "firmware:\n  legacyBIOS: true\n  images: []\n", "firmware.images: ignored"),
    ):
        checked = check_config(text, "b.yaml", tmp_path)
        assert any(why in w for w in checked.warnings), (text, checked.warnings)
    assert not check_config(
        arm + "firmware:\n  legacyBIOS: true\n", "b.yaml", tmp_path
    ).config.guest.legacy_bios
    assert error_of(IMAGE + "firmware:\n  legacyBIOS: maybe\n")
