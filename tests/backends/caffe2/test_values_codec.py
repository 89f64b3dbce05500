"""The fast GivenTensorFill value codec against protobuf's own element-wise containers."""

from __future__ import annotations

import numpy as np
import pytest

from unframe.backends.caffe2.native import caffe2_pb2
from unframe.backends.caffe2.native.values import get_floats, set_floats, set_ints


@pytest.mark.parametrize("count", [3, 50_000])
def test_floats_written_fast_parse_as_protobuf_would_write_them(count):
    values = np.random.default_rng(0).standard_normal(count).astype(np.float32)
    values[:2] = [np.inf, -0.0]
    fast = caffe2_pb2.Argument(name="values")
    set_floats(fast, values)
    slow = caffe2_pb2.Argument(name="values")
    slow.floats.extend(values.tolist())
    # Both serialize to the very same bytes, and read back bit for bit.
    assert fast.SerializeToString() == slow.SerializeToString()
    parsed = caffe2_pb2.Argument.FromString(slow.SerializeToString())
    np.testing.assert_array_equal(get_floats(parsed), values)
    assert get_floats(parsed).dtype == np.float32


def test_ints_with_negatives_and_large_values():
    values = np.array([0, 1, -1, 127, 128, -(2**40), 2**62, -(2**63)] * 1000, dtype=np.int64)
    fast = caffe2_pb2.Argument(name="values")
    set_ints(fast, values)
    assert list(fast.ints) == values.tolist()
