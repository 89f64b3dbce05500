"""Workarounds for state that torch keeps between ``torch.export`` calls in one process.

Dynamo traces the bodies of higher-order ops (``scan``, ``while_loop``, ``cond``) and caches what
it compiled per code object, with guards on the shapes it saw: the recurrence and Scan helpers
are the same functions for every model, so a later export could reuse a trace specialized to an
earlier model's sizes (a GRU's batch fixed at the earlier example's 2). :func:`fresh_export_state`
resets dynamo before each export.

The recurrent ops (``aten.lstm``, ``gru``, ``rnn_tanh``, ``rnn_relu``) have Python
implementations registered for ``CompositeImplicitAutograd`` that step through the sequence. The
first ``torch.export`` in a process keeps such an op whole; once an export has filled the op's
dispatch cache, later exports in the same process run the cached Python implementation instead,
which unrolls the recurrence and fixes the sequence length (torch 2.13: the second export of an
``nn.GRU`` with a dynamic sequence axis fails with "tracing inferred a static shape"). Emptying
those caches before each export makes every export behave like the first.
"""

from __future__ import annotations

import torch

_RECURRENT_OPS = ("lstm", "gru", "rnn_tanh", "rnn_relu")


def fresh_export_state() -> None:
    """Dynamo's caches and the recurrent ops' dispatch caches emptied, before an export."""
    torch._dynamo.reset()
    forget_recurrent_dispatch()


def forget_recurrent_dispatch() -> None:
    """Empties the dispatch caches of torch's recurrent ops (see the module's docstring)."""
    for name in _RECURRENT_OPS:
        packet = getattr(torch.ops.aten, name, None)
        if packet is None:
            continue
        for overload in packet.overloads():
            cache = getattr(getattr(packet, overload), "_dispatch_cache", None)
            if isinstance(cache, dict):
                cache.clear()
