import importlib.util
import os

import pytest
from hypothesis import settings

# CI replays the same examples every run (a red CI is then always reproducible);
# local runs keep exploring new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_configure(config):
    # Parity tests skip where torch is missing on a laptop; CI must run them, not skip them.
    if os.environ.get("CI") and importlib.util.find_spec("torch") is None:
        raise pytest.UsageError("CI needs torch==2.13.0 (the test oracle): pip install -e '.[test]'")
