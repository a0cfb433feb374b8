"""Open a page in Debian's headless Chromium (playwright drives /usr/bin/chromium): what the page
logged as errors, and a screenshot."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
# No network on the test machines: keep Chromium from trying (its refusals flood the log).
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class Rendered:
    errors: list[str] = field(default_factory=list)  # console errors and uncaught page errors
    failed_requests: list[str] = field(default_factory=list)
    title: str = ""
    svg_count: int = 0
    table_rows: int = 0
    images_unloaded: int = 0  # <img> elements that did not load (the report has none)
    body_width: int = 0
    body_height: int = 0


def render(page_file: Path, screenshot: Path, width: int = 1280) -> Rendered:
    from playwright.sync_api import sync_playwright

    result = Rendered()
    with tempfile.TemporaryDirectory(prefix="kplab-chromium-") as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile,  # a fresh --user-data-dir
            executable_path=CHROMIUM,
            headless=True,
            args=ARGS,
            viewport={"width": width, "height": 900},
        )
        try:
            page = context.new_page()
            page.on("console", lambda m: result.errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: result.errors.append(str(e)))
            page.on("requestfailed", lambda r: result.failed_requests.append(r.url))
            page.goto(page_file.resolve().as_uri(), wait_until="load")
            result.title = page.title()
            result.svg_count = page.locator("svg").count()
            result.table_rows = page.locator("tbody tr").count()
            result.images_unloaded = int(
                page.evaluate("[...document.images].filter(i => !i.complete).length")
            )
            size = page.evaluate("[document.body.scrollWidth, document.body.scrollHeight]")
            result.body_width, result.body_height = int(size[0]), int(size[1])
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            context.close()
    return result
