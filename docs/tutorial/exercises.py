"""The tutorial's exercises: each check runs your function and tinyembed's on the same inputs and says what differs.

    check(name, your_function)  says whether yours matches tinyembed on every case and, if not, what is
                                wrong ("row 3 of your gradient is off: expected ..., got ..."). It
                                never raises, so a notebook with an unfinished exercise still runs
                                top to bottom. passes() and verdict() give the same as a bool / pair.
    reveal(name)                shows the worked answer (answers.py) and why it is written that way
    pick(name, your_function)   your function when it passes, else the worked answer: the cells after
                                an exercise run either way, on yours when it is right
    EXERCISES                   every exercise: its notebook, what it asks, what its check compares with

Only tinyembed's public names are used here: the checks are also a tour of where things live.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import answers
import numpy as np

from tinyembed import Tensor
from tinyembed import nn as te_nn
from tinyembed.kernels.rows import storage_row_bytes
from tinyembed.nn import functional as F
from tinyembed.positional import ALiBi, RotaryEmbedding, sinusoidal_table
from tinyembed.positional.alibi import alibi_slopes
from tinyembed.profile import rowcache
from tinyembed.profile.traffic import bytes_moved
from tinyembed.sparse import RowSparseGrad
from tinyembed.tables import QuantizedEmbedding
from tinyembed.text.tokenizers import BPETokenizer, ByteTokenizer, tokenization_stats

__all__ = ["EXERCISES", "Exercise", "Mismatch", "check", "passes", "pick", "reveal", "verdict"]


class Mismatch(AssertionError):
    """Your function's result differs from tinyembed's; the message says where and how."""


@dataclass(frozen=True)
class Exercise:
    """One exercise: where it is, what it asks for, and what its check compares with."""

    notebook: str
    asks: str
    compares: str
    run: Callable[[Callable], str]  # raises Mismatch (or NotImplementedError); returns what passed


EXERCISES: dict[str, Exercise] = {}


def _exercise(notebook: str, asks: str, compares: str):
    def register(run: Callable[[Callable], str]) -> Callable[[Callable], str]:
        EXERCISES[run.__name__.removeprefix("_check_")] = Exercise(notebook, asks, compares, run)
        return run
    return register


def _get(name: str) -> Exercise:
    if name not in EXERCISES:
        raise KeyError(f"no exercise {name!r}; the exercises are {', '.join(EXERCISES)}")
    return EXERCISES[name]


# -- what learners call --------------------------------------------------------------------------


def verdict(name: str, fn: Callable) -> tuple[bool, str]:
    """(whether ``fn`` matches tinyembed on every case of exercise ``name``, what to tell the learner).

    A stub that raises NotImplementedError is "not done yet", not an error, and a function that
    raises or returns the wrong thing is told where; nothing is raised.
    """
    exercise = _get(name)
    try:
        passed = exercise.run(fn)
    except NotImplementedError:
        return False, (f"… {name}: not done yet (your function raises NotImplementedError). Write it, run its cell "
                       f"and this one again; reveal({name!r}) shows a worked answer.")
    except Mismatch as e:
        return False, f"✗ {name}: {e}"
    return True, f"✓ {name}: {passed}"


def check(name: str, fn: Callable) -> None:
    """Run exercise ``name``'s cases on ``fn`` and say how it did (a check cell's output)."""
    print(verdict(name, fn)[1])


def passes(name: str, fn: Callable) -> bool:
    """Whether ``fn`` passes exercise ``name``, silently."""
    return verdict(name, fn)[0]


def reveal(name: str) -> None:
    """Show the worked answer to exercise ``name``: its code, with the reasoning in its docstring."""
    _get(name)
    source = inspect.getsource(getattr(answers, name))
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:
        get_ipython = None
    if get_ipython is None or get_ipython() is None:  # plain Python: no notebook to render into
        print(f"Worked answer to {name} (from answers.py):\n\n{source}")
        return
    display(Markdown(f"Worked answer to **{name}** (from `answers.py`):\n\n```python\n{source}```"))


def pick(name: str, fn: Callable) -> Callable:
    """``fn`` when it passes exercise ``name``, else the worked answer (saying which runs)."""
    if passes(name, fn):
        print(f"using your {name}")
        return fn
    print(f"using the worked answer's {name} (yours does not pass its check yet)")
    answer: Callable = getattr(answers, name)
    return answer


# -- comparing -----------------------------------------------------------------------------------


def _fmt(values) -> str:
    return np.array2string(np.asarray(values), precision=4, threshold=8, edgeitems=3, suppress_small=True,
                           max_line_width=1000)


def _copy(value):
    return value.copy() if isinstance(value, np.ndarray) else value


def _call(fn: Callable, *args, case: str, **kwargs):
    """``fn(*args)`` on copies of the arrays (so a function that changes its input cannot spoil the
    comparison); an exception other than NotImplementedError becomes a Mismatch naming the case."""
    try:
        return fn(*(_copy(a) for a in args), **{k: _copy(v) for k, v in kwargs.items()})
    except NotImplementedError:
        raise
    except Exception as e:
        raise Mismatch(f"your function raised {type(e).__name__}: {e}\n    on {case}") from None


def _array(got, what: str, case: str) -> np.ndarray:
    if got is None:
        raise Mismatch(f"your function returned None on {case}: return the {what}")
    if isinstance(got, Tensor):
        return got.data
    if isinstance(got, RowSparseGrad):
        return got.to_dense()
    try:
        return np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        raise Mismatch(f"your {what} is a {type(got).__name__}, not an array of numbers, on {case}") from None


def _same_array(got, expected: np.ndarray, *, what: str, case: str, row: Callable[[tuple], str] | None = None,
                hint: Callable[[tuple, np.ndarray], str | None] | None = None,
                rtol: float = 1e-5, atol: float | np.ndarray = 1e-6) -> np.ndarray:
    """Raise a Mismatch naming the first row of ``got`` that differs from ``expected``.

    Rows are the last axis; ``row(index)`` names one ("row 3", "the row for ids[1, 0] = 4"),
    and ``hint(index, got)`` may add why it is probably wrong. ``atol`` may be an array that
    broadcasts against the rows (a tolerance per row).
    """
    got = _array(got, what, case)
    expected = np.asarray(expected)
    if got.shape != expected.shape:
        raise Mismatch(f"your {what} has shape {got.shape}, expected {expected.shape}, on {case}")
    bad = ~np.isclose(got, expected, rtol=rtol, atol=atol)
    if not bad.any():
        return got
    lead = expected.shape[:-1] if expected.ndim > 1 else ()
    flat = bad.reshape(-1, expected.shape[-1]).any(axis=1) if expected.ndim > 1 else bad
    first = int(np.flatnonzero(flat)[0])
    index = tuple(int(i) for i in np.unravel_index(first, lead)) if lead else (first,)
    name = row(index) if row is not None else f"row {', '.join(map(str, index))}"
    if expected.ndim > 1:
        detail = f"expected {_fmt(expected[index])}, got {_fmt(got[index])}"
        count = f" ({int(flat.sum())} of {flat.size} rows differ)"
    else:
        detail, count = f"expected {expected[index]:.6g}, got {got[index]:.6g}", ""
    why = hint(index, got) if hint is not None else None
    raise Mismatch(f"{name} of your {what} is off: {detail}{count}, on {case}" + (f"\n    {why}" if why else ""))


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:.6g}"


def _same_number(got, expected: float, *, what: str, case: str, hint: Callable[[float], str | None] | None = None,
                 rtol: float = 1e-9) -> None:
    if got is None:
        raise Mismatch(f"your function returned None on {case}: return the {what}")
    try:
        value = float(got)
    except (TypeError, ValueError):
        raise Mismatch(f"your {what} is a {type(got).__name__}, not a number, on {case}") from None
    if not np.isclose(value, expected, rtol=rtol, atol=0):
        why = hint(value) if hint is not None else None
        raise Mismatch(f"your {what} is {_number(value)}, expected {_number(expected)}, on {case}"
                       + (f"\n    {why}" if why else ""))


# -- 01 Lookup tables and their gradients --------------------------------------------------------

_RNG_SEED = 16  # the issue this tutorial came from


@_exercise("01", "embedding_forward(weight, ids): the rows of a (V, D) table for ids of any shape",
           "nn.Embedding.from_pretrained(weight)(ids) on ids of shapes (3,), (3, 2) and ()")
def _check_embedding_forward(fn: Callable) -> str:
    weight = np.random.default_rng(_RNG_SEED).standard_normal((10, 4)).astype(np.float32)
    emb = te_nn.Embedding.from_pretrained(weight)
    for ids in (np.array([3, 1, 3]), np.array([[0, 9], [4, 4], [7, 2]]), np.array(5)):
        case = f"a (10, 4) table and ids {ids.tolist()} of shape {ids.shape}"
        expected = emb(ids).numpy()
        got = _call(fn, weight, ids, case=case)

        def row(index, ids=ids):
            if ids.ndim == 0:
                return "the row"
            return f"the row for ids[{', '.join(map(str, index))}] = {ids[index]}"
        _same_array(got, expected, what="output", case=case, row=row)
    return "matches nn.Embedding on ids of shapes (3,), (3, 2) and () (one id: one row)"


def _reference_backward(grad_output: np.ndarray, ids: np.ndarray, num_embeddings: int, padding_idx) -> np.ndarray:
    """tinyembed's autograd: d/dW of sum(embedding(ids, W) * grad_output)."""
    weight = Tensor(np.zeros((num_embeddings, grad_output.shape[-1])), requires_grad=True, dtype=np.float64)
    out = F.embedding(ids, weight, padding_idx=padding_idx)
    (out * Tensor(grad_output, dtype=np.float64)).sum().backward()
    return np.asarray(weight.grad)


@_exercise("01", "embedding_backward(grad_output, ids, num_embeddings, padding_idx=None): the table's gradient",
           "tinyembed's autograd through nn.functional.embedding, with repeated ids and a padding id")
def _check_embedding_backward(fn: Callable) -> str:
    rng = np.random.default_rng(_RNG_SEED)
    cases = [(np.array([1, 4, 2]), None), (np.array([2, 5, 2, 2]), None), (np.array([[0, 3], [3, 0]]), 0)]
    for ids, padding_idx in cases:
        grad_output = rng.standard_normal(ids.shape + (3,))
        case = f"ids {ids.tolist()} into a (6, 3) table" + (f" with padding_idx={padding_idx}" if padding_idx is
                                                                 not None else "")
        expected = _reference_backward(grad_output, ids, 6, padding_idx)
        kwargs = {} if padding_idx is None else {"padding_idx": padding_idx}
        got = _call(fn, grad_output, ids, 6, case=case, **kwargs)

        def hint(index, got, ids=ids, grad_output=grad_output, padding_idx=padding_idx):
            r = index[0]
            uses = grad_output.reshape(-1, 3)[ids.reshape(-1) == r]
            if padding_idx is not None and r == padding_idx:
                return (f"row {r} is the padding row: positions holding padding_idx send no gradient back, "
                        "so it stays zero")
            if len(uses) == 0:
                return f"id {r} is not in ids: nothing was looked up from row {r}, so its gradient is zero"
            if len(uses) > 1 and any(np.allclose(got[r], u) for u in uses):
                return (f"id {r} appears {len(uses)} times and your row equals one of its gradient rows: "
                        "`grad[ids] += g` writes a repeated row once; add every one (np.add.at)")
            if len(uses) > 1:
                return f"id {r} appears {len(uses)} times: its row is the sum of those {len(uses)} gradient rows"
            return None
        _same_array(got, expected, what="gradient", case=case, hint=hint)
    return "matches tinyembed's autograd, repeated ids summed and the padding row left at zero"


@_exercise("01", "coalesce(ids, grad_rows): (sorted unique ids, their summed gradient rows)",
           "RowSparseGrad.from_rows, what a sparse table's .grad holds")
def _check_coalesce(fn: Callable) -> str:
    rng = np.random.default_rng(_RNG_SEED)
    for ids in (np.array([7, 2, 7, 0, 2, 7]), np.array([[3, 3], [1, 9]])):
        rows = rng.standard_normal((ids.size, 4))
        case = f"ids {ids.tolist()} and one gradient row of width 4 per id"
        expected = RowSparseGrad.from_rows(ids.reshape(-1), rows, (10, 4))
        got = _call(fn, ids, rows, case=case)
        if not isinstance(got, tuple) or len(got) != 2:
            raise Mismatch(f"return a pair (ids, rows), got a {type(got).__name__}, on {case}")
        got_ids = np.asarray(got[0])
        if got_ids.shape != expected.indices.shape or not np.array_equal(got_ids, expected.indices):
            why = ("each id must appear once" if len(np.unique(got_ids)) != got_ids.size else
                   "sort them" if np.array_equal(np.sort(got_ids), expected.indices) else "")
            raise Mismatch(f"your ids are {got_ids.tolist()}, expected {expected.indices.tolist()} "
                           f"(sorted, each once), on {case}" + (f": {why}" if why else ""))
        _same_array(got[1], expected.values, what="rows", case=case,
                    row=lambda index, ids=expected.indices: f"the row of id {ids[index[0]]}",
                    hint=lambda index, got, ids=ids, e=expected: (
                        f"id {e.indices[index[0]]} appears {int((ids == e.indices[index[0]]).sum())} times: "
                        "sum their rows" if (ids == e.indices[index[0]]).sum() > 1 else None))
    return "matches RowSparseGrad.from_rows: each id once, sorted, with the sum of its rows"


@_exercise("01", "bag_sum(weight, ids, offsets): the sum of each bag's rows",
           "nn.EmbeddingBag.from_pretrained(weight, mode='sum')(ids, offsets), an empty bag included")
def _check_bag_sum(fn: Callable) -> str:
    weight = np.random.default_rng(_RNG_SEED).standard_normal((10, 3)).astype(np.float32)
    bag = te_nn.EmbeddingBag.from_pretrained(weight, mode="sum")
    cases = [([1, 2, 4, 5, 4, 3], [0, 2]), ([1, 2, 4, 5, 4, 3], [0, 0, 3]), ([6, 6, 6], [0, 1, 2])]
    for ids, offsets in cases:
        ids_arr, offsets_arr = np.array(ids), np.array(offsets)
        case = f"ids {ids} with offsets {offsets}"
        expected = bag(ids_arr, offsets=offsets_arr).numpy()
        got = _call(fn, weight, ids_arr, offsets_arr, case=case)

        def hint(index, got, ids=ids, offsets=offsets):
            b = index[0]
            end = offsets[b + 1] if b + 1 < len(offsets) else len(ids)
            if offsets[b] == end:
                return f"bag {b} is empty (it starts and ends at {end}): its sum is a row of zeros"
            if b == len(offsets) - 1:
                return f"the last bag runs from offsets[-1] = {offsets[b]} to the end of ids"
            return f"bag {b} holds ids[{offsets[b]}:{end}] = {ids[offsets[b]:end]}"
        _same_array(got, expected, what="bag sums", case=case, row=lambda index: f"bag {index[0]}", hint=hint)
    return "matches nn.EmbeddingBag(mode='sum'), empty bags and the last bag included"


# -- 02 Positions ----------------------------------------------------------------------------------


@_exercise("02", "sinusoidal(positions, dim): the sinusoidal encoding, sin on even dims and cos on odd",
           "tinyembed.positional.sinusoidal_table (interleaved layout)")
def _check_sinusoidal(fn: Callable) -> str:
    for positions, dim in ((np.arange(6), 8), (np.array([0, 100, 1000]), 6), (np.arange(3), 5)):
        case = f"positions {positions.tolist()}, dim {dim}"
        expected = sinusoidal_table(positions, dim)
        got = _call(fn, positions, dim, case=case)

        def hint(index, got, positions=positions, dim=dim, expected=expected):
            if got.shape != expected.shape:
                return None
            if np.allclose(got, sinusoidal_table(positions, dim, layout="split")):
                return "that is the 'split' layout (all sines, then all cosines); here pair i is dims 2i, 2i + 1"
            if np.allclose(got[:, : 2 * (dim // 2)][:, 1::2], expected[:, : 2 * (dim // 2)][:, 0::2]):
                return "sin and cos are swapped: even dims hold the sines"
            if np.allclose(got[:, :2], expected[:, :2]):
                return "pair 0 is right, later pairs are not: pair i turns at base ** (-2i / dim)"
            return None
        _same_array(got, expected, what="encoding", case=case, hint=hint,
                    row=lambda index, positions=positions: f"position {positions[index[0]]}")
    return "matches sinusoidal_table, odd widths included"


def _rotated_other_way(x: np.ndarray, positions: np.ndarray, base: float) -> np.ndarray:
    half = x.shape[-1] // 2
    angle = -positions[:, None] * base ** (-np.arange(half) * 2.0 / x.shape[-1])
    a, b = x[:, :half], x[:, half:]
    return np.concatenate([a * np.cos(angle) - b * np.sin(angle), a * np.sin(angle) + b * np.cos(angle)], -1)


@_exercise("02", "rope_rotate(x, positions, base=10000.0): rotate (seq, head_dim) vectors, half-split pairs",
           "RotaryEmbedding(head_dim, base).apply (LLaMA's half-split pairing)")
def _check_rope_rotate(fn: Callable) -> str:
    rng = np.random.default_rng(_RNG_SEED)
    for positions, head_dim, base in ((np.arange(5), 8, 10000.0), (np.array([0, 7, 100, 3000]), 4, 500000.0)):
        x = rng.standard_normal((len(positions), head_dim))
        case = f"x of shape {x.shape}, positions {positions.tolist()}, base {base:g}"
        q, _ = RotaryEmbedding(head_dim, base=base).apply(x[None, None], x[None, None], positions=positions)
        expected = q.data[0, 0]
        got = _call(fn, x, positions, base, case=case)

        def hint(index, got, x=x, positions=positions, head_dim=head_dim, base=base, expected=expected):
            if got.shape != expected.shape:
                return None
            adjacent, _ = RotaryEmbedding(head_dim, base=base, interleaved=True).apply(
                x[None, None], x[None, None], positions=positions)
            if np.allclose(got, adjacent.data[0, 0]):
                return ("you paired adjacent dims (2i, 2i + 1), GPT-J's layout; here dim i pairs with "
                        "dim i + head_dim/2 (LLaMA's)")
            if np.allclose(got, _rotated_other_way(x, positions, base)):
                return "your pairs turn the other way: (a, b) -> (a cos t - b sin t, a sin t + b cos t)"
            return f"position {positions[index[0]]} turns pair i by {positions[index[0]]} * base ** (-2i / head_dim)"
        _same_array(got, expected, what="rotated vectors", case=case,
                    row=lambda index, positions=positions: f"the vector at position {positions[index[0]]}", hint=hint)
    return "matches RotaryEmbedding.apply, base 10000 and LLaMA 3's 500000"


@_exercise("02", "alibi_bias(slopes, length): the causal bias -slope * distance, -inf after the query",
           "ALiBi(num_heads).bias(length, length)")
def _check_alibi_bias(fn: Callable) -> str:
    for heads, length in ((4, 5), (2, 3)):
        slopes = alibi_slopes(heads)
        case = f"{heads} heads with slopes {slopes.tolist()}, length {length}"
        expected = ALiBi(heads).bias(length, length)
        got = _call(fn, slopes, length, case=case)

        def hint(index, got, expected=expected, slopes=slopes):
            h, i = index
            if got.shape != expected.shape:
                return None
            if (got[h, i, i + 1:] != -np.inf).any():
                return f"query {i} must not see keys after it: bias[h, {i}, j] is -inf for j > {i}"
            if (got[h, i, :i] > 0).any():
                return "the bias is -slope * distance: farther keys score lower, so it is negative"
            return f"key j is {i} - j tokens before query {i}; head {h}'s slope is {slopes[h]:g}"
        _same_array(got, expected, what="bias", case=case, hint=hint,
                    row=lambda index: f"head {index[0]}, query {index[1]}")
    return "matches ALiBi.bias: -slope x distance, masked after each query"


# -- 03 Scaling --------------------------------------------------------------------------------------

_STORAGES = ("float32", "float16", "bfloat16", "int8", "int4")


@_exercise("03", "table_bytes(vocab, dim, storage): bytes of a table in float32, float16, bfloat16, int8, int4",
           "vocab * tinyembed.kernels.rows.storage_row_bytes(storage, dim), what `tinyembed memory` counts")
def _check_table_bytes(fn: Callable) -> str:
    for vocab, dim in ((50257, 768), (1000, 7)):
        for storage in _STORAGES:
            case = f"a {vocab} x {dim} table in {storage}"
            expected = vocab * storage_row_bytes(storage, dim)

            def hint(value, vocab=vocab, dim=dim, storage=storage, expected=expected):
                extra = expected - value
                if storage == "int8" and extra == 8 * vocab:
                    return "each int8 row also stores its own float32 scale and bias: 8 bytes per row"
                if storage == "int4" and extra == 4 * vocab:
                    return "each int4 row also stores its own float16 scale and bias: 4 bytes per row"
                if storage == "int4" and dim % 2 and extra == vocab:
                    return "an odd width needs ceil(dim / 2) bytes of codes: the last byte holds one code"
                if value == vocab * dim:
                    return f"that is one byte per value; {storage} takes {storage_row_bytes(storage, dim)} per row"
                return None
            _same_number(_call(fn, vocab, dim, storage, case=case), expected, what="byte count", case=case,
                         hint=hint)
    return "matches storage_row_bytes for every storage type, odd widths included"


@_exercise("03", "quantize_int8(table): row-wise (codes uint8, scale, bias), decoded as codes * scale + bias",
           "QuantizedEmbedding.from_float(table, bits=8): its codes and its decoded rows")
def _check_quantize_int8(fn: Callable) -> str:
    rng = np.random.default_rng(_RNG_SEED)
    table = rng.standard_normal((6, 16)).astype(np.float32) * np.array([[1], [10], [0.01], [1], [1], [1]], np.float32)
    table[3] = 0.25  # a constant row: max - min = 0
    table[4, 5] = 40.0  # one outlier stretches its row's range
    case = "a (6, 16) table whose rows have ranges from 0.04 to 80, a constant row 3 and an outlier in row 4"
    reference = QuantizedEmbedding.from_float(table, bits=8)
    got = _call(fn, table, case=case)
    if not isinstance(got, tuple) or len(got) != 3:
        raise Mismatch(f"return (codes, scale, bias), got a {type(got).__name__}, on {case}")
    codes, scale, bias = (np.asarray(part) for part in got)
    if codes.shape != table.shape or codes.dtype != np.uint8:
        raise Mismatch(f"codes must be uint8 of shape {table.shape} (one byte per value), got "
                       f"{codes.dtype} of shape {codes.shape}, on {case}")
    if scale.shape != (6,) or bias.shape != (6,):
        raise Mismatch(f"scale and bias hold one number per row, shape (6,), got {scale.shape} and {bias.shape}")
    decoded = codes.astype(np.float32) * scale[:, None].astype(np.float32) + bias[:, None].astype(np.float32)
    if not np.isfinite(decoded).all():
        r = int(np.flatnonzero(~np.isfinite(decoded).all(axis=1))[0])
        raise Mismatch(f"row {r} decodes to {_fmt(decoded[r])}" + (
            ": it is constant, so max - min is 0; keep the division finite (FBGEMM adds 1e-8)" if r == 3 else ""))
    expected = reference.to_dense()
    step = (table.max(axis=1) - table.min(axis=1)) / 255

    def hint(index, got):
        r = index[0]
        error, bound = float(np.abs(decoded[r] - table[r]).max()), float(step[r] / 2)
        if error > 2 * bound + 1e-6:
            return (f"row {r}'s largest error is {error:.3g}, more than half its step ({bound:.3g}): each row "
                    "needs its own bias (its minimum) and scale ((max - min) / 255)")
        return "round to the nearest code: np.rint"
    # A value on a rounding tie may land one code away from tinyembed's: allow one step per row.
    _same_array(decoded, expected, what="decoded table", case=case, hint=hint, rtol=0, atol=step[:, None] + 1e-6)
    ours = reference.fused[:, :16].astype(int)
    differ = codes.astype(int) != ours
    if np.abs(codes.astype(int) - ours).max() > 1 or differ.mean() > 0.05:
        how = ("they are never above tinyembed's: round to the nearest code (np.rint), not down"
               if (codes.astype(int) <= ours).all() else "code 0 is the row's minimum, 255 its maximum")
        raise Mismatch(f"{int(differ.sum())} of your {differ.size} codes differ from tinyembed's, on {case}: {how}")
    return "decodes like QuantizedEmbedding(bits=8), a constant row and an outlier included"


# -- 04 Bandwidth and caches --------------------------------------------------------------------------


@_exercise("04", "lookup_bytes(n_ids, dim, row_bytes): the least bytes a lookup reads and writes",
           "tinyembed.profile.traffic.bytes_moved('forward', ...), what the profiler and bench divide by time")
def _check_lookup_bytes(fn: Callable) -> str:
    for n, dim, row_bytes in ((16384, 768, 4 * 768), (1000, 64, 64 + 8), (1, 16, 32)):
        case = f"{n} ids, width {dim}, {row_bytes} bytes per stored row"
        expected = bytes_moved("forward", n=n, dim=dim, row_bytes=row_bytes)

        def hint(value, n=n, dim=dim, expected=expected):
            missing = expected - value
            if missing == 8 * n:
                return "the ids are read too: 8 bytes (int64) each"
            if missing == n * dim * 4:
                return "the output is written too: n_ids rows of dim float32 values"
            if value == 2 * expected:
                return "count each byte once: rows read as stored, output written once"
            return None
        _same_number(_call(fn, n, dim, row_bytes, case=case), expected, what="byte count", case=case, hint=hint)
    return "matches bytes_moved('forward'): ids read, rows read as stored, output written"


@_exercise("04", "hot_set_share(ids, k): the share of lookups the k most frequent rows serve",
           "tinyembed.profile.rowcache.hot_set_curve")
def _check_hot_set_share(fn: Callable) -> str:
    streams = [np.array([1, 2, 1, 3, 1, 2]), np.random.default_rng(_RNG_SEED).zipf(1.3, 5000) % 1000]
    for ids in streams:
        for k in (0, 1, 2, 10, 2000):
            case = f"k = {k} on {'ids ' + str(ids.tolist()) if ids.size < 10 else f'{ids.size} Zipf ids'}"
            expected = float(rowcache.hot_set_curve(ids, [k])[0])
            _same_number(_call(fn, ids, k, case=case), expected, what="share", case=case,
                         hint=lambda value: "divide by the number of lookups, not of distinct rows"
                         if value > 1 else None)
    return "matches hot_set_curve, k = 0 and k past the distinct rows included"


def _fifo_hit_rate(ids: np.ndarray, capacity: int) -> float:
    cache: list[int] = []
    hits = 0
    for row in ids.tolist():
        if row in cache:
            hits += 1
        else:
            cache.append(row)
            if len(cache) > capacity:
                cache.pop(0)
    return hits / ids.size


@_exercise("04", "lru_hit_rate(ids, capacity): hit rate of an LRU row cache that starts empty",
           "tinyembed.profile.rowcache.lru_hit_rates (LRU stack distances)")
def _check_lru_hit_rate(fn: Callable) -> str:
    streams = [np.array([1, 2, 1, 3, 1, 2]), np.array([1, 2, 3, 1, 4, 1, 5, 1]),
               np.random.default_rng(_RNG_SEED).zipf(1.2, 3000) % 500]
    for ids in streams:
        for capacity in (1, 2, 3, 50):
            case = f"capacity {capacity} on {'ids ' + str(ids.tolist()) if ids.size < 10 else f'{ids.size} Zipf ids'}"
            expected = float(rowcache.lru_hit_rates(ids, [capacity])[0])

            def hint(value, ids=ids, capacity=capacity):
                if np.isclose(value, _fifo_hit_rate(ids, capacity)):
                    return "that is a FIFO cache: on a hit, move the row to the most recent end (move_to_end)"
                if np.isclose(value, rowcache.hot_set_curve(ids, [capacity])[0]):
                    return "that is the hot-set oracle, which knows the future; an LRU cache only knows the past"
                return "the cache starts empty: a first access is always a miss"
            _same_number(_call(fn, ids, capacity, case=case), expected, what="hit rate", case=case, hint=hint)
    return "matches lru_hit_rates on small streams and 3,000 Zipf ids"


# -- 05 Trade-offs -----------------------------------------------------------------------------------

_TEXTS = ["The cat sat on the mat.", "naïve café, 東京 and Zürich", "  spaces   and\nnewlines\n"]


@_exercise("05", "tokens_per_byte(tokenizer, texts): tokens per UTF-8 byte of the texts",
           "tinyembed.text.tokenizers.tokenization_stats (tokens / utf8_bytes)")
def _check_tokens_per_byte(fn: Callable) -> str:
    bpe = BPETokenizer.train(_TEXTS * 20, vocab_size=300)
    for tokenizer in (ByteTokenizer(), bpe):
        case = f"{type(tokenizer).__name__} of {len(tokenizer)} ids on {_TEXTS}"
        stats = tokenization_stats(tokenizer, _TEXTS)
        expected = stats.tokens / stats.utf8_bytes

        def hint(value, stats=stats, expected=expected):
            if np.isclose(value, stats.tokens / stats.characters):
                return "that is per character; count UTF-8 bytes: len(text.encode('utf-8'))"
            if np.isclose(value, 1 / expected):
                return "that is bytes per token; the exercise asks for tokens per byte"
            return None
        _same_number(_call(fn, tokenizer, list(_TEXTS), case=case), expected, what="tokens per byte", case=case,
                     hint=hint)
    return "matches tokenization_stats, bytes (not characters) counted"


@_exercise("05", "smaller_bpe(tokenizer, vocab_size): the BPE tokenizer training with that size would give",
           "BPETokenizer.train(corpus, vocab_size): the same merges and the same ids")
def _check_smaller_bpe(fn: Callable) -> str:
    corpus = ["the quick brown fox jumps over the lazy dog", "the dog sleeps; the fox runs away quickly"] * 30
    large = BPETokenizer.train(corpus, vocab_size=340)
    for size in (300, 280, 260):
        case = f"a {len(large)}-id BPE tokenizer cut to {size} ids"
        expected = BPETokenizer.train(corpus, vocab_size=size)
        got = _call(fn, large, size, case=case)
        if not isinstance(got, BPETokenizer):
            raise Mismatch(f"return a BPETokenizer, got a {type(got).__name__}, on {case}")
        if len(got) != len(expected):
            raise Mismatch(f"your tokenizer has {len(got)} ids, expected {len(expected)}, on {case}: the ids are "
                           f"{len(expected.specials.tokens())} special tokens + 256 bytes + the merges")
        if got.merges != expected.merges:
            k = next(i for i, (a, b) in enumerate(zip(got.merges, expected.merges, strict=True)) if a != b)
            raise Mismatch(f"merge {k} is {got.merges[k]}, expected {expected.merges[k]}, on {case}: keep the "
                           "first merges, in order")
        for text in corpus[:2]:
            if not np.array_equal(got.encode(text), expected.encode(text)):
                raise Mismatch(f"your tokenizer encodes {text!r} differently, on {case}")
    return "gives the tokenizer BPETokenizer.train makes at 300, 280 and 260 ids"
