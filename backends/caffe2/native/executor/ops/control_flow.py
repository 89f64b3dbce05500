"""Control-flow ops that run nets of their own: ``If`` and ``ONNXWhile``.

Semantics follow Caffe2's ``caffe2/operators/if_op.{h,cc}`` and ``onnx_while_op.{h,cc}``:

- ``If`` runs ``then_net`` (or ``else_net``, which may be absent) in the If's own workspace; the
  subnet writes whatever blobs it writes, the If's outputs among them.
- ``ONNXWhile`` runs ``body`` while the trip count (``has_trip_count``) and the condition
  (``has_cond``; the first iteration's from input 1, later ones from the body's first output)
  allow. The body runs in a scope forwarded to the op's workspace unless ``disable_scopes``;
  ``save_scopes`` gives each iteration a fresh scope. Before the first iteration the body's
  external_input blobs are set: the iteration number (an int64 scalar), the condition (a
  1-element tensor of input 1's type) and the N loop-carried values; after each iteration the
  body's external_output (condition, N loop-carried values, K scan outputs) feed the next one.
  The op's outputs are the final loop-carried values, then each scan output stacked along a new
  axis 0 (an empty int32 tensor of shape (0,) where the body never ran, as Caffe2 allocates it).
"""

from __future__ import annotations

import numpy as np

from unframe.backends.caffe2.native import caffe2_pb2
from unframe.backends.caffe2.native.executor.registry import OpContext
from unframe.backends.caffe2.native.executor.workspace import Workspace, subnet_op

#: Condition types ONNXWhile dispatches on (Caffe2's ``TensorTypes<int, bool, long>``).
_CONDITION_TYPES = (np.dtype(np.int32), np.dtype(np.bool_), np.dtype(np.int64))


@subnet_op("If")
def if_op(workspace: Workspace, ctx: OpContext) -> None:
    condition = ctx.input(0)
    if condition.size != 1:
        raise ctx.error(f"the condition must hold one value, it has shape {condition.shape}")
    then_net = _net_arg(ctx, "then_net", required=True)
    else_net = _net_arg(ctx, "else_net", required=False)
    chosen = then_net if bool(condition.reshape(-1)[0]) else else_net
    if chosen is not None:
        _run(workspace, chosen)


@subnet_op("ONNXWhile")
def onnx_while(workspace: Workspace, ctx: OpContext) -> None:
    body = _net_arg(ctx, "body", required=True)
    assert body is not None
    has_trip_count = bool(ctx.arg_int("has_trip_count", 0))
    has_cond = bool(ctx.arg_int("has_cond", 0))
    save_scopes = bool(ctx.arg_int("save_scopes", 0))
    disable_scopes = bool(ctx.arg_int("disable_scopes", 0))
    if disable_scopes and save_scopes:
        raise ctx.error("cannot save scopes when disable_scopes is set")
    num_carried = ctx.arg_int("num_loop_carried_deps", -1)
    if num_carried == -1:
        num_carried = ctx.num_inputs - 2
    if num_carried < 0 or ctx.num_inputs < 2 + num_carried:
        raise ctx.error(f"needs 2 + {num_carried} inputs, has {ctx.num_inputs}")
    if len(body.external_input) < 2 + num_carried:
        raise ctx.error(
            "the body's external_input must list the iteration number, the condition and "
            f"{num_carried} loop-carried value(s)"
        )
    num_scans = len(body.external_output) - num_carried - 1
    if num_scans < 0:
        raise ctx.error(
            f"the body must have 1 + {num_carried} + K external outputs, "
            f"it has {len(body.external_output)}"
        )
    max_trip_count = int(np.asarray(ctx.input(0)).reshape(-1)[0])
    first_condition = ctx.input(1)
    if first_condition.dtype not in _CONDITION_TYPES or first_condition.size < 1:
        raise ctx.error(
            f"the condition must be an int32, bool or int64 value, not {first_condition.dtype}"
        )
    condition_type = first_condition.dtype
    iteration_blob, condition_blob = body.external_input[0], body.external_input[1]
    carried_blobs = list(body.external_input[2 : 2 + num_carried])
    condition_out = body.external_output[0]
    carried_out = list(body.external_output[1 : 1 + num_carried])
    scan_out = list(body.external_output[1 + num_carried :])

    def new_scope() -> Workspace:
        return workspace if disable_scopes else Workspace(workspace.seed, parent=workspace)

    scope = new_scope()
    for blob, index in zip(carried_blobs, range(2, 2 + num_carried), strict=True):
        scope.feed(blob, ctx.input(index))
    scope.feed(iteration_blob, np.array(0, dtype=np.int64))
    scope.feed(condition_blob, np.array([bool(first_condition.reshape(-1)[0])], condition_type))
    scans: list[list[np.ndarray]] = [[] for _ in scan_out]
    iteration = 0
    condition = bool(first_condition.reshape(-1)[0])
    while (not has_trip_count or iteration < max_trip_count) and (not has_cond or condition):
        _run(scope, body)
        finished = scope
        condition = bool(np.asarray(finished.fetch(condition_out)).reshape(-1)[0])
        if save_scopes:
            scope = new_scope()
        for blob, source in zip(carried_blobs, carried_out, strict=True):
            scope.feed(blob, finished.fetch(source))
        for stack, source in zip(scans, scan_out, strict=True):
            value = np.array(finished.fetch(source))
            if stack and value.shape != stack[0].shape:
                raise ctx.error(
                    f"scan output {source!r} changed shape across iterations: "
                    f"{stack[0].shape} then {value.shape}"
                )
            stack.append(value)
        iteration += 1
        scope.feed(iteration_blob, np.array(iteration, dtype=np.int64))
        scope.feed(condition_blob, np.array([condition], dtype=condition_type))
    results = [scope.fetch(blob) for blob in carried_blobs]
    results += [np.stack(stack) if stack else np.zeros((0,), np.int32) for stack in scans]
    for name, value in zip(ctx.op.output, results, strict=False):
        workspace.feed(name, value)


def _net_arg(ctx: OpContext, name: str, *, required: bool) -> caffe2_pb2.NetDef | None:
    arg = ctx.arg(name)
    if arg is None or not arg.HasField("n"):
        if required:
            raise ctx.error(f"needs a NetDef argument {name!r}")
        return None
    return arg.n


def _run(workspace: Workspace, net: caffe2_pb2.NetDef) -> None:
    for index, op in enumerate(net.op):
        workspace.run_op(op, index)
