"""Worked answers to the tutorial's exercises, one function each, with the reasoning in its docstring.

Try the exercise first: ``exercises.reveal("name")`` shows one of these in the notebook when you
are stuck, and ``exercises.check("name", answers.name)`` is how the tests know each one is right.
They use NumPy only, as you would; tinyembed is what the checks compare them with.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

# -- 01 Lookup tables and their gradients ------------------------------------------------------


def embedding_forward(weight, ids):
    """Rows of ``weight`` (V, D) for ``ids`` of any shape: (*ids.shape, D).

    Indexing an array with an integer array gathers rows, and the result takes the shape of
    the ids followed by the row: that is the whole lookup. It equals ``one_hot(ids) @ weight``
    without the V x D multiply-adds per id.
    """
    return weight[np.asarray(ids)]


def embedding_backward(grad_output, ids, num_embeddings, padding_idx=None):
    """The weight's gradient (V, D) of a lookup, given the output's gradient (*ids.shape, D).

    Output position i copied row ids[i], so its gradient goes back to that row; an id used
    k times gets the sum of its k gradient rows. ``np.add.at`` adds every one of them:
    ``grad[ids] += g`` would not, because a fancy-index assignment writes a repeated row once
    (the last write wins). Positions holding the padding id send nothing back.
    """
    ids = np.asarray(ids).reshape(-1)
    rows = np.asarray(grad_output).reshape(ids.size, -1)  # one gradient row per position
    if padding_idx is not None:
        keep = ids != padding_idx
        ids, rows = ids[keep], rows[keep]
    grad = np.zeros((num_embeddings, rows.shape[1]), dtype=rows.dtype)
    np.add.at(grad, ids, rows)  # a scatter-add: repeated ids accumulate
    return grad


def coalesce(ids, grad_rows):
    """A row-sparse gradient from one gradient row per position: (sorted unique ids, summed rows).

    ``np.unique(..., return_inverse=True)`` says which unique id each position holds; adding
    the rows into their slot sums the repeats. This is what ``RowSparseGrad`` stores: k rows
    instead of V, where k is the number of distinct ids in the batch.
    """
    ids = np.asarray(ids).reshape(-1)
    grad_rows = np.asarray(grad_rows).reshape(ids.size, -1)
    unique, slot = np.unique(ids, return_inverse=True)
    summed = np.zeros((unique.size, grad_rows.shape[1]), dtype=grad_rows.dtype)
    np.add.at(summed, slot, grad_rows)
    return unique, summed


def bag_sum(weight, ids, offsets):
    """Sum of each bag's rows, (B, D): bag b holds ``ids[offsets[b]:offsets[b + 1]]``, the last
    bag runs to the end, and an empty bag sums to zeros.

    ``np.add.reduceat`` would do it in one call, but it mishandles empty bags (it returns the
    row at the offset instead of zeros), so this loops over bags: clear first, fast later.
    """
    ids = np.asarray(ids)
    bounds = list(offsets) + [ids.size]
    out = np.zeros((len(offsets), weight.shape[1]), dtype=weight.dtype)
    for b in range(len(offsets)):
        out[b] = weight[ids[bounds[b]:bounds[b + 1]]].sum(axis=0)
    return out


# -- 02 Positions --------------------------------------------------------------------------------


def sinusoidal(positions, dim, base=10000.0):
    """The sinusoidal encoding (len(positions), dim): sin on even dims, cos on odd dims.

    Pair i (dims 2i and 2i + 1) turns at the frequency base^(-2i / dim): the first pair once
    per position (radian), the last one about base times slower. An odd dim leaves a last sine
    without its cosine.
    """
    pos = np.asarray(positions, dtype=np.float64)[:, None]  # (n, 1)
    freq = base ** (-np.arange(0, dim, 2) / dim)  # (ceil(dim/2),)
    angle = pos * freq  # (n, ceil(dim/2))
    out = np.zeros((pos.shape[0], dim))
    out[:, 0::2] = np.sin(angle)
    out[:, 1::2] = np.cos(angle[:, : dim // 2])
    return out


def rope_rotate(x, positions, base=10000.0):
    """Rotary embedding of ``x`` (seq, head_dim) in the half-split pairing (LLaMA, GPT-NeoX).

    Dim i pairs with dim i + d/2 and the pair turns by the angle position * base^(-2i/d):
    (a, b) -> (a cos t - b sin t, a sin t + b cos t). Rotating queries and keys this way makes
    their dot product depend only on the distance between their positions.
    """
    x = np.asarray(x, dtype=np.float64)
    half = x.shape[-1] // 2
    freq = base ** (-np.arange(half) * 2.0 / x.shape[-1])  # (half,)
    angle = np.asarray(positions, dtype=np.float64)[:, None] * freq  # (seq, half)
    cos, sin = np.cos(angle), np.sin(angle)
    a, b = x[:, :half], x[:, half:]
    return np.concatenate([a * cos - b * sin, a * sin + b * cos], axis=-1)


def alibi_bias(slopes, length):
    """ALiBi's causal attention bias (heads, length, length): -slope * (i - j) for key j at or
    before query i, and -inf for keys after it (a causal model never looks ahead).
    """
    slopes = np.asarray(slopes, dtype=np.float64)
    distance = np.arange(length)[:, None] - np.arange(length)[None, :]  # (q, k): how far back key j is
    bias = -slopes[:, None, None] * distance  # (heads, q, k)
    return np.where(distance < 0, -np.inf, bias)


# -- 03 Scaling ----------------------------------------------------------------------------------


def table_bytes(vocab, dim, storage):
    """Bytes of one (vocab, dim) table stored as ``storage``.

    float32/float16/bfloat16 rows are dim values of 4/2/2 bytes. FBGEMM's quantized rows also
    carry the row's own scale and bias: int8 stores dim codes + a float32 scale and bias
    (dim + 8 bytes), int4 two codes a byte + a float16 scale and bias (ceil(dim/2) + 4).
    """
    per_row = {
        "float32": 4 * dim,
        "float16": 2 * dim,
        "bfloat16": 2 * dim,
        "int8": dim + 8,
        "int4": (dim + 1) // 2 + 4,
    }[storage]
    return vocab * per_row


def quantize_int8(table):
    """Row-wise int8: (codes (V, D) uint8, scale (V,), bias (V,)), a row decoded as codes * scale + bias.

    Each row gets its own range: bias = the row's minimum, scale = (max - min) / 255, so its
    smallest value is code 0 and its largest 255; the rounding error is at most scale / 2.
    A constant row has max - min = 0: the 1e-8 (FBGEMM's) keeps the division finite, and
    every code is 0, decoded as the bias, exactly.
    """
    table = np.asarray(table, dtype=np.float32)
    low = table.min(axis=1)
    span = table.max(axis=1) - low
    codes = np.rint((table - low[:, None]) * (255 / (span[:, None] + 1e-8)))
    return np.clip(codes, 0, 255).astype(np.uint8), (span / 255).astype(np.float32), low


# -- 04 Bandwidth and caches -----------------------------------------------------------------------


def lookup_bytes(n_ids, dim, row_bytes):
    """Least bytes one lookup of ``n_ids`` ids moves, with float32 output rows of width ``dim``.

    The ids are read (int64: 8 bytes each), every looked-up row is read as stored
    (``row_bytes``) and written to the output (dim float32 values).
    """
    return 8 * n_ids + n_ids * row_bytes + n_ids * dim * 4


def hot_set_share(ids, k):
    """Share of the lookups ``ids`` that the k most frequent rows serve (a static cache of k rows
    chosen knowing the whole stream: the best any cache of k rows can do on it)."""
    counts = np.sort(np.unique(np.asarray(ids), return_counts=True)[1])[::-1]  # most frequent first
    return counts[:k].sum() / np.asarray(ids).size


def lru_hit_rate(ids, capacity):
    """Hit rate of an LRU cache of ``capacity`` rows that starts empty.

    An OrderedDict keeps the rows from least to most recently used: a hit moves its row to
    the end, a miss inserts it there and, when full, evicts the first (least recent).
    """
    cache: OrderedDict = OrderedDict()
    hits = 0
    for row in np.asarray(ids).reshape(-1).tolist():
        if row in cache:
            hits += 1
            cache.move_to_end(row)
        else:
            cache[row] = True
            if len(cache) > capacity:
                cache.popitem(last=False)
    return hits / np.asarray(ids).size


# -- 05 Trade-offs -------------------------------------------------------------------------------


def tokens_per_byte(tokenizer, texts):
    """Tokens per UTF-8 byte of ``texts`` under ``tokenizer``: how many embedding rows (and
    decode steps) each byte of text costs. Bytes, not characters: 'é' is 2 bytes, '東' 3."""
    tokens = sum(len(tokenizer.encode(t)) for t in texts)
    return tokens / sum(len(t.encode("utf-8")) for t in texts)


def smaller_bpe(tokenizer, vocab_size):
    """The BPE tokenizer of ``vocab_size`` ids that training with that size would give.

    Training merges the most frequent pair, again and again, and nothing in a merge depends on
    how many will follow: a smaller vocabulary's merges are the first ones of a larger one.
    So one training run gives every smaller size, by keeping the first merges.
    """
    from tinyembed.text.tokenizers import BPETokenizer

    keep = vocab_size - 256 - len(tokenizer.specials.tokens())  # ids = specials + 256 bytes + merges
    return BPETokenizer(tokenizer.merges[:keep], specials=tokenizer.specials,
                        pretokenizer=tokenizer.pretokenizer)
