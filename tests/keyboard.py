"""Keyboard helpers of the browser tests (tests/browser, tests/studio): move the focus with Tab alone and read
whether the focused element shows it."""

from __future__ import annotations

from playwright.sync_api import Page


def tab_to(page: Page, selector: str, *, most: int = 40, backwards: bool = False) -> None:
    """Press Tab (Shift+Tab when ``backwards``) until the element matching ``selector`` has the focus (at most
    ``most`` presses)."""
    for _ in range(most):
        if focused_matches(page, selector):
            return
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
    raise AssertionError(f"{selector} never got the focus after {most} Tab presses")


def focus_outline(page: Page) -> str:
    """The focused element's computed ``outline-style`` (``none`` when the focus cannot be seen)."""
    return str(page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle"))


def focused_matches(page: Page, selector: str) -> bool:
    """Whether the focused element matches ``selector``."""
    return bool(page.evaluate("(s) => document.activeElement !== null && document.activeElement.matches(s)", selector))
