"""TensorFlow backend: latency and Transposes of Keras -> ONNX -> TF, and conversion peak memory.

1. **Latency and layout**: Keras ``MobileNetV2(weights=None)`` (random weights, BatchNorm
   statistics too) -> ONNX (the unframe TensorFlow frontend) -> SavedModel (the unframe backend,
   ``--layout onnx`` and ``--layout nhwc``), each SavedModel's ``serving_default`` against the
   original Keras model, side by side in one run, the engines taking turns: the Keras model called
   eagerly (``model(x, training=False)``), the Keras model as TensorFlow serves it (``model.export``,
   a SavedModel) and the converted SavedModels, all loaded with ``tf.saved_model.load``. Goal:
   the converted model within 1.2x of the exported Keras model. Also the Transposes the layout
   pass added (goal: 0 with ``nhwc``, at most one per 4-D input and output with ``onnx``) and the
   Transpose ops in each traced graph.
2. **Peak memory** of TF -> ONNX (a SavedModel through tf2onnx into the IR) and ONNX -> TF (an
   ``.onnx`` file into a SavedModel) on a ~100M-parameter Keras model (a stack of Dense layers),
   each in a fresh process above its RSS after the imports: the RSS high-water mark (``VmHWM``)
   and the sampled peak of anonymous memory (``RssAnon``), as multiples of the weight bytes.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from memory_peaks import MemoryPeaks, rss_kib


def _keras() -> Any:
    from unframe.frontends.tensorflow.quiet import import_tensorflow

    import_tensorflow()
    import keras

    return keras


def build_mobilenet(alpha: float, size: int) -> Any:
    import numpy as np

    keras = _keras()
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(
        input_shape=(size, size, 3), weights=None, alpha=alpha, classifier_activation=None
    )
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = (w.shape for w in layer.get_weights())
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma),
                    rng.normal(0.0, 0.1, beta),
                    rng.normal(0.0, 0.1, mean),
                    rng.uniform(0.5, 1.5, variance),
                ]
            )
    return model


def build_dense_stack(width: int, layers: int) -> Any:
    keras = _keras()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((width,), name="features")
    hidden = inputs
    for index in range(layers):
        hidden = keras.layers.Dense(width, activation="relu", name=f"dense_{index}")(hidden)
    return keras.Model(inputs, hidden)


def _median_latencies(engines: dict[str, Callable[[], Any]], runs: int) -> dict[str, float]:
    for call in engines.values():  # warm up: the first calls build kernels and caches
        call()
        call()
    times: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(runs):
        for name, call in engines.items():
            started = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def _nchw_variant(proto: Any) -> Any:
    """The Keras model's ONNX graph taking NCHW: its opening Transpose's output is the input."""
    import onnx_ir as ir

    model = ir.from_proto(proto)
    graph = model.graph
    image = graph.inputs[0]
    opening = next(user for user, _ in image.uses() if user.op_type == "Transpose")
    dims = list(image.shape or ())
    nchw = ir.Value(
        name=image.name, shape=ir.Shape([dims[0], dims[3], dims[1], dims[2]]), type=image.type
    )
    opening.outputs[0].replace_all_uses_with(nchw)
    graph.remove(opening, safe=True)
    graph.inputs.clear()
    graph.inputs.append(nchw)
    return ir.to_proto(model)


def _transpose_ops(function: Any) -> int:
    """Transpose ops the outputs depend on (an unused one is pruned before the graph runs)."""
    seen: set[Any] = set()
    stack = [tensor.op for tensor in function.outputs]
    while stack:
        op = stack.pop()
        if op in seen:
            continue
        seen.add(op)
        stack.extend(tensor.op for tensor in op.inputs)
        stack.extend(op.control_inputs)
    return sum(op.type == "Transpose" for op in seen)


def latency_and_layout(figures: dict[str, Any], args: argparse.Namespace, tmp: Path) -> None:
    import numpy as np
    import onnx_ir as ir

    from unframe.backends.tensorflow import save_saved_model
    from unframe.frontends.tensorflow import from_keras
    from unframe.frontends.tensorflow.quiet import import_tensorflow, quiet_tensorflow

    tf = import_tensorflow()
    model = build_mobilenet(args.alpha, args.size)
    params = model.count_params()
    print(
        f"MobileNetV2 alpha {args.alpha}, {args.size}x{args.size}: {params / 1e6:.2f}M parameters"
    )
    x = np.random.default_rng(1).standard_normal((args.batch, args.size, args.size, 3))
    x = x.astype(np.float32)
    with quiet_tensorflow():
        model.export(str(tmp / "keras_export"), verbose=False)
    started = time.perf_counter()
    onnx_model = ir.to_proto(from_keras(model))
    figures["keras_to_onnx_seconds"] = time.perf_counter() - started
    engines: dict[str, Callable[[], Any]] = {
        "keras eager": lambda: model(x, training=False),
    }
    exported = tf.saved_model.load(str(tmp / "keras_export"))
    serve = exported.signatures["serving_default"]
    engines["keras SavedModel"] = lambda: serve(tf.constant(x))
    reference = model(x, training=False).numpy()
    layouts: dict[str, Any] = {}
    # The ONNX graph as tf2onnx wrote it (NHWC input, its own Transpose to NCHW), and the same
    # graph taking NCHW (that Transpose cut off), as a PyTorch export of the model would.
    graphs = {"keras graph": (onnx_model, x), "NCHW graph": (_nchw_variant(onnx_model), None)}
    for graph_name, (proto, fed) in graphs.items():
        for layout in ("onnx", "nhwc"):
            name = f"unframe {graph_name} --layout {layout}"
            path = tmp / f"converted_{len(layouts)}"
            started = time.perf_counter()
            built = save_saved_model(ir.from_proto(proto), path, layout=layout)
            seconds = time.perf_counter() - started
            loaded = tf.saved_model.load(str(path))
            signature = loaded.signatures["serving_default"]
            key = next(iter(signature.structured_input_signature[1]))
            feed_array = x if fed is not None or built.nhwc_inputs else x.transpose(0, 3, 1, 2)
            feed = tf.constant(np.ascontiguousarray(feed_array))
            (got,) = (v.numpy() for v in signature(**{key: feed}).values())
            layouts[name] = {
                "onnx_to_tf_seconds": seconds,
                "transposes_added": built.transposes,
                "nhwc_inputs": built.nhwc_inputs,
                "nhwc_outputs": built.nhwc_outputs,
                "transpose_ops_run": _transpose_ops(built.function),
                "max_abs_diff": float(np.abs(got - reference).max()),
                "_loaded": loaded,  # alive while its signature is timed
            }
            engines[name] = lambda signature=signature, key=key, feed=feed: signature(**{key: feed})
    figures["keras_export_transpose_ops"] = _transpose_ops(serve)
    print(f"   the Keras export runs {figures['keras_export_transpose_ops']} Transpose op(s)")
    medians = _median_latencies(engines, args.runs)
    baseline = medians["keras SavedModel"]
    print(f"\n1. latency, batch {args.batch}, median of {args.runs} (engines taking turns)")
    for name, seconds in medians.items():
        print(f"   {name:40s} {seconds * 1e3:8.2f} ms   {seconds / baseline:5.2f}x")
    for name, data in layouts.items():
        data.pop("_loaded")
        print(
            f"   {name}: {data['transposes_added']} Transpose(s) added, "
            f"{data['transpose_ops_run']} Transpose op(s) run, NHWC inputs "
            f"{data['nhwc_inputs']}, max abs diff to Keras {data['max_abs_diff']:.2e}, "
            f"ONNX -> SavedModel {data['onnx_to_tf_seconds']:.1f} s"
        )
    figures.update(
        parameters=params,
        latency_ms={name: seconds * 1e3 for name, seconds in medians.items()},
        latency_ratio_to_keras_savedmodel={
            name: seconds / baseline for name, seconds in medians.items()
        },
        layouts=layouts,
    )


# -- 2. peak memory ---------------------------------------------------------------------------


def _child_memory(kind: str, source: Path, target: Path) -> None:
    """In a fresh process: the imports, then the RSS before, the conversion, the peaks."""
    import onnx_ir as ir  # noqa: F401 - imported before measuring so it is not counted
    import tf2onnx  # noqa: F401

    import unframe.backends.tensorflow  # noqa: F401
    import unframe.frontends.tensorflow  # noqa: F401
    from unframe.backends.tensorflow import save_saved_model
    from unframe.frontends.tensorflow import load_tensorflow
    from unframe.shared_ir.io import load_onnx, save_onnx
    from unframe.shared_ir.options import ConvertOptions

    in_ir_peak_kib = None
    with MemoryPeaks() as peaks:
        started = time.perf_counter()
        if kind == "tf_to_onnx":
            model = load_tensorflow(source, ConvertOptions())
            in_ir_peak_kib = rss_kib("VmHWM")
            save_onnx(model, target)
        else:
            save_saved_model(load_onnx(source), target)
        seconds = time.perf_counter() - started
    print(json.dumps({**peaks.figures(), "in_ir_peak_kib": in_ir_peak_kib, "seconds": seconds}))


def _measure_memory(kind: str, source: Path, target: Path) -> dict[str, Any] | str:
    command = [sys.executable, __file__, "--child-memory", kind, str(source), str(target)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if "Error" in line or "error" in line]
        return f"failed (exit {done.returncode}): {(lines or ['?'])[-1]}"
    data: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return data


def peak_memory(figures: dict[str, Any], args: argparse.Namespace, tmp: Path) -> None:
    from unframe.frontends.tensorflow.quiet import quiet_tensorflow

    model = build_dense_stack(args.width, args.layers)
    params = model.count_params()
    weight_bytes = params * 4
    saved = tmp / "dense_stack"
    with quiet_tensorflow():
        model.export(str(saved), verbose=False)
    del model
    gc.collect()
    print(
        f"\n2. peak memory above the RSS after imports; {args.layers} Dense {args.width}x"
        f"{args.width}: {params / 1e6:.1f}M parameters, {weight_bytes / 2**20:.0f} MiB of weights"
    )
    results: dict[str, Any] = {"parameters": params, "weight_mib": weight_bytes / 2**20}
    onnx_path = tmp / "dense_stack.onnx"
    for kind, source, target in (
        ("tf_to_onnx", saved, onnx_path),
        ("onnx_to_tf", onnx_path, tmp / "dense_stack_back"),
    ):
        data = _measure_memory(kind, source, target)
        if isinstance(data, str):
            print(f"   {kind}: {data}")
            results[kind] = data
            continue
        rss = (data["peak_kib"] - data["before_kib"]) * 1024
        anon = (data["anon_peak_kib"] - data["anon_before_kib"]) * 1024
        data.update(rss_ratio=rss / weight_bytes, anon_ratio=anon / weight_bytes)
        results[kind] = data
        in_ir = ""
        if data.get("in_ir_peak_kib"):
            in_ir_bytes = (data["in_ir_peak_kib"] - data["before_kib"]) * 1024
            data["in_ir_ratio"] = in_ir_bytes / weight_bytes
            in_ir = f"   (in the IR, before writing: {in_ir_bytes / weight_bytes:4.2f}x)"
        print(
            f"   {kind:10s} RSS (VmHWM) +{rss / 2**20:6.0f} MiB = {rss / weight_bytes:4.2f}x   "
            f"anonymous +{anon / 2**20:6.0f} MiB = {anon / weight_bytes:4.2f}x   "
            f"in {data['seconds']:.1f} s{in_ir}"
        )
    figures["memory"] = results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alpha", type=float, default=0.35, help="MobileNetV2 width multiplier")
    parser.add_argument("--size", type=int, default=224, help="image height and width")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--runs", type=int, default=30, help="timed calls per engine")
    parser.add_argument("--threads", type=int, default=0, help="TF intra-op threads (0: TF's)")
    parser.add_argument("--width", type=int, default=3072, help="Dense width (section 2)")
    parser.add_argument("--layers", type=int, default=10, help="Dense layers (section 2)")
    parser.add_argument("--sections", default="1,2", help="1 latency and layout, 2 memory")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--child-memory", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_memory:
        kind, source, target = args.child_memory
        _child_memory(kind, Path(source), Path(target))
        return

    from unframe.frontends.tensorflow.quiet import import_tensorflow

    tf = import_tensorflow()
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    import keras
    import tf2onnx

    figures: dict[str, Any] = {"cpu_count": os.cpu_count(), "threads": args.threads}
    print(
        f"tensorflow {tf.__version__}, keras {keras.__version__}, tf2onnx {tf2onnx.__version__}, "
        f"{os.cpu_count()} CPU(s)"
    )
    sections = {int(part) for part in args.sections.split(",") if part.strip()}
    with tempfile.TemporaryDirectory(prefix="unframe-bench-") as tmp:
        if 1 in sections:
            latency_and_layout(figures, args, Path(tmp))
        if 2 in sections:
            peak_memory(figures, args, Path(tmp))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":
    main()
