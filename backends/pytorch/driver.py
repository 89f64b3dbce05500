"""The driver: walks an IR graph in topological order and emits a ``torch.fx.GraphModule``.

Graph inputs become placeholders, initializers parameters (float) or buffers (others) that share
memory with the IR's arrays where they can, each node the output of its registered converter, and
the graph outputs one tuple in graph-output order. Every name that reaches generated code or module
attributes goes through ``naming.sanitize``; the ONNX names stay recoverable: each fx node that
yields an ONNX value carries it as ``node.meta["onnx_name"]``, and the module's
``meta["unframe_source_names"]`` maps parameter/buffer names (``state_dict`` keys) and forward
argument names back to the ONNX initializer and input names.
"""

from __future__ import annotations

import dataclasses
import importlib
import mmap
import os
import warnings
from collections.abc import Sequence

import numpy as np
import onnx.defs
import onnx_ir as ir
import torch
from torch import fx, nn

from unframe.backends.pytorch import fx_functions
from unframe.backends.pytorch.context import FRAMEWORK, BuildContext, Subgraph
from unframe.backends.pytorch.dtypes import maybe_torch_dtype, widen_emulated
from unframe.backends.pytorch.naming import NameScope, module_attribute_names
from unframe.backends.pytorch.registry import Converter, ops
from unframe.backends.pytorch.scope import free_values, subgraphs
from unframe.shared_ir.conversion import ConversionLoop, node_opset, onnx_loop
from unframe.shared_ir.errors import ConversionError
from unframe.shared_ir.folding import FoldConstantsPass
from unframe.shared_ir.onnx_wire import MappedTensor
from unframe.shared_ir.passes import infer_shapes
from unframe.shared_ir.traversal import iter_nodes

#: ``GraphModule.meta`` key: ``{"initializers": {state_dict key: ONNX name},
#: "inputs": {forward argument: ONNX name}}``.
SOURCE_NAMES = "unframe_source_names"
#: ``fx.Node.meta`` key: the ONNX value the node yields.
ONNX_NAME = "onnx_name"


def default_domain_opset(model: ir.Model) -> int:
    """The model's ai.onnx opset; the newest onnx knows where it imports none."""
    opset = model.opset_imports.get("", model.opset_imports.get("ai.onnx"))
    if opset is None:
        # No default-domain op can appear; any version serves for the subgraph bookkeeping.
        return int(onnx.defs.onnx_opset_version())
    return int(opset)


def to_torch(model: ir.Model) -> fx.GraphModule:
    """Converts ``model`` into a ``torch.fx.GraphModule`` (a trainable ``nn.Module``).

    Raises ``UnsupportedOpsError`` listing every node without a converter (subgraphs included)
    before building, and after building every node a converter refused; a converter's bug is an
    ``InternalError`` naming the node. ``model`` is changed in place: shapes are inferred and
    constants folded (:class:`~unframe.shared_ir.folding.FoldConstantsPass`), so converters read
    computed values as ``value.const_value``.
    """
    load_converters()
    imports = dict(model.opset_imports)
    _loop(imports).check_supported(
        iter_nodes(model.graph), lambda node: converter_for(node, imports) is not None
    )
    # Ranks of intermediate values let Shape stay symbolic; converters fall back where unknown.
    infer_shapes(model)
    # The shared pass, run here too because conversions without the pipeline (--no-optimize,
    # conformance) reach the backend unfolded; on a folded model it finds nothing more to do.
    FoldConstantsPass()(model)
    builder = GraphBuilder(model.graph, default_domain_opset(model), imports=imports)
    return builder.build(class_name="UnframeModule")


def converter_for(node: ir.Node, imports: dict[str, int]) -> Converter | None:
    """The converter for ``node`` at the opset its domain is imported at (None if not imported)."""
    opset = node_opset(node.domain, imports)
    return None if opset is None else ops.lookup(node.op_type, opset, node.domain)


def _loop(imports: dict[str, int]) -> ConversionLoop[ir.Node]:
    """The shared loop over ONNX nodes; a node also reads what its subgraphs capture."""
    return dataclasses.replace(onnx_loop(FRAMEWORK, "export", imports), reads=_values_read)


def _values_read(node: ir.Node) -> list[ir.Value]:
    read = [value for value in node.inputs if value is not None]
    for graph in subgraphs(node):
        read.extend(free_values(graph))
    return read


def load_converters() -> None:
    """Imports every op module of ``backends/pytorch/ops`` (each registers its converters)."""
    importlib.import_module("unframe.backends.pytorch.ops")


class GraphBuilder:
    """Builds one (sub)graph into one ``GraphModule``; subgraphs get their own builder."""

    def __init__(
        self,
        graph: ir.Graph,
        opset: int,
        captures: Sequence[ir.Value] = (),
        depth: int = 0,
        imports: dict[str, int] | None = None,
    ) -> None:
        self.ir_graph = graph
        self.opset = opset
        #: opset per domain, for ops of other domains (ai.onnx.preview, com.microsoft, ...)
        self.imports = imports or {}
        self.depth = depth
        self.fx_graph = fx.Graph()
        self.root = nn.Module()
        self.attr_names = NameScope(reserved=module_attribute_names())
        self.arg_names = NameScope()
        self.captures = list(captures)
        #: sanitized attribute / argument name -> the ONNX name it came from
        self._initializer_names: dict[str, str] = {}
        self._input_names: dict[str, str] = {}
        self._env: dict[ir.Value, fx.Node] = {}
        #: initializers, turned into arrays (and parameters) only when first used
        self._lazy_constants: dict[ir.Value, ir.TensorProtocol] = {}
        self._arrays: dict[ir.Value, np.ndarray] = {}
        self._node_constants: dict[fx.Node, np.ndarray] = {}
        #: 1-D int tensors known element-wise (from Shape and ops on its result).
        self.shape_elements: dict[fx.Node, list[int | fx.Node]] = {}

    # -- values ---------------------------------------------------------------------------------
    def fx_value(self, value: ir.Value) -> fx.Node:
        node = self._env.get(value)
        if node is not None:
            return node
        array = self._array_of(value)
        if array is not None:
            node = self._register_initializer(value, array)
            self._env[value] = node
            return node
        raise ConversionError(
            f"value {value.name!r} is used before it is produced", framework=FRAMEWORK
        )

    def _array_of(self, value: ir.Value) -> np.ndarray | None:
        array = self._arrays.get(value)
        if array is None and value in self._lazy_constants:
            array = self._arrays[value] = _initializer_array(self._lazy_constants[value])
        return array

    def constant_of(self, value: ir.Value) -> np.ndarray | None:
        array = self._array_of(value)
        if array is not None:
            return array
        node = self._env.get(value)
        if node is not None and node in self._node_constants:
            return self._node_constants[node]
        # A node output FoldConstantsPass computed (one left in place: a graph output or a node
        # in a subgraph).
        if value.const_value is not None and value.producer() is not None:
            return value.const_value.numpy()
        return None

    def make_constant(
        self, array: np.ndarray, hint: str = "const", dtype: torch.dtype | None = None
    ) -> fx.Node:
        """A new buffer holding ``array`` (in ``dtype`` where given), named after ``hint``."""
        tensor = _tensor_from_numpy(array)
        if dtype is not None:
            tensor = tensor.to(dtype)
        name = self.attr_names.fresh(hint, prefix="c")
        self.root.register_buffer(name, tensor)
        node = self.fx_graph.get_attr(name)
        if dtype is None:
            self._node_constants[node] = array
        return node

    def _register_initializer(self, value: ir.Value, array: np.ndarray) -> fx.Node:
        tensor = _tensor_from_numpy(array)
        name = self.attr_names.fresh(value.name or "weight", prefix="w")
        if (tensor.is_floating_point() or tensor.is_complex()) and not _is_running_statistic(value):
            self.root.register_parameter(name, nn.Parameter(tensor, requires_grad=True))
        else:
            self.root.register_buffer(name, tensor)
        node = self.fx_graph.get_attr(name)
        self._node_constants[node] = array
        self._initializer_names[name] = value.name or ""
        node.meta[ONNX_NAME] = value.name or ""
        return node

    # -- building -------------------------------------------------------------------------------
    def build(self, class_name: str = "UnframeModule") -> fx.GraphModule:
        graph = self.ir_graph
        initializers = set(graph.initializers.values())
        for value in [*graph.inputs, *self.captures]:
            if value in initializers:
                continue  # an input with an initializer is a constant here (its default)
            name = self.arg_names.fresh(value.name or "input", prefix="x")
            placeholder = self.fx_graph.placeholder(name)
            placeholder.meta[ONNX_NAME] = value.name or ""
            self._input_names[name] = value.name or ""
            self._env[value] = placeholder
        for value in graph.initializers.values():
            if value in self._env or value.const_value is None:
                continue
            self._lazy_constants[value] = value.const_value
        loop = _loop(self.imports)
        loop.finish(loop.run(graph, self._convert))
        outputs = []
        for value in graph.outputs:
            out = self.fx_value(value)
            dtype = maybe_torch_dtype(value.dtype)
            if dtype is not None:
                out = self.fx_graph.call_function(fx_functions.cast_to, (out, dtype))
            outputs.append(out)
        self.fx_graph.output(tuple(outputs))
        self.fx_graph.eliminate_dead_code()
        self.fx_graph.lint()
        module = fx.GraphModule(self.root, self.fx_graph, class_name=class_name)
        used = {str(node.target) for node in self.fx_graph.nodes if node.op == "get_attr"}
        module.meta[SOURCE_NAMES] = {
            "initializers": {
                **{k: v for k, v in self._initializer_names.items() if k in used},
                **self._subgraph_initializer_names(used),
            },
            "inputs": dict(self._input_names),
        }
        return module

    def _subgraph_initializer_names(self, used: set[str]) -> dict[str, str]:
        """The initializers of subgraph modules, keyed by their qualified ``state_dict`` names."""
        names: dict[str, str] = {}
        for attr, child in self.root.named_children():
            if attr not in used or not isinstance(child, fx.GraphModule):
                continue
            inner = child.meta.get(SOURCE_NAMES, {}).get("initializers", {})
            names.update({f"{attr}.{key}": source for key, source in inner.items()})
        return names

    def _convert(self, node: ir.Node) -> None:
        """Converts one node (run by the shared loop, which locates what it raises)."""
        converter = converter_for(node, self.imports)
        if converter is None:
            raise ConversionError(f"no {FRAMEWORK} export converter")
        ctx = BuildContext(self, node)
        results = list(converter(node, ctx))
        for value, result in zip(node.outputs, results, strict=False):
            if result is not None and value.name:
                self._env[value] = result
                # An Identity's result is its input's node, which keeps its first name.
                result.meta.setdefault(ONNX_NAME, value.name)
        missing = [
            value.name
            for value in node.outputs[len(results) :]
            if value.name and (value.uses() or value.is_graph_output())
        ]
        if missing:
            raise ctx.error(f"converter produced no value for output(s) {missing}")

    def build_subgraph(
        self, graph: ir.Graph, hint: str, captures: Sequence[ir.Value] | None = None
    ) -> Subgraph:
        """Builds ``graph`` as a submodule; its free variables become trailing inputs.

        ``captures`` fixes the trailing inputs (a superset of the free variables), so that two
        branches of an ``If`` take the same operands.
        """
        captured_values = (
            list(captures)
            if captures is not None
            else sorted(free_values(graph), key=lambda v: v.name or "")
        )
        sub = GraphBuilder(
            graph, self.opset, captured_values, depth=self.depth + 1, imports=self.imports
        )
        module = sub.build(class_name=f"UnframeSubgraph{self.depth + 1}")
        name = self.attr_names.fresh(hint, prefix="g")
        self.root.add_module(name, module)
        return Subgraph(
            module=self.fx_graph.get_attr(name),
            captured=tuple(self.fx_value(v) for v in captured_values),
            num_inputs=len(graph.inputs),
            num_outputs=len(graph.outputs),
        )


_BIT_VIEWS: dict[str, tuple[type, torch.dtype]] = {
    "bfloat16": (np.uint16, torch.bfloat16),
    "float8_e4m3fn": (np.uint8, torch.float8_e4m3fn),
    "float8_e4m3fnuz": (np.uint8, torch.float8_e4m3fnuz),
    "float8_e5m2": (np.uint8, torch.float8_e5m2),
    "float8_e5m2fnuz": (np.uint8, torch.float8_e5m2fnuz),
}


def _is_running_statistic(value: ir.Value) -> bool:
    """Whether ``value`` is a BatchNormalization's running mean or variance (inputs 3 and 4).

    Those are buffers in torch (as in ``nn.BatchNorm2d``): torch.export's inference ops take no
    gradient for them, and torch.onnx refuses a program where they are trainable parameters.
    """
    return any(
        use.node.op_type == "BatchNormalization"
        and use.node.domain in ("", "ai.onnx")
        and use.idx in (3, 4)
        for use in value.uses()
    )


def _initializer_array(tensor: ir.TensorProtocol) -> np.ndarray:
    """The initializer's values; weights on disk are mapped copy-on-write, not read.

    That is external data, and weights inside an ``.onnx`` read by ``load_onnx``. A private
    (copy-on-write) mapping gives parameters that share the file's pages, stay writable for
    training, and leave both the file and the IR's read-only view untouched; only pages written to
    are copied. Weights at an offset unaligned for their dtype are read into fresh memory.
    """
    place = _file_place(tensor)
    if place is not None and tensor.size and tensor.dtype.bitwidth >= 8:
        dtype = np.dtype(tensor.dtype.numpy()).newbyteorder("<")
        path, offset = place
        shape = tuple(tensor.shape.numpy())
        # bfloat16 and float8 (ml_dtypes, numpy kind "V") are mapped as their unsigned storage
        # and viewed back: mapped like float16 and float32, never copied.
        bit_view = _BIT_VIEWS.get(dtype.name)
        storage = np.dtype(bit_view[0]) if bit_view is not None else dtype
        if storage.isnative and storage.kind in "biufc":
            try:
                mapped: np.ndarray
                if offset % storage.alignment == 0:
                    mapped = np.memmap(path, dtype=storage, mode="c", offset=offset, shape=shape)
                else:
                    # Unaligned data crashes some kernels (torch#191238): read it into an aligned
                    # array with read(), not through a mapping whose pages would stay resident.
                    mapped = np.fromfile(
                        path, dtype=storage, count=tensor.size, offset=offset
                    ).reshape(shape)
                return mapped if storage == dtype else mapped.view(dtype)
            except (OSError, ValueError):
                pass
    return tensor.numpy()


def _file_place(tensor: ir.TensorProtocol) -> tuple[str | os.PathLike[str], int] | None:
    if isinstance(tensor, ir.ExternalTensor):
        return tensor.path, tensor.offset or 0
    if isinstance(tensor, MappedTensor) and tensor.file_unchanged():
        return tensor.path, tensor.offset
    return None


def _memory_mapped(array: np.ndarray) -> bool:
    base: object = array
    while base is not None:
        if isinstance(base, mmap.mmap | np.memmap):
            return True
        parent = getattr(base, "base", None)
        base = parent if parent is not None else getattr(base, "obj", None)
    return False


def _tensor_from_numpy(array: np.ndarray) -> torch.Tensor:
    """Shares memory with ``array`` where torch can (writable, native byte order)."""
    if array.dtype == np.object_ or array.dtype.kind in "SUO":
        raise ConversionError("string tensors have no torch equivalent", framework=FRAMEWORK)
    array = widen_emulated(array)
    bit_view = _BIT_VIEWS.get(array.dtype.name)
    if bit_view is not None:
        return _tensor_from_numpy(array.view(bit_view[0])).view(bit_view[1])
    if not array.dtype.isnative or (not array.flags.writeable and _memory_mapped(array)):
        # Read-only mappings cannot back trainable parameters: one copy.
        array = np.array(array, dtype=array.dtype.newbyteorder("="))
    if not array.flags.c_contiguous:
        array = array.copy(order="C")  # (np.ascontiguousarray would make 0-d arrays 1-d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.from_numpy(array)
