"""Write the README's "Learn" picture: run notebook 02 in a fresh kernel and save the picture of its
cell tagged ``readme-figure`` as docs/tutorial-positions.png.

    python docs/tutorial/make_readme_picture.py

The picture is what a learner sees when running the notebook (the inline backend's PNG), not a redrawing.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path

from tinyembed.cli.tutorial import run_notebook
from tinyembed.io.files import write_atomic

HERE = Path(__file__).resolve().parent
NOTEBOOK = HERE / "02_positions.ipynb"
PICTURE = HERE.parent / "tutorial-positions.png"
TAG = "readme-figure"


def main() -> int:
    notebook, seconds = run_notebook(NOTEBOOK)
    tagged = [cell for cell in notebook.cells if TAG in cell.metadata.get("tags", [])]
    pngs = [output["data"]["image/png"] for cell in tagged for output in cell.get("outputs", [])
            if "image/png" in output.get("data", {})]
    if len(pngs) != 1:
        print(f"{NOTEBOOK.name}: expected one picture in the cell tagged {TAG!r}, found {len(pngs)}", file=sys.stderr)
        return 1
    write_atomic(PICTURE, base64.b64decode(pngs[0]))
    print(f"{PICTURE} (from {NOTEBOOK.name}, which ran in {seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
