"""``GET /api/tracks``: search, the similar-tracks filter vocabulary (BPM with half/double, key or Camelot with
its neighbours, loudness) and server-side paging, on real PostgreSQL (the library of test_api)."""

from __future__ import annotations

import base64

from tests.integration.test_api import Api, api, settings  # noqa: F401  (fixtures)


async def _names(api: Api, **params: str | float | list[int]) -> list[str]:  # noqa: F811
    query: dict[str, str | float | list[int]] = {"limit": 200, **params}
    response = await api.client.get("/api/tracks", params=query)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == len(body["tracks"])
    return sorted(api.names(body["tracks"]))


async def test_search_matches_title_artist_and_album(api: Api) -> None:  # noqa: F811
    assert await _names(api, q="song B") == ["b"]
    assert await _names(api, q="a1") == ["a", "b", "c"]  # artist A1
    assert await _names(api, q="ALBUM SEED") == ["seed"]
    assert await _names(api, q="%") == []  # wildcards are literal
    ids = [api.ids["c"], api.ids["new"]]
    assert await _names(api, track_id=ids) == ["c", "new"]


async def test_bpm_range_with_half_and_double(api: Api) -> None:  # noqa: F811
    assert await _names(api, bpm_min=119, bpm_max=123) == ["a", "d", "seed"]
    assert await _names(api, bpm_min=119, bpm_max=123, half_double=True) == ["a", "b", "c", "d", "seed"]


async def test_key_or_camelot_and_compatible_keys(api: Api) -> None:  # noqa: F811
    assert await _names(api, key="A minor") == ["e", "seed"]
    assert await _names(api, key="8A") == ["e", "seed"]
    assert await _names(api, key="8A", camelot_compatible=True) == ["a", "b", "c", "e", "seed"]
    bad = await api.client.get("/api/tracks", params={"key": "H major"})
    assert bad.status_code == 422
    assert "Camelot" in bad.json()["detail"]


async def test_loudness_range_drops_unanalysed_tracks(api: Api) -> None:  # noqa: F811
    assert len(await _names(api, loudness_min_lufs=-15, loudness_max_lufs=-13)) == 8
    assert await _names(api, loudness_min_lufs=-13) == []
    swapped = await api.client.get("/api/tracks", params={"loudness_min_lufs": -10, "loudness_max_lufs": -20})
    assert swapped.status_code == 422


async def test_pages_cover_the_library_once_in_order(api: Api) -> None:  # noqa: F811
    seen: list[str] = []
    for offset in range(0, 9, 4):
        page = (await api.client.get("/api/tracks", params={"limit": 4, "offset": offset, "sort": "title"})).json()
        assert page["total"] == 9
        assert (page["limit"], page["offset"]) == (4, offset)
        seen += api.names(page["tracks"])
    assert seen == ["a", "b", "c", "d", "e", "f", "g", "new", "seed"]
    past = (await api.client.get("/api/tracks", params={"offset": 50})).json()
    assert (past["total"], past["tracks"]) == (9, [])
    by_bpm = (await api.client.get("/api/tracks", params={"sort": "bpm", "limit": 3})).json()
    assert api.names(by_bpm["tracks"]) == ["b", "seed", "d"]
    assert by_bpm["tracks"][0]["bpm"] == 60.0


async def test_listing_needs_the_token(api: Api) -> None:  # noqa: F811
    api.client.headers.pop("Authorization")
    assert (await api.client.get("/api/tracks")).status_code == 401


async def test_cursor_pages_cover_the_library_once_in_every_order(api: Api) -> None:  # noqa: F811
    for sort in ("artist", "title", "album", "bpm", "loudness"):
        everything = (await api.client.get("/api/tracks", params={"sort": sort})).json()
        seen: list[str] = []
        params: dict[str, str | int] = {"sort": sort, "limit": 4}
        while True:
            page = (await api.client.get("/api/tracks", params=params)).json()
            assert page["total"] == 9
            seen += api.names(page["tracks"])
            if page["next_cursor"] is None:
                break
            params["after"] = page["next_cursor"]
        assert seen == api.names(everything["tracks"]), sort
        assert len(seen) == 9
    first = (await api.client.get("/api/tracks", params={"sort": "title", "limit": 2})).json()
    skipped = await api.client.get("/api/tracks", params={"sort": "title", "offset": 3, "after": first["next_cursor"]})
    assert api.names(skipped.json()["tracks"]) == ["f", "g", "new", "seed"]  # after b, 3 skipped (c, d, e)


async def test_a_cursor_of_another_order_or_garbage_is_refused(api: Api) -> None:  # noqa: F811
    first = (await api.client.get("/api/tracks", params={"sort": "bpm", "limit": 2})).json()
    cursor = first["next_cursor"]
    assert isinstance(cursor, str)
    assert (await api.client.get("/api/tracks", params={"sort": "bpm", "after": cursor})).status_code == 200
    crafted = [  # decodes, but is no place PostgreSQL could compare (a 500 if it got there)
        '["bpm", NaN, 1]', '["bpm", 1e400, 1]', f'["bpm", {10**400}, 1]', '["bpm", 120.0, 1.5]', '["bpm", true, 1]',
        '["bpm", 120.0]', '["artist", "\\ud800", "", "", 1]', '["artist", "\\u0000", "", "", 1]', '{"bpm": 1}', "[]",
        "[" * 2900,
    ]  # fmt: skip
    cases = [("artist", cursor), ("bpm", "not a cursor"), ("bpm", cursor[:-3])]
    for text in crafted:
        cases.append(("bpm" if "bpm" in text else "artist", base64.urlsafe_b64encode(text.encode()).decode()))
    for sort, after in cases:
        response = await api.client.get("/api/tracks", params={"sort": sort, "after": after})
        assert response.status_code == 422, (sort, after)
        assert "cursor" in response.json()["detail"]
