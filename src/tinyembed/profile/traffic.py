"""Bytes moved: the least memory traffic one pass of an embedding operation needs.

Lookups do almost no arithmetic, so the bytes they must read and write, over the
time they take, is the figure to hold against the machine's copy bandwidth (the
roofline). The profiler, the benchmark and the report count with this one function.

With n ids (int64), B bags, k distinct ids, L positions, a table of V rows of width D
storing ``row_bytes`` per row (:func:`tinyembed.kernels.rows.storage_row_bytes`) and an
output of ``out_itemsize`` bytes per value::

    forward, forward_out   8n + n*row_bytes (rows read) + n*D*out (rows written)
    dense_backward         8n + n*D*out (gradient rows read) + V*D*out (dense gradient written)
    sparse_backward        8n + n*D*out + k*(8 + D*out) (row ids and summed rows written)
    bag_sum, bag_mean      8n + 8B (offsets) + n*row_bytes + B*D*out (bags written)
    layer_forward          forward + L*D*out (position rows read)

Temporaries are not counted: they show up as time.

Examples:
    >>> bytes_moved("forward", n=1000, dim=64, row_bytes=4 * 64)   # ids + rows read + rows written
    520000
"""

from __future__ import annotations

from typing import overload

from ..checks import check_choice

__all__ = ["ID_BYTES", "OPS", "bytes_moved"]

ID_BYTES = 8  # ids are int64 on the way in

OPS = ("forward", "forward_out", "dense_backward", "sparse_backward", "bag_sum", "bag_mean", "layer_forward")


# row_bytes may be a table's stored bytes averaged over its ids (a hashed table's, say): then the
# count is a float too.
@overload
def bytes_moved(op: str, *, n: int, dim: int, row_bytes: int, out_itemsize: int = 4, vocab: int = 0,
                bags: int = 0, distinct: int = 0, positions: int = 0) -> int: ...
@overload
def bytes_moved(op: str, *, n: int, dim: int, row_bytes: float, out_itemsize: int = 4, vocab: int = 0,
                bags: int = 0, distinct: int = 0, positions: int = 0) -> float: ...
def bytes_moved(op: str, *, n: int, dim: int, row_bytes: float, out_itemsize: int = 4, vocab: int = 0,
                bags: int = 0, distinct: int = 0, positions: int = 0) -> float:
    """Least bytes one pass of ``op`` reads and writes; the formulas are in the module docstring."""
    check_choice(op, OPS, "op")
    ids = ID_BYTES * n
    out_row = dim * out_itemsize
    if op in ("forward", "forward_out"):
        return ids + n * row_bytes + n * out_row
    if op == "layer_forward":
        return ids + n * row_bytes + n * out_row + positions * out_row
    if op == "dense_backward":
        return ids + n * out_row + vocab * out_row
    if op == "sparse_backward":
        return ids + n * out_row + distinct * (ID_BYTES + out_row)
    return ids + ID_BYTES * bags + n * row_bytes + bags * out_row  # bag_sum, bag_mean
