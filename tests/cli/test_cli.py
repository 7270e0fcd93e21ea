"""Tests for the tinyembed command line: it parses arguments and calls the library."""

import json

import pytest

from tinyembed.cli import main
from tinyembed.plan.memory import embedding_memory
from tinyembed.plan.models import MODELS


def run_json(capsys, *argv):
    assert main(["memory", "--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def exit_code_and_stderr(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code, capsys.readouterr().err


# ---------------------------------------------------------------------------
# Help
# ---------------------------------------------------------------------------


def test_top_level_help_lists_the_memory_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "memory" in capsys.readouterr().out


def test_memory_help_lists_its_options(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["memory", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--model", "--vocab", "--dim", "--batch-tokens", "--distribution", "--json"):
        assert flag in out


def test_no_subcommand_is_an_error(capsys):
    code, err = exit_code_and_stderr(capsys, [])
    assert code != 0
    assert "memory" in err or "COMMAND" in err


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------


def test_default_table_shows_every_model_and_the_assumptions(capsys):
    assert main(["memory"]) == 0
    out = capsys.readouterr().out
    for name in MODELS:
        assert name in out
    assert "Assumptions: 16,384 tokens" in out


def test_json_has_every_model_with_the_library_numbers(capsys):
    data = run_json(capsys)
    assert [entry["name"] for entry in data] == list(MODELS)
    gpt2 = data[0]
    assert gpt2["input_embedding_params"] == 50257 * 768
    assert gpt2["output_embedding_params"] == 0
    assert gpt2 == json.loads(json.dumps(embedding_memory(MODELS["gpt2"]).to_dict()))


def test_model_flag_chooses_models_in_order_without_duplicates(capsys):
    data = run_json(capsys, "--model", "llama3-8b", "--model", "gpt2", "--model", "llama3-8b")
    assert [entry["name"] for entry in data] == ["llama3-8b", "gpt2"]


def test_custom_config_alone_has_unknown_share(capsys):
    data = run_json(capsys, "--vocab", "1000", "--dim", "7")
    assert len(data) == 1
    (custom,) = data
    assert custom["name"] == "custom"
    assert custom["total_params"] is None and custom["embedding_share"] is None
    assert custom["output_embedding_params"] == 1000 * 7  # untied by default
    assert custom["position_params"] == 0
    assert custom["token_table_bytes"]["int4"] == 1000 * (4 + 4)  # 7 values -> 4 bytes + fp16 scale/bias


def test_custom_config_flags_reach_the_library(capsys):
    data = run_json(
        capsys,
        "--vocab", "5000", "--dim", "64", "--context", "256", "--positional", "learned",
        "--tied", "--total-params", "2000000", "--name", "mine", "--model", "gpt2",
    )
    assert [entry["name"] for entry in data] == ["gpt2", "mine"]
    mine = data[1]
    assert mine["output_embedding_params"] == 0
    assert mine["position_params"] == 256 * 64
    assert mine["embedding_share"] == pytest.approx((5000 * 64 + 256 * 64) / 2_000_000)


def test_batch_assumption_flags_reach_the_library(capsys):
    data = run_json(
        capsys, "--model", "gpt2", "--batch-tokens", "1", "--distribution", "uniform"
    )
    assert data[0]["batch_tokens"] == 1
    assert data[0]["distribution"] == "uniform"
    assert data[0]["expected_unique_rows"] == pytest.approx(1.0)  # one token, one row
    zipf = run_json(capsys, "--model", "gpt2", "--zipf-alpha", "1.5")[0]
    assert zipf["zipf_alpha"] == 1.5
    default = run_json(capsys, "--model", "gpt2")[0]
    assert zipf["expected_unique_rows"] < default["expected_unique_rows"]  # steeper -> fewer rows


# ---------------------------------------------------------------------------
# Errors: exit non-zero, name the bad value
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["memory", "--vocab", "-5", "--dim", "8"], "-5"),
        (["memory", "--vocab", "100", "--dim", "0"], "got 0"),
        (["memory", "--vocab", "ten", "--dim", "8"], "ten"),
        (["memory", "--batch-tokens", "-3"], "-3"),
        (["memory", "--zipf-alpha", "-1"], "-1"),
        (["memory", "--model", "gpt5"], "gpt5"),
        (["memory", "--distribution", "poisson"], "poisson"),
    ],
)
def test_bad_values_exit_nonzero_naming_the_value(capsys, argv, expected):
    code, err = exit_code_and_stderr(capsys, argv)
    assert code != 0
    assert expected in err


def test_unknown_model_lists_the_known_names(capsys):
    code, err = exit_code_and_stderr(capsys, ["memory", "--model", "gpt5"])
    assert code != 0
    for name in MODELS:
        assert name in err


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["memory", "--vocab", "100"], "--dim"),
        (["memory", "--dim", "100"], "--vocab"),
        (["memory", "--context", "512"], "--context"),
        (["memory", "--vocab", "100", "--dim", "8", "--positional", "learned"], "--context"),
        (["memory", "--vocab", "100", "--dim", "8", "--total-params", "10"], "total_params=10"),
        (["memory", "--vocab", "100", "--dim", "8", "--tied", "--untied"], "--untied"),
    ],
)
def test_inconsistent_custom_flags_are_errors(capsys, argv, expected):
    code, err = exit_code_and_stderr(capsys, argv)
    assert code != 0
    assert expected in err


def test_every_subcommand_has_working_help(capsys):
    from tinyembed.cli import COMMANDS

    for name in COMMANDS:
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        assert e.value.code == 0, name
        assert "usage: tinyembed " + name in capsys.readouterr().out
