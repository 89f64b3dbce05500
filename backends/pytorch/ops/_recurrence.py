"""Running ONNX LSTM/GRU/RNN over a sequence: ``recur`` drives one direction's step function,
``fused_rnn`` hands the nodes torch's recurrent kernels compute exactly (``torch.lstm``,
``torch.gru``, ``torch.rnn_tanh``, ``torch.rnn_relu``) to those kernels.

A Python loop over time, and equally the kernels' fake implementations, would be unrolled by
``torch.export`` and fix the sequence length; under export every direction is therefore a
``scan`` (a higher-order op the program keeps, with a symbolic length) of one step, which for
``fused_rnn`` is the kernel's cell equations written with elementwise ops (``aten.gru`` or
``aten.lstm`` inside a scan of symbolic length is a ``.pt2`` that ``torch.onnx`` cannot
decompose). Eagerly ``fused_rnn`` gives the whole sequence to the kernel and ``recur`` loops.
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
        """The new state and this step's output, ``[1, batch, hidden]``."""
        new = step(weights, carried, inputs[0])
        if len(inputs) == 1:
            # Another value than the state: scan rejects an output aliasing the carried state,
            # and torch.onnx drops a plain clone, leaving a Scan body whose state and scan
            # outputs are one value, which onnxruntime runs wrong (the .pt2 did not read back).
            return new, new[0].unsqueeze(0).clone()
        on = inputs[1]
        kept = tuple(torch.where(on, n, old) for n, old in zip(new, carried, strict=True))
        return kept, torch.where(on, new[0], torch.zeros_like(new[0])).unsqueeze(0)

    sequences = (xs,) if active is None else (xs, active)
    if exporting:
        from torch._higher_order_ops.scan import scan

        # Fresh contiguous copies: the carried state must match the step's output layout (an
        # expanded h0 has stride 0), and a state that shares memory with another (h0 and c0 one
        # tensor, as exporters write zeros) comes out of the scan wrong.
        initial = tuple(s.clone(memory_format=torch.contiguous_format) for s in state)
        final, ys = scan(advance, initial, sequences, reverse=reverse)
        return ys.squeeze(1), tuple(final)
    steps = xs.shape[0]
    outputs: list[torch.Tensor] = []
    for t in range(steps - 1, -1, -1) if reverse else range(steps):
        state, output = advance(state, tuple(x[t] for x in sequences))
        outputs.append(output)
    if not steps:
        return xs.new_zeros((0, *state[0].shape)), state
    return torch.cat(outputs[::-1] if reverse else outputs), state


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


def _torch_cell(kind: str, weights: State, state: State, xw: torch.Tensor) -> State:
    """One time step of torch's cell equations (gates in torch's order) on ``[batch, ...]``.

    ``xw`` is the step's input already projected with ``w_ih`` (and ``b_ih``); ``weights`` is
    ``(w_hh[, b_hh])``. Written with elementwise ops because ``torch.onnx`` cannot decompose
    ``aten.gru``/``aten.lstm`` inside a scan of symbolic length (the step's output came out a
    SymInt), so the ``.pt2`` would not read back.
    """
    hw = torch.matmul(state[0], weights[0].t())
    if len(weights) == 2:
        hw = hw + weights[1]
    if kind == "lstm":
        i_g, f_g, c_g, o_g = (xw + hw).chunk(4, dim=1)
        c_new = torch.sigmoid(f_g) * state[1] + torch.sigmoid(i_g) * torch.tanh(c_g)
        return torch.sigmoid(o_g) * torch.tanh(c_new), c_new
    if kind == "gru":
        x_r, x_z, x_n = xw.chunk(3, dim=1)
        h_r, h_z, h_n = hw.chunk(3, dim=1)
        reset, update = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        candidate = torch.tanh(x_n + reset * h_n)
        return (candidate + update * (state[0] - candidate),)
    activation = torch.tanh if kind == "rnn_tanh" else torch.relu
    return (activation(xw + hw),)


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
        step = functools.partial(_torch_cell, kind)
        runs = []
        for d in range(directions):
            projected = torch.matmul(x, params[d][0].t())  # all steps at once
            if has_biases:
                projected = projected + params[d][2]
            recurrent = (params[d][1], params[d][3]) if has_biases else (params[d][1],)
            state = tuple(s[d] for s in states)
            runs.append(recur(step, recurrent, state, projected, None, backwards[d]))
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
