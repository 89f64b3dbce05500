"""ONNX -> PyTorch benchmark: conversion time vs onnx2torch, inference latency, peak memory.

Run: ``.venv/bin/python benchmarks/pytorch_backend.py`` (``--help`` for sizes). One run measures,
side by side on the same ``.onnx`` file and the same inputs:

1. the time to convert ONNX -> ``torch.nn.Module`` with unframe (``load_onnx`` + ``to_torch``) and
   with onnx2torch (``onnx2torch.convert``), alternating, best of ``--repeats``; the ratio;
2. inference latency of the converted module vs the original module vs onnxruntime (median of
   ``--runs``), the same thread count for all;
3. peak memory of the conversion (RSS high-water mark above the RSS before converting, each in a
   fresh subprocess) vs the size of the weights.

The model is a GPT-style decoder stack built with random weights (~100M parameters by default),
exported once with the unframe PyTorch frontend. onnx2torch is optional and only measured: install
it with ``.venv/bin/pip install --no-deps onnx2torch`` (never with its dependencies: torchvision
would pull a CUDA torch). It imports torchvision at import time for its NMS/RoIAlign converters; where
torchvision is absent the benchmark says so and imports it with a stub standing in for torchvision
(this model has no NMS/RoIAlign, so the stub is never called).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from memory_peaks import MemoryPeaks

GOALS = {"convert_ratio": 1.0, "latency_ratio": 1.10, "memory_ratio": 1.5}


# -- the model ---------------------------------------------------------------------------------


def build_model(layers: int, width: int, vocab: int, context: int) -> Any:
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.heads = max(1, width // 64)
            self.ln1 = nn.LayerNorm(width)
            self.q = nn.Linear(width, width)
            self.k = nn.Linear(width, width)
            self.v = nn.Linear(width, width)
            self.proj = nn.Linear(width, width)
            self.ln2 = nn.LayerNorm(width)
            self.fc1 = nn.Linear(width, 4 * width)
            self.fc2 = nn.Linear(4 * width, width)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b, t, d = x.shape
            h = self.ln1(x)
            q, k, v = self.q(h), self.k(h), self.v(h)
            shape = (b, t, self.heads, d // self.heads)
            q, k, v = (z.reshape(shape).transpose(1, 2) for z in (q, k, v))
            scores = q @ k.transpose(-2, -1) / math.sqrt(d // self.heads)
            y = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(b, t, d)
            x = x + self.proj(y)
            return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))

    class Decoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tokens = nn.Embedding(vocab, width)
            self.positions = nn.Parameter(torch.randn(context, width) * 0.02)
            self.blocks = nn.Sequential(*(Block() for _ in range(layers)))
            self.ln = nn.LayerNorm(width)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            x = self.tokens(ids) + self.positions[: ids.shape[1]]
            return self.ln(self.blocks(x))

    torch.manual_seed(0)
    return Decoder().eval()


# -- helpers -----------------------------------------------------------------------------------


def _import_onnx2torch() -> tuple[Any | None, str]:
    try:
        import onnx2torch

        return onnx2torch, "onnx2torch imported"
    except ModuleNotFoundError as error:
        if error.name != "torchvision":
            return None, f"onnx2torch is not installed ({error})"
        reason = "onnx2torch fails to import: torchvision is not installed"
    except Exception as error:  # noqa: BLE001 - anything else is reported as is
        return None, f"onnx2torch fails to import: {type(error).__name__}: {error}"

    def _absent(*_: Any, **__: Any) -> Any:
        raise RuntimeError("torchvision stub: not installed")

    stub = types.ModuleType("torchvision")
    stub_ops = types.ModuleType("torchvision.ops")
    for name in ("nms", "box_convert", "roi_align"):
        setattr(stub_ops, name, _absent)
    stub.ops = stub_ops  # type: ignore[attr-defined]
    sys.modules.setdefault("torchvision", stub)
    sys.modules.setdefault("torchvision.ops", stub_ops)
    try:
        import onnx2torch
    except Exception as error:  # noqa: BLE001
        return None, f"{reason}; with a stub too: {type(error).__name__}: {error}"
    return onnx2torch, f"{reason}; measured with a torchvision stub (NMS/RoIAlign unused here)"


def _plain_reshapes(model: Any) -> int:
    """``allowzero=1`` -> 0 on Reshapes whose constant shape has no 0: the same semantics.

    The dynamo exporter writes ``allowzero=1``; onnx2torch refuses it outright, so both converters
    are given the equivalent plain form.
    """
    changed = 0
    for node in model.graph:
        allowzero = node.attributes.get("allowzero")
        if node.op_type != "Reshape" or allowzero is None or allowzero.as_int() != 1:
            continue
        shape = node.inputs[1].const_value if len(node.inputs) > 1 and node.inputs[1] else None
        if shape is not None and 0 not in shape.numpy().tolist():
            del node.attributes["allowzero"]
            changed += 1
    return changed


def _unframe_convert(path: Path) -> Any:
    from unframe.backends.pytorch import to_torch
    from unframe.shared_ir.io import load_onnx

    return to_torch(load_onnx(path))


def _onnx2torch_convert(path: Path) -> Any:
    onnx2torch, _ = _import_onnx2torch()
    assert onnx2torch is not None
    return onnx2torch.convert(str(path))


def _timed(function: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def _median_latencies(engines: dict[str, Callable[[], Any]], runs: int) -> dict[str, float]:
    """Median seconds per engine, the engines taking turns so that load drifts hit all alike."""
    for run in engines.values():
        run()  # warm-up: first-call allocations and lazy initialization
    times: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(runs):
        for name, run in engines.items():
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def _child_memory(kind: str, path: Path) -> None:
    """In a fresh process: imports first, then the conversion between memory readings."""
    import torch  # noqa: F401 - imported before measuring so it is not counted

    import unframe.backends.pytorch  # noqa: F401
    from unframe.shared_ir.io import load_onnx  # noqa: F401

    if kind == "onnx2torch":
        _import_onnx2torch()
    with MemoryPeaks() as peaks:
        module = _onnx2torch_convert(path) if kind == "onnx2torch" else _unframe_convert(path)
    print(json.dumps({**peaks.figures(), "ok": module is not None}))


def _measure_memory(kind: str, path: Path) -> dict[str, Any] | str:
    command = [sys.executable, __file__, "--child-memory", kind, "--onnx", str(path)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return f"failed: {last}"
    data: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return data


def _conversion_time(figures: dict[str, Any], path: Path, onnx2torch: Any, repeats: int) -> Any:
    """Best-of-``repeats`` conversion times, the converters alternating; onnx2torch or None."""
    times: dict[str, list[float]] = {"unframe": [], "onnx2torch": []}
    for _ in range(repeats):
        t, converted = _timed(lambda: _unframe_convert(path))
        times["unframe"].append(t)
        del converted
        if onnx2torch is not None:
            try:
                t, converted = _timed(lambda: _onnx2torch_convert(path))
            except Exception as error:  # noqa: BLE001 - reported, the run goes on
                figures["onnx2torch"] += f"; cannot convert: {type(error).__name__}: {error}"
                print(f"   onnx2torch cannot convert this model: {error}")
                onnx2torch = None
                continue
            times["onnx2torch"].append(t)
            del converted
    best = {name: min(values) for name, values in times.items() if values}
    figures["convert_seconds"] = best
    print(f"\n1. ONNX -> PyTorch conversion (best of {repeats})")
    print(f"   unframe     {best['unframe']:8.2f} s")
    if "onnx2torch" in best:
        ratio = best["unframe"] / best["onnx2torch"]
        figures["convert_ratio"] = ratio
        print(f"   onnx2torch  {best['onnx2torch']:8.2f} s")
        print(f"   ratio unframe/onnx2torch {ratio:.2f} (goal < {GOALS['convert_ratio']})")
    return onnx2torch


def _memory(
    figures: dict[str, Any], path: Path, external: Path, with_onnx2torch: bool, weight_bytes: int
) -> None:
    """Peak RSS of each conversion in a fresh process, against the weights' size."""
    print("\n3. peak memory of the conversion above the RSS before it, vs the weights' size")
    print(f"   {'':24s} {'RSS (VmHWM)':>18s}   {'anonymous (RssAnon)':>18s}")
    memory: dict[str, Any] = {}
    kinds = [("unframe", path), ("unframe, external data", external)]
    if with_onnx2torch:
        kinds.append(("onnx2torch", path))
    for label, source in kinds:
        kind = "onnx2torch" if label == "onnx2torch" else "unframe"
        result = _measure_memory(kind, source)
        if isinstance(result, str):
            memory[label] = result
            print(f"   {label:24s} {result}")
            continue
        extra = (result["peak_kib"] - result["before_kib"]) * 1024
        anon = (result["anon_peak_kib"] - result["anon_before_kib"]) * 1024
        memory[label] = {
            "peak_mib": extra / 2**20,
            "ratio": extra / weight_bytes,
            "anon_peak_mib": anon / 2**20,
            "anon_ratio": anon / weight_bytes,
        }
        print(
            f"   {label:24s} {extra / 2**20:6.0f} MiB {extra / weight_bytes:5.2f}x"
            f"   {anon / 2**20:6.0f} MiB {anon / weight_bytes:5.2f}x"
        )
    figures["memory"] = memory
    print(f"   goal <= {GOALS['memory_ratio']}x the weights")


def _latency(
    figures: dict[str, Any], original: Any, ids: Any, path: Path, onnx2torch: Any, args: Any
) -> None:
    import onnxruntime as ort
    import torch

    ours = _unframe_convert(path)
    theirs = onnx2torch.convert(str(path)) if onnx2torch is not None else None
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feeds = {session.get_inputs()[0].name: ids.numpy()}

    def first(result: Any) -> Any:
        return result[0] if isinstance(result, tuple | list) else result

    with torch.inference_mode():
        expected = original(ids).numpy()
        engines: dict[str, Callable[[], Any]] = {
            "original": lambda: original(ids),
            "unframe": lambda: ours(ids),
            "onnxruntime": lambda: session.run(None, feeds),
        }
        errors = {
            "unframe": float(np.abs(first(ours(ids)).numpy() - expected).max()),
            "onnxruntime": float(np.abs(session.run(None, feeds)[0] - expected).max()),
        }
        if theirs is not None:
            engines["onnx2torch"] = lambda: theirs(ids)
            errors["onnx2torch"] = float(np.abs(first(theirs(ids)).numpy() - expected).max())
        latency = _median_latencies(engines, args.runs)
    figures["latency_ms"] = {k: v * 1e3 for k, v in latency.items()}
    figures["max_abs_error"] = errors
    print(f"\n2. inference latency, batch 1 x {args.seq} tokens, median of {args.runs}")
    for name, value in latency.items():
        ratio = value / latency["original"]
        error = f"  max |diff| {errors[name]:.1e}" if name in errors else ""
        print(f"   {name:12s} {value * 1e3:8.1f} ms  {ratio:5.2f}x original{error}")
    figures["latency_ratio"] = latency["unframe"] / latency["original"]
    print(
        f"   unframe / original {figures['latency_ratio']:.2f} "
        f"(goal <= {GOALS['latency_ratio']}); unframe / onnxruntime "
        f"{latency['unframe'] / latency['onnxruntime']:.2f}"
    )


# -- the run -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--vocab", type=int, default=16000)
    parser.add_argument("--seq", type=int, default=32, help="tokens per inference")
    parser.add_argument("--repeats", type=int, default=3, help="conversions per converter")
    parser.add_argument("--runs", type=int, default=10, help="timed inferences per engine")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads for all engines")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--sections", default="1,2,3", help="which measurements: 1 time, 2 latency, 3 memory"
    )
    parser.add_argument("--child-memory", help=argparse.SUPPRESS)
    parser.add_argument("--onnx", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_memory:
        _child_memory(args.child_memory, args.onnx)
        return

    import onnx_ir as ir
    import onnxruntime as ort
    import torch

    from unframe.frontends.pytorch import from_torch

    torch.set_num_threads(args.threads)
    figures: dict[str, Any] = {"threads": args.threads, "cpu_count": os.cpu_count()}
    onnx2torch, note = _import_onnx2torch()
    figures["onnx2torch"] = note
    print(f"torch {torch.__version__}, onnxruntime {ort.__version__}; {note}")

    original = build_model(args.layers, args.width, args.vocab, max(args.seq, 64))
    n_params = sum(p.numel() for p in original.parameters())
    weight_bytes = sum(p.numel() * p.element_size() for p in original.parameters())
    figures.update(parameters=n_params, weight_mib=weight_bytes / 2**20)
    print(f"model: {n_params / 1e6:.1f}M parameters, {weight_bytes / 2**20:.0f} MiB of weights")
    ids = torch.randint(0, args.vocab, (1, args.seq), generator=torch.Generator().manual_seed(0))

    with tempfile.TemporaryDirectory(prefix="unframe-bench-") as tmp:
        path = Path(tmp) / "decoder.onnx"
        seconds, model = _timed(lambda: from_torch(original, (ids,)))
        _plain_reshapes(model)
        ir.save(model, path)
        external = Path(tmp) / "decoder_external.onnx"
        ir.save(model, external, external_data="decoder_external.onnx.data")
        del model
        figures["export_seconds"] = seconds
        print(f"exported PyTorch -> ONNX with the unframe frontend in {seconds:.1f} s")

        sections = {int(part) for part in args.sections.split(",") if part.strip()}
        if 1 in sections:
            onnx2torch = _conversion_time(figures, path, onnx2torch, args.repeats)
        if 2 in sections:
            _latency(figures, original, ids, path, onnx2torch, args)
        if 3 in sections:
            _memory(figures, path, external, onnx2torch is not None, weight_bytes)

    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
