"""Instance YAML: Lima's instance format as envdeck runs it.

- :mod:`.schema`: the keys, their defaults and validation (``parse_config``, ``check_config``)
- :mod:`.compose`: ``base:`` templates merged with Lima's rules
- :mod:`.variables`: ``{{.Name}}``, ``{{.Param.KEY}}``, ``{{if}}`` in the fields Lima expands
- :mod:`.lima_keys`: every Lima key, honoured or accepted with a warning, and why
- :mod:`.yq`: ``mode: yq`` provisioning applied from the host

Every error is a :class:`ConfigError` naming the file, line and column of the node (in the
base file for keys that come from a base) and how to fix it. Nothing here writes anything.
"""

from envdeck.backend.config.errors import ConfigError
from envdeck.backend.config.schema import (
    ACCELS,
    ARCHES,
    ARCHES_ALL,
    DOCKER_GUEST_SOCKET,
    DOCKER_HOST_SOCKET,
    TEMPLATES,
    TINY_ARCHES,
    Checked,
    GuestUser,
    ImageSpec,
    InstanceConfig,
    KernelSpec,
    PortForwardRule,
    ProbeSpec,
    ProvisionStep,
    check_config,
    check_file,
    default_user,
    format_size,
    load_config,
    parse_config,
    parse_size,
    render_config,
    template_defaults,
)

__all__ = [
    "ACCELS",
    "ARCHES",
    "ARCHES_ALL",
    "DOCKER_GUEST_SOCKET",
    "DOCKER_HOST_SOCKET",
    "TEMPLATES",
    "TINY_ARCHES",
    "Checked",
    "ConfigError",
    "GuestUser",
    "ImageSpec",
    "InstanceConfig",
    "KernelSpec",
    "PortForwardRule",
    "ProbeSpec",
    "ProvisionStep",
    "check_config",
    "check_file",
    "default_user",
    "format_size",
    "load_config",
    "parse_config",
    "parse_size",
    "render_config",
    "template_defaults",
]
