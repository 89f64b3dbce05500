"""``validate --locate`` on a ResNet-50: what finding the first diverging node costs.

The model is benchmarks/resnet.py's ResNet-50 (plain torch.nn, random weights), exported to ONNX
once at 1x3x224x224. Two planted faults, each with a known answer:

- **by names**: one weight deep inside the converted model is edited (a Caffe2 ``init_net.pb``
  blob; a ``.pt2``'s ``state_dict`` entry), and ``validate --locate`` must name the Conv that reads
  it. Target: one extra run of each side (``runs == 1``), every shared value exposed.
- **by bisection**: the Caffe2 exporter is made to write one ReLU deep in the net as Abs (a
  converter bug), the converted model's blob and op names are stripped, and ``--locate`` must name
  that ReLU. Target: at most ``2 * log2(nodes)`` prefix conversions.

Each line prints the answer, the counts and the seconds, next to a plain ``validate``'s.

    .venv/bin/python benchmarks/locate.py [--targets caffe2,pytorch] [--work /tmp/unframe-locate]
                                          [--json figures.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shutil
import sys
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parents[1]
FACTORY = f"py:{ROOT / 'benchmarks' / 'resnet.py'}:make_model"


def _timed(function: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def _deep_conv(model: onnx.ModelProto) -> tuple[str, str]:
    """The Conv two thirds down the graph and its weight's name."""
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    node = convs[2 * len(convs) // 3]
    return node.name, node.input[1]


def _deep_relu(model: onnx.ModelProto) -> str:
    relus = [n for n in model.graph.node if n.op_type == "Relu"]
    return relus[2 * len(relus) // 3].name


def _tamper_init_net(path: Path, blob: str) -> None:
    from unframe.backends.caffe2.native import read_model, write_model

    model = read_model(path)
    (fill,) = [op for op in model.init_net.op if list(op.output) == [blob]]
    (values,) = [arg for arg in fill.arg if arg.name == "values"]
    values.floats[0] += 1.0
    shutil.rmtree(path)
    write_model(model, path)


def _strip_names(path: Path) -> None:
    from unframe.backends.caffe2.native import read_model, write_model

    model = read_model(path)
    net = model.predict_net
    kept = set(net.external_input) | set(net.external_output)
    renamed: dict[str, str] = {}
    for op in net.op:
        op.ClearField("name")
        for field in (op.input, op.output):
            for index, name in enumerate(field):
                if name not in kept:
                    field[index] = renamed.setdefault(name, f"b{len(renamed)}")
    shutil.rmtree(path)
    write_model(model, path)


def _tamper_pt2(path: Path, weight: str) -> None:
    with zipfile.ZipFile(path) as archive:
        root = archive.namelist()[0].split("/")[0]
        names = json.loads(archive.read(f"{root}/extra/unframe.json"))
        (key,) = [k for k, v in names["initializers"].items() if v == weight]
        config = json.loads(archive.read(f"{root}/data/weights/model_weights_config.json"))
        member = f"{root}/data/weights/{config['config'][key]['path_name']}"
        entries = [(info, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w") as archive:
        for info, data in entries:
            if info.filename == member:
                array = np.frombuffer(data, np.float32).copy()
                array[0] += 1.0
                data = array.tobytes()
            archive.writestr(info, data)


@contextmanager
def _relu_written_as_abs(node_name: str) -> Iterator[None]:
    """The planted converter bug: the Caffe2 exporter writes the ReLU ``node_name`` as Abs."""
    from unframe.backends.caffe2.driver import export_registry

    registry = export_registry()
    key = ("", "Relu")
    original = registry._entries[key]

    def wrap(function: Any) -> Any:
        def relu_or_abs(node: Any, ctx: Any) -> None:
            if node.name == node_name:
                ctx.emit("Abs", [ctx.input(0)], [ctx.output(node)])
                return
            function(node, ctx)

        return relu_or_abs

    registry._entries[key] = [dataclasses.replace(e, function=wrap(e.function)) for e in original]
    try:
        yield
    finally:
        registry._entries[key] = original


def _line(figures: dict[str, Any]) -> str:
    return "  ".join(f"{k}={v}" for k, v in figures.items())


def _by_names(work: Path, source: Path, target: str, node: str, weight: str) -> dict[str, Any]:
    from unframe.converters import api

    converted = work / ("resnet50.caffe2" if target == "caffe2" else "resnet50.pt2")
    _, convert_seconds = _timed(api.convert, source, converted, force=True)
    (_tamper_init_net if target == "caffe2" else _tamper_pt2)(converted, weight)
    plain, validate_seconds = _timed(api.validate, source, converted)
    result, locate_seconds = _timed(api.validate, source, converted, locate=True)
    located = result.locate
    assert not plain.ok and located is not None
    return {
        "method": "names",
        "target": target,
        "planted": node,
        "located": located.node,
        "correct": located.node == node,
        "compared_values": located.compared,
        "extra_runs_each_side": located.runs,
        "convert_s": round(convert_seconds, 2),
        "validate_s": round(validate_seconds, 2),
        "validate_locate_s": round(locate_seconds, 2),
        "locate_s": round(located.seconds, 2),
    }


def _by_bisection(work: Path, source: Path, relu: str, nodes: int) -> dict[str, Any]:
    from unframe.converters import api

    converted = work / "resnet50-bug.caffe2"
    with _relu_written_as_abs(relu):
        api.convert(source, converted, force=True)
        _strip_names(converted)
        result, seconds = _timed(api.validate, source, converted, locate=True)
    located = result.locate
    assert located is not None
    return {
        "method": "bisection",
        "target": "caffe2",
        "planted": relu,
        "located": located.node,
        "correct": located.node == relu,
        "nodes": nodes,
        "conversions": located.conversions,
        "bound_2log2n": round(2 * math.log2(nodes), 1),
        "extra_runs_of_src": located.runs,
        "validate_locate_s": round(seconds, 2),
        "locate_s": round(located.seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default="caffe2,pytorch")
    parser.add_argument("--work", type=Path, default=Path("/tmp/unframe-locate"))
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()
    from unframe.converters import api

    args.work.mkdir(parents=True, exist_ok=True)
    source = args.work / "resnet50.onnx"
    if not source.exists():
        _, seconds = _timed(api.convert, FACTORY, source, inputs=["x=1,3,224,224"])
        print(f"exported ResNet-50 to ONNX in {seconds:.1f} s", file=sys.stderr)
    model = onnx.load(source)
    nodes = len(model.graph.node)
    parameters = sum(int(np.prod(i.dims)) for i in model.graph.initializer)
    print(f"ResNet-50: {nodes} nodes, {parameters / 1e6:.1f}M parameters")
    node, weight = _deep_conv(model)
    figures = []
    for target in args.targets.split(","):
        figures.append(_by_names(args.work, source, target, node, weight))
        print(_line(figures[-1]))
    if "caffe2" in args.targets.split(","):
        figures.append(_by_bisection(args.work, source, _deep_relu(model), nodes))
        print(_line(figures[-1]))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
