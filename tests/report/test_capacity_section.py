"""The report's capacity section: drawn from the last saved study with its date and command, never trained;
without a study (or with a damaged one) it says which command makes one and where it is looked for."""

from types import SimpleNamespace

import pytest

from tinyembed.report.sections import ReportConfig, capacity_section
from tinyembed.study import capacity, save_study


def _section(path):
    return capacity_section(SimpleNamespace(config=ReportConfig(capacity_study=str(path))))


def test_a_saved_study_gives_its_plots_tables_date_and_command_without_training(tiny_capacity_study, tmp_path,
                                                                                  monkeypatch):
    pytest.importorskip("matplotlib")
    document, _ = tiny_capacity_study
    path = save_study(document, tmp_path / "capacity.json")
    monkeypatch.setattr(capacity, "train_run", lambda *a, **k: pytest.fail("the report must not train"))
    section, data, lines = _section(path)
    assert section.id == "capacity" and len(section.figures) == 3
    assert all(f.png.startswith(b"\x89PNG") and f.title for f in section.figures)
    best, every = section.tables
    assert len(best.rows) == len(document["isoflops"]) and len(every.rows) == len(document["points"])
    assert document["date"] in section.text and document["command"] in section.text and str(path) in section.text
    assert document["finding"] in section.text
    assert data["date"] == document["date"] and data["untied"] and data["step_throughput"]
    top = document["isoflops"][-1]["best"]
    assert lines == [f"Capacity study: at the largest budget {top['tokenizer']} at width {top['embedding_dim']} "
                     f"scores {top['bits_per_byte']:.3f} bits per byte of held-out text; {document['trend']}."]


def test_without_a_study_it_says_which_command_makes_one_and_where_it_looks(tmp_path):
    path = tmp_path / "capacity.json"
    section, data, lines = _section(path)
    assert "No capacity study has been saved" in section.text and "`tinyembed study capacity`" in section.text
    assert str(path) in section.text and not section.figures and data["path"] == str(path)
    assert "tinyembed study capacity" in lines[0]


def test_a_damaged_study_is_named_not_raised(tmp_path):
    path = tmp_path / "capacity.json"
    path.write_text('{"study": "capacity", "format": 1, "points": [')
    section, data, _ = _section(path)
    assert "could not be read" in section.text and str(path) in section.text
    assert "`tinyembed study capacity`" in section.text
