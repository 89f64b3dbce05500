"""Nets whose fed blobs carry their own types, and three-way checks: onnxruntime on the import,
the executor on the NetDef, and a numpy value written from Caffe2's kernels."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir
from netdef_builders import model

from unframe.backends.caffe2.native import CAFFE2_DTYPES
from unframe.backends.caffe2.native.executor import run_net
from unframe.backends.caffe2.native.netdef import Caffe2Model
from unframe.converters.framework import ConvertOptions
from unframe.frontends.caffe2 import import_caffe2
from unframe.shared_ir.inputs import InputSpec
from unframe.shared_ir.runner import run_reference

Shapes = dict[str, tuple[Any, ...]]


def typed_net(ops: list[Any], feeds: dict[str, np.ndarray], outputs: list[str]) -> Caffe2Model:
    """A net of ``ops`` whose fed blobs have their own element types and shapes in value_info."""
    c2 = model(ops, {}, {}, outputs)
    c2.predict_net.external_input.extend(feeds)
    c2.value_info = {
        name: (CAFFE2_DTYPES[ir.DataType.from_numpy(v.dtype)], list(v.shape))
        for name, v in feeds.items()
    }
    return c2


def imported(c2: Caffe2Model, feeds: dict[str, np.ndarray], shapes: Shapes | None = None) -> Any:
    """The imported model, its inputs shaped like ``feeds`` (``shapes`` may leave dims dynamic)."""
    specs = {
        k: InputSpec(k, (shapes or {}).get(k, tuple(v.shape)), v.dtype) for k, v in feeds.items()
    }
    return import_caffe2(c2, ConvertOptions(inputs=specs))


def run_imported(
    c2: Caffe2Model, feeds: dict[str, np.ndarray], shapes: Shapes | None = None
) -> dict[str, np.ndarray]:
    """onnxruntime's outputs for the imported net."""
    result = run_reference(imported(c2, feeds, shapes), feeds)
    assert result.engine == "onnxruntime", result.fallback_reason
    return result.outputs


def check(
    c2: Caffe2Model, feeds: dict[str, np.ndarray], want: dict[str, Any], *, exact: bool = False
) -> None:
    """onnxruntime's outputs equal the executor's, and both equal the numpy oracle ``want``,
    element type and shape included.

    Outputs are matched by position: a blob written in place gets a new name in the graph.
    """
    got = list(run_imported(c2, feeds).values())
    executed = run_net(c2.predict_net, c2.init_net, feeds)
    assert list(executed) == list(want)
    assert len(got) == len(executed)
    for mine, (name, theirs) in zip(got, executed.items(), strict=True):
        value = np.asarray(want[name])
        assert mine.dtype == value.dtype == theirs.dtype, name
        assert mine.shape == value.shape == theirs.shape, name
        if exact:
            np.testing.assert_array_equal(mine, theirs, err_msg=name)
            np.testing.assert_array_equal(mine, value, err_msg=name)
        else:
            np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6, err_msg=name)
            np.testing.assert_allclose(mine, value, rtol=1e-5, atol=1e-6, err_msg=name)
