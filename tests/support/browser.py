"""A real browser for the tests of pages: Debian's Chromium driven by Playwright, offline."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_browser = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]


def open_url(url: str, width: int = 1280, wait_for: str | None = None) -> tuple[Any, Any, Any, list[str], list[str]]:
    """Open ``url`` in headless Chromium; returns the Playwright manager and browser (the caller stops both), the
    page, and the lists its console errors and requests are recorded in."""
    from playwright.sync_api import sync_playwright

    manager = sync_playwright().start()
    browser = manager.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    page = browser.new_page(viewport={"width": width, "height": 900})
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda req: requests.append(req.url))
    page.goto(url)
    if wait_for is not None:
        page.wait_for_selector(wait_for)
    return manager, browser, page, errors, requests


def open_page(path: Path, width: int = 1280) -> tuple[Any, Any, Any, list[str], list[str]]:
    """A report-style page written to disk, once its examples are drawn (see ``open_url``)."""
    return open_url(path.resolve().as_uri(), width, "article.example")
