"""A reference executor for Caffe2 NetDefs on numpy (Caffe2 itself is installable nowhere).

Run a model with :func:`run_net` (``predict_net.external_output`` in order), or drive a
:class:`Workspace` op by op.

Adding an op: write a function that takes an :class:`OpContext` and returns its outputs in order,
and register it with the :func:`caffe2_op` decorator, in the module of its family under ``ops/``
(every module there is loaded by ``pkgutil``; ``CAFFE2_OPS`` is an ``OpRegistry`` of domain
``caffe2``)::

    import numpy as np

    from unframe.backends.caffe2.native.executor.registry import OpContext, caffe2_op

    @caffe2_op("Softsign")
    def softsign(ctx: OpContext) -> list[np.ndarray]:
        x = ctx.input(0)
        return [x / (1 + np.abs(x))]

``OpContext`` reads arguments with Caffe2's one argument reader (``native/arguments.py``) through
``arg_int``, ``arg_float``, ``arg_str``, ``arg_ints`` and ``order``,
and makes errors that name the op (``ctx.error``, ``ctx.unsupported``). Registering an op type
twice raises. Semantics must be Caffe2's own, written from its operator documentation.
"""

from __future__ import annotations

from unframe.backends.caffe2.native.executor.registry import CAFFE2_OPS, OpContext, caffe2_op
from unframe.backends.caffe2.native.executor.workspace import (
    Workspace,
    load_ops,
    run_net,
    unsupported_ops,
)

__all__ = [
    "CAFFE2_OPS",
    "OpContext",
    "Workspace",
    "caffe2_op",
    "load_ops",
    "run_net",
    "unsupported_ops",
]
