"""Package discovery for the ``envdeck.*`` namespace (everything else is in pyproject.toml).

The top-level folders ``backend/``, ``tui/`` and ``themes/`` install as ``envdeck.backend``,
``envdeck.tui`` and ``envdeck.themes``. pyproject alone cannot prefix discovered packages, so
every package below those folders is found here: a new subpackage cannot be left out of the
wheel (tests/unit/test_packaging.py builds and installs one to check).
"""

from setuptools import find_packages, setup

ROOTS = {"backend": "envdeck.backend", "tui": "envdeck.tui", "themes": "envdeck.themes"}

packages = []
for folder, name in ROOTS.items():
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(where=folder)]

setup(packages=packages, package_dir={name: folder for folder, name in ROOTS.items()})
