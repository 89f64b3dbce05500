"""Running ONNX LSTM/GRU/RNN over a sequence: ``recur`` drives one direction's step function,
``fused_rnn`` hands the nodes torch's recurrent kernels compute exactly (``torch.lstm``,
``torch.gru``, ``torch.rnn_tanh``, ``torch.rnn_relu``) to those kernels.

A Python loop over time, and equally the kernels' fake implementations, would be unrolled by
``torch.export`` and fix the sequence length; under export every direction is therefore a
``scan`` (a higher-order op the program keeps, with a symbolic length) of one step, which for
``fused_rnn`` is the kernel on one time step. Eagerly ``fused_rnn`` gives the whole sequence to
the kernel and ``recur`` loops.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

State = tuple[torch.Tensor, ...]
#: ``step(weights, state, x_t) -> new state``; the new state's first tensor is the output h_t.
Step = Callable[[State, State, torch.Tensor], State]


def recur(
    step: Step,
    weights: State,
    state: State,
    xs: torch.Tensor,
    active: torch.Tensor | None,
    reverse: bool,
) -> tuple[torch.Tensor, State]:
    """One direction over seq-major ``xs``: the outputs ``[seq, batch, hidden]`` and final state.

    ``active`` ([seq, batch, 1], from sequence_lens) freezes the state and zeroes the output past
    each sequence's end. Under ``torch.export`` a ``scan``, else a Python loop.
    """
    exporting = torch.compiler.is_exporting()
    if exporting:
        # scan rejects closed-over tensors that alias each other (views of one W, R or B).
        weights = tuple(w.clone() for w in weights)

    def advance(carried: State, inputs: State) -> tuple[State, torch.Tensor]:
        new = step(weights, carried, inputs[0])
        if len(inputs) == 1:
            return new, new[0].clone()  # scan rejects an output aliasing the carried state
        on = inputs[1]
        kept = tuple(torch.where(on, n, old) for n, old in zip(new, carried, strict=True))
        return kept, torch.where(on, new[0], torch.zeros_like(new[0]))

    sequences = (xs,) if active is None else (xs, active)
    if exporting:
        from torch._higher_order_ops.scan import scan

        # Fresh contiguous copies: the carried state must match the step's output layout (an
        # expanded h0 has stride 0), and a state that shares memory with another (h0 and c0 one
        # tensor, as exporters write zeros) comes out of the scan wrong.
        initial = tuple(s.clone(memory_format=torch.contiguous_format) for s in state)
        final, ys = scan(advance, initial, sequences, reverse=reverse)
        return ys, tuple(final)
    steps = xs.shape[0]
    outputs: list[torch.Tensor] = []
    for t in range(steps - 1, -1, -1) if reverse else range(steps):
        state, output = advance(state, tuple(x[t] for x in sequences))
        outputs.append(output)
    if not steps:
        return xs.new_zeros((0, *state[0].shape)), state
    return torch.stack(outputs[::-1] if reverse else outputs), state


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
    state: State,
    params: list[torch.Tensor],
    has_biases: bool,
    bidirectional: bool,
) -> tuple[torch.Tensor, State]:
    """One layer of torch's kernel over seq-major ``x``: (y, final state)."""
    if kind == "lstm":
        y, h, c = torch.lstm(x, state, params, has_biases, 1, 0.0, False, bidirectional, False)
        return y, (h, c)
    y, h = _KERNELS[kind](x, state[0], params, has_biases, 1, 0.0, False, bidirectional, False)
    return y, (h,)


def _kernel_step(
    kind: str, has_biases: bool, params: State, state: State, x_t: torch.Tensor
) -> State:
    """One time step of torch's kernel, on ``[batch, ...]`` state and input."""
    batched = tuple(s.unsqueeze(0) for s in state)
    _, new = _call_kernel(kind, x_t.unsqueeze(0), batched, list(params), has_biases, False)
    return tuple(s[0] for s in new)


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
        step = functools.partial(_kernel_step, kind, has_biases)
        runs = [
            recur(step, tuple(params[d]), tuple(s[d] for s in states), x, None, backwards[d])
            for d in range(directions)
        ]
        y = torch.stack([ys for ys, _ in runs], dim=1)
        finals = [torch.stack([state[k] for _, state in runs]) for k in range(len(states))]
    elif x.shape[0] == 0:  # the kernels reject it; the initial state, as the loop path gives
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
