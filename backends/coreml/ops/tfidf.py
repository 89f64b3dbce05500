"""TfIdfVectorizer: counts of the pooled n-grams (with skips) in each row of integer tokens.

For each n-gram length and skip, the windows are slices of the row (one per position in the
n-gram, ``skip + 1`` apart), compared with every pooled n-gram of that length at once; the counts
of matching windows (at most 1 each for IDF) go to their output columns through a matrix of
0s and the n-grams' weights (exact: counts are small integers). Unigrams are counted once, whatever the skip, as onnxruntime and onnx's reference do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.backends.coreml.context import ExportContext
from unframe.backends.coreml.registry import ops


def _pool(ctx: ExportContext, pool: list[int]) -> dict[int, list[tuple[int, tuple[int, ...]]]]:
    """The pooled n-grams by length: (their position among all pooled n-grams, the n-gram)."""
    starts = [int(c) for c in ctx.attr("ngram_counts")]
    grams: dict[int, list[tuple[int, tuple[int, ...]]]] = {}
    position = 0
    for n, start in enumerate(starts, start=1):
        end = starts[n] if n < len(starts) else len(pool)
        if (end - start) % n:
            raise ctx.error(f"ngram_counts: {end - start} pooled values for {n}-grams")
        for first in range(start, end, n):
            grams.setdefault(n, []).append((position, tuple(pool[first : first + n])))
            position += 1
    return grams


@ops.register("TfIdfVectorizer", since=9)
def tfidf_vectorizer_v9(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    mb = ctx.mb
    if ctx.attr("pool_strings", None):
        raise ctx.error("string tokens: Core ML holds no strings")
    if ctx.mil_dtype(ctx.input_dtype(0)) != "int32":
        raise ctx.error("tokens that are not integers")
    shape = ctx.input_shape(0)
    if shape is None or len(shape) not in (1, 2) or any(d is None for d in shape):
        raise ctx.error("tokens of a shape unknown before run time (or of rank above 2)")
    rows, length = (1, int(shape[0] or 0)) if len(shape) == 1 else (int(d or 0) for d in shape)
    pool = [int(v) for v in ctx.attr("pool_int64s", None) or []]
    grams = _pool(ctx, pool)
    indexes = [int(i) for i in ctx.attr("ngram_indexes")]
    columns = max(indexes) + 1 if indexes else 0
    mode = str(ctx.attr("mode"))
    if mode not in ("TF", "IDF", "TFIDF"):
        raise ctx.error(f"mode={mode!r}")
    low, high = int(ctx.attr("min_gram_length")), int(ctx.attr("max_gram_length"))
    skips = int(ctx.attr("max_skip_count"))
    # Each pooled n-gram's weight (IDF, TFIDF), by its position in the pool, as onnxruntime.
    weights = [float(w) for w in ctx.attr("weights", None) or []]
    weighted = mode != "TF" and bool(weights)
    if weighted and len(weights) != len(indexes):
        raise ctx.error(f"{len(weights)} weights for {len(indexes)} pooled n-grams")
    tokens = ctx.input(0) if len(shape) == 2 else mb.reshape(x=ctx.input(0), shape=[1, length])
    total: Any = None
    for n in range(low, high + 1):
        pooled = grams.get(n, [])
        if not pooled:
            continue
        table = np.asarray([gram for _, gram in pooled], np.int32)  # [P, n]
        # Each pooled n-gram's output column: counts [rows, P] @ spread [P, columns].
        spread = np.zeros((len(pooled), columns), np.float32)
        for row, (position, _) in enumerate(pooled):
            spread[row, indexes[position]] = weights[position] if weighted else 1.0
        counts: Any = None
        for skip in range(skips + 1 if n > 1 else 1):
            gap = skip + 1
            windows = length - (n - 1) * gap
            if windows <= 0:
                continue
            matched: Any = None
            for k in range(n):
                window = mb.slice_by_index(
                    x=tokens, begin=[0, k * gap], end=[rows, k * gap + windows]
                )
                same = mb.equal(
                    x=mb.expand_dims(x=window, axes=[2]), y=table[:, k].reshape(1, 1, -1)
                )
                matched = same if matched is None else mb.logical_and(x=matched, y=same)
            found = mb.reduce_sum(x=mb.cast(x=matched, dtype="fp32"), axes=[1], keep_dims=False)
            counts = found if counts is None else mb.add(x=counts, y=found)
        if counts is None:
            continue
        if mode == "IDF":
            counts = mb.minimum(x=counts, y=np.float32(1))
        placed = mb.matmul(x=counts, y=spread)
        total = placed if total is None else mb.add(x=total, y=placed)
    if total is None:
        total = ctx.make_constant(np.zeros((rows, columns), np.float32))
    return [total if len(shape) == 2 else mb.reshape(x=total, shape=[columns])]
