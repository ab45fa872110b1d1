"""Building the configured adapter from settings (sidecar/services/hosts.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.jellyfin import JellyfinAdapter, JellyfinConfig
from adapters.navidrome import NavidromeAdapter, NavidromeConfig
from sidecar.services.hosts import HostConfigError, adapter_config, make_adapter
from sidecar.settings import Settings


def _settings(**values: object) -> Settings:
    return Settings.model_validate(values)


def test_make_adapter_none_host_gives_no_adapter() -> None:
    assert make_adapter(_settings()) is None


async def test_make_adapter_jellyfin_passes_secrets_mount_and_path_map(tmp_path: Path) -> None:
    settings = _settings(
        host="jellyfin",
        jellyfin={"url": "http://jf:8096", "api_key": "k3y", "webhook_secret": "s3cret"},
        library_dir=tmp_path,
        path_map="/data/music:" + str(tmp_path),
    )
    config = adapter_config(settings)
    adapter = make_adapter(settings)

    assert isinstance(adapter, JellyfinAdapter)
    assert isinstance(config, JellyfinConfig)
    assert (config.api_key, config.webhook_secret) == ("k3y", "s3cret")
    assert config.library_dir == tmp_path
    assert config.path_map == (("/data/music", str(tmp_path)),)
    await adapter.aclose()


async def test_make_adapter_navidrome_from_settings(tmp_path: Path) -> None:
    settings = _settings(
        host="navidrome",
        navidrome={"url": "http://nd:4533", "username": "u", "password": "pw"},
        library_dir=tmp_path,
    )
    adapter = make_adapter(settings)

    assert isinstance(adapter, NavidromeAdapter)
    config = adapter_config(settings)
    assert isinstance(config, NavidromeConfig)
    assert config.password == "pw"
    await adapter.aclose()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"host": "jellyfin"}, "SONANTICA_JELLYFIN__URL"),
        ({"host": "navidrome", "navidrome": {"url": "http://nd:4533"}}, "SONANTICA_NAVIDROME__USERNAME"),
        (
            {"host": "jellyfin", "jellyfin": {"url": "http://jf:8096"}},
            "set SONANTICA_JELLYFIN__API_KEY, or SONANTICA_JELLYFIN__USERNAME and SONANTICA_JELLYFIN__PASSWORD",
        ),
        (
            {"host": "jellyfin", "jellyfin": {"url": "http://jf:8096", "username": "u"}},
            "set SONANTICA_JELLYFIN__API_KEY, or SONANTICA_JELLYFIN__USERNAME and SONANTICA_JELLYFIN__PASSWORD",
        ),
        ({"host": "jellyfin", "jellyfin": {"url": "http://u:p@jf:8096", "api_key": "k"}}, "credentials"),
    ],
)
def test_make_adapter_incomplete_settings_name_the_fix(values: dict[str, object], message: str) -> None:
    with pytest.raises(HostConfigError, match=message):
        make_adapter(_settings(**values))
