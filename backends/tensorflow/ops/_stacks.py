"""Per-step outputs of a ``tf.while_loop`` gathered into one tensor, stacked along a new axis 0.

A SavedModel gathers them in a ``tf.TensorArray``. A TFLite export cannot: TFLite's builtins hold
no TensorList (TFLiteConverter lowers ``tf.TensorListReserve`` only at static shapes), so there
the loop carries a tensor that each step grows by its slice. LiteRT's WHILE runs a loop value
that grows, but not one that starts empty: it starts as one zero slice, dropped at the end. A
slice's dims may be known only at run time (a dynamic batch): the stack is then dynamic too.

Used by Scan and Loop (``control_flow``) and by RNN, GRU and LSTM (``recurrent``): start one
stack per output (``stack_start``), pass it through the loop with ``stack_invariant`` as its
shape invariant, write each step's slice (``stack_write``), read it after (``stack_finish``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from unframe.backends.tensorflow.ops._common import ExportContext, for_tflite

__all__ = ["stack_finish", "stack_invariant", "stack_start", "stack_write"]


def stack_start(ctx: ExportContext, dtype: Any, slice_shape: Sequence[Any] | None) -> Any:
    """An empty stack of ``dtype`` slices of ``slice_shape``: each dim an int, a scalar int32
    tensor (a dim known at run time) or None (unknown: a SavedModel's TensorArray only; a TFLite
    export needs every dim, which its callers check), or no shape at all (TensorArray only)."""
    tf = ctx.tf
    if not for_tflite(ctx):
        element_shape = None
        if slice_shape is not None:
            element_shape = [dim if isinstance(dim, int) else None for dim in slice_shape]
        return tf.TensorArray(
            dtype, size=0, dynamic_size=True, element_shape=tf.TensorShape(element_shape)
        )
    if slice_shape is None or any(dim is None for dim in slice_shape):
        raise ValueError(f"a TFLite stack needs every dim of its slice, not {slice_shape}")
    if all(isinstance(dim, int) for dim in slice_shape):
        return tf.zeros([1, *slice_shape], dtype)
    return tf.zeros(tf.stack([1, *slice_shape]), dtype)


def stack_write(ctx: ExportContext, stack: Any, step: Any, output: Any) -> Any:
    """``stack`` with ``output`` as its slice ``step`` (the next one)."""
    tf = ctx.tf
    if not for_tflite(ctx):
        return stack.write(tf.cast(step, tf.int32), output)
    shape = stack.shape.as_list()[1:]
    if None in shape:
        piece = tf.expand_dims(output, 0)
    else:
        # A slice whose traced shape is less known than the stack's still keeps the stack's.
        piece = tf.reshape(output, [1, *shape])
    return tf.concat([stack, piece], 0)


def stack_invariant(ctx: ExportContext, stack: Any) -> Any:
    """The shape invariant of ``stack`` as a loop value (None: a TensorArray needs none)."""
    if not for_tflite(ctx):
        return None
    return ctx.tf.TensorShape([None, *stack.shape.as_list()[1:]])


def stack_finish(ctx: ExportContext, stack: Any) -> Any:
    """The slices written, stacked along axis 0."""
    return stack[1:] if for_tflite(ctx) else stack.stack()
