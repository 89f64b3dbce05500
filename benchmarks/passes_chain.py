"""Time of the common pass pipeline on long chains of nodes: it must grow linearly.

Builds, in memory, a chain ``x -> Add(c) -> Relu -> Add(c) -> Relu ...`` of N nodes (one [1, 8]
float input, one shared initializer) and times, per size, the steps every conversion runs
between a frontend and a backend: ``passes.optimize`` (onnxscript's optimizer, onnx_ir's cleanup
and our folding pass) and ``passes.infer_shapes`` (which the PyTorch and Caffe2 backends run).

    .venv/bin/python benchmarks/passes_chain.py [--sizes 5000,10000,20000,200000]
"""

from __future__ import annotations

import argparse
import functools
import gc
import time

import numpy as np
import onnx_ir as ir

from unframe.shared_ir import passes


def chain(length: int) -> ir.Model:
    """A model of ``length`` nodes, alternately Add (with one shared initializer) and Relu."""
    x = ir.Value(name="x", type=ir.TensorType(ir.DataType.FLOAT), shape=ir.Shape([1, 8]))
    c = ir.Value(
        name="c",
        type=ir.TensorType(ir.DataType.FLOAT),
        shape=ir.Shape([1, 8]),
        const_value=ir.tensor(np.ones((1, 8), np.float32), name="c"),
    )
    nodes = []
    current = x
    for index in range(length):
        if index % 2 == 0:
            node = ir.Node("", "Add", [current, c], name=f"add{index}")
        else:
            node = ir.Node("", "Relu", [current], name=f"relu{index}")
        node.outputs[0].name = f"v{index}"
        nodes.append(node)
        current = node.outputs[0]
    # A graph output declares its type and shape; the values between are left to inference.
    current.type, current.shape = ir.TensorType(ir.DataType.FLOAT), ir.Shape([1, 8])
    graph = ir.Graph(
        [x], [current], nodes=nodes, initializers=[c], opset_imports={"": 18}, name="chain"
    )
    return ir.Model(graph, ir_version=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000,10000,20000,200000")
    args = parser.parse_args()
    print(f"{'nodes':>8} {'optimize s':>11} {'infer_shapes s':>15} {'total s':>8} {'us/node':>8}")
    for size in (int(s) for s in args.sizes.split(",")):
        model = chain(size)
        gc.collect()
        started = time.perf_counter()
        model = passes.optimize(
            model, reload=functools.partial(chain, size)
        )  # as a conversion does
        optimized = time.perf_counter()
        passes.infer_shapes(model)
        finished = time.perf_counter()
        if len(model.graph) != size:
            raise SystemExit(f"the pipeline changed the chain: {len(model.graph)} nodes of {size}")
        total = finished - started
        print(
            f"{size:>8} {optimized - started:>11.2f} {finished - optimized:>15.2f} "
            f"{total:>8.2f} {total / size * 1e6:>8.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
