import importlib
import sys
from pathlib import Path

import pytest

TUTORIAL = Path(__file__).resolve().parents[2] / "docs" / "tutorial"


@pytest.fixture(scope="session")
def tutorial_modules():
    """The tutorial's exercises and answers modules (docs/tutorial), imported as a notebook imports them."""
    sys.path.insert(0, str(TUTORIAL))
    try:
        exercises = importlib.import_module("exercises")
        answers = importlib.import_module("answers")
    finally:
        sys.path.remove(str(TUTORIAL))
    return exercises, answers
