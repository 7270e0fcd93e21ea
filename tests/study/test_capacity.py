"""The capacity grid: budgets become steps, runs are skipped for a stated reason, the IsoFLOPs optimum and the
Pareto fronts are what the points say, quantized tables are scored and put back, and the document is complete."""

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinyembed.study.capacity import (
    CapacityConfig,
    finding,
    isoflops,
    learning_rate,
    pareto_front,
    plan_runs,
    tables_stored_as,
    vocabulary_trend,
)
from tinyembed.study.flops import held_out_bits_per_byte, train_flops_per_token
from tinyembed.train.lm import LMConfig, WindowLM

ISSUE_POINT_KEYS = {"tokenizer", "vocab_size", "embedding_dim", "embedding_parameters", "total_parameters", "flops",
                    "bits_per_byte", "tokens_per_byte", "train_seconds"}


def test_the_schedule_warms_up_to_the_peak_then_decays_to_its_floor_at_the_last_step():
    steps, peak = 200, 0.03
    lrs = [learning_rate(s, steps, peak, warmup_fraction=0.05, final_fraction=0.1) for s in range(steps)]
    assert lrs[0] == pytest.approx(peak / 10) and lrs[9] == pytest.approx(peak)
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:10], strict=False))
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:], strict=False))
    assert lrs[-1] == pytest.approx(0.1 * peak)


def test_a_budget_buys_whole_steps_and_runs_too_big_or_too_long_for_it_are_skipped_with_the_reason():
    config = CapacityConfig(vocab_sizes=(), widths=(8, 64), budgets=(2e8, 1e9), batch_size=32, min_steps=10,
                            max_epochs=2.0, untied=())
    small, big, small_long, _ = plan_runs(config, {"byte": 257}, {"byte": 10_000})
    f = train_flops_per_token(WindowLM(config.lm_config(257, 8)))
    assert (small.width, small.budget, small.flops_per_token, small.skipped) == (8, 2e8, f, "")
    assert small.steps == int(2e8 // (f * 32)) and small.flops <= 2e8 < small.flops + f * 32
    assert small.epochs == pytest.approx(small.steps * 32 / 10_000)
    assert big.steps == 0 and "fewer than 10" in big.skipped
    assert small_long.steps == 0 and "passes over the text, more than 2" in small_long.skipped


def test_the_isoflops_optimum_is_each_budgets_lowest_tied_point():
    points = [dict(budget=b, tied=t, vocab_size=v, embedding_dim=d, bits_per_byte=bpb, tokenizer=f"v{v}")
              for b, t, v, d, bpb in [(1, True, 256, 8, 3.0), (1, True, 1024, 8, 2.9), (1, True, 1024, 16, 3.1),
                                      (2, True, 256, 8, 2.7), (2, True, 4096, 16, 2.5), (2, False, 4096, 16, 2.0)]]
    best = isoflops(points)
    assert [b["best"]["vocab_size"] for b in best] == [1024, 4096]  # the untied 2.0 is not in the grid's contest
    assert best[0]["by_vocabulary"][1024]["embedding_dim"] == 8
    assert vocabulary_trend([1024, 4096]) == "the best vocabulary grows with the budget here"
    assert vocabulary_trend([4096, 1024]) == "the best vocabulary shrinks as the budget grows here"
    assert vocabulary_trend([1024, 4096, 2048]) == "the best vocabulary does not move one way with the budget here"


def test_the_finding_states_each_budgets_lead_and_the_optima_at_the_grids_edge():
    points = [dict(budget=b, tied=True, vocab_size=v, embedding_dim=d, bits_per_byte=bpb, tokenizer=f"v{v}")
              for b, v, d, bpb in [(1e9, 256, 8, 3.0), (1e9, 1024, 16, 2.9), (3e9, 256, 8, 2.8), (3e9, 1024, 8, 2.5),
                                   (3e9, 1024, 16, 2.6)]]
    text = finding(isoflops(points), widths=(8, 16, 32), vocab_sizes=(256, 1024))
    assert "1e+09 FLOPs -> v1024 (V=1024, D=16, 2.900 bits/byte, 0.100 ahead of v256)" in text
    assert "3e+09 FLOPs -> v1024 (V=1024, D=8, 2.500 bits/byte, 0.300 ahead of v256)" in text
    assert "the best vocabulary is the same at every budget here (1024 -> 1024)" in text
    assert "the best width is at the edge of the grid at 3e+09 FLOPs" in text
    assert "the best vocabulary is at the edge of the grid at 1e+09, 3e+09 FLOPs" in text


@given(st.lists(st.tuples(st.integers(1, 20), st.integers(1, 20)), min_size=1, max_size=30))
def test_the_pareto_front_is_every_point_no_other_beats_on_both_axes(pairs):
    points = [{"x": x, "y": y} for x, y in pairs]
    front = pareto_front(points, "x", "y")

    def beaten(p):
        return any(q["x"] <= p["x"] and q["y"] <= p["y"] and (q["x"], q["y"]) != (p["x"], p["y"]) for q in points)

    assert {(points[i]["x"], points[i]["y"]) for i in front} == {(p["x"], p["y"]) for p in points if not beaten(p)}
    assert [points[i]["x"] for i in front] == sorted(points[i]["x"] for i in front)


def test_scoring_a_quantized_table_puts_the_trained_one_back():
    model = WindowLM(LMConfig(vocab_size=300, context=4, dim=16, hidden=32))
    weight = model.embed.tokens.weight.data.copy()
    stream = np.random.default_rng(0).integers(1, 300, 500)
    score = lambda: held_out_bits_per_byte(model, stream, 4, 0, 1000)  # noqa: E731
    before = score()
    with tables_stored_as(model, "int8"):
        int8 = score()
        assert not np.array_equal(model.embed.tokens.weight.data, weight)
    with tables_stored_as(model, "int4"):
        int4 = score()
    np.testing.assert_array_equal(model.embed.tokens.weight.data, weight)
    assert score() == before and abs(int8 - before) < abs(int4 - before) + 1e-3


def test_the_document_has_every_point_with_the_issues_keys_and_is_plain_json(tiny_capacity_study):
    document, _ = tiny_capacity_study
    assert json.loads(json.dumps(document, allow_nan=False)) == document
    points = document["points"]
    assert len(points) == 5 and sum(not p["tied"] for p in points) == 1
    for p in points:
        assert ISSUE_POINT_KEYS <= set(p)
        assert p["flops"] <= p["budget"] and p["flops"] == p["steps"] * 16 * (p["flops"] // (p["steps"] * 16))
        assert set(p["quantized_bits_per_byte"]) == {"int8", "int4"}
        assert 0 < p["embedding_share"] < 1 and p["embedding_parameters"] < p["total_parameters"]
        assert p["table_bytes_int8"] == (2 - p["tied"]) * p["vocab_size"] * (p["embedding_dim"] + 8)
        assert math.isfinite(p["bits_per_byte"]) and p["train_seconds"] > 0
    assert {t["name"]: t["tokens_per_byte"] for t in document["tokenizers"]}["byte"] == 1.0
    assert [b["budget"] for b in document["isoflops"]] == [2e6, 6e6]
    assert document["finding"].startswith("Best vocabulary by budget: 2e+06 FLOPs -> ")
    throughput = document["step_throughput"]
    assert throughput["vocab_size"] == 300 and throughput["step_flops_per_s"] > 0
    assert throughput["ratio"] == pytest.approx(throughput["step_flops_per_s"] / throughput["matmul_flops_per_s"])
    for axis, front in document["pareto"].items():
        assert front and all(points[i]["tied"] for i in front), axis


def test_the_quick_grid_has_at_least_six_points_and_the_full_grid_three_budgets():
    quick, full = CapacityConfig.quick_run(), CapacityConfig()
    assert quick.quick and len(quick.budgets) * len(quick.widths) * (1 + len(quick.vocab_sizes)) >= 6
    assert len(full.budgets) >= 3 and max(full.vocab_sizes) == 16384
