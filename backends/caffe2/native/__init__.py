"""The Caffe2 format, standing in for the Caffe2 package (which installs nowhere any more).

Both directions import this package and nothing else of ``backends.caffe2``: the importer
(``frontends/caffe2``) reads models with it, the exporter (``backends/caffe2``) writes them.

* protobuf bindings of Caffe2's schema (``caffe2_pb2``, generated from ``caffe2.proto``);
* the model directory and NetDef I/O, binary and protobuf text (``netdef.py``), with large
  weight lists moved past protobuf (``wire.py``, ``values.py``);
* Caffe2's element types, one table (``dtypes.py``), and its argument reader (``arguments.py``);
* random weights for nets published without them (``weights.py``);
* a reference executor on numpy (``executor/``), which runs nets as Caffe2 did.
"""

from __future__ import annotations

from unframe.backends.caffe2.native import caffe2_pb2
from unframe.backends.caffe2.native.arguments import ArgumentReader
from unframe.backends.caffe2.native.dtypes import (
    CAFFE2_DTYPES,
    EXACT_FILLS,
    GIVEN_FILL_TYPES,
    GIVEN_TENSOR_FILL_DTYPES,
    IR_DTYPES,
    NUMPY_DTYPES,
    DataType,
    data_type_name,
)
from unframe.backends.caffe2.native.executor import Workspace, run_net, unsupported_ops
from unframe.backends.caffe2.native.netdef import (
    Caffe2Model,
    ValueInfo,
    attached_op,
    data_inputs,
    parse_netdef,
    parse_netdef_text,
    placeholder_inputs,
    read_model,
    read_netdef,
    subnets,
    write_model,
    write_netdef,
)
from unframe.backends.caffe2.native.values import get_floats, get_ints, set_floats, set_ints
from unframe.backends.caffe2.native.weights import random_init_net
from unframe.backends.caffe2.native.wire import FAST_MIN, Detached

__all__ = [
    "CAFFE2_DTYPES",
    "EXACT_FILLS",
    "FAST_MIN",
    "GIVEN_FILL_TYPES",
    "GIVEN_TENSOR_FILL_DTYPES",
    "IR_DTYPES",
    "NUMPY_DTYPES",
    "ArgumentReader",
    "Caffe2Model",
    "DataType",
    "Detached",
    "ValueInfo",
    "Workspace",
    "attached_op",
    "caffe2_pb2",
    "data_inputs",
    "data_type_name",
    "get_floats",
    "get_ints",
    "parse_netdef",
    "parse_netdef_text",
    "placeholder_inputs",
    "random_init_net",
    "read_model",
    "read_netdef",
    "run_net",
    "set_floats",
    "set_ints",
    "subnets",
    "unsupported_ops",
    "write_model",
    "write_netdef",
]
