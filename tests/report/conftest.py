import os

import pytest
from chromium import CHROMIUM, Browser, find_chromium


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium for this module; a skip where it is missing, but a failure under CI=1."""
    if find_chromium() is None:
        reason = f"Chromium is not installed ({CHROMIUM} is missing; Debian: apt-get install chromium)"
        if os.environ.get("CI"):  # CI installs it (.ci/run): a skip there would hide a broken page
            pytest.fail(f"CI must run the browser test: {reason}", pytrace=False)
        pytest.skip(reason)
    with Browser(timeout=60) as b:
        yield b
