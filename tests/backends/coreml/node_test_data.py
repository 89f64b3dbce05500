"""onnx's node tests through the Core ML backend, checked against the tests' own data."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from unframe.converters.adapters.coreml import CoreMLFramework
from unframe.converters.conformance import _as_value, collect_node_tests


def assert_matches_node_test_data(name: str, *, rtol: float, atol: float) -> None:
    """onnx's node test ``name`` exported by the Core ML backend, re-imported and run on
    onnxruntime, gives every output the test's first data set expects."""
    (case,) = collect_node_tests(name_pattern=f"^{name}$")
    (inputs, expected), *_ = case.data_sets
    feeds = {v.name: _as_value(a) for v, a in zip(case.model.graph.input, inputs, strict=True)}
    actual = list(CoreMLFramework().run_ir(ir.from_proto(case.model), feeds).values())
    for got, want in zip(actual, expected, strict=True):
        np.testing.assert_allclose(got, _as_value(want), rtol=rtol, atol=atol)
