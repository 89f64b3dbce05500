"""--input parsing and seeded example inputs."""

from __future__ import annotations

import numpy as np
import pytest

from unframe.shared_ir.errors import BadInputError
from unframe.shared_ir.inputs import InputSpec, align_feeds, example_inputs

from helpers import as_ir, tiny_model


def test_parse_dims_dtype_and_symbols():
    spec = InputSpec.parse("input_ids=1,batch,128:int64")
    assert spec.name == "input_ids"
    assert spec.shape == (1, "batch", 128)
    assert spec.dtype == np.dtype("int64")
    assert InputSpec.parse("x=2,3").dtype is None


@pytest.mark.parametrize("text", ["x", "=1,2", "x=1,2:complex999"])
def test_bad_specs_raise_bad_input(text):
    with pytest.raises(BadInputError):
        InputSpec.parse(text)


def test_example_inputs_are_seeded_and_follow_specs():
    model = as_ir(tiny_model())
    first = example_inputs(list(model.graph.inputs))
    again = example_inputs(list(model.graph.inputs))
    assert first["x"].shape == (1, 3)  # the symbolic batch becomes 1
    np.testing.assert_array_equal(first["x"], again["x"])
    sized = example_inputs(list(model.graph.inputs), {"x": InputSpec.parse("x=4,3")})
    assert sized["x"].shape == (4, 3) and sized["x"].dtype == np.float32


def test_align_feeds_by_name_or_position():
    feeds = {"a": np.zeros(1), "b": np.ones(1)}
    assert list(align_feeds(["b", "a"], feeds)) == ["b", "a"]
    renamed = align_feeds(["input_0", "input_1"], feeds)
    assert renamed["input_1"][0] == 1.0
    with pytest.raises(BadInputError):
        align_feeds(["p", "q", "r"], feeds)
