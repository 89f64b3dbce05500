"""ONNX op converters for the PyTorch backend, one module per op family.

Every module in this package is imported on first use of the backend (by
``shared_ir.op_registry.load_op_modules``), so adding a family is adding a file: ``ops/math.py`` with its converters needs no edit anywhere else.

Writing a converter
-------------------
::

    from unframe.backends.pytorch.ops._common import BuildContext, Outputs, fx, ir, ops, torch

    @ops.register("LeakyRelu", since=16)
    def leaky_relu_v16(node: ir.Node, ctx: BuildContext) -> Outputs:
        alpha = ctx.attr_float("alpha")  # absent -> the ONNX schema's default
        return [ctx.call(torch.nn.functional.leaky_relu, ctx.input(0), alpha)]

Rules:

* Register at the schema's ``since_version`` (``onnx.defs.get_schema(op, opset).since_version``);
  the registry rounds a model's opset down to it. When semantics change at a later version,
  register a second function (``squeeze_v11`` / ``squeeze_v13``); never test ``ctx.opset`` inside.
  Use ``until=`` when a converter is right only up to a version and nothing covers the newer one.
  Registering the same (op, since) twice raises at import.
* Name the function ``<op>_v<since>`` in snake case; keep shared logic in private helpers
  (``ops/_common.py`` holds the cross-family ones).
* Return one entry per ONNX output, in order: an ``fx.Node`` or None for an optional output that is
  not produced (``ctx.output_used(i)`` tells whether anyone reads it).
* Semantics are ONNX's (onnxruntime / ``onnx.reference``), including integer behaviour (``Div`` on
  ints truncates, ``Mod`` with ``fmod=0`` follows the divisor's sign), broadcasting and dtypes.

``BuildContext`` (``backends/pytorch/context.py``) speaks the words of ``ConverterContext``
(``shared_ir/conversion.py``) that every backend's context shares, plus torch-specific helpers:

* ``ctx.input(i)`` fx node of input i (required); ``ctx.optional_input(i)`` -> None if absent;
  ``ctx.has_input(i)``; ``ctx.num_inputs``; ``ctx.inputs()``.
* ``ctx.constant_input(i)`` reads input i's value: ``np.ndarray`` when input i is an initializer, a ``Constant``, or the
  result of a node whose inputs were all small constants (the driver evaluates those at build
  time), else None. Prefer it for axes/shapes/pads, falling back to a run-time path.
* ``ctx.int_list(i)`` -> a list usable as a torch size/axes argument: python ints when constant,
  symbolic sizes when it came from ``Shape`` (so dynamic axes stay dynamic in ``torch.export``),
  else an fx node that calls ``.tolist()`` at run time.
* ``ctx.shape_elements(i)`` / ``ctx.set_shape_elements(node, elems)``: the element-wise view of
  1-D int shape tensors; shape-manipulating ops (Gather, Concat, Slice, ...) propagate it.
* ``ctx.call(fn, *args, **kwargs)`` emits ``fn(...)``; ``ctx.method("name", x, ...)`` emits
  ``x.name(...)``; ``ctx.getitem(x, i)``; ``ctx.unpack(x, n)``; ``ctx.size(x, d)``;
  ``ctx.make_constant(array, hint="const", dtype=None)`` creates a constant buffer.
* ``raise ctx.error("why")``: a refusal located at the node (exit 3); the driver collects every
  refusal and reports them at once. Any other exception is a bug, reported as an internal error.
* ``ctx.attr(name, default=<schema default>)`` and typed ``attr_int/attr_float/attr_str/attr_ints/
  attr_floats``; tensors come back as numpy, graphs as ``ir.Graph``.
* ``ctx.input_dtype(i)``, ``ctx.output_dtype(i)`` (torch dtypes from the IR's types, None if
  unknown), ``ctx.input_shape(i)`` (ints; None for symbolic dims), ``ctx.input_rank(i)``.
* ``ctx.subgraph(attr_name)`` builds a graph attribute as a submodule (``Subgraph``: ``module`` fx
  node, ``captured`` outer values to pass after the subgraph's own inputs).
* ``ctx.opset`` and ``ctx.node`` are there for messages, not for version checks.

Functions called from the graph must be module-level (``torch.fx`` references them by name); put
run-time helpers in the op module (private, ``_name``) or in ``backends/pytorch/fx_functions.py``.

Families and who holds them (a duplicate registration raises at import, so check here first):

* backend owner: ``tensor.py`` (Constant, ConstantOfShape, Identity, Shape, Size, Reshape,
  Flatten, Expand, Transpose, Squeeze, Unsqueeze, Concat, Gather, Slice, Cast, CastLike),
  ``pad_split.py`` (Pad, Split), ``arith.py`` (Add, Sub, Mul, Div, MatMul, Gemm), ``nn.py``
  (conv, pooling, LpPool, GridSample, Softmax family), ``activations.py``, ``norm.py``
  (normalizations, Dropout), ``attention.py`` (Attention, RotaryEmbedding, FlexAttention),
  ``sequence_mixers.py`` (LinearAttention, CausalConvWithState, SwiGLU), ``resize.py``
  (Resize, Upsample), ``rnn.py`` (LSTM, GRU, RNN), ``loss.py``, ``control_flow.py`` (If, Loop,
  Scan), ``quant.py`` (Quantize/DequantizeLinear, DynamicQuantizeLinear, QLinear*,
  *Integer), ``sequence.py`` (Sequence*, Optional*, SplitToSequence, ConcatFromSequence),
  ``vision.py`` (NonMaxSuppression, RoiAlign, Col2Im, AffineGrid, DeformConv, MaxUnpool),
  ``training.py`` (Adam, Adagrad, Momentum).
* elsewhere (``math.py``, ``reduce.py``, ``logical.py``, ``indexing.py``, ...): elementwise
  math, reductions, logical/comparison/bitwise, Where, Range, Tile, Trilu, Gather/Scatter*,
  Einsum, TopK, signal ops (DFT, STFT, windows, MelWeightMatrix), Bernoulli and random ops.
"""

from __future__ import annotations

from unframe.shared_ir.op_registry import load_op_modules

load_op_modules(__name__)
