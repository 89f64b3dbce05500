"""TFLite backend: Keras -> ONNX -> .tflite latency on LiteRT, against TFLiteConverter's own file.

Keras ``MobileNetV2(weights=None, alpha=0.35)`` (random weights, BatchNorm statistics too, as in
``tensorflow_layout.py``) -> ONNX (the unframe TensorFlow frontend) -> ``.tflite`` (the unframe
tflite backend, ``--layout onnx`` and ``--layout nhwc``), against a ``.tflite`` that
``tf.lite.TFLiteConverter`` makes straight from the Keras model (through ``model.export``'s
SavedModel, the path Keras 3 documents). Every file runs on LiteRT's interpreter
(``ai_edge_litert``, XNNPACK, the same thread count), side by side in one run, the files taking
turns in a shuffled order; only ``invoke()`` is timed (median and fastest run). Also each file's
size, op count and TRANSPOSE ops, and its outputs' largest difference to Keras. Goal: unframe's
file within 1.2x of the converter's.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tensorflow_layout import build_mobilenet  # noqa: E402


def _interpreter(data: bytes, threads: int) -> Any:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=data, num_threads=threads)
    interpreter.allocate_tensors()
    return interpreter


def _op_counts(data: bytes) -> collections.Counter[str]:
    from unframe.backends.tflite.native import schema

    model = schema().ModelT.InitFromPackedBuf(bytearray(data), 0)
    names = {v: k for k, v in vars(schema().BuiltinOperator).items() if not k.startswith("_")}
    counts: collections.Counter[str] = collections.Counter()
    for op in model.subgraphs[0].operators:
        code = model.operatorCodes[op.opcodeIndex]
        counts[names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "?")] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alpha", type=float, default=0.35)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="LiteRT threads for every file")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    import numpy as np
    import onnx_ir as ir

    from unframe.backends.tflite import to_tflite
    from unframe.backends.tflite.native import quiet_stderr
    from unframe.frontends.tensorflow import from_keras
    from unframe.frontends.tensorflow.quiet import import_tensorflow, quiet_tensorflow

    tf = import_tensorflow()
    model = build_mobilenet(args.alpha, args.size)
    x = np.random.default_rng(1).standard_normal((1, args.size, args.size, 3)).astype(np.float32)
    reference = model(x, training=False).numpy()
    files: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp, quiet_tensorflow(), quiet_stderr():
        model.export(str(Path(tmp) / "keras_export"), verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(Path(tmp) / "keras_export"))
        started = time.perf_counter()
        files["TFLiteConverter from Keras"] = converter.convert()
        keras_seconds = time.perf_counter() - started
    onnx_model = ir.to_proto(from_keras(model))
    seconds = {"TFLiteConverter from Keras": keras_seconds}
    transposes_added = {}
    for layout in ("onnx", "nhwc"):
        name = f"unframe Keras -> ONNX -> tflite --layout {layout}"
        started = time.perf_counter()
        export = to_tflite(ir.from_proto(onnx_model), layout=layout)
        seconds[name] = time.perf_counter() - started
        files[name] = export.data
        transposes_added[name] = export.transposes

    interpreters = {}
    figures: dict[str, Any] = {"alpha": args.alpha, "size": args.size, "threads": args.threads}
    with quiet_stderr():
        for name, data in files.items():
            interpreter = _interpreter(data, args.threads)
            (detail,) = interpreter.get_input_details()
            interpreter.set_tensor(detail["index"], x)
            interpreter.invoke()
            (out,) = interpreter.get_output_details()
            got = interpreter.get_tensor(out["index"])
            counts = _op_counts(data)
            figures[name] = {
                "bytes": len(data),
                "ops": sum(counts.values()),
                "transpose_ops": counts.get("TRANSPOSE", 0),
                "max_abs_diff_to_keras": float(
                    np.abs(got.reshape(reference.shape) - reference).max()
                ),
                "convert_seconds": seconds[name],
                "transposes_added": transposes_added.get(name),
                "op_counts": dict(counts.most_common()),
            }
            interpreters[name] = interpreter
        for interpreter in interpreters.values():  # warm up
            interpreter.invoke()
        times: dict[str, list[float]] = {name: [] for name in interpreters}
        order = list(interpreters)
        shuffler = random.Random(0)
        for _ in range(args.runs):
            shuffler.shuffle(order)  # no file always first (or last) after another's run
            for name in order:
                interpreter = interpreters[name]
                started = time.perf_counter()
                interpreter.invoke()
                times[name].append(time.perf_counter() - started)
    baseline = statistics.median(times["TFLiteConverter from Keras"])
    fastest_baseline = min(times["TFLiteConverter from Keras"])
    print(
        f"MobileNetV2 alpha {args.alpha}, {args.size}x{args.size}, batch 1, LiteRT "
        f"{args.threads} thread(s), median of {args.runs} (files taking turns)"
    )
    for name, values in times.items():
        median = statistics.median(values)
        data = figures[name]
        fastest = min(values)
        data.update(
            latency_ms=median * 1e3,
            ratio=median / baseline,
            fastest_ms=fastest * 1e3,
            fastest_ratio=fastest / fastest_baseline,
        )
        print(
            f"  {name:45s} {median * 1e3:7.2f} ms  {median / baseline:5.2f}x  fastest "
            f"{fastest * 1e3:6.2f} ms {fastest / fastest_baseline:5.2f}x  "
            f"{data['ops']} ops, {data['transpose_ops']} TRANSPOSE, {data['bytes'] / 1e6:.2f} MB, "
            f"max abs diff to Keras {data['max_abs_diff_to_keras']:.1e}, "
            f"converted in {data['convert_seconds']:.1f} s"
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
