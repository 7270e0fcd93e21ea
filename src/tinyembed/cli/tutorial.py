"""``tinyembed tutorial``: the guided tour of the embeddings module, Jupyter notebooks in ``docs/tutorial``.

Without options it says which notebooks there are and how to open them. ``--html DIR``
runs each notebook top to bottom in a fresh kernel (this Python, this tinyembed) and
writes a rendered HTML copy of each, with an index, for people who only want to read.
The notebooks live in the source tree, not in the installed package: the command finds
them in the checkout tinyembed runs from, or in ``./docs/tutorial``, or where
``--notebooks`` says.

Examples:
    tinyembed tutorial
    tinyembed tutorial --html tutorial-html
"""

from __future__ import annotations

import argparse
import html
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .args import CommandError, positive_int

HELP = "the guided tour, as notebooks: how to open them, or --html DIR to write each one executed, as HTML"

TUTORIAL_DIR = Path("docs") / "tutorial"  # inside a tinyembed checkout
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"  # 01_lookup_tables.ipynb, ...
INSTALL = "pip install '.[tutorial]'"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--html", metavar="DIR",
                        help="run every notebook in a fresh kernel and write a rendered HTML copy of each, and "
                             "index.html, into DIR, whole (needs the 'tutorial' extra)")
    parser.add_argument("--force", action="store_true", help="replace --html DIR if it exists")
    parser.add_argument("--notebooks", metavar="DIR",
                        help="the folder of the notebooks (default: docs/tutorial of the tinyembed checkout)")
    parser.add_argument("--timeout", type=positive_int, default=600, metavar="SECONDS",
                        help="longest a cell may run before --html gives up (default: %(default)s)")


# -- where the notebooks are -------------------------------------------------------------------------
def find_notebook_dir(given: str | os.PathLike | None = None) -> Path:
    """The folder of the tutorial notebooks: ``given``, else the checkout this tinyembed runs from
    (``src/tinyembed/cli/tutorial.py`` -> ``docs/tutorial``), else ``./docs/tutorial``.

    Raises:
        CommandError: no notebooks there, saying where they are looked for.
    """
    if given is not None:
        candidates = [Path(given)]
    else:
        checkout = Path(__file__).resolve().parents[3]
        candidates = [checkout / TUTORIAL_DIR, Path.cwd() / TUTORIAL_DIR]
    for candidate in candidates:
        if candidate.is_dir() and notebooks_in(candidate):
            return candidate.resolve()
    if given is not None:
        raise CommandError(f"no tutorial notebooks ({NOTEBOOK_GLOB}) in {given}")
    raise CommandError("the tutorial notebooks are in docs/tutorial of tinyembed's source, which this installation "
                       "does not come from: run this inside a tinyembed checkout, or pass --notebooks DIR")


def notebooks_in(directory: Path) -> list[Path]:
    """The tutorial's notebooks in ``directory``, in order (``01_*.ipynb``, ``02_*.ipynb``, ...)."""
    return sorted(directory.glob(NOTEBOOK_GLOB))


def notebook_title(path: Path) -> str:
    """The first heading of the notebook's first markdown cell ('1. Lookup tables and their gradients')."""
    import json

    for cell in json.loads(path.read_text(encoding="utf-8")).get("cells", []):
        if cell.get("cell_type") == "markdown":
            source = "".join(cell.get("source", ""))
            for line in source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
            break
    return path.stem


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is below it, else absolute."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def instructions(directory: Path) -> str:
    """What ``tinyembed tutorial`` prints: the notebooks, how to install and open them, how to read them."""
    books = notebooks_in(directory)
    checkout = directory.parent.parent if directory.parent.name == "docs" else None
    install = INSTALL if checkout is None or checkout == Path.cwd() else f"pip install '{checkout}[tutorial]'"
    width = max(len(book.name) for book in books)
    lines = [f"The embeddings module as {len(books)} notebooks, in {_shown(directory)}:", ""]
    lines += [f"  {book.name:<{width}}  {notebook_title(book)}" for book in books]
    lines += ["",
              "Open them in Jupyter, in tinyembed's virtual environment (the tutorial extra brings JupyterLab):",
              f"  {install}",
              f"  jupyter lab {_shown(books[0])}",
              "",
              "Each exercise has a check cell that compares your function with tinyembed's and says what differs;",
              "ex.reveal(\"name\") shows a worked answer (answers.py). Every notebook runs top to bottom as shipped.",
              "",
              "To read them without Jupyter: tinyembed tutorial --html DIR runs each one and writes it as HTML."]
    return "\n".join(lines)


# -- running a notebook ------------------------------------------------------------------------------
def kernel_environment() -> dict[str, str]:
    """The environment a notebook's kernel gets: this one, with the folder of the running tinyembed first
    on PYTHONPATH (so the notebooks run the tinyembed that runs this command) and every other entry made
    absolute (the kernel starts in the notebooks' folder, where a relative entry would mean another place)."""
    import tinyembed

    env = dict(os.environ)
    ours = str(Path(tinyembed.__file__).resolve().parents[1])
    entries = [os.path.abspath(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([ours, *entries]))
    return env


def _kernel_manager(sockets: Path):
    """A kernel manager whose 'python3' kernel is this Python (ipykernel's own command line), whatever
    kernels the user's Jupyter has registered: a user-wide python3 kernel may be another interpreter.

    On POSIX the kernel talks over Unix sockets in the folder ``sockets`` (nothing listens on the
    network while a notebook runs); elsewhere over TCP on localhost.
    """
    from ipykernel.kernelspec import RESOURCES, get_kernel_dict
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import KernelManager

    class ThisPython(KernelSpecManager):
        def get_kernel_spec(self, kernel_name: str, *args: Any, **kwargs: Any) -> KernelSpec:
            spec = get_kernel_dict()
            return KernelSpec(resource_dir=RESOURCES, argv=spec["argv"], display_name=spec["display_name"],
                              language="python", metadata=spec.get("metadata", {}))

    if os.name == "posix":
        return KernelManager(kernel_name="python3", kernel_spec_manager=ThisPython(), transport="ipc",
                             ip=str(sockets / "kernel"))
    return KernelManager(kernel_name="python3", kernel_spec_manager=ThisPython())


def run_notebook(path: str | os.PathLike, timeout: int = 600) -> tuple[Any, float]:
    """Run the notebook at ``path`` top to bottom in a fresh kernel started in its folder.

    Returns:
        (the executed notebook, an ``nbformat.NotebookNode``; seconds from kernel start to the last cell).

    Raises:
        CommandError: a cell raised, or ran longer than ``timeout`` seconds; the message names the
            notebook, the cell and the error.
        ImportError: nbformat, nbclient or ipykernel is missing (the 'tutorial' extra).
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    path = Path(path)
    notebook = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="tinyembed-kernel-") as sockets:
        kernel = _kernel_manager(Path(sockets))
        client = NotebookClient(notebook, km=kernel, timeout=timeout,
                                resources={"metadata": {"path": str(path.resolve().parent)}})
        start = time.perf_counter()
        try:
            client.execute(env=kernel_environment())
        except CellExecutionError as e:
            raise CommandError(f"{path.name}: {_failed_cell(notebook)} raised {e.ename}: {e.evalue}") from None
        except CellTimeoutError:
            raise CommandError(f"{path.name}: a cell ran longer than {timeout} s (--timeout)") from None
        finally:
            seconds = time.perf_counter() - start
            if kernel.has_kernel:  # nbclient stops only the kernels it started itself
                kernel.shutdown_kernel()
        return notebook, seconds


def _failed_cell(notebook: Any) -> str:
    """'code cell 7 (`rows = lookup(table, ids)`)': the cell whose output holds the error."""
    for k, cell in enumerate(notebook.cells):
        if any(output.get("output_type") == "error" for output in cell.get("outputs", [])):
            first = next((line for line in cell.source.splitlines() if line.strip()), "")
            return f"cell {k} (`{first.strip()[:60]}`)"
    return "a cell"


def _jupyter_modules() -> None:
    """Import what --html needs now, so that a missing package is named before any work."""
    missing = []
    for module in ("nbformat", "nbclient", "nbconvert", "ipykernel", "jupyter_client"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ImportError(f"--html needs {', '.join(missing)}: {INSTALL}")


def to_html(notebook: Any) -> str:
    """One self-contained HTML page of an executed notebook (JupyterLab's look, pictures inline)."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="lab").from_notebook_node(notebook)
    return body


def _index(pages: list[tuple[Path, str, float]]) -> str:
    items = "\n".join(f'<li><a href="{html.escape(book.stem)}.html">{html.escape(title)}</a> '
                      f'<small>({book.name}, ran in {seconds:.0f} s)</small></li>' for book, title, seconds in pages)
    when = time.strftime("%Y-%m-%d %H:%M")
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>tinyembed tutorial</title>"
            "<style>body{font-family:system-ui,sans-serif;max-width:46em;margin:3em auto;line-height:1.5}"
            "</style></head>\n<body><h1>tinyembed: the embeddings module, as notebooks</h1>\n"
            f"<p>Each notebook below was run top to bottom on {when}, with the exercises as shipped "
            "(their checks report <em>not done yet</em>, and the worked answers run in their place).</p>\n"
            f"<ol>\n{items}\n</ol>\n</body></html>\n")


def write_html(directory: Path, out: str | os.PathLike, *, replace: bool = False, timeout: int = 600) -> list[Path]:
    """Run every notebook of ``directory`` and write ``out``/NAME.html for each, and ``out``/index.html.

    ``out`` is checked before any notebook runs and written whole at the end (an error or Ctrl-C
    part way leaves it as it was). Returns the pages written, index first.
    """
    from ..io.files import atomic_directory, check_destination

    out = check_destination(out, directory=True, replace=replace, what="HTML directory")
    _jupyter_modules()
    pages = []
    for book in notebooks_in(directory):
        print(f"running {book.name} ...", file=sys.stderr, flush=True)
        notebook, seconds = run_notebook(book, timeout)
        pages.append((book, notebook_title(book), seconds, to_html(notebook)))
        print(f"  done in {seconds:.1f} s", file=sys.stderr, flush=True)
    with atomic_directory(out, replace=replace) as staging:
        (staging / "index.html").write_text(_index([(b, t, s) for b, t, s, _ in pages]), encoding="utf-8")
        for book, _, _, page in pages:
            (staging / f"{book.stem}.html").write_text(page, encoding="utf-8")
    return [out / "index.html"] + [out / f"{book.stem}.html" for book, *_ in pages]


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.html is None and args.force:
        parser.error("--force replaces the --html directory; it needs --html DIR")
    directory = find_notebook_dir(args.notebooks)
    if args.html is None:
        print(instructions(directory))
        return 0
    try:
        written = write_html(directory, args.html, replace=args.force, timeout=args.timeout)
    except ImportError as e:
        parser.error(str(e))
    for path in written:
        print(path)
    return 0
