"""tf2onnx handlers for TensorFlow ops that current Keras 3 layers emit and tf2onnx 1.17 lacks.

They are registered with tf2onnx's own handler registry (``tf2onnx.handler.tf_op``), the way its
built-in handlers are, once per process by ``register_handlers``. A handler rewrites the TF node in
place into ONNX nodes; tf2onnx then treats it as converted.

- ``Erfc``: Keras 3's exact ``gelu`` (``approximate=False``) computes ``0.5 * x * erfc(-x / sqrt 2)``;
  ``erfc(x) = 1 - erf(x)`` with ONNX's ``Erf`` (opset 9).
- ``BroadcastArgs``: the broadcast shape of two 1-D shape vectors, which ``tf.broadcast_to`` /
  ``tf.broadcast_dynamic_shape`` on run-time shapes (and Keras layers built on them) leave behind.
  Built exactly from shape arithmetic (opset 9), never by materialising a tensor of that shape.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np


class _Erfc:
    @classmethod
    def version_9(cls, ctx: Any, node: Any, **kwargs: Any) -> None:
        from tf2onnx import utils

        onnx_dtype = ctx.get_dtype(node.input[0])
        one = ctx.make_const(
            utils.make_name(f"{node.name}/one"),
            np.array(1, dtype=utils.map_onnx_to_numpy_type(onnx_dtype)),
        )
        node.type = "Erf"
        # 1 - erf(x) takes the node's place on its output: its consumers read the Sub.
        ctx.insert_new_node_on_output(
            "Sub",
            node.output[0],
            name=utils.make_name(f"{node.name}/one_minus"),
            inputs=[one.output[0], node.output[0]],
        )


class _BroadcastArgs:
    @classmethod
    def version_9(cls, ctx: Any, node: Any, **kwargs: Any) -> None:
        from onnx import helper
        from tf2onnx import utils

        def make(op_type: str, inputs: list[str], label: str, **attr: Any) -> str:
            made = ctx.make_node(
                op_type, inputs, attr=attr, name=utils.make_name(f"{node.name}/{label}")
            )
            return str(made.output[0])

        onnx_dtype = ctx.get_dtype(node.input[0])
        one = ctx.make_const(
            utils.make_name(f"{node.name}/one"),
            np.array(1, dtype=utils.map_onnx_to_numpy_type(onnx_dtype)),
        ).output[0]
        lengths = [make("Shape", [shape], "length") for shape in node.input[:2]]
        # max(n0, n1) by Where: integer Max needs opset 12, Greater and Where take int64 at 9.
        common = make("Where", [make("Greater", lengths, "longer"), *lengths], "common")
        padded = []
        for shape, length in zip(node.input[:2], lengths, strict=True):
            # Broadcasting aligns shapes at the right: the shorter one gets leading 1s.
            ones = make(
                "ConstantOfShape",
                [make("Sub", [common, length], "missing")],
                "ones",
                value=helper.make_tensor("value", onnx_dtype, [1], [1]),
            )
            padded.append(make("Concat", [ones, shape], "padded", axis=0))
        # Where a dim of the first is 1 the other's wins (1, n or 0); elsewhere the first's (the
        # other is equal or 1 in a valid broadcast; TF leaves invalid ones undefined too).
        first_is_one = make("Equal", [padded[0], one], "first_is_one")
        outputs, shapes, dtypes = node.output, node.output_shapes, node.output_dtypes
        ctx.remove_node(node.name)
        ctx.make_node(
            "Where",
            [first_is_one, padded[1], padded[0]],
            outputs=outputs,
            name=node.name,
            shapes=shapes,
            dtypes=dtypes,
        )


#: TF op type -> the handler class this module teaches tf2onnx.
OWN_HANDLERS: dict[str, type] = {"Erfc": _Erfc, "BroadcastArgs": _BroadcastArgs}


@functools.cache
def register_handlers() -> None:
    """Adds our handlers to tf2onnx's registry (idempotent; tf2onnx's own ones are kept)."""
    from tf2onnx.handler import tf_op

    opsets = tf_op.get_opsets().get("", [])
    for op_type, handler in OWN_HANDLERS.items():
        if any(op_type in by_name for by_name in opsets):
            continue  # a tf2onnx release that converts it itself wins
        tf_op(op_type)(handler)
