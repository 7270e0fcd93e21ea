"""Open a page in Debian's headless Chromium and check it (a test helper; stdlib only).

Chromium is driven over the DevTools protocol on ``--remote-debugging-pipe``: the
browser reads JSON commands, each ended by a NUL byte, from its file descriptor 3 and
writes replies and events, NUL-ended too, to its descriptor 4. That needs no WebDriver,
no websocket library and no TCP port (nothing to pick, nothing another process can
take), and no package beyond Debian's ``chromium``.

What :func:`check_page` checks (:class:`PageCheck`):

* the page loads: ``document.readyState == "complete"`` and, if given, the title;
* every ``<img>`` decoded: ``complete``, ``naturalWidth > 0`` and ``img.decode()`` resolves;
* the console has no errors: ``console.error`` / failed ``console.assert`` calls,
  uncaught exceptions, and the browser's own error entries (a resource that failed to
  load, a Content-Security-Policy violation).

From a shell (for the README's screenshot)::

    python tests/report/chromium.py check REPORT/index.html --title "tinyembed report"
    python tests/report/chromium.py screenshot REPORT/index.html docs/report.png --width 1200

Examples (need Chromium, so skipped as doctests):
    >>> check = check_page("report/index.html", expected_title="tinyembed report")  # doctest: +SKIP
    >>> check.ok, check.failures                                                    # doctest: +SKIP
    (True, [])
    >>> screenshot("report/index.html", "docs/report.png", width=1200)              # doctest: +SKIP
"""

from __future__ import annotations

import base64
import fcntl
import json
import math
import os
import select
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CHROMIUM", "FLAGS", "Browser", "ChromiumError", "PageCheck", "check_page", "find_chromium",
           "screenshot"]

# Debian's package `chromium` (a launcher script that execs /usr/lib/chromium/chromium).
CHROMIUM = "/usr/bin/chromium"

# Headless, as root, without internet: the sandbox needs a user namespace that
# containers running as root often lack; every background fetch (updates, sync,
# safe-browsing lists, QUIC probes) would only fail and might log noise.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # a container's /dev/shm can be 64 MB; a full one crashes the renderer
    "--hide-scrollbars",  # screenshots show the page, not the scrollbar
    "--force-color-profile=srgb",
    "--mute-audio",
)

# Runs inside the page once it has loaded; returns plain JSON.
_INSPECT_PAGE = """
(async () => {
  const images = [];
  for (const img of Array.from(document.images)) {
    let decoded = true;
    try { await img.decode(); } catch (e) { decoded = false; }
    images.push({src: (img.currentSrc || img.src).slice(0, 60), alt: img.alt, complete: img.complete,
                 natural_width: img.naturalWidth, natural_height: img.naturalHeight, decoded});
  }
  return {ready_state: document.readyState, title: document.title, images};
})()
"""


class ChromiumError(RuntimeError):
    """Chromium could not be started, died, or did not answer in time."""


def find_chromium() -> str | None:
    """The path of Debian's Chromium, or None when it is not installed."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    return shutil.which("chromium")


@dataclass
class PageCheck:
    """What Chromium saw when it opened a page.

    Attributes:
        url: the page opened.
        ready_state: ``document.readyState`` after the load event ("complete" when loaded).
        title: ``document.title``.
        images: one dict per ``<img>``: src (first 60 characters), alt, complete,
            natural_width, natural_height (pixels) and decoded.
        console_errors: the error messages logged while the page loaded, in order.
        expected_title: the title the page must have; None checks no title.
        navigation_error: Chromium's error when the page itself failed to load, else "".
    """

    url: str
    ready_state: str
    title: str
    images: list[dict] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    expected_title: str | None = None
    navigation_error: str = ""

    @property
    def failures(self) -> list[str]:
        """Every check that failed, as a sentence; empty when the page passed."""
        failures = []
        if self.navigation_error:
            failures.append(f"page did not load: {self.navigation_error}")
        if self.ready_state != "complete":
            failures.append(f"document.readyState is {self.ready_state!r}, not 'complete'")
        if self.expected_title is not None and self.title != self.expected_title:
            failures.append(f"title is {self.title!r}, expected {self.expected_title!r}")
        for k, img in enumerate(self.images):
            if not (img["complete"] and img["natural_width"] > 0 and img["decoded"]):
                failures.append(f"image {k} ({img['alt'] or img['src']!r}) did not decode: "
                                f"complete={img['complete']}, naturalWidth={img['natural_width']}")
        failures.extend(f"console error: {message}" for message in self.console_errors)
        return failures

    @property
    def ok(self) -> bool:
        return not self.failures


def _high_fd(fd: int) -> int:
    """``fd`` moved to a number >= 10, close-on-exec (so the 3 and 4 we map to stay free)."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class Browser:
    """One headless Chromium process, driven over the DevTools pipe; a context manager.

    Each :meth:`check` or :meth:`screenshot` opens the page in a fresh tab and closes it
    afterwards, so one browser serves many pages. Every wait has a deadline of
    ``timeout`` seconds; past it, or when Chromium dies, :class:`ChromiumError` says so
    and quotes the end of Chromium's own log.

    Examples:
        >>> with Browser() as browser:                   # doctest: +SKIP
        ...     check = browser.check("index.html", expected_title="Report")
    """

    def __init__(self, executable: str | None = None, timeout: float = 30.0):
        executable = executable or find_chromium()
        if executable is None:
            raise ChromiumError(f"Chromium is not installed ({CHROMIUM} is missing): "
                                "apt-get install chromium")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.timeout = timeout
        self._next_id = 0
        self._buffer = b""
        self._events: list[dict] = []
        self._profile = tempfile.mkdtemp(prefix="tinyembed-chromium-")
        self._log_path = os.path.join(self._profile, "chromium.log")
        self.pid = None
        to_browser_r, self._to_browser = (_high_fd(fd) for fd in os.pipe())
        self._from_browser, from_browser_w = (_high_fd(fd) for fd in os.pipe())
        log_fd = os.open(self._log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        argv = [executable, *FLAGS, "--remote-debugging-pipe", f"--user-data-dir={self._profile}/profile",
                "about:blank"]
        try:
            # posix_spawn, not Popen: Popen cannot put a descriptor at a chosen number,
            # and the pipe protocol fixes them at 3 and 4. Its own process group lets
            # close() end the browser's helper processes with it.
            self.pid = os.posix_spawn(executable, argv, os.environ, setpgroup=0, file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, log_fd, 1),
                (os.POSIX_SPAWN_DUP2, log_fd, 2),
                (os.POSIX_SPAWN_DUP2, to_browser_r, 3),
                (os.POSIX_SPAWN_DUP2, from_browser_w, 4),
            ])
        except BaseException:
            self.close()
            raise
        finally:
            for fd in (to_browser_r, from_browser_w, log_fd):
                os.close(fd)
        try:
            self.call("Browser.getVersion")
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the protocol --------------------------------------------------------

    def _log_tail(self, lines: int = 15) -> str:
        try:
            with open(self._log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:]).strip() or "(empty)"
        except OSError:
            return "(no log)"

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ChromiumError(f"Chromium did not answer within {self.timeout:g} s; "
                                    f"its log ends:\n{self._log_tail()}")
            ready, _, _ = select.select([self._from_browser], [], [], remaining)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise ChromiumError(f"Chromium exited; its log ends:\n{self._log_tail()}")
                self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send one DevTools command and return its result; events that arrive meanwhile are kept."""
        self._next_id += 1
        command = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            command["sessionId"] = session
        data = json.dumps(command).encode() + b"\0"
        while data:
            data = data[os.write(self._to_browser, data):]
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._read_message(deadline)
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise ChromiumError(f"{method} failed: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self._events.append(message)

    def wait_for_event(self, method: str, session: str) -> dict:
        """The first event ``method`` of ``session`` (already received or still to come)."""
        deadline = time.monotonic() + self.timeout
        seen = 0
        while True:
            for event in self._events[seen:]:
                if event["method"] == method and event.get("sessionId") == session:
                    return event
            seen = len(self._events)
            message = self._read_message(deadline)
            if "method" in message:
                self._events.append(message)

    # -- pages ---------------------------------------------------------------

    def _open_tab(self, width: int, height: int) -> tuple[str, str]:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=session)
        self._set_viewport(session, width, height)
        return target, session

    def _set_viewport(self, session: str, width: int, height: int) -> None:
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session)

    def _navigate(self, session: str, url: str) -> str:
        """Load ``url`` and wait for its load event; Chromium's error text if it failed, else ''."""
        result = self.call("Page.navigate", {"url": url}, session)
        if result.get("errorText"):
            return result["errorText"]
        self.wait_for_event("Page.loadEventFired", session)
        return ""

    def _close_tab(self, target: str) -> None:
        self.call("Target.closeTarget", {"targetId": target})
        self._events = []  # one tab at a time: nothing kept belongs to a later one

    def check(self, html_path: str | os.PathLike, expected_title: str | None = None,
              width: int = 1200, height: int = 900) -> PageCheck:
        """Open ``html_path`` in a fresh tab and record what :class:`PageCheck` checks."""
        url = Path(html_path).resolve().as_uri()
        target, session = self._open_tab(width, height)
        try:
            navigation_error = self._navigate(session, url)
            page = self.call("Runtime.evaluate", {"expression": _INSPECT_PAGE, "awaitPromise": True,
                                                  "returnByValue": True}, session)
            if "exceptionDetails" in page:
                raise ChromiumError(f"inspecting {url} failed: {page['exceptionDetails']}")
            value = page["result"]["value"]
            errors = [_error_text(e) for e in self._events if e.get("sessionId") == session]
            return PageCheck(url=url, ready_state=value["ready_state"], title=value["title"],
                             images=value["images"], console_errors=[e for e in errors if e is not None],
                             expected_title=expected_title, navigation_error=navigation_error)
        finally:
            self._close_tab(target)

    def screenshot(self, html_path: str | os.PathLike, png_path: str | os.PathLike, width: int = 1200,
                   height: int | None = None) -> Path:
        """Save ``html_path`` as a PNG ``width`` CSS pixels wide; ``height`` None takes the whole page.

        The PNG is written under a temporary name beside ``png_path``, then renamed.
        """
        if width < 1 or (height is not None and height < 1):
            raise ValueError(f"width and height must be positive, got {width} and {height}")
        url = Path(html_path).resolve().as_uri()
        target, session = self._open_tab(width, height or 900)
        try:
            error = self._navigate(session, url)
            if error:
                raise ChromiumError(f"cannot open {url}: {error}")
            if height is None:
                # The viewport grown to the page's height, so the page is captured as laid
                # out at this width (captureBeyondViewport would keep viewport-sized layout).
                size = self.call("Page.getLayoutMetrics", session=session)["cssContentSize"]
                self._set_viewport(session, width, math.ceil(size["height"]))
            shot = self.call("Page.captureScreenshot", {"format": "png"}, session)
        finally:
            self._close_tab(target)
        png_path = Path(png_path)
        fd, tmp = tempfile.mkstemp(prefix=f".{png_path.name}.", suffix=".tmp", dir=png_path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
            os.replace(tmp, png_path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return png_path

    def close(self) -> None:
        """End the browser (politely, then by force) and remove its temporary profile."""
        if self.pid is not None:
            try:
                self.call("Browser.close")
            except (ChromiumError, OSError):
                pass
            # Wait for the browser to exit without reaping it: until reaped, its pid (the
            # group's id) cannot be reused, so killing the group can only hit our processes.
            deadline = time.monotonic() + 5.0
            while os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.02)
            try:  # the browser if it is stuck, and helpers that outlived it
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(self.pid, 0)
            self.pid = None
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        self._to_browser = self._from_browser = -1
        shutil.rmtree(self._profile, ignore_errors=True)


def _error_text(event: dict) -> str | None:
    """The message of an event that is a console error, else None."""
    method, params = event["method"], event.get("params", {})
    if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
        return " ".join(str(arg.get("value", arg.get("description", ""))) for arg in params.get("args", []))
    if method == "Runtime.exceptionThrown":
        details = params.get("exceptionDetails", {})
        return details.get("exception", {}).get("description") or details.get("text", "uncaught exception")
    if method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
        entry = params["entry"]
        return f"{entry.get('text', '')} ({entry.get('url', '')})" if entry.get("url") else entry.get("text", "")
    return None


def check_page(html_path: str | os.PathLike, expected_title: str | None = None,
               timeout: float = 30.0) -> PageCheck:
    """Open ``html_path`` in a new headless Chromium and check it (see :class:`PageCheck`)."""
    with Browser(timeout=timeout) as browser:
        return browser.check(html_path, expected_title)


def screenshot(html_path: str | os.PathLike, png_path: str | os.PathLike, width: int = 1200,
               height: int | None = None, timeout: float = 30.0) -> Path:
    """Save a screenshot of ``html_path``, ``width`` pixels wide, the whole page unless ``height``."""
    with Browser(timeout=timeout) as browser:
        return browser.screenshot(html_path, png_path, width, height)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Check or screenshot a page in headless Chromium.")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="load the page; list failed checks (exit 1 if any)")
    check.add_argument("html")
    check.add_argument("--title", help="the title the page must have")
    shot = commands.add_parser("screenshot", help="save the page as a PNG")
    shot.add_argument("html")
    shot.add_argument("png")
    shot.add_argument("--width", type=int, default=1200)
    shot.add_argument("--height", type=int, help="default: the whole page")
    args = parser.parse_args(argv)
    if args.command == "check":
        result = check_page(args.html, args.title)
        for failure in result.failures:
            print(failure)
        print(f"{len(result.images)} images, {len(result.failures)} failures")
        return 1 if result.failures else 0
    print(screenshot(args.html, args.png, args.width, args.height))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
