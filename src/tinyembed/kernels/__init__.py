"""Array kernels: the pure NumPy functions every embedding table runs.

Nothing here knows about Tensors, autograd or modules. Layers call these
functions; the profiler measures these same functions. Every kernel takes
validated inputs (:mod:`.ids`) so that the hot paths can use NumPy's unchecked
modes and compiled loops that never test a bound.

    ids        check_ids, check_offsets, check_out, bag_bounds: the inputs' contract; id_array for
               the kernels that check their ids as they go
    threads    how many threads, and the contiguous chunk each takes
    gather     gather_rows (the lookup), gather_add_rows (token + position in one pass)
    segments   segment_reduce, segment_sum_rows, scatter_add_rows (a lookup's backward)
    norms      row_norms, renorm_rows_ (max_norm), frequency_scale (scale_grad_by_freq)
    bags       bag_pool, pool_rows, pool_segments, bag_pool_backward (EmbeddingBag);
               bag_pool_decoded: bags of a table stored in a narrower type, decoded as they are added
               (its ids checked as it goes)
    rows       how rows are stored: the storage types, FBGEMM's fused quantized rows (quantize_rows,
               dequantize_rows), and reading any of them: decode_rows, gather_decoded (the lookup,
               decoded straight into its output; lookup_decoded checks the ids as it goes),
               attend_decoded (scores against every row), scores_by_chunks (h @ table.T a chunk
               of rows at a time)
    lanes      sixteen columns of a row as one vector value, decoded from any storage type: what the
               compiled bags keep their sums in (registers, not the output row) and lookups decode;
               empty_aligned, arrays whose rows' vectors start on cache lines
    jit        compiled loops (numba, optional): each written beside the NumPy path it replaces
"""

from . import jit, rows
from .bags import bag_pool, bag_pool_backward, bag_pool_decoded, bag_pool_fused, pool_rows, pool_segments
from .gather import gather_add_rows, gather_rows, lookup_rows
from .ids import bag_bounds, check_ids, check_offsets, check_out, id_array
from .lanes import empty_aligned
from .norms import frequency_scale, renorm_rows_, row_norms
from .rows import attend_decoded, decode_rows, gather_decoded, lookup_decoded, scores_by_chunks
from .segments import scatter_add_rows, segment_reduce, segment_sum_rows
from .threads import get_num_threads, set_num_threads

__all__ = [
    "id_array", "check_ids", "check_offsets", "check_out", "bag_bounds", "get_num_threads", "set_num_threads",
    "gather_rows", "gather_add_rows", "lookup_rows", "segment_reduce", "segment_sum_rows", "scatter_add_rows",
    "row_norms", "renorm_rows_", "frequency_scale", "bag_pool", "pool_rows", "pool_segments",
    "bag_pool_backward", "bag_pool_fused", "bag_pool_decoded", "decode_rows", "gather_decoded", "lookup_decoded",
    "attend_decoded", "scores_by_chunks", "empty_aligned", "jit", "rows",
]
