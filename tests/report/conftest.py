import importlib.util
import os

import pytest


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (via Playwright) for this module; a skip where it is missing, but a failure under CI=1."""
    from browser import CHROMIUM, Browser

    if not os.access(CHROMIUM, os.X_OK):
        reason = f"Chromium is not installed ({CHROMIUM} is missing; Debian: apt-get install chromium)"
    elif importlib.util.find_spec("playwright") is None:
        reason = "Playwright is not installed (pip install -e '.[test]')"
    else:
        reason = ""
    if reason:
        if os.environ.get("CI"):  # CI installs both (.ci/run, the test extra): a skip there would hide a broken page
            pytest.fail(f"CI must run the browser test: {reason}", pytrace=False)
        pytest.skip(reason)
    with Browser() as b:
        yield b
