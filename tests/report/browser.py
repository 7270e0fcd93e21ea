"""Open a page in Debian's headless Chromium, driven by Playwright, and check it (a test helper).

Playwright launches /usr/bin/chromium through ``executable_path``, so it never downloads a
browser (``playwright install`` is never needed). From a shell, e.g. for the README's screenshot::

    python tests/report/browser.py check REPORT/index.html --title "tinyembed report"
    python tests/report/browser.py screenshot REPORT/index.html docs/report.png --width 1100
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"  # Debian's package `chromium`
# Root has no user namespace for the sandbox here, and with no network every background
# fetch (QUIC, updates, sync) would only fail and might log errors.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
# Runs after the load event: each <img>'s natural size, and whether it decodes at all.
IMAGES = """() => Promise.all(Array.from(document.images, async img => ({
  alt: img.alt, src: img.src.slice(0, 60), complete: img.complete, natural_width: img.naturalWidth,
  natural_height: img.naturalHeight, decoded: await img.decode().then(() => true, () => false)})))"""


@dataclass
class Check:
    """What Chromium saw on a page; ``failures`` says, one sentence each, what was wrong."""

    title: str = ""
    ready_state: str = ""
    images: list[dict] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)  # CSP violations and uncaught exceptions too
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


class Browser:
    """One headless Chromium; each check or screenshot gets a fresh page. A context manager."""

    def __init__(self):
        from playwright.sync_api import sync_playwright  # imported here: pytest imports this file for doctests

        self._playwright = sync_playwright().start()
        try:
            self._browser = self._playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        except BaseException:
            self._playwright.stop()
            raise

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self._browser.close()
        self._playwright.stop()

    def check(self, path, expected_title: str | None = None) -> Check:
        """Load ``path``; check its title, readyState, images, and that nothing was logged as an error."""
        from playwright.sync_api import Error

        check, page = Check(), self._browser.new_page()

        def on_console(message):
            if message.type in ("error", "assert"):  # a failed console.assert is an error too
                url = message.location.get("url")  # names the resource that failed to load
                check.console_errors.append(f"{message.text} ({url})" if url else message.text)

        page.on("console", on_console)
        page.on("pageerror", lambda error: check.console_errors.append(str(error)))  # uncaught exceptions
        try:
            page.goto(Path(path).resolve().as_uri())  # returns after the load event
            check.title, check.ready_state = page.title(), page.evaluate("document.readyState")
            check.images = page.evaluate(IMAGES)
        except Error as error:
            check.failures.append(f"page did not load: {error.message}")
        finally:
            page.close()
        if check.ready_state != "complete":
            check.failures.append(f"document.readyState is {check.ready_state!r}, not 'complete'")
        if expected_title is not None and check.title != expected_title:
            check.failures.append(f"title is {check.title!r}, expected {expected_title!r}")
        check.failures += [f"image {k} ({img['alt'] or img['src']!r}) did not decode: naturalWidth="
                           f"{img['natural_width']}" for k, img in enumerate(check.images)
                           if not (img["complete"] and img["natural_width"] > 0 and img["decoded"])]
        check.failures += [f"console error: {message}" for message in check.console_errors]
        return check

    def screenshot(self, path, png_path, width: int = 1200, height: int | None = None) -> Path:
        """Save ``path`` as a PNG ``width`` pixels wide: the whole page, or the top ``height`` pixels."""
        page = self._browser.new_page(viewport={"width": width, "height": height or 900})
        try:
            page.goto(Path(path).resolve().as_uri())
            page.screenshot(path=png_path, full_page=height is None)
        finally:
            page.close()
        return Path(png_path)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Check or screenshot a page in headless Chromium.")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="list what failed; exit 1 if anything did")
    check.add_argument("page")
    check.add_argument("--title", help="the title the page must have")
    shot = commands.add_parser("screenshot", help="save the whole page as a PNG")
    shot.add_argument("page")
    shot.add_argument("png")
    shot.add_argument("--width", type=int, default=1100, help="in CSS pixels")
    args = parser.parse_args()
    with Browser() as browser:
        if args.command == "screenshot":
            print(browser.screenshot(args.page, args.png, args.width))
        else:
            failures = browser.check(args.page, args.title).failures
            print("\n".join(failures) or "ok")
            raise SystemExit(1 if failures else 0)
