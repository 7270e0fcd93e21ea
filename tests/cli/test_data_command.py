"""tinyembed data: lists the corpora, prepares them, refuses unknown names."""

import json

import pytest

from tinyembed.cli import main
from tinyembed.text.corpus import CORPORA


def test_data_lists_every_corpus_as_json(capsys):
    assert main(["data", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted(c["name"] for c in listed) == sorted(CORPORA)
    assert all(c["source"].startswith("gensim==") for c in listed)


def test_data_prepare_makes_the_corpus_and_lists_it_prepared(capsys):
    assert main(["data", "prepare", "lee", "--json"]) == 0
    [lee] = json.loads(capsys.readouterr().out)
    assert lee["name"] == "lee" and lee["prepared"] and lee["lines"] == 300


def test_data_prepare_refuses_an_unknown_corpus_by_name(capsys):
    with pytest.raises(SystemExit) as e:
        main(["data", "prepare", "lee", "nope"])
    assert e.value.code == 2
    assert "unknown corpus 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["data", "--help"], ["data", "prepare", "--help"], ["data", "list", "--help"]])
def test_data_help(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0 and "usage: tinyembed data" in capsys.readouterr().out
