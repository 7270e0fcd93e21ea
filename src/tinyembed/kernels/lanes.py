"""Lanes: sixteen columns of a row as one vector value, so a compiled loop can keep sums in registers.

A bag's sum written back to memory after every row is what kept the compiled bags behind
FBGEMM's: numba cannot tell LLVM that the output does not overlap the table, so ``acc[d] +=
row[d]`` loads and stores ``acc`` around every add. A :data:`LANES`-wide vector is a value like
a float, held in a register for the whole bag; the loops add rows sixteen columns at a time::

    s = _lanes_zero(out)
    for j in range(start, stop):
        scale, bias = _int8_scale_and_bias(fused, ids[j], dim)
        s = s + _int8_lanes(fused, ids[j], 0, dim, scale, bias)   # columns 0:16 of the row
    _store_lanes(out, b, 0, dim, s)

Each ``*_lanes`` load reads the columns ``col : col + 16`` of row ``row`` decoded to float, the
first ``count`` of them (clipped to 16), zeros in the rest: the last vector of a row is masked,
so it never reads past the row. ``+``, ``*`` and ``/`` work lane by lane, a float on either side
repeated across the lanes, and round as the scalar operations do: a vector sum has the bits of the
scalar loop's. The functions here define what each helper means, in NumPy; :func:`build` makes the
LLVM that the kernels compile in their place (:func:`tinyembed.kernels.rows._install_helpers`).
"""

from __future__ import annotations

import math

import numpy as np

from ..io.dtypes import DECODED_DTYPES

__all__ = ["LANES", "KINDS", "HELPER_NAMES", "build", "byte_address", "empty_aligned", "ALIGNED_MIN_BYTES"]

LANES = 16
HELPER_NAMES = ("_lanes_zero", "_float_lanes", "_float16_lanes", "_bfloat16_lanes", "_float8_lanes",
                "_int8_lanes", "_int4_lanes", "_scale_and_bias", "_stored_lanes", "_weight", "_times",
                "_store_lanes")


# Arrays of at least this many bytes that empty_aligned makes start on a 64-byte boundary; below it, the 2 us
# that reading an array's address and taking a view cost outweigh what aligning saves.
ALIGNED_MIN_BYTES = 1 << 16


def empty_aligned(shape, dtype) -> np.ndarray:
    """``np.empty(shape, dtype)``, its first byte on a 64-byte boundary (from :data:`ALIGNED_MIN_BYTES`).

    A vector of 16 float32 is 64 bytes: in a row that starts on a cache line it is one load or store, off one
    it is two. NumPy's large arrays start anywhere 16 bytes apart. It pays for quantized bags of rows wider
    than ``bags.WALKED``, added into their output rows (int8 bags of 32 from 50257 x 768 took 1.21x as long
    into an output 16 bytes past a line). The lookups, tokens plus positions and float32 bags (768 columns
    added into the output row included) ran as fast either way, so they take NumPy's output, 2.3 us sooner."""
    dtype = np.dtype(dtype)
    size = math.prod(shape) * dtype.itemsize  # not np.prod: 1.5 us a call
    if size < ALIGNED_MIN_BYTES:
        return np.empty(shape, dtype)
    buffer = np.empty(size + 64, np.uint8)
    start = -buffer.ctypes.data % 64
    return buffer[start:start + size].view(dtype).reshape(shape)


def _lanes_zero(like):
    """:data:`LANES` zeros of the 2-D array ``like``'s dtype."""
    return np.zeros(LANES, like.dtype)


def _columns(table, row, col, count, width=1):
    """The stored values of columns ``col : col + min(count, 16)`` of a row, ``width`` columns a value."""
    return table[row, col // width: (col + min(count, LANES) + width - 1) // width]


def _padded(values, dtype):
    out = np.zeros(LANES, dtype)
    out[: len(values)] = values
    return out


def _float_lanes(table, row, col, count):
    """Columns of a float32 or float64 row, as they are."""
    return _padded(_columns(table, row, col, count), table.dtype)


def _float16_lanes(bits, row, col, count):
    """Columns of a float16 row, read as its uint16 bits, in float32."""
    return _padded(_columns(bits, row, col, count).view(np.float16), np.float32)


def _bfloat16_lanes(bits, row, col, count):
    """Columns of a bfloat16 row, read as its uint16 bits: the high halves of float32s."""
    return _padded((_columns(bits, row, col, count).astype(np.uint32) << 16).view(np.float32), np.float32)


def _float8_lanes(codes, row, col, count):
    """Columns of a float8_e4m3fn row (uint8 codes), in float32, as :func:`.rows.decode_rows` decodes."""
    return _padded(DECODED_DTYPES["F8_E4M3"](_columns(codes, row, col, count)), np.float32)


def _scaled(codes, count, scale, bias):
    values = codes * np.float32(scale) + np.float32(bias)
    return np.where(np.arange(LANES) < count, values, 0).astype(np.float32)


def _int8_lanes(fused, row, col, count, scale, bias):
    """Columns of an 8-bit fused row (:mod:`.rows`): ``code * scale + bias``, rounded after each step
    (no fused multiply-add); ``scale`` and ``bias`` the row's own (:func:`_scale_and_bias`)."""
    return _scaled(_padded(_columns(fused, row, col, count), np.float32), count, scale, bias)


def _int4_lanes(fused, row, col, count, scale, bias):
    """Columns of a 4-bit fused row, ``col`` even: ``code * scale + bias``, column 2k in byte k's low
    nibble, 2k + 1 in its high one."""
    packed = _columns(fused, row, col, count, width=2)
    codes = np.stack([packed & 15, packed >> 4], axis=1).reshape(-1)[: min(count, LANES)]
    return _scaled(_padded(codes, np.float32), count, scale, bias)


def _int8_scale_and_bias(fused, row, dim):
    """The float32 scale and bias after the ``dim`` codes of an 8-bit fused row."""
    scale, bias = fused[row, dim: dim + 8].view(np.float32)
    return scale, bias


def _int4_scale_and_bias(fused, row, dim):
    """The float16 scale and bias after the ``ceil(dim / 2)`` bytes of a 4-bit fused row, in float32."""
    at = (dim + 1) // 2
    scale, bias = fused[row, at: at + 4].view(np.float16).astype(np.float32)
    return scale, bias


# The storage types :func:`_stored_lanes` decodes, by number (one compiled loop serves them all).
KINDS = {"float16": 0, "bfloat16": 1, "float8_e4m3fn": 2, "int8": 3, "int4": 4}


def _scale_and_bias(table, kind, row, dim):
    """A quantized row's scale and bias in float32; (1, 0), unused, for the other storage types."""
    if kind == 3:
        return _int8_scale_and_bias(table, row, dim)
    if kind == 4:
        return _int4_scale_and_bias(table, row, dim)
    return np.float32(1), np.float32(0)


def _stored_lanes(table, kind, row, col, count, scale, bias):
    """Columns of a row stored as the storage type numbered ``kind`` (:data:`KINDS`), in float32; a
    float16 or bfloat16 table read as its uint16 bits; ``scale, bias``: :func:`_scale_and_bias`."""
    if kind == 0:
        return _float16_lanes(table, row, col, count)
    if kind == 1:
        return _bfloat16_lanes(table, row, col, count)
    if kind == 2:
        return _float8_lanes(table, row, col, count)
    if kind == 3:
        return _int8_lanes(table, row, col, count, scale, bias)
    return _int4_lanes(table, row, col, count, scale, bias)


def _weight(weights, j):
    """Entry ``j``'s weight, ``weights[j]``, or None when there are no weights (``weights`` is None)."""
    return None if weights is None else weights[j]


def _times(x, weight):
    """``x`` times ``weight``, or ``x`` itself when ``weight`` is None: decided when numba compiles, so a
    loop without weights has no multiply by 1 and no branch."""
    return x if weight is None else x * weight


def _store_lanes(out, row, col, count, value):
    """Write the first ``count`` lanes of ``value`` to columns ``col:`` of row ``row`` of ``out``."""
    n = min(count, LANES)
    out[row, col: col + n] = value[:n]


def byte_address(context, builder, array_type, array, row, offset):
    """LLVM: the address of byte ``offset`` of row ``row`` of a 2-D array, in an intrinsic's code."""
    from llvmlite import ir  # noqa: PLC0415 - only once the compiled kernels are in use
    from numba.core import cgutils  # noqa: PLC0415

    view = context.make_array(array_type)(context, builder, array)
    stride = cgutils.unpack_tuple(builder, view.strides, array_type.ndim)[0]
    data = builder.bitcast(view.data, ir.IntType(8).as_pointer())
    return builder.gep(data, [builder.add(builder.mul(row, stride), offset)])


def build(float8_bits) -> dict[str, object]:
    """The numba type and intrinsics of the helpers above, by name (called once, by :mod:`.rows`).

    ``float8_bits(builder, codes)`` is :mod:`.rows`' LLVM for float8 codes to float16 bits (on
    vectors as on scalars). The float16 and float8 loads convert halves with LLVM's ``fpext``, the
    CPU's instruction: callers use them only where :func:`.rows.half_in_hardware`."""
    import operator  # noqa: PLC0415

    import numba  # noqa: PLC0415
    from llvmlite import binding, ir  # noqa: PLC0415 - only once the compiled kernels are in use
    from numba.core import cgutils, types  # noqa: PLC0415
    from numba.extending import intrinsic, models, overload, register_model  # noqa: PLC0415

    i8, i16, i32, i64 = (ir.IntType(bits) for bits in (8, 16, 32, 64))
    f16, f32, f64 = ir.HalfType(), ir.FloatType(), ir.DoubleType()

    class Lanes(types.Type):
        def __init__(self, dtype):
            self.dtype = dtype
            super().__init__(name=f"lanes{LANES}({dtype})")

    @register_model(Lanes)
    class LanesModel(models.PrimitiveModel):
        def __init__(self, dmm, fe_type):
            super().__init__(dmm, fe_type, ir.VectorType(f64 if fe_type.dtype == types.float64 else f32, LANES))

    float32_lanes = Lanes(types.float32)

    def size(element):
        """Bytes of one LLVM value of ``element``."""
        return element.width // 8 if isinstance(element, ir.IntType) else {f16: 2, f32: 4, f64: 8}[element]

    def vector(element, lanes=LANES):
        return ir.VectorType(element, lanes)

    def splat(builder, value, lanes=LANES):
        one = builder.insert_element(ir.Constant(vector(value.type, lanes), ir.Undefined), value, ir.Constant(i32, 0))
        return builder.shuffle_vector(one, ir.Constant(vector(value.type, lanes), ir.Undefined),
                                      ir.Constant(vector(i32, lanes), [0] * lanes))

    def mask(builder, count, lanes):
        """Lane k on when k < count."""
        positions = ir.Constant(vector(i64, lanes), list(range(lanes)))
        return builder.icmp_signed("<", positions, splat(builder, count, lanes))

    def masked(builder, name, kind, args, vec):
        element = vec.element
        suffix = f"i{element.width}" if isinstance(element, ir.IntType) else f"f{8 * size(element)}"
        # LLVM names an intrinsic by its pointer type too: typed pointers until LLVM 15 (numba 0.60).
        pointer = "p0" if binding.llvm_version_info >= (15,) else f"p0v{vec.count}{suffix}"
        fn = cgutils.get_or_insert_function(builder.module, kind, f"llvm.masked.{name}.v{vec.count}{suffix}.{pointer}")
        return builder.call(fn, args)

    def load(context, builder, array_type, args, element, lanes=LANES, per_value=1):
        """``lanes`` values of ``element`` from row args[1], column args[2], the first args[3] of them;
        ``per_value`` columns a stored value (two for 4-bit codes). A full vector is one plain load: a
        masked load of bytes is one load per lane on CPUs without AVX-512."""
        table, row, col, count = args[:4]
        if per_value > 1:
            col, count = builder.udiv(col, ir.Constant(i64, per_value)), builder.sdiv(
                builder.add(count, ir.Constant(i64, per_value - 1)), ir.Constant(i64, per_value))
        kind = vector(element, lanes)
        offset = builder.mul(col, ir.Constant(i64, size(element)))
        address = byte_address(context, builder, array_type, table, row, offset)
        pointer = builder.bitcast(address, kind.as_pointer())
        with builder.if_else(builder.icmp_signed(">=", count, ir.Constant(i64, lanes))) as (full, part):
            with full:
                whole, whole_block = builder.load(pointer, align=1), builder.block
            with part:
                on = mask(builder, count, lanes)
                some = masked(builder, "load", ir.FunctionType(kind, [pointer.type, i32, on.type, kind]),
                              [pointer, ir.Constant(i32, 1), on, ir.Constant(kind, None)], kind)
                some_block = builder.block
        loaded = builder.phi(kind)
        loaded.add_incoming(whole, whole_block)
        loaded.add_incoming(some, some_block)
        return loaded

    def scale_and_bias(kind, at_byte):
        """An intrinsic (fused, row, dim) -> the row's (scale, bias), stored as ``kind`` from byte
        ``at_byte(builder, dim)``, in float32."""
        @intrinsic
        def load(typingctx, fused, row, dim):
            def codegen(context, builder, signature, args):
                values = []
                for offset in (0, size(kind)):
                    byte = builder.add(at_byte(builder, args[2]), ir.Constant(i64, offset))
                    address = byte_address(context, builder, signature.args[0], args[0], args[1], byte)
                    value = builder.load(builder.bitcast(address, kind.as_pointer()), align=1)
                    values.append(value if kind == f32 else builder.fpext(value, f32))
                return context.make_tuple(builder, signature.return_type, values)
            return types.UniTuple(types.float32, 2)(fused, index, index), codegen
        return load

    def scaled(builder, codes, scale, bias):  # scale, bias: float32 values
        # code * scale, then + bias: two roundings, no fused multiply-add, as dequantize_rows rounds
        product = builder.fmul(builder.uitofp(codes, vector(f32)), splat(builder, scale))
        return builder.fadd(product, splat(builder, bias))

    index = types.intp

    @intrinsic
    def lanes_zero(typingctx, like):
        result = Lanes(like.dtype)

        def codegen(context, builder, signature, args):
            return ir.Constant(context.get_value_type(result), None)
        return result(like), codegen

    @intrinsic
    def float_lanes(typingctx, table, row, col, count):
        def codegen(context, builder, signature, args):
            return load(context, builder, signature.args[0], args, f64 if table.dtype == types.float64 else f32)
        return Lanes(table.dtype)(table, index, index, index), codegen

    @intrinsic
    def float16_lanes(typingctx, bits, row, col, count):
        def codegen(context, builder, signature, args):
            return builder.fpext(builder.bitcast(load(context, builder, signature.args[0], args, i16), vector(f16)),
                                 vector(f32))
        return float32_lanes(bits, index, index, index), codegen

    @intrinsic
    def bfloat16_lanes(typingctx, bits, row, col, count):
        def codegen(context, builder, signature, args):
            wide = builder.zext(load(context, builder, signature.args[0], args, i16), vector(i32))
            return builder.bitcast(builder.shl(wide, ir.Constant(vector(i32), [16] * LANES)), vector(f32))
        return float32_lanes(bits, index, index, index), codegen

    @intrinsic
    def float8_lanes(typingctx, codes, row, col, count):
        def codegen(context, builder, signature, args):
            bits = float8_bits(builder, load(context, builder, signature.args[0], args, i8))
            halves = builder.fpext(builder.bitcast(bits, vector(f16)), vector(f32))
            return builder.fmul(halves, ir.Constant(vector(f32), [256.0] * LANES))
        return float32_lanes(codes, index, index, index), codegen

    @intrinsic
    def int8_lanes(typingctx, fused, row, col, count, scale, bias):
        def codegen(context, builder, signature, args):
            return scaled(builder, load(context, builder, signature.args[0], args, i8), args[4], args[5])
        return float32_lanes(fused, index, index, index, types.float32, types.float32), codegen

    @intrinsic
    def int4_lanes(typingctx, fused, row, col, count, scale, bias):
        def codegen(context, builder, signature, args):
            half = LANES // 2
            packed = load(context, builder, signature.args[0], args, i8, lanes=half, per_value=2)
            low = builder.and_(packed, ir.Constant(vector(i8, half), [15] * half))
            high = builder.lshr(packed, ir.Constant(vector(i8, half), [4] * half))
            # column 2k from byte k's low nibble, 2k + 1 from its high one
            order = [k // 2 + (half if k % 2 else 0) for k in range(LANES)]
            codes = builder.shuffle_vector(low, high, ir.Constant(vector(i32), order))
            return scaled(builder, codes, args[4], args[5])
        return float32_lanes(fused, index, index, index, types.float32, types.float32), codegen

    @intrinsic
    def store_lanes(typingctx, out, row, col, count, value):
        def codegen(context, builder, signature, args):
            element = f64 if out.dtype == types.float64 else f32
            address = byte_address(context, builder, signature.args[0], args[0], args[1],
                                   builder.mul(args[2], ir.Constant(i64, size(element))))
            pointer = builder.bitcast(address, vector(element).as_pointer())
            with builder.if_else(builder.icmp_signed(">=", args[3], ir.Constant(i64, LANES))) as (full, part):
                with full:
                    builder.store(args[4], pointer, align=1)
                with part:
                    on = mask(builder, args[3], LANES)
                    kind = ir.FunctionType(ir.VoidType(), [vector(element), pointer.type, i32, on.type])
                    masked(builder, "store", kind, [args[4], pointer, ir.Constant(i32, 1), on], vector(element))
            return context.get_dummy_value()
        return types.none(out, index, index, index, value), codegen

    def lane_operation(name):
        @intrinsic
        def operation(typingctx, a, b):
            result = a if isinstance(a, Lanes) else b

            def codegen(context, builder, signature, args):
                def as_lanes(value, kind):  # a number is cast to the lanes' dtype, then repeated
                    if isinstance(kind, Lanes):
                        return value
                    return splat(builder, context.cast(builder, value, kind, result.dtype))
                a, b = (as_lanes(value, kind) for value, kind in zip(args, signature.args, strict=True))
                return getattr(builder, name)(a, b)
            return result(a, b), codegen
        return operation

    def overload_with(operation):
        def typed(a, b):
            if isinstance(a, Lanes) and (isinstance(b, types.Number) or b == a):
                return lambda a, b: operation(a, b)
            return None
        return typed

    for name, operators in (("fadd", (operator.add, operator.iadd)), ("fmul", (operator.mul, operator.imul)),
                            ("fdiv", (operator.truediv, operator.itruediv))):
        for python_operator in operators:
            overload(python_operator)(overload_with(lane_operation(name)))

    compiled = {"_lanes_zero": lanes_zero, "_float_lanes": float_lanes, "_float16_lanes": float16_lanes,
                "_bfloat16_lanes": bfloat16_lanes, "_float8_lanes": float8_lanes, "_int8_lanes": int8_lanes,
                "_int4_lanes": int4_lanes, "_store_lanes": store_lanes,
                "_int8_scale_and_bias": scale_and_bias(f32, lambda builder, dim: dim),
                "_int4_scale_and_bias": scale_and_bias(f16, lambda builder, dim: builder.sdiv(
                    builder.add(dim, ir.Constant(i64, 1)), ir.Constant(i64, 2)))}
    globals().update(compiled)  # _stored_lanes calls these: this module's names must be compiled first
    for name in ("_stored_lanes", "_scale_and_bias"):
        compiled[name] = numba.njit(inline="always")(globals()[name])

    @overload(_weight, inline="always")
    def weight_of(weights, j):
        if isinstance(weights, types.NoneType):
            return lambda weights, j: None
        return lambda weights, j: weights[j]

    @overload(_times, inline="always")
    def times(x, weight):
        if isinstance(weight, types.NoneType):
            return lambda x, weight: x
        return lambda x, weight: x * weight
    # the overloads above: numba compiles calls of the functions themselves
    compiled.update({"_weight": _weight, "_times": _times})
    globals().update(compiled)
    return compiled
