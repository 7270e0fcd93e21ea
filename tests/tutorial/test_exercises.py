"""The tutorial's exercise checks (docs/tutorial/exercises.py): the worked answers pass, a stub is "not done
yet" without raising, and a wrong answer is told where it is wrong and, for the usual mistakes, why."""

import numpy as np
import pytest


@pytest.fixture(scope="module")
def ex(tutorial_modules):
    return tutorial_modules[0]


@pytest.fixture(scope="module")
def answers(tutorial_modules):
    return tutorial_modules[1]


def _stub(*args, **kwargs):
    raise NotImplementedError


def _verdict(ex, capsys, name, fn):
    """(passed, what the check cell prints), and the check cell prints exactly that."""
    passed, said = ex.verdict(name, fn)
    ex.check(name, fn)
    assert capsys.readouterr().out == said + "\n"
    assert ex.passes(name, fn) is passed
    return passed, said


def test_every_worked_answer_passes_its_check(ex, answers, capsys):
    for name in ex.EXERCISES:
        passed, said = _verdict(ex, capsys, name, getattr(answers, name))
        assert passed and said.startswith(f"✓ {name}:"), said


def test_a_stub_is_not_done_yet_and_nothing_is_raised(ex, capsys):
    for name in ex.EXERCISES:
        passed, said = _verdict(ex, capsys, name, _stub)
        assert not passed
        assert "not done yet" in said and f"reveal({name!r})" in said


def test_a_function_that_raises_is_reported_with_the_case_not_raised(ex, capsys):
    def broken(weight, ids):
        raise ValueError("oops")
    passed, said = _verdict(ex, capsys, "embedding_forward", broken)
    assert not passed
    assert "your function raised ValueError: oops" in said and "ids [3, 1, 3]" in said


def test_a_backward_that_overwrites_repeated_ids_is_told_which_row_and_why(ex, capsys):
    def overwrites(grad_output, ids, num_embeddings, padding_idx=None):
        ids = np.asarray(ids).reshape(-1)
        grad = np.zeros((num_embeddings, grad_output.shape[-1]))
        grad[ids] += np.asarray(grad_output).reshape(ids.size, -1)
        return grad
    passed, said = _verdict(ex, capsys, "embedding_backward", overwrites)
    assert not passed
    assert "row 2 of your gradient is off: expected [" in said and "got [" in said
    assert "id 2 appears 3 times" in said and "np.add.at" in said


def test_a_backward_that_trains_the_padding_row_is_told_so(ex, answers, capsys):
    def ignores_padding(grad_output, ids, num_embeddings, padding_idx=None):
        return answers.embedding_backward(grad_output, ids, num_embeddings)
    passed, said = _verdict(ex, capsys, "embedding_backward", ignores_padding)
    assert not passed and "row 0 is the padding row" in said


@pytest.mark.parametrize("name, wrong, says", [
    ("embedding_forward", lambda weight, ids: weight[np.asarray(ids)].sum(axis=0), "has shape (4,), expected (3, 4)"),
    ("bag_sum", lambda weight, ids, offsets: np.add.reduceat(weight[ids], offsets), "bag 0 is empty"),
    ("coalesce", lambda ids, rows: (np.asarray(ids).reshape(-1), rows), "each id must appear once"),
    ("table_bytes", lambda vocab, dim, storage: vocab * dim * {"float32": 4, "float16": 2, "bfloat16": 2,
                                                               "int8": 1, "int4": 1}[storage] // (
                                                                   2 if storage == "int4" else 1),
     "each int8 row also stores its own float32 scale and bias"),
    ("lookup_bytes", lambda n_ids, dim, row_bytes: n_ids * row_bytes + n_ids * dim * 4,
     "the ids are read too"),
    ("hot_set_share", lambda ids, k: float(np.sort(np.unique(ids, return_counts=True)[1])[::-1][:k].sum()),
     "divide by the number of lookups"),
    ("tokens_per_byte", lambda tok, texts: sum(len(tok.encode(t)) for t in texts) / sum(len(t) for t in texts),
     "count UTF-8 bytes"),
    ("smaller_bpe", lambda tokenizer, vocab_size: tokenizer, "your tokenizer has 307 ids, expected 300"),
])
def test_a_usual_mistake_gets_its_explanation(ex, capsys, name, wrong, says):
    passed, said = _verdict(ex, capsys, name, wrong)
    assert not passed and says in said, said


def test_the_sinusoidal_check_recognizes_the_split_layout_and_swapped_sin_cos(ex, answers, capsys):
    from tinyembed.positional import sinusoidal_table

    passed, said = _verdict(ex, capsys, "sinusoidal", lambda p, d: sinusoidal_table(p, d, layout="split"))
    assert not passed and "'split' layout" in said

    def swapped(positions, dim):
        table = answers.sinusoidal(positions, dim)
        n = 2 * (dim // 2)
        out = table.copy()
        out[:, 0:n:2], out[:, 1:n:2] = table[:, 1:n:2], table[:, 0:n:2]
        return out
    passed, said = _verdict(ex, capsys, "sinusoidal", swapped)
    assert not passed and "sin and cos are swapped" in said


def test_the_rope_check_recognizes_adjacent_pairs(ex, capsys):
    from tinyembed.positional import RotaryEmbedding

    def adjacent(x, positions, base=10000.0):
        rotated, _ = RotaryEmbedding(x.shape[-1], base=base, interleaved=True).apply(
            x[None, None], x[None, None], positions=positions)
        return rotated.data[0, 0]
    passed, said = _verdict(ex, capsys, "rope_rotate", adjacent)
    assert not passed and "you paired adjacent dims" in said


def test_the_alibi_check_asks_for_the_causal_mask(ex, answers, capsys):
    passed, said = _verdict(ex, capsys, "alibi_bias", lambda slopes, length: np.nan_to_num(
        answers.alibi_bias(slopes, length), neginf=0.0))
    assert not passed and "is -inf for j > 0" in said


def test_the_int8_check_tells_a_shared_scale_and_rounding_down_apart(ex, capsys):
    def one_scale(table):
        low, high = table.min(), table.max()
        codes = np.rint((table - low) * 255 / (high - low)).astype(np.uint8)
        return codes, np.full(len(table), (high - low) / 255, np.float32), np.full(len(table), low, np.float32)
    passed, said = _verdict(ex, capsys, "quantize_int8", one_scale)
    assert not passed and "each row needs its own bias (its minimum) and scale" in said

    def rounds_down(table):
        low = table.min(axis=1)
        span = table.max(axis=1) - low
        codes = np.floor((table - low[:, None]) * 255 / (span[:, None] + 1e-8)).astype(np.uint8)
        return codes, span / 255, low
    passed, said = _verdict(ex, capsys, "quantize_int8", rounds_down)
    assert not passed and "round to the nearest code (np.rint), not down" in said


def test_the_lru_check_recognizes_a_fifo_cache(ex, capsys):
    def fifo(ids, capacity):
        cache, hits = [], 0
        for row in np.asarray(ids).tolist():
            if row in cache:
                hits += 1
            else:
                cache.append(row)
                cache = cache[-capacity:]
        return hits / len(ids)
    passed, said = _verdict(ex, capsys, "lru_hit_rate", fifo)
    assert not passed and "that is a FIFO cache" in said


def test_pick_runs_the_learners_function_once_it_passes_and_the_answer_until_then(ex, answers, capsys):
    mine = lambda weight, ids: weight[np.asarray(ids)]  # noqa: E731 - a learner's one-liner
    assert ex.pick("embedding_forward", mine) is mine
    assert ex.pick("embedding_forward", _stub) is answers.embedding_forward
    assert "using the worked answer's embedding_forward" in capsys.readouterr().out


def test_reveal_shows_the_worked_answer_with_its_reasoning(ex, capsys):
    ex.reveal("embedding_backward")
    shown = capsys.readouterr().out
    assert "def embedding_backward(" in shown and "np.add.at" in shown


def test_an_unknown_exercise_is_named_with_the_known_ones(ex):
    with pytest.raises(KeyError, match="embedding_backward"):
        ex.check("embedding_backwards", _stub)


def test_a_check_cell_shows_its_verdict_and_no_return_value(ex, answers, capsys):
    assert ex.check("coalesce", answers.coalesce) is None  # a notebook would show "Out[n]: True" otherwise
    assert capsys.readouterr().out.startswith("✓ coalesce:")
