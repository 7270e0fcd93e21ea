"""`tinyembed tutorial`: says how to open the notebooks, and writes executed HTML copies whole (--html)."""

import shlex
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tinyembed.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _notebooks(folder: Path, *cells_per_notebook: list) -> Path:
    folder.mkdir()
    for k, cells in enumerate(cells_per_notebook, start=1):
        notebook = new_notebook(cells=[new_markdown_cell(f"# {k}. Notebook {k}\n\nText."), *cells],
                                metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                         "language": "python"}})
        nbformat.write(notebook, folder / f"0{k}_notebook.ipynb")
    return folder


def test_without_options_it_lists_the_notebooks_and_says_how_to_open_the_first(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["tutorial"]) == 0
    out = capsys.readouterr().out
    for name in ("01_lookup_tables.ipynb", "05_trade_offs.ipynb", "1. Lookup tables and their gradients"):
        assert name in out
    assert "pip install '.[tutorial]'" in out
    opens = next(line.strip() for line in out.splitlines() if line.strip().startswith("jupyter lab "))
    assert (ROOT / shlex.split(opens)[2]).is_file() and shlex.split(opens)[2].endswith("01_lookup_tables.ipynb")


def test_elsewhere_it_names_the_checkout_to_install_from(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert main(["tutorial"]) == 0
    out = capsys.readouterr().out
    assert f"pip install '{ROOT}[tutorial]'" in out
    assert f"jupyter lab {ROOT / 'docs' / 'tutorial' / '01_lookup_tables.ipynb'}" in out


def test_html_runs_each_notebook_in_a_fresh_kernel_and_writes_every_page(capsys, tmp_path):
    books = _notebooks(tmp_path / "books", [new_code_cell("import tinyembed\nprint('rows', 6 * 7)")],
                       [new_code_cell("import os\nprint('in', os.path.basename(os.getcwd()))")])
    out = tmp_path / "html"
    assert main(["tutorial", "--notebooks", str(books), "--html", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["01_notebook.html", "02_notebook.html", "index.html"]
    assert "rows 42" in (out / "01_notebook.html").read_text()
    assert "in books" in (out / "02_notebook.html").read_text()  # the kernel starts beside the notebook
    index = (out / "index.html").read_text()
    assert 'href="01_notebook.html"' in index and "1. Notebook 1" in index
    assert str(out / "index.html") in capsys.readouterr().out


def test_html_refuses_an_existing_folder_before_running_anything_unless_forced(capsys, tmp_path):
    books = _notebooks(tmp_path / "books", [new_code_cell("print('fresh')")])
    out = tmp_path / "html"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    assert main(["tutorial", "--notebooks", str(books), "--html", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    assert main(["tutorial", "--notebooks", str(books), "--html", str(out), "--force"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["01_notebook.html", "index.html"]


def test_a_failing_notebook_is_named_with_its_cell_and_nothing_is_written(capsys, tmp_path):
    books = _notebooks(tmp_path / "books", [new_code_cell("print('fine')")],
                       [new_code_cell("x = 1"), new_code_cell("raise ValueError('the answer is 41')")])
    out = tmp_path / "html"
    assert main(["tutorial", "--notebooks", str(books), "--html", str(out)]) == 1
    err = capsys.readouterr().err
    assert "02_notebook.ipynb: cell 2 (`raise ValueError('the answer is 41')`) raised ValueError" in err
    assert not out.exists()


def test_force_without_html_and_a_folder_without_notebooks_are_refused(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        main(["tutorial", "--force"])
    assert exit_.value.code == 2 and "needs --html" in capsys.readouterr().err
    assert main(["tutorial", "--notebooks", str(tmp_path)]) == 1
    assert "no tutorial notebooks" in capsys.readouterr().err
