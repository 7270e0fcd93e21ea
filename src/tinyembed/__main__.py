"""``python -m tinyembed``: the ``tinyembed`` command."""

import sys

from .cli import main

sys.exit(main())
