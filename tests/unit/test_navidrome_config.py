"""NavidromeConfig validation and the adapter registry."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.jellyfin import JellyfinAdapter, JellyfinConfig
from adapters.navidrome import NavidromeAdapter, NavidromeConfig
from adapters.registry import make_adapter


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"url": "navidrome:4533"}, "must look like"),
        ({"url": "http://user:pw@navidrome:4533"}, "must not carry credentials"),
        ({"password": ""}, "username and a password"),
        ({"timeout_s": 0.0}, "timeout_s"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_response_bytes": 10}, "max_response_bytes"),
    ],
)
def test_navidrome_config_rejects_bad_values(overrides: dict[str, Any], message: str) -> None:
    values: dict[str, Any] = {"url": "http://navidrome:4533", "username": "u", "password": "p"}
    values.update(overrides)
    with pytest.raises(ValueError, match=message):
        NavidromeConfig(**values)


def test_navidrome_config_repr_hides_password() -> None:
    assert "hunter2" not in repr(NavidromeConfig(url="http://nd:4533", username="u", password="hunter2"))


async def test_registry_make_adapter_builds_each_kind() -> None:
    navidrome = make_adapter("navidrome", NavidromeConfig(url="http://nd:4533", username="u", password="p"))
    jellyfin = make_adapter("jellyfin", JellyfinConfig(url="http://jf:8096", api_key="k"))
    kinds = (type(navidrome), type(jellyfin))
    await navidrome.aclose()
    await jellyfin.aclose()
    assert kinds == (NavidromeAdapter, JellyfinAdapter)


def test_registry_make_adapter_refuses_mismatched_config() -> None:
    with pytest.raises(ValueError, match="cannot configure a jellyfin adapter"):
        make_adapter("jellyfin", NavidromeConfig(url="http://nd:4533", username="u", password="p"))
