"""tf2onnx handlers for TensorFlow ops that current Keras 3 layers emit and tf2onnx 1.17 lacks.

They are registered with tf2onnx's own handler registry (``tf2onnx.handler.tf_op``), the way its
built-in handlers are, once per process by ``register_handlers``. A handler rewrites the TF node in
place into ONNX nodes; tf2onnx then treats it as converted.

- ``Erfc``: Keras 3's exact ``gelu`` (``approximate=False``) computes ``0.5 * x * erfc(-x / sqrt 2)``;
  ``erfc(x) = 1 - erf(x)`` with ONNX's ``Erf`` (opset 9).
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


#: TF op type -> the handler class this module teaches tf2onnx.
OWN_HANDLERS: dict[str, type] = {"Erfc": _Erfc}


@functools.cache
def register_handlers() -> None:
    """Adds our handlers to tf2onnx's registry (idempotent; tf2onnx's own ones are kept)."""
    from tf2onnx.handler import tf_op

    opsets = tf_op.get_opsets().get("", [])
    for op_type, handler in OWN_HANDLERS.items():
        if any(op_type in by_name for by_name in opsets):
            continue  # a tf2onnx release that converts it itself wins
        tf_op(op_type)(handler)
