"""The web client in headless Chromium against a real Subsonic server: sign-in (right and wrong password), the
library's search and filters, a playlist made from the track page and written to the server, a BPM corrected by
hand and given back, why a track has no BPM or key, 360 px layout, and no console error on any page."""

from __future__ import annotations

import re
from typing import Any, TypedDict

import psycopg
from playwright.sync_api import Page, expect

from adapters.navidrome import NavidromeAdapter, NavidromeConfig
from tests.browser.conftest import SILENT_S, ConsoleWatch, Screenshot, WebServer, _run
from tests.keyboard import focus_outline, focused_matches, tab_to


def test_sign_in_with_the_subsonic_account(
    page: Page, web_server: WebServer, console: ConsoleWatch, screenshot: Screenshot
) -> None:
    page.goto(f"{web_server.url}/")
    expect(page).to_have_url(re.compile(r"/signin\.html\?next=%2F$"))
    expect(page.locator("#hint")).to_contain_text("Navidrome user name and password")
    screenshot(page, "signin")
    console.allow("401")  # the browser logs the refused sign-in request itself
    page.fill("#username", web_server.guest)
    page.fill("#password", "not-the-password")
    page.click("#submit")
    expect(page.locator("#message")).to_have_text("wrong user name or password")
    expect(page).to_have_url(re.compile(r"/signin\.html"))
    page.fill("#password", web_server.guest_password)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{web_server.url}/")
    expect(page.locator("#who")).to_have_text(f"signed in as {web_server.guest}")
    expect(page.locator("#tracks tbody tr")).to_have_count(6)
    expect(page.locator("#coverage [data-analyzer='tempo']")).to_contain_text("done 6")
    expect(page.locator("#live")).to_have_text("live")
    page.click("#sign-out")
    expect(page).to_have_url(re.compile(r"/signin\.html$"))


def _titles(page: Page) -> list[str]:
    return sorted(page.locator("#tracks tbody td.title").all_inner_texts())


def test_library_search_and_filters(signed_in: Page, web_server: WebServer, screenshot: Screenshot) -> None:
    page = signed_in
    page.goto(f"{web_server.url}/")
    expect(page.locator("#tracks tbody tr")).to_have_count(6)
    expect(page.locator("#page-info")).to_have_text("1\u20136 of 6")
    page.fill("#q", "beta")
    page.keyboard.press("Enter")
    expect(page.locator("#tracks tbody tr")).to_have_count(2)
    assert _titles(page) == ["Double Time", "Half Step"]
    page.fill("#q", "")
    page.fill("input[name=bpm_min]", "118")
    page.fill("input[name=bpm_max]", "126")
    page.click("button[type=submit]")
    expect(page.locator("#tracks tbody tr")).to_have_count(3)
    assert _titles(page) == ["Morning Run", "Night Drive", "Quiet Room"]
    page.check("input[name=half_double]")
    page.click("button[type=submit]")
    expect(page.locator("#tracks tbody tr")).to_have_count(5)
    page.fill("#key", "8A")
    page.check("input[name=camelot_compatible]")
    page.click("button[type=submit]")
    expect(page.locator("#tracks tbody tr")).to_have_count(4)  # 8A, 9A, 7A, 8B: Quiet Room (10A) drops out
    assert "Quiet Room" not in _titles(page)
    expect(page).to_have_url(re.compile(r"key=8A"))
    page.fill("input[name=loudness_min_lufs]", "-10")
    page.click("button[type=submit]")
    expect(page.locator("#tracks tbody tr")).to_have_count(2)
    assert _titles(page) == ["Double Time", "Morning Run"]
    screenshot(page, "library")


def _open_track(page: Page, web_server: WebServer, query: str, title: str) -> None:
    """Search the library for ``query`` and open the first track's page, which must be ``title``'s."""
    page.goto(f"{web_server.url}/?q={query}")
    page.click("#tracks tbody a")
    expect(page.locator("h1")).to_have_text(title)


def test_track_page_writes_a_playlist_to_the_server(
    signed_in: Page, web_server: WebServer, screenshot: Screenshot
) -> None:
    page = signed_in
    _open_track(page, web_server, "morning", "Morning Run")
    expect(page.locator("#facts")).to_contain_text("120.0")
    expect(page.locator("#facts")).to_contain_text("A minor")
    expect(page.locator("#compatible li")).to_have_count(4)
    expect(page.locator("#similar li").first).to_contain_text("Night Drive")
    assert (
        page.locator("#studio-link").get_attribute("href", timeout=1000) == f"/studio/?track={page.url.split('=')[-1]}"
    )
    page.fill("#playlist-name", "Browser test mix")
    page.click("button[data-kind=sonic-match]")
    expect(page.locator("#playlist-status")).to_contain_text("written to the server")
    expect(page.locator("#playlist-tracks li")).to_have_count(5)
    screenshot(page, "track")

    async def playlist_of(username: str, password: str) -> list[str] | None:
        config = NavidromeConfig(url=web_server.subsonic.url, username=username, password=password)
        async with NavidromeAdapter(config) as adapter:
            playlist_id = await adapter.find_playlist("Browser test mix")
            return None if playlist_id is None else await adapter.playlist_tracks(playlist_id)

    on_server = _run(playlist_of(web_server.guest, web_server.guest_password))  # the signed-in user's own playlist
    night = page.request.get(f"{web_server.url}/api/tracks?q=night").json()["tracks"][0]["host_track_id"]
    assert on_server is not None
    assert len(on_server) == 5
    assert on_server[0] == night
    assert _run(playlist_of(web_server.username, web_server.password)) is None  # not the sidecar account's


def test_track_page_corrects_the_bpm_and_gives_it_back(
    signed_in: Page, web_server: WebServer, console: ConsoleWatch
) -> None:
    page = signed_in
    _open_track(page, web_server, "far", "Far Away")
    expect(page.locator("#correct-bpm")).to_have_value("95")
    expect(page.locator("#restore")).to_be_hidden()
    page.fill("#correct-bpm", "190")
    page.click("#correct button[type=submit]")
    expect(page.locator("#correct-status")).to_contain_text("Saved")
    expect(page.locator("#facts")).to_contain_text("190.0")
    expect(page.locator("#facts")).to_contain_text("set by you · the analyzer read 95.0")
    listed = page.request.get(f"{web_server.url}/api/tracks?bpm_min=185&bpm_max=195").json()["tracks"]
    assert [(track["title"], track["overridden"]) for track in listed] == [("Far Away", ["bpm"])]  # used at once
    page.goto(f"{web_server.url}/?q=far")
    expect(page.locator("#tracks tbody td[data-label=BPM]")).to_have_text("190.0 (yours)")
    expect(page.locator("#tracks tbody td[data-label=Key]")).not_to_contain_text("yours")
    page.click("#tracks tbody a")
    expect(page.locator("#correct-bpm")).to_have_value("190")  # the page has loaded the analysis
    console.allow("422")  # the browser logs the refused request itself
    page.fill("#correct-key", "H minor")
    page.click("#correct button[type=submit]")
    expect(page.locator("#correct-status")).to_contain_text("H minor")  # the server's reason, shown
    page.click("#restore")
    expect(page.locator("#correct-status")).to_contain_text("The analyzer's values are back.")
    expect(page.locator("#facts")).to_contain_text("95.0")
    expect(page.locator("#facts")).not_to_contain_text("set by you")
    expect(page.locator("#restore")).to_be_hidden()


def _sql(web_server: WebServer, query: str, *params: object) -> tuple[Any, ...] | None:
    """Run one statement on the session's database; its first row, if it returns rows."""
    with psycopg.connect(web_server.database_url, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchone() if cur.description else None


def test_library_pages_forward_by_cursor_and_back(signed_in: Page, web_server: WebServer) -> None:
    """30 more tracks (rows only, no files) make two pages of 25; "next" asks for the page after the first page's
    last row (``after``), "previous" shows the first page again."""
    _sql(
        web_server,
        "INSERT INTO tracks (host, host_track_id, title) SELECT 'paging', g::text, 'Zz paged ' || lpad(g::text, 2, '0')"
        " FROM generate_series(1, 30) AS g",
    )
    try:
        page = signed_in
        asked: list[str] = []
        page.on("request", lambda request: asked.append(request.url) if "/api/tracks?" in request.url else None)
        page.goto(f"{web_server.url}/?sort=title")
        expect(page.locator("#page-info")).to_have_text("1\u201325 of 36")
        first = _titles(page)
        page.click("#next")
        expect(page.locator("#page-info")).to_have_text("26\u201336 of 36")
        assert _titles(page) == [f"Zz paged {g:02}" for g in range(20, 31)]  # the 6 seeded titles come first
        assert "after=" in asked[-1]
        assert "offset=" not in asked[-1]
        page.click("#prev")
        expect(page.locator("#page-info")).to_have_text("1\u201325 of 36")
        assert _titles(page) == first
    finally:
        _sql(web_server, "DELETE FROM tracks WHERE host = 'paging'")


def test_track_page_takes_the_files_bpm_tag(signed_in: Page, web_server: WebServer) -> None:
    """supysonic reports no BPM tags, so the tag a Navidrome sync would store is set in the database."""
    _sql(web_server, "UPDATE tracks SET host_bpm = 61 WHERE title = 'Quiet Room'")
    try:
        page = signed_in
        _open_track(page, web_server, "quiet", "Quiet Room")
        expect(page.locator("#facts")).to_contain_text("the file's tag says 61.0")
        page.click("#use-tag")
        expect(page.locator("#correct-status")).to_contain_text("Saved: the file's BPM tag is yours now.")
        expect(page.locator("#facts")).to_contain_text("set by you")
        expect(page.locator("#use-tag")).to_be_hidden()  # the BPM is the tag's now
        page.click("#restore")
        expect(page.locator("#use-tag")).to_be_visible()
    finally:  # the session's other tests see the library as seeded
        _sql(web_server, "UPDATE tracks SET host_bpm = NULL WHERE title = 'Quiet Room'")


def test_track_page_says_why_there_is_no_bpm_or_key(signed_in: Page, web_server: WebServer) -> None:
    """A track the analyzers found no tempo or key in says why (the stored reasons, as a sentence each); a BPM set by
    hand shows what the analyzer read and why; a row analysed before reasons were recorded says no beat was found."""
    row = _sql(
        web_server,
        "SELECT f.track_id, f.bpm, f.key, f.camelot FROM track_features f JOIN tracks t ON t.id = f.track_id"
        " WHERE t.title = %s",
        "Double Time",
    )
    assert row is not None
    track_id, bpm, key, camelot = row
    _sql(
        web_server,
        "UPDATE track_features SET bpm = NULL, bpm_missing_reason = 'no_onsets', key = NULL, camelot = NULL,"
        " key_missing_reason = 'few_tonal_frames' WHERE track_id = %s",
        track_id,
    )
    try:
        page = signed_in
        facts = page.locator("#facts")
        _open_track(page, web_server, "double", "Double Time")
        expect(facts).to_contain_text("No tempo: held notes or silence, without beats")
        expect(facts).to_contain_text("No key: too little pitched sound")
        page.fill("#correct-bpm", "100")
        page.click("#correct button[type=submit]")
        expect(facts).to_contain_text("set by you · the analyzer read nothing: held notes or silence, without beats")
        expect(facts).not_to_contain_text("No tempo")
        page.click("#restore")
        expect(facts).to_contain_text("No tempo: held notes or silence, without beats")
        expect(facts).not_to_contain_text("set by you")
        _sql(web_server, "UPDATE track_features SET bpm_missing_reason = NULL WHERE track_id = %s", track_id)
        page.reload()
        expect(facts).to_contain_text("no steady beat found")
        expect(facts).not_to_contain_text("No tempo")
    finally:  # the session's other tests see the library as seeded
        _sql(web_server, "DELETE FROM track_overrides WHERE track_id = %s", track_id)
        _sql(
            web_server,
            "UPDATE track_features SET bpm = %s, bpm_missing_reason = NULL, key = %s, camelot = %s,"
            " key_missing_reason = NULL WHERE track_id = %s",
            bpm,
            key,
            camelot,
            track_id,
        )


COLUMNS_DRAWN = """() => {
  const canvas = document.getElementById("waveform");
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  const drawn = [];
  for (let x = 0; x < canvas.width; x++) {
    let any = false;
    for (let y = 0; y < canvas.height && !any; y++) any = data[4 * (y * canvas.width + x) + 3] > 0;
    drawn.push(any);
  }
  return drawn;
}"""


class _Waveform(TypedDict):
    """The keys of ``GET /api/tracks/{id}/waveform`` that the page maps to pixels."""

    points: int
    minimum: list[float]
    maximum: list[float]


def _columns_with_sound(waveform: _Waveform, width: int) -> list[bool]:
    """Per pixel column, whether any point under it is not digital silence (the page's own mapping of points)."""
    minimum, maximum, points = waveform["minimum"], waveform["maximum"], int(waveform["points"])
    columns = []
    for x in range(width):
        start = int(x * points / width)
        stop = min(points, max(start + 1, int((x + 1) * points / width)))
        columns.append(any(minimum[i] != 0 or maximum[i] != 0 for i in range(start, stop)))
    return columns


def test_track_page_draws_the_stored_waveform_with_a_text_alternative(
    signed_in: Page, web_server: WebServer, screenshot: Screenshot
) -> None:
    page = signed_in
    track_id = page.request.get(f"{web_server.url}/api/tracks?q=morning").json()["tracks"][0]["track_id"]
    waveform = page.request.get(f"{web_server.url}/api/tracks/{track_id}/waveform").json()
    page.goto(f"{web_server.url}/track.html?id={track_id}")
    canvas = page.locator("#waveform")
    expect(canvas).to_have_attribute("data-points", str(waveform["points"]))
    width = int(page.evaluate("document.getElementById('waveform').width"))
    drawn = page.evaluate(COLUMNS_DRAWN)
    assert drawn == _columns_with_sound(waveform, width)
    silent_from, silent_to = (round(width * s / 2.0) for s in SILENT_S)  # the tracks last 2 s
    assert not any(drawn[silent_from + 2 : silent_to - 2])  # nothing drawn where the track is silent
    assert all(drawn[: silent_from - 2])  # every column drawn where it sounds
    assert all(drawn[silent_to + 2 :])
    expect(page.locator("#waveform-text")).to_contain_text("silent from 0.6 s to 1.2 s")
    expect(page.locator("#waveform-text")).to_contain_text("sample peak -")
    assert canvas.get_attribute("aria-labelledby") == "waveform-text"
    page.set_viewport_size({"width": 360, "height": 740})
    page.wait_for_function(f"document.getElementById('waveform').width < {width}")  # redrawn at its new width
    narrow = int(page.evaluate("document.getElementById('waveform').width"))
    assert narrow == page.evaluate("document.getElementById('waveform').clientWidth")
    assert page.evaluate(COLUMNS_DRAWN) == _columns_with_sound(waveform, narrow)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360


DESCRIBE = """async ([levels, bucketS]) => {
  const { describeWaveform } = await import("/js/waveform.js");
  const maximum = levels, minimum = levels.map((v) => -v);
  return describeWaveform({ points: levels.length, bucket_s: bucketS, minimum, maximum });
}"""


def test_the_waveform_text_names_the_peak_and_the_silent_stretches(page: Page, web_server: WebServer) -> None:
    page.goto(f"{web_server.url}/signin.html")  # any page of the client: the module is imported in it
    song = [0.25] * 2000
    song[1000] = 0.5  # -6.0 dBFS at 1000 x 0.09 s = 1:30
    song[200:400] = [0.0] * 200  # 0:18 to 0:36
    song[1900:] = [0.0] * 100  # 2:51 to the end (3:00)
    assert page.evaluate(DESCRIBE, [song, 0.09]) == (
        "Waveform of 3:00: sample peak -6.0 dBFS at 1:30; silent from 0:18 to 0:36, from 2:51 to 3:00."
    )
    gaps = [0.1 if (i // 10) % 2 else 0.0 for i in range(100)]  # five 1-s gaps in 10 s
    assert page.evaluate(DESCRIBE, [gaps, 0.1]).endswith(
        "silent from 0.0 s to 1.0 s, from 2.0 s to 3.0 s, from 4.0 s to 5.0 s and 2 more stretches."
    )
    assert page.evaluate(DESCRIBE, [[0.0] * 50, 0.1]) == "Waveform: silent throughout (5.0 s)."


def test_pages_fit_a_360_px_screen(signed_in: Page, web_server: WebServer, screenshot: Screenshot) -> None:
    page = signed_in
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(f"{web_server.url}/")
    expect(page.locator("#tracks tbody tr")).to_have_count(6)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    screenshot(page, "library-360px")
    page.click("#tracks tbody a >> nth=0")
    expect(page.locator("#facts div")).to_have_count(7)
    expect(page.locator("#waveform")).to_have_attribute("data-points", re.compile(r"^\d+$"))
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    screenshot(page, "track-360px")


def _make_playlist(page: Page, kind: str) -> dict[str, Any]:
    """Press the track page's ``kind`` playlist button; the JSON body the page sent (its answer must be a success)."""
    with page.expect_response(f"**/api/playlists/{kind}") as answered:
        page.click(f"button[data-kind={kind}]")
    assert answered.value.ok
    sent = answered.value.request.post_data_json
    assert isinstance(sent, dict)
    return sent


def test_a_harmonic_mix_can_leave_out_unsure_keys(signed_in: Page, web_server: WebServer) -> None:
    page = signed_in
    _open_track(page, web_server, "morning", "Morning Run")  # 8A, 120 BPM: then Night Drive (9A), Quiet Room (10A)
    for sure, expected in ((False, 3), (True, 2)):
        page.set_checked("#sure-keys", sure)
        sent = _make_playlist(page, "harmonic-mix")
        assert sent.get("min_key_confidence") == (0.25 if sure else None)
        expect(page.locator("#playlist-tracks li")).to_have_count(expected)
        quiet_room = page.locator("#playlist-tracks li", has_text="Quiet Room")  # its key confidence is 0.1
        expect(quiet_room).to_have_count(0 if sure else 1)


def test_playlists_take_a_mood_and_a_style_to_leave_out(signed_in: Page, web_server: WebServer) -> None:
    page = signed_in
    _open_track(page, web_server, "morning", "Morning Run")
    expect(page.locator("#playlist-mood option")).to_have_count(11)  # any, and the 10 moods of GET /api/tags
    for mood, style, expected in (("chill", "", 0), ("", "rock", 5)):  # these tracks have no tags
        page.select_option("#playlist-mood", mood)
        page.select_option("#playlist-exclude-style", style)
        sent = _make_playlist(page, "sonic-match")
        assert (sent.get("moods"), sent.get("exclude_styles")) == ([mood] if mood else None, [style] if style else None)
        expect(page.locator("#playlist-status")).to_contain_text(f"\u201d: {expected} tracks")
        expect(page.locator("#playlist-tracks li")).to_have_count(expected)  # untagged: no mood, nothing left out


def test_keyboard_alone_signs_in_searches_opens_a_track_and_makes_playlists(page: Page, web_server: WebServer) -> None:
    page.goto(f"{web_server.url}/signin.html")
    tab_to(page, "#username")
    assert focus_outline(page) != "none"  # the focus can be seen
    page.keyboard.type(web_server.guest)
    page.keyboard.press("Tab")
    page.keyboard.type(web_server.guest_password)
    page.keyboard.press("Enter")
    expect(page.locator("#tracks tbody tr")).to_have_count(6)
    tab_to(page, "#q")
    page.keyboard.type("beta")
    page.keyboard.press("Enter")
    expect(page.locator("#tracks tbody tr")).to_have_count(2)
    tab_to(page, "#tracks tbody a")
    assert focus_outline(page) != "none"
    title = page.evaluate("() => document.activeElement.textContent.trim()")
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text(title)
    for kind, key, made in (("bpm-range", "Enter", "BPM\u201d"), ("harmonic-mix", " ", "harmonic mix from")):
        tab_to(page, f"button[data-kind={kind}]")
        assert focus_outline(page) != "none"
        page.keyboard.press(key)
        expect(page.locator("#playlist-status")).to_contain_text(made)
        expect(page.locator("#playlist-status")).to_contain_text("written to the server")
        assert focused_matches(page, f"button[data-kind={kind}]")  # the focus stays where the user was
    tab_to(page, "#request-stems")
    page.keyboard.press("Enter")
    expect(page.locator("#stems-status")).to_have_text("Stems are queued.")
    expect(page.locator("#request-stems")).to_have_attribute("aria-disabled", "true")
    assert focused_matches(page, "#request-stems")
