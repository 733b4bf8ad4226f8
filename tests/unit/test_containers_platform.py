"""Platform strings, architecture names, the emulated rule and the per-image cache."""

from __future__ import annotations

import pytest

from envdeck.backend.containers.platform import (
    PlatformCache,
    format_platform,
    is_emulated,
    normalize_arch,
)


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("x86_64", "amd64"),
        ("aarch64", "arm64"),
        ("arm64", "arm64"),
        ("armv7l", "arm"),
        ("i686", "386"),
        ("s390x", "s390x"),
        ("AMD64", "amd64"),
        (None, None),
        ("", None),
    ],
)
def test_normalize(raw: str | None, norm: str | None) -> None:
    assert normalize_arch(raw) == norm


def test_format() -> None:
    assert format_platform("linux", "arm64") == "linux/arm64"
    assert format_platform("linux", "arm", "v7") == "linux/arm/v7"
    assert format_platform(None, "x86_64") == "linux/amd64"
    assert format_platform("linux", None) is None


@pytest.mark.parametrize(
    ("platform", "native", "emulated"),
    [
        ("linux/arm64", "amd64", True),
        ("linux/arm64", "x86_64", True),
        ("linux/amd64", "amd64", False),
        ("linux/amd64", "arm64", True),
        ("linux/386", "amd64", False),
        ("linux/arm/v7", "aarch64", False),
        ("linux/riscv64", "amd64", True),
        (None, "amd64", False),
        ("linux/arm64", None, False),
    ],
)
def test_emulated(platform: str | None, native: str | None, emulated: bool) -> None:
    assert is_emulated(platform, native) is emulated


def test_cache_inspects_each_image_once() -> None:
    calls: list[str] = []

    def inspect(image_id: str) -> dict:
        calls.append(image_id)
        if image_id == "gone":
            raise LookupError(image_id)
        return {"Os": "linux", "Architecture": "arm64", "Variant": "v8"}

    cache = PlatformCache(inspect)
    assert cache.get("sha256:a") == "linux/arm64/v8"
    assert cache.get("sha256:a") == "linux/arm64/v8"
    assert cache.get(None) is None
    assert cache.get("gone") is None and cache.get("gone") is None
    # A failed inspect is not cached (the image may come back), a good one is.
    assert calls == ["sha256:a", "gone", "gone"]
