"""String ops (TensorFlow holds strings): StringConcat, StringSplit, StringNormalizer,
RegexFullMatch (both RE2), and ai.onnx.ml's LabelEncoder as an exact key comparison."""

from __future__ import annotations

from typing import Any

from unframe.backends.tensorflow.ops._common import (
    ExportContext,
    Outputs,
    ir,
    np,
    ops,
)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@ops.register("StringConcat", since=20)
def string_concat_v20(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    a, b = ctx.input(0), ctx.input(1)
    shape = tf.broadcast_dynamic_shape(tf.shape(a), tf.shape(b))
    return [tf.strings.join([tf.broadcast_to(a, shape), tf.broadcast_to(b, shape)])]


@ops.register("StringSplit", since=20)
def string_split_v20(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x = ctx.input(0)
    delimiter = ctx.attr("delimiter", None)
    # No or an empty delimiter: runs of whitespace, as Python's str.split() (TF's sep=None).
    separator = _text(delimiter) if delimiter else None
    maxsplit = ctx.attr("maxsplit", None)
    pieces = tf.strings.split(x, sep=separator, maxsplit=-1 if maxsplit is None else int(maxsplit))
    if separator is None:
        # Whitespace splitting never yields "", but TF's adds one after a short maxsplit split.
        pieces = tf.ragged.boolean_mask(pieces, tf.strings.length(pieces) > 0)
    # The innermost row lengths, one per input string in row-major order.
    counts = tf.reshape(pieces.nested_row_lengths()[-1], tf.shape(x))
    return [pieces.to_tensor(default_value=""), tf.cast(counts, tf.int64)]


@ops.register("RegexFullMatch", since=20)
def regex_full_match_v20(node: ir.Node, ctx: ExportContext) -> Outputs:
    return [ctx.tf.strings.regex_full_match(ctx.input(0), _text(ctx.attr("pattern")))]


@ops.register("StringNormalizer", since=10)
def string_normalizer_v10(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x = ctx.input(0)
    action = _text(ctx.attr("case_change_action", "NONE"))
    sensitive = bool(ctx.attr("is_case_sensitive", 0))
    stopwords = [_text(w) for w in (ctx.attr("stopwords", None) or [])]
    result = x
    if stopwords:
        compared = x if sensitive else tf.strings.lower(x, encoding="utf-8")
        words = stopwords if sensitive else [w.lower() for w in stopwords]
        listed = tf.reduce_any(tf.equal(compared[..., None], tf.constant(words)), axis=-1)
        # Input is [C] or [1, C]: the kept words along the last axis.
        keep = tf.reshape(~listed, [-1])
        result = tf.boolean_mask(tf.reshape(x, [-1]), keep)
        result = tf.cond(
            tf.size(result) > 0, lambda: result, lambda: tf.constant([""], dtype=tf.string)
        )
        if x.shape.rank == 2:
            result = result[None, :]
    if action == "LOWER":
        result = tf.strings.lower(result, encoding="utf-8")
    elif action == "UPPER":
        result = tf.strings.upper(result, encoding="utf-8")
    return [result]


def _label_encoder_table(ctx: ExportContext) -> tuple[np.ndarray, np.ndarray, Any]:
    """Keys, values and default of a LabelEncoder, from whichever attributes it sets."""
    keys: Any = None
    for name in ("keys_tensor", "keys_strings", "keys_int64s", "keys_floats"):
        found = ctx.attr(name, None)
        if found is not None:
            keys = found
            break
    values: Any = None
    default: Any = None
    for name, default_name, fallback in (
        ("values_tensor", "default_tensor", None),
        ("values_strings", "default_string", "_Unused"),
        ("values_int64s", "default_int64", -1),
        ("values_floats", "default_float", -0.0),
    ):
        found = ctx.attr(name, None)
        if found is not None:
            values = found
            default = ctx.attr(default_name, fallback)
            break
    if keys is None or values is None:
        raise ctx.error("LabelEncoder needs one keys_* and one values_* attribute")
    keys_array = np.asarray([_text(k) for k in keys] if _is_text(keys) else keys).reshape(-1)
    values_array = np.asarray([_text(v) for v in values] if _is_text(values) else values).reshape(
        -1
    )
    if default is None:
        default = "_Unused" if values_array.dtype.kind in "US" else -1
    default = np.asarray(default).reshape(-1)[0]
    if isinstance(default, bytes):
        default = default.decode()
    return keys_array, values_array, default


def _is_text(items: Any) -> bool:
    flat = np.asarray(items, dtype=object).reshape(-1)
    return bool(flat.size) and isinstance(flat[0], str | bytes)


@ops.register("LabelEncoder", since=2, domain="ai.onnx.ml")
def label_encoder_v2(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x = ctx.input(0)
    keys, values, default = _label_encoder_table(ctx)
    if keys.dtype.kind in "US":
        key_tensor = tf.constant(keys.astype(object).astype(bytes), tf.string)
    else:
        key_tensor = tf.cast(tf.constant(keys), x.dtype)
    output = ctx.output_dtype(0)
    value_tensor = (
        tf.constant(values.astype(str).astype(object).astype(bytes), tf.string)
        if output == tf.string
        else tf.cast(tf.constant(values), output)
    )
    matches = tf.equal(x[..., None], key_tensor)
    if x.dtype.is_floating:
        # NaN keys match any NaN input.
        matches |= tf.math.is_nan(x)[..., None] & tf.math.is_nan(key_tensor)
    # The last of repeated keys wins: search the keys from the end.
    last = (
        tf.shape(key_tensor)[0]
        - 1
        - tf.argmax(tf.reverse(tf.cast(matches, tf.int32), [-1]), -1, output_type=tf.int32)
    )
    found = tf.gather(value_tensor, tf.cast(last, tf.int32))
    fallback = tf.constant(default if output != tf.string else _text(default).encode(), output)
    return [tf.where(tf.reduce_any(matches, axis=-1), found, fallback)]


def _pool_ngrams(ctx: ExportContext) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """TfIdfVectorizer's pool by n-gram size: the n-grams [K, n] and their output columns."""
    pool_strings = ctx.attr("pool_strings", None)
    pool = (
        np.asarray([_text(s) for s in pool_strings], dtype=object)
        if pool_strings
        else np.asarray(ctx.ints("pool_int64s", []), dtype=np.int64)
    )
    starts = ctx.ints("ngram_counts")
    columns = ctx.ints("ngram_indexes")
    low, high = int(ctx.attr("min_gram_length")), int(ctx.attr("max_gram_length"))
    grams: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    gram_id = 0
    for position, start in enumerate(starts):
        size = position + 1
        end = starts[position + 1] if position + 1 < len(starts) else len(pool)
        count = (end - start) // size
        if low <= size <= high and count:
            items = pool[start : start + count * size].reshape(count, size)
            grams[size] = (items, np.asarray(columns[gram_id : gram_id + count], np.int64))
        gram_id += count
    return grams


@ops.register("TfIdfVectorizer", since=9)
def tf_idf_vectorizer_v9(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x = ctx.input(0)
    one_row = x.shape.rank == 1
    rows = x[None, :] if one_row else x
    width = max(ctx.ints("ngram_indexes")) + 1
    max_skip = int(ctx.attr("max_skip_count", 0))
    counts = tf.zeros(tf.stack([tf.shape(rows)[0], width]), tf.float32)
    length = tf.shape(rows)[1]
    for size, (items, columns) in _pool_ngrams(ctx).items():
        pool = tf.constant(items.astype(bytes) if items.dtype == object else items)
        if pool.dtype != rows.dtype:
            pool = tf.cast(pool, rows.dtype)
        # Unigrams are counted once; longer n-grams once per skip distance.
        for distance in range(1, 2 if size == 1 else max_skip + 2):
            # Window starts that fit (none in a row shorter than the span: a negative stop
            # would count from the end).
            fits = tf.maximum(length - (size - 1) * distance, 0)
            windows = tf.stack(
                [rows[:, j * distance : fits + j * distance] for j in range(size)],
                axis=-1,
            )  # [B, starts, size]
            hits = tf.reduce_all(tf.equal(windows[:, :, None, :], pool[None, None]), axis=-1)
            per_gram = tf.reduce_sum(tf.cast(hits, tf.float32), axis=1)  # [B, K]
            placed = tf.one_hot(columns, width, dtype=tf.float32)  # [K, width]
            counts += tf.matmul(per_gram, placed)
    mode = _text(ctx.attr("mode"))
    weights = ctx.attr("weights", None)
    weight = tf.constant(np.asarray(weights, np.float32)) if weights else None
    if mode == "IDF":
        present = tf.cast(counts > 0, tf.float32)
        result = present * weight if weight is not None else present
    elif mode == "TFIDF" and weight is not None:
        result = counts * weight
    else:
        result = counts
    return [result[0] if one_row else result]
