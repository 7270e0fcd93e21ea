"""The decode study: it times the very attend users call (and its scores are h @ table.T), GB/s is the table's
bytes over the time, the published models' heads equal hand arithmetic, and the pruned heads are ranked on the
counted text and judged only on the held-out text."""

import numpy as np
import pytest

from tinyembed.kernels.rows import storage_row_bytes
from tinyembed.nn import Embedding
from tinyembed.plan.models import MODELS
from tinyembed.profile.timing import Timing
from tinyembed.study import decode
from tinyembed.study.decode import DecodeGrid, DecodePoint, model_decode_costs, output_coverage
from tinyembed.tables import QuantizedEmbedding, ReducedPrecisionEmbedding, precision, quantized

STORAGES = ("float32", "bfloat16", "int8", "int4")
TINY = DecodeGrid((64, 300), (16,), STORAGES, repeats=2)


def test_the_decode_timing_measures_the_same_kernel_attend_uses(monkeypatch):
    calls, kernel = [], []
    for cls in (Embedding, ReducedPrecisionEmbedding, QuantizedEmbedding):
        def spy(self, h, original=cls.attend):
            scores = original(self, h)
            calls.append((self, np.array(h), np.array(getattr(scores, "data", scores))))
            return scores
        monkeypatch.setattr(cls, "attend", spy)
    for module in (precision, quantized):
        def kernel_spy(stored, storage, dim, h, out=None, original=module.attend_decoded):
            kernel.append((storage, h.shape))
            return original(stored, storage, dim, h, out)
        monkeypatch.setattr(module, "attend_decoded", kernel_spy)

    points = decode.measure_decode(TINY, copy_gbps=10.0)

    assert [(p.vocab_size, p.storage) for p in points] == [(v, s) for v in (64, 300) for s in STORAGES]
    rounds = 1 + TINY.repeats  # the warm-up, then the timed calls
    assert len(calls) == len(points) * rounds
    for table, h, scores in calls:
        assert h.shape == (16,) and scores.shape == (table.num_embeddings,)  # one token, every row
        np.testing.assert_allclose(scores, h @ table.to_dense().T, rtol=1e-5, atol=1e-6)
    assert sorted({t.storage for t, _, _ in calls}) == sorted(STORAGES)
    # The compressed tables score through the decoding kernel, one vector at a time.
    assert sorted(set(kernel)) == [("bfloat16", (1, 16)), ("int4", (1, 16)), ("int8", (1, 16))]
    assert len(kernel) == 2 * 3 * rounds


def test_gb_per_s_is_the_tables_bytes_over_its_median_seconds(monkeypatch):
    monkeypatch.setattr(decode, "interleaved", lambda fns, repeats, warmup: {
        name: Timing([1.0, 2.0, 4.0]) for name in fns})  # median 2 ms
    points = decode.measure_decode(TINY, copy_gbps=0.5)
    for p in points:
        assert p.table_bytes == p.vocab_size * storage_row_bytes(p.storage, p.embedding_dim)
        assert p.seconds_per_token == 0.002 and p.spread == 1.5
        assert p.gb_per_s == pytest.approx(p.table_bytes / 0.002 / 1e9)
        assert p.percent_of_copy == pytest.approx(100 * p.gb_per_s / 0.5)


def _point(vocab, dim, storage, gbps):
    return DecodePoint(vocab, dim, storage, vocab * storage_row_bytes(storage, dim), 1.0, gbps, 50.0, 0.0)


def test_model_costs_equal_hand_arithmetic_for_gpt2_and_llama3():
    points = [_point(1024, 768, "float32", 99.0), _point(4096, 768, "float32", 10.0),  # the largest at D=768
              _point(1024, 4096, "float32", 8.0), _point(4096, 768, "int8", 5.0)]
    rows = {(m.name, m.storage): m for m in model_decode_costs(points)}

    gpt2 = rows["gpt2", "float32"]
    assert gpt2.head_bytes == 50257 * 768 * 4 == 154_389_504
    # Tied: the table is read whole by the head; the learned positions give one row (1024 x 768 left out).
    assert gpt2.weight_bytes == (124_439_808 - 1024 * 768) * 4
    assert gpt2.head_share == pytest.approx(50257 * 768 / (124_439_808 - 1024 * 768))
    assert gpt2.measured_at == "4096 x 768" and gpt2.gb_per_s == 10.0
    assert gpt2.head_tokens_per_s == pytest.approx(10e9 / 154_389_504)
    assert gpt2.weights_tokens_per_s == pytest.approx(10e9 / ((124_439_808 - 1024 * 768) * 4))

    int8 = rows["gpt2", "int8"]
    assert int8.head_bytes == 50257 * (768 + 8)  # each row: 768 codes, a float32 scale and bias
    assert int8.head_tokens_per_s == pytest.approx(5e9 / (50257 * 776))

    llama = rows["llama3-8b", "float32"]
    assert llama.head_bytes == 128256 * 4096 * 4
    # Untied: the input table gives one row a token; RoPE has no table.
    assert llama.weight_bytes == (8_030_261_248 - 128256 * 4096) * 4
    assert llama.measured_at == "1024 x 4096" and llama.head_tokens_per_s == pytest.approx(8e9 / (128256 * 4096 * 4))

    assert ("bert-base", "float32") not in rows  # an encoder does not generate
    assert rows["t5-base", "float32"].note and not gpt2.note
    assert {name for name, _ in rows} == set(MODELS) - {"bert-base"}


def test_output_coverage_ranks_on_the_counted_text_and_judges_on_the_held_out_text_only():
    # 15 tokens, the last 40% (6) held out. Counted: 0 x4, 1 x3, 2 x2. Held out: four 5s, a 0, a 1.
    ids = np.array([0, 1, 0, 2, 1, 0, 2, 1, 0] + [5, 5, 5, 5, 0, 1])
    ever, pruned = output_coverage(ids, vocab_size=8, kept=(1, 2, 3, 8), held_out=0.4)
    assert ever == 4 / 8  # rows 0, 1, 2 and 5 (over the whole stream)
    # Had the held-out 5s been counted, row 5 would rank second and K=2 would miss one held-out token, not four.
    assert [(c.kept_rows, c.bytes_saved) for c in pruned] == [(1, 7 / 8), (2, 6 / 8), (3, 5 / 8)]  # K=8: nothing
    assert [c.held_out_miss for c in pruned] == pytest.approx([5 / 6, 4 / 6, 4 / 6])


def test_output_coverage_breaks_ties_by_the_lower_id():
    _, pruned = output_coverage(np.array([3, 1, 3, 1, 1, 3]), vocab_size=4, kept=(1,), held_out=1 / 3)
    assert pruned[0].held_out_miss == 1 / 2  # counted: 3 x2, 1 x2 -> row 1 kept; held out: 1, 3


@pytest.mark.parametrize("ids, vocab, held_out, words", [
    ([0, 1, 9, 2], 5, 0.5, "id 9 at position 2 is outside [0, 5)"),
    ([0, 1, 2, 3], 5, 0.0, "held_out must be"),
    ([0, 1], 5, 0.1, "leaves nothing"),
    ([[0, 1]], 5, 0.5, "1-D integer stream"),
])
def test_output_coverage_names_a_bad_stream(ids, vocab, held_out, words):
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        output_coverage(np.array(ids), vocab, held_out=held_out)


def test_the_grids_leave_out_only_tables_past_the_limit():
    assert all(v * d * 4 <= decode.FULL.max_table_bytes for v, d in decode.FULL.shapes())
    assert set(decode.FULL.shapes()) == {(v, d) for v in decode.FULL.vocab_sizes for d in decode.FULL.dims} - {
        (256000, 4096)}
    assert decode.QUICK.storages == STORAGES
    with pytest.raises(ValueError, match="unknown storage type 'int3'"):
        DecodeGrid((10,), (4,), ("int3",))
