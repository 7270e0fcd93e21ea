"""The report's decode section: drawn from the last saved decode study with its date and command, never measured;
without a study (or with a damaged one) it says which command makes one and where it is looked for."""

from types import SimpleNamespace

import pytest

from tinyembed.report.sections import SECTIONS, ReportConfig, decode_section
from tinyembed.study import decode, save_study


def _section(path):
    return decode_section(SimpleNamespace(config=ReportConfig(decode_study=str(path))))


def test_a_saved_study_gives_its_plots_tables_date_and_command_without_measuring(tiny_decode_study, tmp_path,
                                                                                  monkeypatch):
    pytest.importorskip("matplotlib")
    document = tiny_decode_study
    path = save_study(document, tmp_path / "decode.json")
    monkeypatch.setattr(decode, "measure_decode", lambda *a, **k: pytest.fail("the report must not measure"))
    section, data, lines = _section(path)
    assert section.id == "decode" and len(section.figures) == 2
    assert all(f.png.startswith(b"\x89PNG") and f.title for f in section.figures)
    timed, models, pruned = section.tables
    assert len(timed.rows) == len(document["points"]) and len(pruned.rows) == len(document["coverage"])
    assert {row[0] for row in models.rows} == {m["name"] for m in document["models"]}
    assert document["date"] in section.text and document["command"] in section.text and str(path) in section.text
    assert data["date"] == document["date"] and data["models"] == document["models"]
    largest = data["largest"]
    assert {(p["vocab_size"], p["embedding_dim"]) for p in largest.values()} == {(300, 16)}
    slow = max(largest.values(), key=lambda p: p["seconds_per_token"])
    assert lines[0].startswith(f"Decode study: one token's output projection at V=300, D=16 takes "
                               f"{slow['seconds_per_token'] * 1e3:.2f} ms in {slow['storage']}")


def test_without_a_study_it_says_which_command_makes_one_and_where_it_looks(tmp_path):
    path = tmp_path / "decode.json"
    section, data, lines = _section(path)
    assert "No decode study has been saved" in section.text and "`tinyembed study decode`" in section.text
    assert str(path) in section.text and not section.figures and data["path"] == str(path)
    assert "tinyembed study decode" in lines[0]


def test_a_damaged_or_foreign_study_is_named_not_raised(tmp_path, tiny_capacity_study):
    path = tmp_path / "decode.json"
    path.write_text('{"study": "decode", "format": 1, "points": [')
    section, _, _ = _section(path)
    assert "could not be read" in section.text and str(path) in section.text
    save_study(tiny_capacity_study[0], path)  # a capacity study where the decode one should be
    section, _, _ = _section(path)
    assert "does not hold a 'decode' study" in section.text


def test_the_section_comes_after_capacity():
    assert [name for name, _ in SECTIONS][-2:] == ["capacity", "decode"]
