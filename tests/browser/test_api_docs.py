"""The API's documentation page in headless Chromium with no internet: ``/docs`` (Swagger UI) loads its script and
style from the sidecar itself, lists the routes and calls the API with the token."""

from __future__ import annotations

import json

from playwright.sync_api import Page, Request, expect

from tests.browser.conftest import WebServer


def _requests_elsewhere(page: Page, origin: str) -> list[str]:
    """A list that collects every URL the page asks for outside ``origin`` (none is expected)."""
    elsewhere: list[str] = []

    def on_request(request: Request) -> None:
        if not request.url.startswith(origin) and not request.url.startswith(("data:", "blob:")):
            elsewhere.append(request.url)

    page.on("request", on_request)
    return elsewhere


def test_swagger_ui_works_offline_and_calls_the_api(page: Page, web_server: WebServer) -> None:
    elsewhere = _requests_elsewhere(page, web_server.url)
    page.goto(f"{web_server.url}/docs")
    status_route = page.locator(".opblock-summary-path[data-path='/api/status']")
    expect(status_route).to_have_count(1)
    page.click("button.authorize")
    page.fill(".auth-container input", web_server.token)
    page.click(".auth-btn-wrapper button.authorize")
    page.click("button.btn-done")
    status_route.click()
    page.click(".opblock.is-open .try-out__btn")
    with page.expect_response(f"{web_server.url}/api/status") as answer:
        page.click(".opblock.is-open .execute")
    assert answer.value.request.headers["authorization"] == f"Bearer {web_server.token}"
    assert answer.value.status == 200
    assert "analyzers" in json.loads(answer.value.text())
    expect(page.locator(".opblock.is-open .live-responses-table tbody .response-col_status")).to_have_text("200")
    assert elsewhere == []
