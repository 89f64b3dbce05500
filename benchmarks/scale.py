"""Scale: start-up tax, weight writing against the disk floor, and a LLaMA-style decoder both ways.

Three sections, each printing its figures (issue #15); every child conversion runs in its own
process, so its peak RSS (``ru_maxrss``) is its own:

``startup``  ``unframe --help`` and a small ONNX -> ONNX / ONNX -> Caffe2 conversion (a 10M-parameter
             MLP, weights inside the ``.onnx``): wall and CPU seconds, against ``python -c pass``, the
             floor (reading the file plus ``np.save`` of its weights) and which frameworks got
             imported; medians of ``--repeat`` runs after a warm-up, from cached bytecode.
``weights``  writing ONNX external data through unframe (``save_onnx``) against ``np.save`` of the
             same bytes, with half the tensors transposed views as torch.onnx's optimizer leaves them,
             without and with torch imported.
``llama``    a random-init LLaMA-style decoder (transformers' ``LlamaConfig``, no download) saved as a
             ``.pt2``: PyTorch -> ONNX through unframe against ``torch.onnx.export`` called directly
             on the same ``.pt2`` (external data on both sides above 1 GiB of weights), then ONNX -> ``.pt2`` against the floor, with
             peak RSS over the weight bytes, ``.pt2`` -> ONNX again, and validation: the source
             ``.pt2`` and each converted artifact run one at a time, each in its own child (its
             peak reported), on one fixed token sequence; only logits are kept, on disk.

Sizes for ``llama --size``: 20M (hidden 256, 4 layers: a quick check), 100M (hidden 768, 12 layers), 1B (2048, 16), 3B (3072, 26),
7B (4096, 32, as LLaMA-2 7B). Disk needed: about 4x the weights (the source ``.pt2``, the
``.onnx`` (the direct export's is removed once timed), the ``.pt2`` read back and the ``.onnx``
written again): 100M fp32 0.5 GB -> 2 GB; 1B fp32 4.4 GB -> 18 GB;
7B bf16 13.5 GB -> 54 GB (51 GiB; with ``--no-direct``), and the 24 GB machine's memory:
run 7B only with the machine to itself (figures: benchmarks/README.md).

    python benchmarks/scale.py startup [--repeat 5]
    python benchmarks/scale.py weights [--mib 256] [--targets onnx,pt2,caffe2,pt2-nocrc]
    python benchmarks/scale.py llama [--size 100M] [--dtype float32|bfloat16] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PYTHON = sys.executable
UNFRAME = str(Path(PYTHON).with_name("unframe"))
# onnxscript's optimizer is imported on its own, out of sys.modules after each use
# (shared_ir/lazy_imports.py): its whole package shows as onnxscript's opset modules.
HEAVY = (
    "torch",
    "tensorflow",
    "coremltools",
    "onnxscript",
    "onnxscript.onnx_opset",
    "onnx.reference.ops",
    "onnxruntime",
)

LLAMA_SIZES = {
    "20M": {"hidden_size": 256, "num_hidden_layers": 4, "intermediate_size": 688, "heads": 4},
    "100M": {"hidden_size": 768, "num_hidden_layers": 12, "intermediate_size": 2048, "heads": 12},
    "1B": {"hidden_size": 2048, "num_hidden_layers": 16, "intermediate_size": 5632, "heads": 32},
    "3B": {"hidden_size": 3072, "num_hidden_layers": 26, "intermediate_size": 8192, "heads": 32},
    "7B": {"hidden_size": 4096, "num_hidden_layers": 32, "intermediate_size": 11008, "heads": 32},
}


def child(code: str, *args: str, refusal: bool = False) -> dict[str, Any]:
    """Runs ``code`` in a fresh interpreter; its last stdout line is JSON; adds wall, CPU, peak.

    ``refusal``: a failing child gives ``{"refused": <its last stderr line>, "exit": <code>}``.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([PYTHON, "-c", code, *args], capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0 and refusal:
        lines = done.stderr.strip().splitlines() or ["(no message)"]
        return {"refused": lines[-1], "exit": done.returncode}
    if done.returncode != 0:
        raise SystemExit(f"child failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_s"] = wall
    result["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if "peak_kib" in result:  # the child's own high-water mark (ru_maxrss is the largest child's)
        result["peak_mib"] = result["peak_kib"] / 1024
    return result


def _floor(paths: list[Path], workdir: Path) -> float:
    """Seconds to read ``paths`` and ``np.save`` the same bytes (the page cache as it is)."""
    code = """
import json, sys, time, numpy as np
started = time.perf_counter()
with open(sys.argv[-1], "wb") as out:
    for path in sys.argv[1:-1]:
        np.save(out, np.fromfile(path, dtype=np.uint8))
print(json.dumps({"seconds": time.perf_counter() - started}))
"""
    result = child(code, *map(str, paths), str(workdir / "floor.npy"))
    (workdir / "floor.npy").unlink()
    return float(result["seconds"])


# -- startup -------------------------------------------------------------------------------------
_CONVERT = """
import json, sys, time
started = time.perf_counter()
from unframe.converters import api
api.convert(sys.argv[1], sys.argv[2], target=sys.argv[3], force=True)
heavy = json.loads(sys.argv[4])
print(json.dumps({"seconds": time.perf_counter() - started,
                  "imported": [name for name in heavy if name in sys.modules]}))
"""

#: unframe's own imports (the conversion API and the IR), then the target framework's: the ONNX
#: backend, or the Caffe2 backend with its converters registered (Caffe2's Python side is ours).
_IMPORTS = """
import json, sys, time
started = time.perf_counter()
import unframe.converters.api, onnx_ir
middle = time.perf_counter()
exec(sys.argv[1])
print(json.dumps({"unframe": middle - started, "target": time.perf_counter() - middle}))
"""
_TARGET_IMPORT = {
    "onnx": "import unframe.backends.onnx",
    "caffe2": ("from unframe.backends.caffe2 import driver, native\ndriver.export_registry()"),
}


def _mlp(path: Path, parameters: int) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    width = int((parameters / 4) ** 0.5)
    rng = np.random.default_rng(0)
    nodes, weights, current = [], [], "x"
    for index in range(4):
        weight = rng.standard_normal((width, width)).astype(np.float32) / width**0.5
        weights.append(numpy_helper.from_array(weight, f"w{index}"))
        nodes.append(helper.make_node("MatMul", [current, f"w{index}"], [f"m{index}"]))
        nodes.append(helper.make_node("Relu", [f"m{index}"], [f"r{index}"]))
        current = f"r{index}"
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, width])],
        [helper.make_tensor_value_info(current, TensorProto.FLOAT, [1, width])],
        weights,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def startup(repeat: int) -> None:
    # Children compile unframe's sources once into a cache of their own, then read the bytecode,
    # as an installed package does: PYTHONDONTWRITEBYTECODE (set on shared dev machines) would
    # otherwise charge every run for compiling them, which no installed unframe pays.
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as cache:
        names = ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
        saved = {name: os.environ.get(name) for name in names}
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        os.environ["PYTHONPYCACHEPREFIX"] = cache
        try:
            _startup(repeat)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _startup(repeat: int) -> None:
    subprocess.run([UNFRAME, "--help"], capture_output=True, check=True)  # bytecode, page cache
    help_walls, help_cpus, pass_walls = [], [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run([UNFRAME, "--help"], capture_output=True, check=True)
        help_walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        help_cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        started = time.perf_counter()
        subprocess.run([PYTHON, "-c", "pass"], check=True)
        pass_walls.append(time.perf_counter() - started)
    print(
        f"unframe --help: wall {statistics.median(help_walls):.2f} s (median of {repeat}), "
        f"CPU {statistics.median(help_cpus):.2f} s; python -c pass: "
        f"{statistics.median(pass_walls):.2f} s"
    )
    heavy = json.dumps([*HEAVY, "sympy"])
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as folder:
        workdir = Path(folder)
        source = workdir / "mlp10m.onnx"
        _mlp(source, 10_000_000)
        targets = (("onnx", "out.onnx"), ("caffe2", "out_net"))
        for target, name in targets:  # the warm-up: bytecode written, every file read once
            child(_CONVERT, str(source), str(workdir / name), target, heavy)
        floors, imports, calls = [], [], {target: [] for target, _ in targets}
        target_imports: dict[str, list[float]] = {target: [] for target, _ in targets}
        imported: dict[str, list[str]] = {}
        for _ in range(repeat):  # interleaved, so that a busy spell weighs on every figure alike
            floors.append(_floor([source], workdir))
            for target, _name in targets:
                seconds = child(_IMPORTS, _TARGET_IMPORT[target])
                imports.append(seconds["unframe"])
                target_imports[target].append(seconds["target"])
            for target, name in targets:
                # A new file, as the floor's is: writing over one costs ext4 a flush on rename.
                shutil.rmtree(workdir / name, ignore_errors=True)
                (workdir / name).unlink(missing_ok=True)
                result = child(_CONVERT, str(source), str(workdir / name), target, heavy)
                calls[target].append(result["seconds"])
                imported[target] = result["imported"]
        floor, imports_s = statistics.median(floors), statistics.median(imports)
        for target, _ in targets:
            call = statistics.median(calls[target])
            target_s = statistics.median(target_imports[target])
            budget = 3 * floor + imports_s + target_s
            print(
                f"10M ONNX -> {target}: {call:.2f} s in the call (median of {repeat}); floor "
                f"{floor:.2f} s, unframe's imports {imports_s:.2f} s, the target's "
                f"{target_s:.3f} s; target <= 3x floor + imports = {budget:.2f} s "
                f"({'OK' if call <= budget else 'over'}, {call / budget:.2f}x); "
                f"imported {imported[target]}"
            )


# -- weights -------------------------------------------------------------------------------------
_WRITE = """
import json, os, sys, time
from pathlib import Path
mib, mode, out, layout, target = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
crc = sys.argv[6]
if mode == "torch":
    import torch
    torch.set_num_threads(1)
import numpy as np, onnx_ir as ir
from unframe.shared_ir.io import save_onnx
rng = np.random.default_rng(0)
count = max(2, mib // 4)
arrays = [rng.standard_normal((1024, 1024), dtype=np.float32) for _ in range(count)]
views = [a.T if i % 2 == 0 and layout == "transposed" else a for i, a in enumerate(arrays)]
x = ir.Value(name="x", type=ir.TensorType(ir.DataType.FLOAT), shape=ir.Shape([1, 1024]))
graph = ir.Graph([x], [], nodes=[], opset_imports={"": 17})
current = x
for i, a in enumerate(views):
    value = ir.Value(name=f"w{i}", const_value=ir.Tensor(a, name=f"w{i}"))
    value.type, value.shape = ir.TensorType(ir.DataType.FLOAT), ir.Shape(a.shape)
    graph.register_initializer(value)
    node = ir.node("MatMul", [current, value], name=f"m{i}")
    node.outputs[0].name = f"y{i}"
    node.outputs[0].type = ir.TensorType(ir.DataType.FLOAT)
    node.outputs[0].shape = ir.Shape([1, 1024])
    graph.append(node)
    current = node.outputs[0]
graph.outputs.append(current)
model = ir.Model(graph, ir_version=10)
spent = [0.0]  # seconds in the .pt2 weight records of the save being timed
if target == "pt2":
    # Only torch.export.save writes the weights: the module is built and traced beforehand.
    from unframe.backends.pytorch import export_program
    from unframe.backends.pytorch.native.pt2_weights import weights_written_from_storage
    program = export_program(model)
    if crc == "config-off":
        # torch.save's switch: torch.export.save's PT2ArchiveWriter does not read it (2.13).
        torch.serialization.set_crc32_options(False)
    elif crc == "writer-off":
        # What the switch would do if torch.export.save honoured it: a zip writer without CRC32.
        from torch.export.pt2_archive import _package
        def without_crc(self, path):
            self.archive_file = torch._C.PyTorchFileWriter(str(path), False)
            self.archive_file.set_min_version(6)
        _package.PT2ArchiveWriter.__init__ = without_crc
    def write():
        # As save_pt2 writes it: storages, our zip writer (torch's where the CRC is switched off).
        with weights_written_from_storage(own_writer=crc == "on"):
            torch.export.save(program, out)
    if crc == "on":
        from torch.export.pt2_archive import _package
        save_raw = _package._save_raw_tensors
        def timed_raw(*args, **kwargs):  # the weight records: their bytes, CRC32s and writes
            started = time.perf_counter()
            try:
                return save_raw(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - started
        _package._save_raw_tensors = timed_raw
        def as_shipped():  # the before figure: bytes copies, torch's zip writer
            torch.export.save(program, out)
        others = {"torch.export.save as shipped": as_shipped}
elif target == "caffe2":
    from unframe.converters.adapters.caffe2 import Caffe2Framework
    from unframe.converters.framework import ConvertOptions
    def write():
        Caffe2Framework().save(model, Path(out), ConvertOptions())
else:
    def write():
        save_onnx(model, Path(out), external_data=True)
def remove():
    import shutil
    for old in (out, out + ".data"):
        if os.path.isdir(old):
            shutil.rmtree(old)
        elif os.path.exists(old):
            os.unlink(old)
others = others if target == "pt2" and crc == "on" else {}
floors, writes, other_times = [], [], {label: [] for label in others}
weight_parts = {label: [] for label in ["write", *others]} if others else {}
# Five rounds where three saves share them (the floor swings with the machine's writeback).
rounds = 5 if others else 3
def prime():
    # .pt2 timings: pages the kernel just freed are reused at once, while pages a VM handed back
    # to its host cost a fault each (512 MiB: np.save 0.8 s, then 0.13 s on freed pages), so
    # the second writer of a round ran on the first one's freed pages. Each starts on pages just
    # touched and freed (anonymous memory: freed in the call, not by a deferred unlink).
    if target == "pt2":
        block = np.ones(sum(a.nbytes for a in arrays), dtype=np.uint8)
        del block
for _ in range(rounds):
    # Each timing starts with no dirty pages: otherwise one pays for the other's writeback.
    prime()
    os.sync()
    started = time.perf_counter()
    with open(out + ".npy", "wb") as handle:
        for a in arrays:
            np.save(handle, a)
    floors.append(time.perf_counter() - started)
    os.unlink(out + ".npy")
    remove()  # as the floor's file: not replaced inside the timing
    prime()
    os.sync()
    spent[0] = 0.0
    started = time.perf_counter()
    write()
    writes.append(time.perf_counter() - started)
    if others:
        weight_parts["write"].append(spent[0])
    for label, other in others.items():  # interleaved: a busy spell weighs on each alike
        remove()
        prime()
        os.sync()
        spent[0] = 0.0
        started = time.perf_counter()
        other()
        other_times[label].append(time.perf_counter() - started)
        weight_parts[label].append(spent[0])
if others:  # the file checked below is the one save_pt2's writer wrote
    remove()
    write()
zip_check = None
if target == "pt2":
    import zipfile
    try:  # what another zip reader (Python's zipfile) says of the file just written
        with zipfile.ZipFile(out) as archive:
            bad = archive.testzip()
        zip_check = "ok" if bad is None else f"bad CRC in {bad}"
    except zipfile.BadZipFile as error:
        zip_check = f"BadZipFile: {error}"
    torch.export.load(out)
print(json.dumps({"floor": min(floors), "write": min(writes), "mib": count * 4,
                  "zip_check": zip_check, "rounds": rounds,
                  "others": {label: min(times) for label, times in other_times.items()},
                  "weight_parts": {label: min(times) for label, times in weight_parts.items()}}))
"""

#: (``--targets`` name, torch imported or not, weight layout, ``.pt2`` CRC32) for ``weights``;
#: ``pt2-nocrc``: ``torch.serialization.set_crc32_options(False)`` (``torch.utils.serialization
#: .config.save.compute_crc32``) as set, and a zip writer built without CRC32 (what the switch
#: would do if ``torch.export.save`` read it). Measured only: a file without CRC32s fails other
#: zip readers (each ``.pt2`` written is checked with Python's ``zipfile``).
WRITE_CASES = (
    ("onnx", "numpy", "contiguous", "on"),
    ("onnx", "numpy", "transposed", "on"),
    ("onnx", "torch", "transposed", "on"),
    ("pt2", "torch", "contiguous", "on"),
    ("pt2-nocrc", "torch", "contiguous", "config-off"),
    ("pt2-nocrc", "torch", "contiguous", "writer-off"),
    ("caffe2", "numpy", "contiguous", "on"),
)


def weights(mib: int, targets: list[str]) -> None:
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as folder:
        for name, mode, layout, crc in WRITE_CASES:
            if name not in targets:
                continue
            target = name.split("-")[0]
            file_name = {"onnx": "w.onnx", "pt2": "w.pt2", "caffe2": "w_net"}[target]
            result = child(
                _WRITE, str(mib), mode, str(Path(folder) / file_name), layout, target, crc
            )
            what = "half transposed views" if layout == "transposed" else "contiguous"
            label = {"onnx": "ONNX external data", "pt2": ".pt2 (save_pt2: our zip writer)"}.get(
                target, "Caffe2 init_net.pb"
            )
            if target == "pt2" and crc != "on":
                label = ".pt2 (torch's zip writer, weights from storage)"
            crc_note = {"on": "", "config-off": ", compute_crc32=False set"}.get(
                crc, " built without CRC32"
            )
            zip_note = f"; zipfile.testzip: {result['zip_check']}" if result["zip_check"] else ""
            print(
                f"{label}{crc_note}, {result['mib']} MiB, {what}, {mode}: "
                f"{result['write']:.2f} s vs np.save {result['floor']:.2f} s = "
                f"{result['write'] / result['floor']:.2f}x (best of {result['rounds']}){zip_note}",
                flush=True,
            )
            parts, floor = result["weight_parts"], result["floor"]
            if parts:
                shipped = result["others"]["torch.export.save as shipped"]
                before = parts["torch.export.save as shipped"]
                print(
                    f"  of which the weight records (torch's _save_raw_tensors) {parts['write']:.2f}"
                    f" s = {parts['write'] / floor:.2f}x np.save; before, torch.export.save as "
                    f"shipped {shipped:.2f} s = {shipped / floor:.2f}x, its weight records "
                    f"{before:.2f} s = {before / floor:.2f}x",
                    flush=True,
                )


# -- llama ---------------------------------------------------------------------------------------
#: The decoder, built from argv[1] (its size) and argv[2] (its dtype) as ``model``; seeded, so
#: two builds hold the same weights (the float32 reference below rebuilds it rather than reading
#: the ``.pt2``, and checks that its own run in the source dtype gives the source's logits).
_MODEL = """
import json, sys, torch
from transformers import LlamaConfig, LlamaForCausalLM
size = json.loads(sys.argv[1]); dtype = getattr(torch, sys.argv[2])
config = LlamaConfig(vocab_size=32000, hidden_size=size["hidden_size"],
    num_hidden_layers=size["num_hidden_layers"], intermediate_size=size["intermediate_size"],
    num_attention_heads=size["heads"], num_key_value_heads=size["heads"],
    max_position_embeddings=2048, use_cache=False)
torch.manual_seed(0)
# Built in its own dtype: a float32 build first would need 2x a bf16 model's memory (7B: 28 GB).
torch.set_default_dtype(dtype)
with torch.device("cpu"):
    model = LlamaForCausalLM(config).eval()
torch.set_default_dtype(torch.float32)
"""

_BUILD = (
    _MODEL
    + """
out = sys.argv[3]
class Logits(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model
    def forward(self, input_ids):
        return self.model(input_ids=input_ids, use_cache=False).logits
ids = torch.randint(0, 32000, (1, 16))
with torch.no_grad():
    program = torch.export.export(Logits(model), (ids,), strict=False)
torch.export.save(program, out)
count = sum(p.numel() for p in model.parameters())
nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
print(json.dumps({"parameters": count, "weight_bytes": nbytes}))
"""
)

_DIRECT = """
import json, sys, time, torch
started = time.perf_counter()
program = torch.export.load(sys.argv[1])
onnx_program = torch.onnx.export(program, dynamo=True)
# As unframe decides (shared_ir.io.EXTERNAL_DATA_THRESHOLD): the same file format on both sides.
onnx_program.save(sys.argv[2], external_data=int(sys.argv[3]) > 1 << 30)
seconds = time.perf_counter() - started
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(json.dumps({"seconds": seconds, "peak_kib": int(status["VmHWM"].split()[0])}))
"""

_UNFRAME = """
import json, sys, time
started = time.perf_counter()
from unframe.converters import api
result = api.convert(sys.argv[1], sys.argv[2], target=sys.argv[3] if len(sys.argv) > 3 else None,
                     force=True)
seconds = time.perf_counter() - started
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(json.dumps({"seconds": seconds, "peak_kib": int(status["VmHWM"].split()[0]),
                  "steps": result.steps}))
"""


_BASELINE = """
import json, torch
import unframe.backends.pytorch, unframe.converters.api
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(json.dumps({"seconds": 0.0, "peak_kib": int(status["VmHWM"].split()[0])}))
"""


_LOGITS = """
import json, sys, time
import numpy as np
model_path, ids_path, out, runner = sys.argv[1:5]
ids = np.load(ids_path)
started = time.perf_counter()
if model_path.endswith(".onnx") and runner == "unframe-torch":
    # onnxruntime's CPU provider has no bfloat16 MatMul/Mul kernels, and a float32 cast would hold
    # 2x the weights: the file is read by unframe (external data mapped) and run as the PyTorch
    # backend's module, the interpreter held to 1818/1884 of onnx's node tests.
    import torch
    from unframe.backends.pytorch import to_torch
    from unframe.shared_ir.io import load_onnx
    module = to_torch(load_onnx(__import__("pathlib").Path(model_path)))
    with torch.no_grad():
        outputs = module(torch.from_numpy(ids))
    logits = (outputs[0] if isinstance(outputs, (tuple, list)) else outputs).float().numpy()
elif model_path.endswith(".onnx"):
    import onnxruntime as ort
    options = ort.SessionOptions()
    # Weights once: no arena rounding them up, initializers straight from the device allocator
    # (external data mapped where ORT can), no pre-packed second copy of each MatMul weight.
    options.enable_cpu_mem_arena = False
    options.enable_mem_pattern = False
    options.add_session_config_entry("session.use_device_allocator_for_initializers", "1")
    options.add_session_config_entry("session.disable_prepacking", "1")
    session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
    logits = session.run(None, {session.get_inputs()[0].name: ids})[0]
else:
    import torch
    program = torch.export.load(model_path)
    with torch.no_grad():
        outputs = program.module()(torch.from_numpy(ids))
    # A .pt2 written from ONNX returns its graph's outputs as a tuple.
    logits = (outputs[0] if isinstance(outputs, (tuple, list)) else outputs).float().numpy()
np.save(out, logits.astype(np.float32))
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(json.dumps({"seconds": time.perf_counter() - started,
                  "peak_kib": int(status["VmHWM"].split()[0])}))
"""

_REFERENCE_FP32 = (
    _MODEL
    + """
import time
import numpy as np
ids_path, out = sys.argv[3:5]
ids = torch.from_numpy(np.load(ids_path))
started = time.perf_counter()
with torch.no_grad():
    np.save(out + ".same_dtype.npy", model(input_ids=ids, use_cache=False).logits.float().numpy())
# The same weights computed in float32, one decoder layer upcast at a time (a whole float32 copy
# of a 7B bf16 model would hold 3x its weights): bf16's own rounding, measured.
model.model.embed_tokens.float(); model.model.norm.float(); model.lm_head.float()
def upcast(layer, args): layer.float()
def downcast(layer, args, output): layer.to(dtype)
for layer in model.model.layers:
    layer.register_forward_pre_hook(upcast)
    layer.register_forward_hook(downcast)
with torch.no_grad():
    np.save(out, model(input_ids=ids, use_cache=False).logits.float().numpy())
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(json.dumps({"seconds": time.perf_counter() - started,
                  "peak_kib": int(status["VmHWM"].split()[0])}))
"""
)

#: bfloat16: an artifact's logits may differ from the float32 computation of the same weights by
#: at most this times the source's own difference from it (its bf16 rounding). Two independent
#: roundings of one size differ from the exact value by up to 2x one of them; a wrong weight or
#: op is off by order 1 of the logits instead. 7B: the source itself is 0.34 off (5% of the
#: largest logit, 32 layers of bf16), so a fixed ulp budget cannot tell drift from a bug there.
BF16_ERROR_RATIO = 2.0

#: Logits error allowed, relative to the largest reference logit. float32: the same graph in
#: other kernels (summation order, fused attention or not) differs by ~1e-6 per op; 1e-4 leaves
#: room for a few hundred ops. bfloat16 keeps 8 significant bits (unit roundoff 2**-8 = 0.0039):
#: a graph that rounds to bf16 at other points (a fused vs an unfused op) drifts by a few ulps
#: (100M, 12 layers: 3.4 ulps measured), so 8 ulps (0.031) at the output, while a wrong weight or
#: op is off by order 1. Deeper models may drift further: check the figure printed at 7B.
LOGITS_TOLERANCE = {"float32": 1e-4, "bfloat16": 8 * 2.0**-8}


def validate(
    artifacts: list[tuple[str, Path]],
    source: Path,
    workdir: Path,
    dtype: str,
    weight_bytes: int,
    size: str,
) -> None:
    """Runs ``source`` then each artifact on one seeded sequence, one child at a time."""
    import numpy as np

    ids_path = workdir / "ids.npy"
    # As the source was exported: one sequence of 16 tokens (its input shape is static).
    np.save(ids_path, np.random.default_rng(0).integers(0, 32000, (1, 16), dtype=np.int64))
    reference_path = workdir / "logits_source.npy"
    reference_run = child(_LOGITS, str(source), str(ids_path), str(reference_path), "torch")
    reference = np.load(reference_path)
    scale = float(np.abs(reference).max())
    tolerance = LOGITS_TOLERANCE[dtype]
    print(
        f"Validation, 16 seeded tokens: source .pt2 {reference_run['seconds']:.1f} s, peak "
        f"{reference_run['peak_mib']:.0f} MiB = {reference_run['peak_mib'] * 2**20 / weight_bytes:.2f}x "
        f"the weights; largest |logit| {scale:.3g}; tolerance max |error| <= {tolerance:.3g} x that",
        flush=True,
    )
    exact = _float32_reference(size, dtype, ids_path, reference, workdir, weight_bytes)
    source_error = (
        float(np.abs(reference.astype(np.float64) - exact).max()) if exact is not None else 0.0
    )
    for label, path in artifacts:
        logits_path = workdir / f"logits_{path.name}.npy"
        runner = "unframe-torch" if dtype == "bfloat16" and path.suffix == ".onnx" else "native"
        if runner == "unframe-torch":
            label = label.replace(
                "(onnxruntime)",
                "(unframe's PyTorch backend: no bf16 in onnxruntime's CPU provider)",
            )
        run = child(_LOGITS, str(path), str(ids_path), str(logits_path), runner, refusal=True)
        if "refused" in run:
            print(f"  {label}: not run, exit {run['exit']}: {run['refused']}")
            continue
        logits = np.load(logits_path)
        error = float(np.abs(logits.astype(np.float64) - reference).max())
        same_top = float((logits.argmax(-1) == reference.argmax(-1)).mean())
        verdict = "match" if error <= tolerance * scale else "MISMATCH"
        if exact is not None:
            exact_error = float(np.abs(logits.astype(np.float64) - exact).max())
            ratio = exact_error / source_error if source_error else float("inf")
            verdict = (
                f"{'match' if ratio <= BF16_ERROR_RATIO else 'MISMATCH'} against float32: max "
                f"|error| {exact_error:.3g} = {ratio:.2f}x the source's own ({source_error:.3g}; "
                f"limit {BF16_ERROR_RATIO:.0f}x); against the bf16 source"
            )
        print(
            f"  {label}: {verdict}: max |error| {error:.3g} = {error / scale:.2g} of the largest "
            f"logit; top-1 token the same at {same_top:.0%} of positions; {run['seconds']:.1f} s, "
            f"peak {run['peak_mib']:.0f} MiB = {run['peak_mib'] * 2**20 / weight_bytes:.2f}x the "
            "weights",
            flush=True,
        )


def _float32_reference(
    size: str, dtype: str, ids_path: Path, reference: Any, workdir: Path, weight_bytes: int
) -> Any:
    """bfloat16 only: the logits of the same weights computed in float32 (``None`` otherwise)."""
    import numpy as np

    if dtype != "bfloat16":
        return None
    out = workdir / "logits_float32.npy"
    run = child(_REFERENCE_FP32, json.dumps(LLAMA_SIZES[size]), dtype, str(ids_path), str(out))
    rebuilt = np.load(str(out) + ".same_dtype.npy")
    exact = np.load(out).astype(np.float64)
    rebuilt_error = float(np.abs(rebuilt - reference).max())
    source_error = float(np.abs(reference.astype(np.float64) - exact).max())
    print(
        f"  float32 computation of the same weights (rebuilt from the seed; in {dtype} it gives "
        f"the source's logits within {rebuilt_error:.3g}): the source's own bf16 error is max "
        f"|error| {source_error:.3g} = {source_error / float(np.abs(exact).max()):.2g} of the "
        f"largest logit; {run['seconds']:.1f} s, peak {run['peak_mib']:.0f} MiB = "
        f"{run['peak_mib'] * 2**20 / weight_bytes:.2f}x the weights",
        flush=True,
    )
    if rebuilt_error:
        raise SystemExit("the rebuilt decoder is not the source's: no float32 reference")
    return exact


def _steps(result: dict[str, Any]) -> str:
    steps = result.get("steps")
    if not steps:
        return ""
    return " (" + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in steps.items()) + ")"


def _data_files(onnx_path: Path) -> list[Path]:
    return [onnx_path, *sorted(onnx_path.parent.glob(onnx_path.name + "*.data"))]


def estimated_weight_bytes(size: str, dtype: str, vocab: int = 32000) -> int:
    """The decoder's weight bytes from its config (embedding and head untied, as built)."""
    config = LLAMA_SIZES[size]
    hidden, inner = config["hidden_size"], config["intermediate_size"]
    per_layer = 4 * hidden * hidden + 3 * hidden * inner + 2 * hidden
    parameters = 2 * vocab * hidden + config["num_hidden_layers"] * per_layer + hidden
    return parameters * (2 if dtype == "bfloat16" else 4)


def check_room(size: str, dtype: str, workdir: Path) -> None:
    """Refuses a run the disk or the memory available now cannot hold (before building)."""
    weight_bytes = estimated_weight_bytes(size, dtype)
    workdir.mkdir(parents=True, exist_ok=True)
    disk = shutil.disk_usage(workdir).free
    with open("/proc/meminfo") as meminfo:
        fields = dict(line.split(":", 1) for line in meminfo)
    available = int(fields["MemAvailable"].split()[0]) * 1024
    # Peaks seen: 1.3-1.4x the weights (build, PyTorch -> ONNX, ONNX -> .pt2), plus ~0.5 GB.
    needed_memory = int(1.5 * weight_bytes) + (1 << 30)
    needed_disk = 4 * weight_bytes + (1 << 30)
    print(
        f"LLaMA {size} {dtype}: ~{weight_bytes / 2**30:.1f} GiB of weights; needs ~"
        f"{needed_disk / 2**30:.0f} GiB of disk ({disk / 2**30:.0f} free in {workdir}) and "
        f"~{needed_memory / 2**30:.0f} GiB of memory ({available / 2**30:.0f} available)",
        flush=True,
    )
    if disk < needed_disk or available < needed_memory:
        raise SystemExit("not enough room for this size here: use a bigger --workdir or machine")


def llama(size: str, dtype: str, workdir: Path, repeat: int = 2, direct: bool = True) -> None:
    check_room(size, dtype, workdir)
    pt2 = workdir / f"llama{size}.pt2"
    built = child(_BUILD, json.dumps(LLAMA_SIZES[size]), dtype, str(pt2))
    weight_bytes = int(built["weight_bytes"])
    print(
        f"LLaMA {size} {dtype}: {built['parameters'] / 1e6:.0f}M parameters, "
        f"{weight_bytes / 2**20:.0f} MiB of weights"
    )
    # Interleaved: unframe, direct, unframe, direct (the machine's load drifts).
    times: dict[str, list[float]] = {"unframe": [], "direct": []}
    peaks: dict[str, float] = {}
    for _ in range(repeat):
        for name, code in (("unframe", _UNFRAME), ("direct", _DIRECT))[: 2 if direct else 1]:
            out = workdir / f"{name}.onnx"
            extra = [str(weight_bytes)] if name == "direct" else []
            result = child(code, str(pt2), str(out), *extra)
            times[name].append(float(result["seconds"]))
            peaks[name] = float(result["peak_mib"])
            print(
                f"  {name}: {result['seconds']:.1f} s, peak {result['peak_mib']:.0f} MiB"
                f"{_steps(result)}",
                flush=True,
            )
    if direct:
        for path in _data_files(workdir / "direct.onnx"):  # disk: not needed any more
            path.unlink()
        ratio = min(times["unframe"]) / min(times["direct"])
        print(
            f"PyTorch -> ONNX: unframe {min(times['unframe']):.1f} s, torch.onnx.export directly "
            f"{min(times['direct']):.1f} s: {ratio:.2f}x (best of {repeat}, interleaved)"
        )
    source = workdir / "unframe.onnx"
    floor_onnx = _floor([pt2], workdir)
    print(
        f"PyTorch -> ONNX vs the floor ({floor_onnx:.1f} s): "
        f"{min(times['unframe']) / floor_onnx:.1f}x"
    )
    baseline = child(_BASELINE)
    back = workdir / "back.pt2"
    result = child(_UNFRAME, str(source), str(back))
    floor = _floor(_data_files(source), workdir)
    peak = float(result["peak_mib"]) * 2**20
    print(
        f"ONNX -> .pt2: {result['seconds']:.1f} s vs the floor {floor:.1f} s: "
        f"{float(result['seconds']) / floor:.1f}x; peak RSS {peak / 2**20:.0f} MiB = "
        f"{peak / weight_bytes:.2f}x the weights; above the interpreter's own "
        f"{baseline['peak_mib']:.0f} MiB (torch and unframe imported): "
        f"{(peak / 2**20 - baseline['peak_mib']) * 2**20 / weight_bytes:.2f}x{_steps(result)}"
    )
    caffe2 = child(_UNFRAME, str(source), str(workdir / "caffe2_net"), "caffe2", refusal=True)
    if "refused" in caffe2:
        print(f"ONNX -> Caffe2: refused, exit {caffe2['exit']}: {caffe2['refused']}")
    else:
        peak = float(caffe2["peak_mib"]) * 2**20
        print(
            f"ONNX -> Caffe2: {caffe2['seconds']:.1f} s vs the floor {floor:.1f} s: "
            f"{float(caffe2['seconds']) / floor:.1f}x; peak RSS {peak / 2**20:.0f} MiB = "
            f"{peak / weight_bytes:.2f}x the weights{_steps(caffe2)}"
        )
    mib = weight_bytes / 2**20
    direct_peak = (
        f", direct {peaks['direct']:.0f} MiB ({peaks['direct'] / mib:.2f}x)" if direct else ""
    )
    print(
        f"PyTorch -> ONNX peak RSS: unframe {peaks['unframe']:.0f} MiB "
        f"({peaks['unframe'] / mib:.2f}x the weights){direct_peak}"
    )
    shutil.rmtree(workdir / "caffe2_net", ignore_errors=True)
    again = workdir / "again.onnx"
    result = child(_UNFRAME, str(back), str(again))
    print(
        f".pt2 -> ONNX again: {result['seconds']:.1f} s; peak RSS {result['peak_mib']:.0f} MiB = "
        f"{result['peak_mib'] / mib:.2f}x the weights{_steps(result)}",
        flush=True,
    )
    artifacts = [
        ("PyTorch -> ONNX (onnxruntime)", source),
        ("ONNX -> .pt2 (torch.export.load)", back),
        (".pt2 -> ONNX again (onnxruntime)", again),
    ]
    validate(artifacts, pt2, workdir, dtype, weight_bytes, size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sections = parser.add_subparsers(dest="section", required=True)
    start = sections.add_parser("startup")
    start.add_argument("--repeat", type=int, default=5)
    write = sections.add_parser("weights")
    write.add_argument("--mib", type=int, default=256)
    write.add_argument("--targets", default="onnx,pt2,caffe2")
    decoder = sections.add_parser("llama")
    decoder.add_argument("--size", choices=sorted(LLAMA_SIZES), default="100M")
    decoder.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    decoder.add_argument("--workdir", type=Path, default=None)
    decoder.add_argument("--repeat", type=int, default=2, help="PyTorch -> ONNX runs per side")
    decoder.add_argument(
        "--no-direct",
        action="store_true",
        help="skip torch.onnx.export called directly (7B: its ~2x unframe's time, and its disk)",
    )
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if args.section == "startup":
        startup(args.repeat)
    elif args.section == "weights":
        weights(args.mib, args.targets.split(","))
    elif args.workdir is not None:
        llama(args.size, args.dtype, args.workdir, args.repeat, not args.no_direct)
    else:
        with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as folder:
            llama(args.size, args.dtype, Path(folder), args.repeat, not args.no_direct)


if __name__ == "__main__":
    main()
