"""Caffe2 NetDef import and export of a ResNet-50-sized net against the physical floor.

The floor is writing and reading the same bytes of weights as raw files. Each phase runs in its own
process so that its peak memory (max RSS above the process's baseline after imports) is its own.
Goal (issue): import and export within 2x of the floor.

``import`` reads the init net as unframe writes it (packed floats); ``import_unpacked`` reads the same
net as Caffe2 itself writes it (protobuf's unpacked ``repeated float``, 5 bytes a float). Both then
sum every weight, as the floor sums the bytes it read: weights that the importer hands out as views
of the mapped file are read then. The converter modules are imported before the clock starts (their
one-time cost is the ``modules`` line).

    python benchmarks/caffe2_netdef.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


class PeakSampler:
    """Samples this process's resident memory every millisecond; peak above the start."""

    def __init__(self) -> None:
        self.start = _rss_mib()
        self.peak = self.start
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._done.wait(0.001):
            self.peak = max(self.peak, _rss_mib())

    def stop(self) -> float:
        self._done.set()
        self._thread.join()
        return max(self.peak, _rss_mib()) - self.start


def phase(name: str, workdir: Path) -> dict[str, float]:
    import numpy as np

    import unframe
    from unframe.converters.framework import ConvertOptions
    from unframe.converters.registry import get_framework

    caffe2 = get_framework("caffe2")
    onnx_path = workdir / "resnet50.onnx"
    net_dir = workdir / "resnet50.caffe2"
    floor_file = workdir / "weights.bin"
    if name != "modules":
        _import_converters()
    if name == "modules":
        sampler = PeakSampler()
        started = time.perf_counter()
        _import_converters()
    elif name == "floor_write":
        model = unframe.load(onnx_path)
        arrays = [v.const_value.numpy() for v in model.graph.initializers.values()]
        sampler = PeakSampler()
        started = time.perf_counter()
        with open(floor_file, "wb") as handle:
            for array in arrays:  # straight from the array's memory, as the exporter writes
                handle.write(memoryview(np.ascontiguousarray(array)).cast("B"))
    elif name == "floor_read":
        sampler = PeakSampler()
        started = time.perf_counter()
        data = floor_file.read_bytes()
        np.frombuffer(data, np.float32).sum()  # touch every byte, as a parser must
    elif name == "export":
        model = unframe.load(onnx_path)
        for value in model.graph.initializers.values():
            value.const_value.numpy()  # the ONNX load is not what we time
        sampler = PeakSampler()
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            out = Path(tmp) / "net.caffe2"
            out.mkdir()
            caffe2.save(model, out, ConvertOptions())
    elif name in ("import", "import_unpacked"):
        source = net_dir if name == "import" else workdir / "resnet50.unpacked.caffe2"
        sampler = PeakSampler()
        started = time.perf_counter()
        model = caffe2.load(source, ConvertOptions())
        for value in model.graph.initializers.values():
            # Touch every byte, as the floor does: packed weights are views of the mapped file,
            # read only when used.
            value.const_value.numpy().sum()
    else:
        raise SystemExit(f"unknown phase {name}")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_mib": sampler.stop()}


def _import_converters() -> None:
    from unframe.backends.caffe2.driver import export_registry
    from unframe.frontends.caffe2.driver import import_registry

    export_registry()
    import_registry()


def prepare(workdir: Path) -> int:
    import torch

    sys.path.insert(0, str(HERE))
    from resnet import make_model

    import unframe

    module = make_model()
    model = unframe.from_torch(module, (torch.randn(1, 3, 224, 224),))
    unframe.save(model, workdir / "resnet50.onnx")
    unframe.convert(workdir / "resnet50.onnx", workdir / "resnet50.caffe2", target="caffe2")
    # The same net as Caffe2 writes it: protobuf's own (unpacked) serialization.
    from unframe.backends.caffe2.native import caffe2_pb2

    unpacked = workdir / "resnet50.unpacked.caffe2"
    unpacked.mkdir()
    for path in (workdir / "resnet50.caffe2").iterdir():
        data = path.read_bytes()
        if path.suffix == ".pb":
            data = caffe2_pb2.NetDef.FromString(data).SerializeToString()
        (unpacked / path.name).write_bytes(data)
    return sum(v.const_value.nbytes for v in model.graph.initializers.values())


def run_phase(name: str, workdir: Path) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, __file__, "--phase", name, "--workdir", str(workdir)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--phase")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase(args.phase, args.workdir)))
        return
    with tempfile.TemporaryDirectory(prefix="unframe-bench-") as tmp:
        workdir = Path(tmp)
        weight_bytes = prepare(workdir)
        print(f"ResNet-50: {weight_bytes / 2**20:.1f} MiB of weights")
        results: dict[str, list[dict[str, float]]] = {}
        phases = ("floor_write", "export", "floor_read", "import", "import_unpacked", "modules")
        for _ in range(args.repeat):
            for name in phases:
                results.setdefault(name, []).append(run_phase(name, workdir))
        median = {
            name: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
            for name, runs in results.items()
        }
        for name, runs in results.items():
            times = sorted(r["seconds"] for r in runs)
            print(
                f"{name:16s} min {times[0]:.3f} s  median {median[name]['seconds']:.3f} s  "
                f"peak +{median[name]['peak_mib']:.0f} MiB"
            )
        pairs = (
            ("export", "floor_write"),
            ("import", "floor_read"),
            ("import_unpacked", "floor_read"),
        )
        for step, floor in pairs:
            ratio = median[step]["seconds"] / median[floor]["seconds"]
            best = min(r["seconds"] for r in results[step]) / min(
                r["seconds"] for r in results[floor]
            )
            memory = median[step]["peak_mib"] / (weight_bytes / 2**20)
            print(
                f"{step}: {ratio:.2f}x the floor's time (median; {best:.2f}x min to min); "
                f"peak memory {memory:.2f}x the weights"
            )


if __name__ == "__main__":
    main()
