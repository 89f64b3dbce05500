"""ONNX LSTM/GRU/RNN run by torch's own recurrent kernels (``torch.lstm``, ``torch.gru``,
``torch.rnn_tanh``, ``torch.rnn_relu``), for the nodes those kernels compute exactly.

Eagerly the whole sequence goes to the fused kernel. Under ``torch.export`` the kernel's fake
implementation unrolls the sequence and fixes its length, so there each direction is a ``scan``
(a higher-order op kept in the program with a symbolic length) whose body is the same kernel on
one time step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

#: Where each of torch's gates sits among ONNX's: LSTM is iofc in ONNX and ifgo (g = c) in
#: torch; GRU is zrh in ONNX and rzn (n = h) in torch.
TORCH_GATES_IN_ONNX = {"lstm": (0, 2, 3, 1), "gru": (1, 0, 2), "rnn_tanh": (0,), "rnn_relu": (0,)}

_KERNELS: dict[str, Callable[..., Any]] = {
    "lstm": torch.lstm,
    "gru": torch.gru,
    "rnn_tanh": torch.rnn_tanh,
    "rnn_relu": torch.rnn_relu,
}


def _torch_gate_order(stacked: torch.Tensor, kind: str, hidden: int) -> torch.Tensor:
    """``stacked`` (gates along dim 0, ONNX order) with its gates in torch's order."""
    order = TORCH_GATES_IN_ONNX[kind]
    if len(order) == 1:
        return stacked
    return torch.cat([stacked[g * hidden : (g + 1) * hidden] for g in order])


def _direction_params(
    kind: str, w: torch.Tensor, r: torch.Tensor, b: torch.Tensor | None, hidden: int
) -> list[torch.Tensor]:
    """torch's per-direction weights ``[w_ih, w_hh, (b_ih, b_hh)]`` from ONNX's W, R, B rows."""
    params = [_torch_gate_order(w, kind, hidden), _torch_gate_order(r, kind, hidden)]
    if b is not None:
        input_bias, recurrent_bias = b.chunk(2)
        params += [
            _torch_gate_order(input_bias, kind, hidden),
            _torch_gate_order(recurrent_bias, kind, hidden),
        ]
    return params


def _call_kernel(
    kind: str,
    x: torch.Tensor,
    state: tuple[torch.Tensor, ...],
    params: list[torch.Tensor],
    has_biases: bool,
    bidirectional: bool,
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """One layer of torch's kernel over seq-major ``x``: (y, final state)."""
    if kind == "lstm":
        y, h, c = torch.lstm(x, state, params, has_biases, 1, 0.0, False, bidirectional, False)
        return y, (h, c)
    y, h = _KERNELS[kind](x, state[0], params, has_biases, 1, 0.0, False, bidirectional, False)
    return y, (h,)


def _scan_direction(
    kind: str,
    x: torch.Tensor,
    state: tuple[torch.Tensor, ...],
    params: list[torch.Tensor],
    has_biases: bool,
    reverse: bool,
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """One direction as a ``scan`` of one-step kernel calls: ``[seq, batch, hidden]``, state."""
    from torch._higher_order_ops.scan import scan

    # scan rejects closed-over tensors that alias each other (B's halves are views of one row).
    params = [p.clone() for p in params]

    def step(
        carried: tuple[torch.Tensor, ...], x_t: torch.Tensor
    ) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        y, new_state = _call_kernel(kind, x_t.unsqueeze(0), carried, params, has_biases, False)
        # scan rejects outputs that alias the carried values; y[0] is h's storage.
        return new_state, y[0].clone()

    # The carried state must match the kernel's output layout (an expanded h0 has stride 0).
    initial = tuple(s.contiguous() for s in state)
    final, ys = scan(step, initial, x, dim=0, reverse=reverse)
    return ys, tuple(final)


def fused_rnn(
    kind: str,
    x: torch.Tensor,
    w: torch.Tensor,
    r: torch.Tensor,
    b: torch.Tensor | None,
    h0: torch.Tensor | None,
    c0: torch.Tensor | None,
    hidden: int,
    reverse: bool,
    layout: int,
) -> tuple[torch.Tensor, ...]:
    """ONNX's (Y, Y_h[, Y_c]) of an LSTM/GRU/RNN node without sequence_lens, peepholes or clip.

    ``kind`` is ``lstm``, ``gru`` (``linear_before_reset=1``), ``rnn_tanh`` or ``rnn_relu``;
    ``reverse`` runs a single direction backwards; ``layout`` 1 means batch-major X, Y and states.
    """
    if layout == 1:
        x = x.transpose(0, 1)
        h0 = h0.transpose(0, 1) if h0 is not None else None
        c0 = c0.transpose(0, 1) if c0 is not None else None
    directions, batch = w.shape[0], x.shape[1]
    zeros = x.new_zeros((directions, batch, hidden))
    states: list[torch.Tensor] = [h0 if h0 is not None else zeros]
    if kind == "lstm":
        states.append(c0 if c0 is not None else zeros)
    params = [
        _direction_params(kind, w[d], r[d], b[d] if b is not None else None, hidden)
        for d in range(directions)
    ]
    has_biases = b is not None
    if torch.compiler.is_exporting():
        backwards = [reverse] if directions == 1 else [False, True]
        runs = [
            _scan_direction(
                kind, x, tuple(s[d : d + 1] for s in states), params[d], has_biases, backwards[d]
            )
            for d in range(directions)
        ]
        y = torch.stack([ys for ys, _ in runs], dim=1)
        finals = [torch.cat([state[k] for _, state in runs]) for k in range(len(states))]
    elif x.shape[0] == 0:  # the kernels reject empty sequences; ONNX keeps the initial state
        y = x.new_zeros((0, directions, batch, hidden))
        finals = states
    else:
        # torch has no backward-only direction: run forwards over the reversed sequence.
        sequence = x.flip(0) if reverse else x
        flat = [p for direction in params for p in direction]
        out, final = _call_kernel(kind, sequence, tuple(states), flat, has_biases, directions == 2)
        y = out.unflatten(2, (directions, hidden)).transpose(1, 2)  # [seq, dirs, batch, hidden]
        y = y.flip(0) if reverse else y
        finals = list(final)
    if layout == 1:
        y = y.permute(2, 0, 1, 3)
        finals = [s.transpose(0, 1) for s in finals]
    return (y, *finals)
